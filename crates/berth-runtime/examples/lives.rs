//! Measures what one long-lived embedding process keeps per container: it runs N
//! container lives (create, start, wait through the pidfd, delete) of `/bin/true`
//! in a busybox rootfs, one after the other, and prints its own thread count, open
//! fds and resident memory before the first and after the last.
//!
//! ```text
//! lives ROOTFS [N]        (N defaults to 1000)
//! ```
//!
//! The last line is machine-readable (`threads A->B fds A->B rss_kib A->B`) for the
//! test that runs a short series. Run as root; the state lives in a temporary root
//! removed at the end.

use berth_runtime::{CreateOptions, ExitStatus, Runtime, SpecBundle, Stdio};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// (threads, open fds, resident KiB) of this process.
fn usage() -> (u64, usize, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
    (field("Threads:"), fds, field("VmRSS:"))
}

fn main() {
    if let Err(e) = run() {
        eprintln!("lives: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let rootfs = PathBuf::from(args.next().ok_or("usage: lives ROOTFS [N]")?);
    let n: usize = match args.next() {
        Some(a) => a.to_str().ok_or("N must be a number")?.parse()?,
        None => 1000,
    };
    let mut spec = berth_runtime::default_spec();
    let mut process = spec.process().clone().unwrap_or_default();
    process.set_terminal(Some(false));
    process.set_args(Some(vec!["true".into()]));
    spec.set_process(Some(process));

    let tag = std::process::id();
    let root = std::env::temp_dir().join(format!("berth-lives-{tag}"));
    let runtime = Runtime::new(&root)?;
    // One life first, so that what is set up once (the allocator's arenas, lazily
    // loaded libraries) is not counted as growth.
    life(&runtime, &format!("lives-{tag}-warm"), &spec, &rootfs)?;
    let before = usage();
    let started = Instant::now();
    let mut result = Ok(());
    for i in 0..n {
        result = life(&runtime, &format!("lives-{tag}-{i}"), &spec, &rootfs);
        if result.is_err() {
            break;
        }
    }
    let elapsed = started.elapsed();
    let after = usage();
    let _ = std::fs::remove_dir_all(&root);
    result?;
    println!(
        "{n} lives in {:.1} s ({:.1} ms each)",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / n.max(1) as f64
    );
    println!(
        "threads {}->{} fds {}->{} rss_kib {}->{}",
        before.0, after.0, before.1, after.1, before.2, after.2
    );
    Ok(())
}

/// create, start, wait, delete; anything left over is removed on failure.
fn life(
    runtime: &Runtime,
    id: &str,
    spec: &oci_spec::runtime::Spec,
    rootfs: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let attempt = || -> Result<(), Box<dyn std::error::Error>> {
        let options = CreateOptions {
            stdio: Stdio::null()?,
            ..Default::default()
        };
        let mut c =
            runtime.create_from_spec(id, SpecBundle::new(spec.clone(), rootfs), &options)?;
        drop(options);
        let exit = c.wait_handle()?;
        c.start()?;
        let status = exit.wait()?.status;
        if status != ExitStatus::Exited(0) {
            return Err(format!("container {id}: {status:?}").into());
        }
        c.delete(false)?;
        Ok(())
    };
    let r = attempt();
    if r.is_err() {
        if let Ok(c) = runtime.load(id) {
            let _ = c.delete(true);
        }
    }
    r
}
