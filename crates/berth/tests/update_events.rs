//! `berth update` and `berth events` against the container's cgroup files, as root:
//! new limits are written and felt by the process, invalid values change nothing, and
//! stats and OOM events match what the kernel reports.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::{
    berth_root, cgroup_dir, init_pid, read_trim, start, stderr, stdout, usable, wait_exit, Guard,
    TempDir, BERTH,
};

#[test]
fn update_changes_the_cgroup_and_the_process_feels_it() {
    if !support::v1_hierarchies(
        "update_changes_the_cgroup_and_the_process_feels_it",
        &["pids", "memory", "cpu"],
    ) {
        return;
    }
    if !usable() {
        return;
    }
    let dir = TempDir::new("update");
    let root = TempDir::new("update-root");
    let mut guard = Guard::new(&root, "update");
    let id = start(&dir, &mut guard, "update", &["sleep", "100"]);
    let pid = init_pid(&root, &id);

    let out = berth_root(
        &root,
        &[
            "update",
            "--pids-limit",
            "3",
            "--memory",
            "64M",
            "--cpu-share",
            "512",
            "--cpu-quota",
            "50000",
            "--cpu-period",
            "100000",
            &id,
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(read_trim(cgroup_dir(pid, "pids").join("pids.max")), "3");
    assert_eq!(
        read_trim(cgroup_dir(pid, "memory").join("memory.limit_in_bytes")),
        (64u64 << 20).to_string()
    );
    assert_eq!(read_trim(cgroup_dir(pid, "cpu").join("cpu.shares")), "512");
    assert_eq!(
        read_trim(cgroup_dir(pid, "cpu").join("cpu.cfs_quota_us")),
        "50000"
    );
    // The container feels it: with 3 pids (sleep, sh, one child), more forks fail.
    let out = berth_root(
        &root,
        &[
            "exec",
            &id,
            "sh",
            "-c",
            "sleep 5 & sleep 5 & sleep 5 & wait",
        ],
    );
    assert!(stderr(&out).contains("can't fork"), "{}", stderr(&out));

    // -r - from stdin.
    let mut child = Command::new(BERTH)
        .arg("--root")
        .arg(root.path())
        .args(["update", "-r", "-", &id])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn update");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(br#"{"pids":{"limit":9}}"#)
            .expect("write stdin");
    }
    assert!(wait_exit(&mut child).success());
    assert_eq!(read_trim(cgroup_dir(pid, "pids").join("pids.max")), "9");

    // Invalid values: exit 1, one line, nothing changed.
    let state_file = root.path().join(&id).join("state.json");
    let before = std::fs::read(&state_file).expect("state.json");
    for args in [
        vec!["update", "--memory", "12Q", &id],
        vec!["update", "--pids-limit", "x", &id],
        vec!["update", "--blkio-weight", "5", &id],
        vec!["update", "--cpuset-cpus", "1-0", &id],
        vec!["update", "--l3-cache-schema", "L3:0=f", &id],
        vec!["update", "--mem-bw-schema", "MB:0=50", &id],
        vec!["update", "-r", "/nonexistent/resources.json", &id],
    ] {
        let out = berth_root(&root, &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
    }
    let out = berth_root(&root, &["update", "--memory", "12Q", &id]);
    assert!(
        stderr(&out).contains("invalid value for memory: invalid size: '12Q'"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&state_file).expect("state.json"), before);
    assert_eq!(read_trim(cgroup_dir(pid, "pids").join("pids.max")), "9");
}

#[test]
fn events_stats_match_the_cgroup_files() {
    if !support::v1_hierarchies(
        "events_stats_match_the_cgroup_files",
        &["pids", "memory", "cpuacct"],
    ) {
        return;
    }
    if !usable() {
        return;
    }
    let dir = TempDir::new("events");
    let root = TempDir::new("events-root");
    let mut guard = Guard::new(&root, "events");
    let id = start(&dir, &mut guard, "events", &["sleep", "100"]);
    let pid = init_pid(&root, &id);
    let out = berth_root(
        &root,
        &["update", "--pids-limit", "50", "--memory", "128M", &id],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let out = berth_root(&root, &["events", "--stats", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "{text}");
    let ev: serde_json::Value = serde_json::from_str(&text).expect("event json");
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["id"], id.as_str());
    let data = &ev["data"];
    let pids = cgroup_dir(pid, "pids");
    assert_eq!(
        data["pids"]["current"].to_string(),
        read_trim(pids.join("pids.current"))
    );
    assert_eq!(data["pids"]["limit"], 50);
    let mem = cgroup_dir(pid, "memory");
    assert_eq!(data["memory"]["usage"]["limit"], 128u64 << 20);
    assert_eq!(
        data["memory"]["usage"]["failcnt"].to_string(),
        read_trim(mem.join("memory.failcnt"))
    );
    assert!(data["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0);
    assert!(data["memory"]["raw"]["total_rss"].is_u64(), "{data}");
    let total = data["cpu"]["usage"]["total"].as_u64().unwrap_or(0);
    let file: u64 = read_trim(cgroup_dir(pid, "cpuacct").join("cpuacct.usage"))
        .parse()
        .expect("usage");
    assert!(total > 0 && total <= file, "{total} vs {file}");
    assert!(data["network_interfaces"].is_null());

    // Without --stats: lines every interval until the container stops.
    let out_file = dir.path().join("events.out");
    let mut events = Command::new(BERTH)
        .arg("--root")
        .arg(root.path())
        .args(["events", "--interval", "200ms", &id])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_file).expect("events out"))
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn events");
    std::thread::sleep(Duration::from_millis(900));
    // An OOM kill in the container gives an "oom" event.
    let mut limit = vec!["update", "--memory", "16M"];
    if mem.join("memory.memsw.limit_in_bytes").exists() {
        limit.extend(["--memory-swap", "16M"]);
    }
    limit.push(&id);
    let out = berth_root(&root, &limit);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = berth_root(&root, &["exec", &id, "sh", "-c", "tail /dev/zero"]);
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    std::thread::sleep(Duration::from_millis(400));
    let out = berth_root(&root, &["kill", &id, "KILL"]);
    assert!(out.status.success());
    assert!(wait_exit(&mut events).success());
    let text = std::fs::read_to_string(&out_file).expect("events output");
    assert!(text.lines().count() >= 3, "{text}");
    let mut ooms = 0;
    for line in text.lines() {
        let ev: serde_json::Value = serde_json::from_str(line).expect("event line");
        assert_eq!(ev["id"], id.as_str());
        match ev["type"].as_str() {
            Some("oom") => ooms += 1,
            Some("stats") => assert!(ev["data"]["memory"].is_object()),
            other => panic!("unexpected event type {other:?}"),
        }
    }
    assert_eq!(ooms, 1, "{text}");
    let out = berth_root(&root, &["events", "--stats", &id]);
    assert_eq!(out.status.code(), Some(1));
    let out = berth_root(&root, &["events", "--interval", "0s", &id]);
    assert!(stderr(&out).contains("duration interval must be greater than 0"));
}

/// Two updates of different fields at once (an engine's resize beside an operator's
/// `berth update`): both land, in the cgroup and in the state. Each update merges
/// into the state it reads under the container's lock; one that merged into the
/// state it had loaded before the lock wrote the other's old value back. Racy by
/// nature, so 20 rounds.
#[test]
fn concurrent_updates_of_different_fields_both_land() {
    if !support::v1_hierarchies(
        "concurrent_updates_of_different_fields_both_land",
        &["pids", "cpu"],
    ) {
        return;
    }
    if !usable() {
        return;
    }
    let dir = TempDir::new("update-race");
    let root = TempDir::new("update-race-root");
    let mut guard = Guard::new(&root, "update-race");
    let id = start(&dir, &mut guard, "updrace", &["sleep", "100"]);
    let pid = init_pid(&root, &id);
    let update = |args: &[&str]| {
        Command::new(BERTH)
            .arg("--root")
            .arg(root.path())
            .arg("update")
            .args(args)
            .arg(&id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn berth update")
    };
    for round in 0..20u32 {
        let (pids, shares) = ((100 + round).to_string(), (256 + round * 8).to_string());
        let a = update(&["--pids-limit", &pids]);
        let b = update(&["--cpu-share", &shares]);
        for mut child in [a, b] {
            assert!(
                wait_exit(&mut child).success(),
                "round {round}: an update failed"
            );
        }
        assert_eq!(
            read_trim(cgroup_dir(pid, "pids").join("pids.max")),
            pids,
            "round {round}: pids.max"
        );
        assert_eq!(
            read_trim(cgroup_dir(pid, "cpu").join("cpu.shares")),
            shares,
            "round {round}: cpu.shares"
        );
    }
    // The state has both too: an update of a third field keeps them.
    let out = berth_root(&root, &["update", "--memory", "128M", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(read_trim(cgroup_dir(pid, "pids").join("pids.max")), "119");
    assert_eq!(read_trim(cgroup_dir(pid, "cpu").join("cpu.shares")), "408");
}
