//! `berth create` when the intermediate process is slow to report the init's pid: the
//! init's own messages (runtime hooks, ready) then reach the parent first. strace's
//! fault injection holds every clone's return for a while, so the init (already
//! running) wins that race every time, as it did now and then on a loaded host.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{berth_root, bundle, init_pid, status, stderr, usable, Guard, TempDir, BERTH};

/// Whether this strace can delay a syscall's return (`inject=...:delay_exit`, 4.22+).
fn strace_delays() -> bool {
    let out = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=getpid"])
        .args(["-e", "inject=getpid:delay_exit=1000", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    matches!(out, Ok(s) if s.success())
}

#[test]
fn create_records_the_init_when_the_intermediate_reports_late() {
    if !usable() {
        return;
    }
    if !strace_delays() {
        eprintln!("skipped: no strace that can inject a syscall delay (delay_exit)");
        return;
    }
    let dir = TempDir::new("order");
    let root = TempDir::new("order-root");
    let mut guard = Guard::new(&root, "order");
    let id = support::unique_id("order");
    guard.ids.push(id.clone());
    let b = bundle(&dir, &["sleep", "100"], &guard.cgroup_parent, &id);
    let pid_file = dir.path().join("pid");
    // strace follows the init too and lives as long as it: it is waited for only after
    // the delete below. The pid file is written once create has recorded everything.
    let mut strace = Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=clone,clone3"])
        .args(["-e", "inject=clone,clone3:delay_exit=500000", BERTH])
        .args(["--root", root.str(), "create", "--pid-file"])
        .arg(&pid_file)
        .args(["-b", b.to_str().expect("utf-8"), &id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn strace");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !Path::new(&pid_file).exists() && Instant::now() < deadline {
        if let Ok(Some(s)) = strace.try_wait() {
            panic!("create under strace ended without a pid file: {s}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let recorded = std::fs::read_to_string(&pid_file).unwrap_or_default();
    let state_status = status(&root, &id);
    let state_pid = init_pid(&root, &id);
    let start = berth_root(&root, &["start", &id]);
    let deleted = berth_root(&root, &["delete", "--force", &id]);
    let waited = support::wait_exit(&mut strace);
    assert!(waited.success(), "create under strace: {waited}");
    assert!(deleted.status.success(), "{}", stderr(&deleted));
    assert!(
        state_pid > 0,
        "state pid {state_pid}, pid file {recorded:?}"
    );
    assert_eq!(recorded.trim(), state_pid.to_string());
    assert_eq!(state_status, "created");
    assert!(start.status.success(), "start: {}", stderr(&start));
}
