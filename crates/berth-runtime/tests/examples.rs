//! The programs in `examples/` run as an embedder would run them (as root, real
//! namespaces and cgroups): `run_busybox` prints a busybox container's piped output,
//! and `lives` shows that a series of container lives leaves no thread or fd behind
//! in the process that ran them.

use std::path::PathBuf;
use std::process::{Command, Output};

mod support;
use support::Fixture;

/// The example's binary, built now if it is not up to date: `cargo test` builds
/// examples beside the tests (`target/<profile>/examples/`), but not with `--test
/// examples`, and a stale one must not be what is tested. Cargo has released its
/// build lock by the time tests run, so this nested build does not wait on it.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let mut build = Command::new("timeout");
    build.args([
        "600",
        env!("CARGO"),
        "build",
        "-q",
        "-p",
        "berth-runtime",
        "--example",
        name,
    ]);
    if profile_dir.ends_with("release") {
        build.arg("--release");
    }
    let status = build.status().unwrap();
    assert!(status.success(), "cargo build --example {name}: {status}");
    let path = profile_dir.join("examples").join(name);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// Runs it with a time bound (`timeout` kills it after `secs`).
fn run(path: &PathBuf, args: &[&str], secs: u32) -> Output {
    Command::new("timeout")
        .arg(secs.to_string())
        .arg(path)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn run_busybox_prints_the_containers_output() {
    let f = Fixture::new("ex-busybox", &["sh", "echo", "hostname"]);
    let rootfs = f.bundle().join("rootfs");
    let bin = example("run_busybox");
    let out = run(&bin, &[rootfs.to_str().unwrap()], 60);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}\n{stdout}\n{stderr}", out.status);
    assert_eq!(
        stdout,
        "stdout: hello from busybox on busybox\nstderr: to stderr\nexit: Exited(0)\n"
    );
    // The container's exit code is the program's.
    let out = run(
        &bin,
        &[rootfs.to_str().unwrap(), "sh", "-c", "echo bye; exit 5"],
        60,
    );
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "stdout: bye\nexit: Exited(5)\n"
    );
}

#[test]
fn lives_leave_no_threads_or_fds_behind() {
    let f = Fixture::new("ex-lives", &["true"]);
    let rootfs = f.bundle().join("rootfs");
    let out = run(&example("lives"), &[rootfs.to_str().unwrap(), "40"], 120);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    // threads A->B fds A->B rss_kib A->B
    let last = stdout.lines().last().unwrap_or_default();
    let words: Vec<&str> = last.split(' ').collect();
    assert_eq!(words.len(), 6, "{stdout}");
    let pair = |w: &str| {
        let (a, b) = w.split_once("->").unwrap();
        (a.parse::<u64>().unwrap(), b.parse::<u64>().unwrap())
    };
    let (threads, fds) = (pair(words[1]), pair(words[3]));
    assert_eq!(threads.0, threads.1, "threads grew: {stdout}");
    assert_eq!(fds.0, fds.1, "fds grew: {stdout}");
}
