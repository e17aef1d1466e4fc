//! runtimetest: runs inside the container and compares what it sees with /config.json;
//! `runtimetest syscall ...` makes raw system calls instead (see rawsys.rs).

mod caps;
mod linux;
mod mounts;
mod process;
mod rawsys;
mod seccomp;
mod tap;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("syscall") {
        std::process::exit(rawsys::run(&args[1..]));
    }
    let mut path = String::from("/");
    for a in std::env::args().skip(1) {
        if let Some(p) = a.strip_prefix("--path=") {
            path = p.to_string();
        }
    }
    let file = std::path::Path::new(&path).join("config.json");
    let cfg: serde_json::Value = match std::fs::read_to_string(&file)
        .map_err(|e| e.to_string())
        .and_then(|s| serde_json::from_str(&s).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => {
            println!("Bail out! read {}: {e}", file.display());
            std::process::exit(1);
        }
    };
    let mut t = tap::Tap::new();
    let cwd_blocked = seccomp::getcwd_errno(&cfg).is_some();
    process::check(&mut t, &cfg["process"], cwd_blocked);
    seccomp::check(&mut t, &cfg);
    mounts::check(&mut t, &cfg);
    linux::check(&mut t, &cfg);
    t.plan();
}
