//! `berth pause`, `resume` and `ps` on a running container, as root, and `exec` into a
//! paused one (refused, or with `--ignore-paused` run once thawed).

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::{
    berth_root, init_pid, start, status, stderr, stdout, usable, wait_exit, Guard, TempDir, BERTH,
};

#[test]
fn pause_resume_ps_and_paused_exec() {
    if !usable() {
        return;
    }
    let dir = TempDir::new("pause");
    let root = TempDir::new("pause-root");
    let mut guard = Guard::new(&root, "pause");
    let id = start(&dir, &mut guard, "pause", &["sleep", "100"]);
    let pid = init_pid(&root, &id);

    let out = berth_root(&root, &["ps", "--format", "json", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pids: Vec<i32> = serde_json::from_str(&stdout(&out)).expect("pid list");
    assert_eq!(pids, vec![pid]);
    let out = berth_root(&root, &["ps", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("UID"), "{text}");
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("sleep 100"), "{text}");
    let out = berth_root(&root, &["ps", &id, "-o", "pid,comm"]);
    assert!(
        stdout(&out).contains(&format!("{pid} sleep")),
        "{}",
        stdout(&out)
    );
    let out = berth_root(&root, &["ps", "-f", "xml", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("invalid format option"));

    let out = berth_root(&root, &["resume", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("container not paused"),
        "{}",
        stderr(&out)
    );
    let out = berth_root(&root, &["pause", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(status(&root, &id), "paused");
    let out = berth_root(&root, &["pause", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("container not running"),
        "{}",
        stderr(&out)
    );
    let out = berth_root(&root, &["exec", &id, "true"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(
        stderr(&out)
            .contains("cannot exec in a paused container (use --ignore-paused to override)"),
        "{}",
        stderr(&out)
    );
    // --ignore-paused: the process joins the frozen cgroup and runs once thawed.
    let mut exec = Command::new(BERTH)
        .arg("--root")
        .arg(root.path())
        .args(["exec", "--ignore-paused", &id, "sh", "-c", "exit 4"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn exec");
    std::thread::sleep(Duration::from_millis(300));
    let out = berth_root(&root, &["resume", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(wait_exit(&mut exec).code(), Some(4));
    assert_eq!(status(&root, &id), "running");
    let out = berth_root(&root, &["pause", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
}
