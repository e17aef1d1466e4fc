//! Runs a busybox container through the library, with its stdout and stderr piped
//! back to this program, which prints them and exits with the container's status.
//!
//! ```text
//! run_busybox ROOTFS [ARGS...]
//! ```
//!
//! ROOTFS is a directory holding `bin/busybox` and its applets' links (`bin/sh`, ...),
//! as the tests build one. ARGS default to a small shell script. Run as root: the
//! container gets its own pid, mount, ipc, uts and network namespaces and a cgroup.
//! The state lives in a temporary root removed at the end.

use berth_runtime::{CreateOptions, ExitStatus, Runtime, SpecBundle, Stdio};
use std::io::Read;
use std::path::PathBuf;

fn main() {
    match run() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("run_busybox: {e}");
            std::process::exit(125);
        }
    }
}

fn run() -> Result<i32, Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let rootfs = PathBuf::from(args.next().ok_or("usage: run_busybox ROOTFS [ARGS...]")?);
    let mut argv: Vec<String> = args
        .map(|a| a.into_string().map_err(|_| "arguments must be UTF-8"))
        .collect::<Result<_, _>>()?;
    if argv.is_empty() {
        argv = [
            "sh",
            "-c",
            "echo hello from busybox on $(hostname); echo to stderr >&2",
        ]
        .map(String::from)
        .to_vec();
    }

    // runc's default spec, with the arguments, no terminal and a hostname of ours.
    let mut spec = berth_runtime::default_spec();
    let mut process = spec.process().clone().unwrap_or_default();
    process.set_terminal(Some(false));
    process.set_args(Some(argv));
    spec.set_process(Some(process));
    spec.set_hostname(Some("busybox".into()));

    let id = format!("run-busybox-{}", std::process::id());
    let root = std::env::temp_dir().join(format!("berth-example-{id}"));
    let runtime = Runtime::new(&root)?;
    let result = life(&runtime, &id, spec, rootfs);
    // Whatever happened, leave nothing: the container (if still there) and the root.
    if let Ok(c) = runtime.load(&id) {
        let _ = c.delete(true);
    }
    let _ = std::fs::remove_dir_all(&root);
    result
}

/// One container's life: create with piped stdio, start, read, wait, delete.
fn life(
    runtime: &Runtime,
    id: &str,
    spec: oci_spec::runtime::Spec,
    rootfs: PathBuf,
) -> Result<i32, Box<dyn std::error::Error>> {
    let (mut out, out_w) = std::io::pipe()?;
    let (mut err, err_w) = std::io::pipe()?;
    let options = CreateOptions {
        stdio: Stdio {
            stdout: Some(out_w.into()),
            stderr: Some(err_w.into()),
            ..Stdio::null()?
        },
        ..Default::default()
    };
    let mut container = runtime.create_from_spec(id, SpecBundle::new(spec, rootfs), &options)?;
    // Our copies of the writing ends go, so the reads below end when the container's do.
    drop(options);
    let exit = container.wait_handle()?;
    container.start()?;

    // stderr on a thread, so that neither pipe can fill while the other is read.
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).map(|_| s)
    });
    let mut stdout = String::new();
    out.read_to_string(&mut stdout)?;
    let stderr = stderr.join().map_err(|_| "stderr reader panicked")??;
    let exit = exit.wait()?;
    container.delete(false)?;

    for line in stdout.lines() {
        println!("stdout: {line}");
    }
    for line in stderr.lines() {
        println!("stderr: {line}");
    }
    println!(
        "exit: {:?}{}",
        exit.status,
        if exit.oom_killed { " (OOM-killed)" } else { "" }
    );
    Ok(match exit.status {
        ExitStatus::Exited(code) => code,
        ExitStatus::Signaled(sig) => 128 + sig,
    })
}
