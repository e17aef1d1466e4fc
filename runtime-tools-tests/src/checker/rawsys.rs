//! `runtimetest syscall NR[,ARG...] ...`: makes each raw system call (up to six
//! arguments, missing ones 0) and prints `NR=ERRNO` for it, 0 when it succeeded. A
//! raw call, not a libc wrapper, so the errno a seccomp filter answers is seen as it
//! is (glibc hides some ENOSYS answers behind fallbacks).

pub fn run(specs: &[String]) -> i32 {
    let mut out = Vec::new();
    for spec in specs {
        let nums: Result<Vec<i64>, _> = spec.split(',').map(str::parse::<i64>).collect();
        let Some((nr, args)) = nums.ok().and_then(|n| {
            let (nr, rest) = n.split_first()?;
            (rest.len() <= 6).then(|| (*nr, rest.to_vec()))
        }) else {
            eprintln!(
                "runtimetest syscall: bad call {spec:?} (want NR[,ARG...], at most six arguments)"
            );
            return 2;
        };
        let a = |i: usize| args.get(i).copied().unwrap_or(0);
        // SAFETY: the caller chooses the call and its arguments; the scenarios use
        // calls whose arguments are plain numbers (no pointers the kernel would write
        // through) or that are meant to fail.
        let r = unsafe { libc::syscall(nr, a(0), a(1), a(2), a(3), a(4), a(5)) };
        let errno = if r < 0 {
            std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
        } else {
            0
        };
        out.push(format!("{nr}={errno}"));
    }
    println!("{}", out.join(" "));
    0
}
