//! `berth exec` in a running container, as root: the process overrides (user, groups,
//! cwd, env, capabilities, no_new_privileges), `--process`, `-d --pid-file`, `--cgroup`,
//! a bridged tty, exit codes passed through, and the errors for bad input and stopped
//! containers.

mod support;

use std::time::{Duration, Instant};

use support::{
    berth_root, cgroup_dir, init_pid, read_trim, start, status, stderr, stdout, usable, Guard,
    TempDir,
};

#[test]
fn exec_overrides_are_seen_inside_and_exit_codes_pass_through() {
    if !usable() {
        return;
    }
    let dir = TempDir::new("exec");
    let root = TempDir::new("exec-root");
    let mut guard = Guard::new(&root, "exec");
    let id = start(&dir, &mut guard, "exec", &["sleep", "100"]);

    let out = berth_root(&root, &["exec", &id, "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let out = berth_root(&root, &["exec", &id, "sh", "-c", "kill -9 $$"]);
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));

    let script =
        "id -u; id -g; id -G; pwd; echo $FOO; grep -E 'NoNewPrivs|CapBnd' /proc/self/status";
    let out = berth_root(
        &root,
        &[
            "exec",
            "-e",
            "FOO=bar",
            "--cwd",
            "/tmp",
            "-u",
            "1000:1001",
            "-g",
            "5",
            "--cap",
            "CAP_SYS_ADMIN",
            "--no-new-privs",
            &id,
            "sh",
            "-c",
            script,
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "1000", "{text}");
    assert_eq!(lines[1], "1001", "{text}");
    assert!(lines[2].split_whitespace().any(|g| g == "5"), "{text}");
    assert_eq!(lines[3], "/tmp");
    assert_eq!(lines[4], "bar");
    let bnd = lines
        .iter()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .expect("CapBnd line");
    assert_ne!(bnd & (1 << 21), 0, "CAP_SYS_ADMIN added: {text}");
    assert!(text.contains("NoNewPrivs:\t1"), "{text}");

    // --process with a process.json; -d with --pid-file.
    let pj = dir.path().join("process.json");
    std::fs::write(
        &pj,
        r#"{"cwd":"/","args":["sh","-c","echo json-ok; exit 3"],"user":{"uid":0,"gid":0}}"#,
    )
    .expect("write process.json");
    let out = berth_root(&root, &["exec", "-p", pj.to_str().expect("utf-8"), &id]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out), "json-ok\n");
    let pid_file = dir.path().join("exec.pid");
    let out = berth_root(
        &root,
        &[
            "exec",
            "-d",
            "--pid-file",
            pid_file.to_str().expect("utf-8"),
            &id,
            "sleep",
            "1",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let pid: i32 = read_trim(pid_file).parse().expect("pid in pid file");
    assert!(pid > 0);

    // --cgroup: an existing sub-cgroup of the container's.
    if support::v1_hierarchies("exec --cgroup", &["pids"]) {
        exec_sub_cgroup(&root, &id);
    }

    // A tty in the foreground without a console socket: berth bridges it.
    let out = berth_root(&root, &["exec", "-t", &id, "tty"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("/dev/pts/"), "{}", stdout(&out));

    // Bad input: exit 255, one line, nothing started.
    std::fs::write(&pj, "{bad").expect("write");
    for (args, want) in [
        (
            vec!["exec", "-p", pj.to_str().expect("utf-8"), &id],
            "parse process",
        ),
        (vec!["exec", &id], "process args cannot be empty"),
        (
            vec!["exec", "-u", "x", &id, "true"],
            "parsing x as int for uid failed",
        ),
        (vec!["exec", "-d", "-t", &id, "true"], "cannot allocate tty"),
        (vec!["exec", &id, "/nonexistent"], "/nonexistent"),
        (vec!["exec", "nosuchcontainer", "true"], "does not exist"),
    ] {
        let out = berth_root(&root, &args);
        assert_eq!(out.status.code(), Some(255), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    }

    // An unknown --cap is ignored with a warning, as runc 1.1.5 does.
    let out = berth_root(&root, &["exec", "--cap", "CAP_NOPE", &id, "echo", "ran"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "ran\n");
    assert!(
        stderr(&out).contains("warn") && stderr(&out).contains("CAP_NOPE"),
        "{}",
        stderr(&out)
    );

    // A stopped container refuses exec with runc's message.
    let out = berth_root(&root, &["kill", &id, "KILL"]);
    assert!(out.status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while status(&root, &id) != "stopped" {
        assert!(Instant::now() < deadline, "container did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = berth_root(&root, &["exec", &id, "true"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(
        stderr(&out).contains("exec failed: cannot exec in a stopped container"),
        "{}",
        stderr(&out)
    );
}

/// `exec --cgroup`: joins an existing sub-cgroup; refusals in runc's words (runc's
/// exec.bats matches on them).
fn exec_sub_cgroup(root: &TempDir, id: &str) {
    let sub = cgroup_dir(init_pid(root, id), "pids").join("sub");
    std::fs::create_dir(&sub).expect("mkdir sub-cgroup");
    let out = berth_root(
        root,
        &[
            "exec",
            "--cgroup",
            "pids:sub",
            id,
            "cat",
            "/proc/self/cgroup",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.contains(":pids:") && l.ends_with("/sub")),
        "{}",
        stdout(&out)
    );
    for (bad, want) in [
        ("pids:nosuch", "/nosuch/cgroup.procs: no such file "),
        ("nosuch", "/nosuch/cgroup.procs: no such file "),
        ("..", " .. is not a sub cgroup path"),
        ("../up", " ../up is not a sub cgroup path"),
        (
            "nosuchcontroller:sub",
            "unknown controller nosuchcontroller",
        ),
    ] {
        let out = berth_root(root, &["exec", "--cgroup", bad, id, "true"]);
        assert_eq!(out.status.code(), Some(255), "{bad}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{bad}: {}", stderr(&out));
        if bad.contains("nosuch") && !bad.contains("controller") {
            assert!(
                stderr(&out).contains(" adding pid "),
                "{bad}: {}",
                stderr(&out)
            );
        }
    }
    // `/` is the container's own cgroup.
    let out = berth_root(root, &["exec", "--cgroup", "/", id, "true"]);
    assert!(out.status.success(), "{}", stderr(&out));
}
