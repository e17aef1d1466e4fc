//! The verbs beyond the lifecycle (exec, pause/resume, ps, update, events, list,
//! features, checkpoint/restore, generate-docs) with real containers, as root. Every
//! container lives under a parent cgroup of its own, is deleted by a guard, and every
//! command is bounded in time.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const BERTH: &str = env!("CARGO_BIN_EXE_berth");
const TIMEOUT: Duration = Duration::from_secs(30);

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("berth-verbs-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn str(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn unique_id(tag: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "verbs-{tag}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// Runs `cmd` (stdout/stderr to files: a container may hold pipes open), bounded.
fn run_bounded(cmd: &mut Command) -> Output {
    let dir = TempDir::new("out");
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("spawn command");
    let status = wait_exit(&mut child);
    Output {
        status,
        stdout: std::fs::read(&out_path).expect("read stdout"),
        stderr: std::fs::read(&err_path).expect("read stderr"),
    }
}

fn wait_exit(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("command did not end within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn berth(root: &TempDir, args: &[&str]) -> Output {
    run_bounded(
        Command::new(BERTH)
            .arg("--root")
            .arg(root.path())
            .args(args),
    )
}

/// The environment this file needs: root and busybox.
fn usable() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return false;
    }
    if !Path::new("/bin/busybox").exists() {
        eprintln!("skipped: /bin/busybox is not installed");
        return false;
    }
    true
}

/// A busybox bundle running `args`, its cgroup under `/<cgroup_parent>/<id>`.
fn bundle(dir: &TempDir, args: &[&str], cgroup_parent: &str, id: &str) -> PathBuf {
    let bundle = dir.path().join(format!("bundle-{id}"));
    let bin = bundle.join("rootfs/bin");
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp"] {
        std::fs::create_dir_all(bundle.join("rootfs").join(d)).expect("mkdir rootfs");
    }
    std::fs::copy("/bin/busybox", bin.join("busybox")).expect("copy busybox");
    for applet in [
        "sh", "sleep", "true", "false", "kill", "id", "pwd", "grep", "cat", "echo", "tty", "tail",
    ] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).expect("symlink applet");
    }
    let root = TempDir::new("spec-root");
    let out = run_bounded(
        Command::new(BERTH)
            .arg("--root")
            .arg(root.path())
            .args(["spec", "-b"])
            .arg(&bundle),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    config["process"]["terminal"] = false.into();
    config["process"]["args"] = args.iter().map(|a| serde_json::Value::from(*a)).collect();
    config["linux"]["cgroupsPath"] = format!("/{cgroup_parent}/{id}").into();
    std::fs::write(&path, serde_json::to_string(&config).expect("json")).expect("write");
    bundle
}

/// Deletes containers with --force when dropped, then the test's parent cgroups.
struct Guard<'a> {
    root: &'a TempDir,
    ids: Vec<String>,
    cgroup_parent: String,
}

impl Guard<'_> {
    fn new<'a>(root: &'a TempDir, tag: &str) -> Guard<'a> {
        Guard {
            root,
            ids: Vec::new(),
            cgroup_parent: format!("berth-verbs-test-{tag}-{}", std::process::id()),
        }
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        for id in &self.ids {
            let _ = berth(self.root, &["delete", "--force", id]);
        }
        if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
            for e in rd.flatten() {
                let _ = std::fs::remove_dir(e.path().join(&self.cgroup_parent));
            }
        }
    }
}

/// `run -d` a container running `args`; returns its id.
fn start(dir: &TempDir, guard: &mut Guard, tag: &str, args: &[&str]) -> String {
    let id = unique_id(tag);
    guard.ids.push(id.clone());
    let b = bundle(dir, args, &guard.cgroup_parent, &id);
    let out = berth(
        guard.root,
        &["run", "-d", "-b", b.to_str().expect("utf-8"), &id],
    );
    assert!(out.status.success(), "run {id}: {}", stderr(&out));
    id
}

fn status(root: &TempDir, id: &str) -> String {
    let out = berth(root, &["state", id]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap_or_default();
    v["status"].as_str().unwrap_or("").to_string()
}

fn init_pid(root: &TempDir, id: &str) -> i32 {
    let out = berth(root, &["state", id]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("state json");
    v["pid"].as_i64().expect("pid") as i32
}

/// The v1 directory of `controller` for a process.
fn cgroup_dir(pid: i32, controller: &str) -> PathBuf {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("read cgroup");
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (
            parts.next(),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        if ctrls.split(',').any(|c| c == controller) {
            let mount = if controller == "cpu" {
                "cpu,cpuacct"
            } else {
                controller
            };
            let base = Path::new("/sys/fs/cgroup").join(mount);
            let base = if base.exists() {
                base
            } else {
                Path::new("/sys/fs/cgroup").join(controller)
            };
            return base.join(path.trim_start_matches('/'));
        }
    }
    panic!("no {controller} cgroup for pid {pid}: {text}");
}

fn read_trim(path: PathBuf) -> String {
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_string()
}

#[test]
fn exec_overrides_are_seen_inside_and_exit_codes_pass_through() {
    if !usable() {
        return;
    }
    let dir = TempDir::new("exec");
    let root = TempDir::new("exec-root");
    let mut guard = Guard::new(&root, "exec");
    let id = start(&dir, &mut guard, "exec", &["sleep", "100"]);

    let out = berth(&root, &["exec", &id, "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let out = berth(&root, &["exec", &id, "sh", "-c", "kill -9 $$"]);
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));

    let script =
        "id -u; id -g; id -G; pwd; echo $FOO; grep -E 'NoNewPrivs|CapBnd' /proc/self/status";
    let out = berth(
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
    let out = berth(&root, &["exec", "-p", pj.to_str().expect("utf-8"), &id]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out), "json-ok\n");
    let pid_file = dir.path().join("exec.pid");
    let out = berth(
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
    let sub = cgroup_dir(init_pid(&root, &id), "pids").join("sub");
    std::fs::create_dir(&sub).expect("mkdir sub-cgroup");
    let out = berth(
        &root,
        &[
            "exec",
            "--cgroup",
            "pids:sub",
            &id,
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
    for bad in ["pids:nosuch", "../up", "nosuchcontroller:sub"] {
        let out = berth(&root, &["exec", "--cgroup", bad, &id, "true"]);
        assert_eq!(out.status.code(), Some(255), "{bad}: {}", stderr(&out));
    }

    // A tty in the foreground without a console socket: berth bridges it.
    let out = berth(&root, &["exec", "-t", &id, "tty"]);
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
        (
            vec!["exec", "--cap", "CAP_NOPE", &id, "true"],
            "unknown capability",
        ),
        (vec!["exec", "-d", "-t", &id, "true"], "cannot allocate tty"),
        (vec!["exec", &id, "/nonexistent"], "/nonexistent"),
        (vec!["exec", "nosuchcontainer", "true"], "does not exist"),
    ] {
        let out = berth(&root, &args);
        assert_eq!(out.status.code(), Some(255), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    }

    // A stopped container refuses exec with runc's message.
    let out = berth(&root, &["kill", &id, "KILL"]);
    assert!(out.status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while status(&root, &id) != "stopped" {
        assert!(Instant::now() < deadline, "container did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = berth(&root, &["exec", &id, "true"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(
        stderr(&out).contains("exec failed: cannot exec in a stopped container"),
        "{}",
        stderr(&out)
    );
}

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

    let out = berth(&root, &["ps", "--format", "json", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pids: Vec<i32> = serde_json::from_str(&stdout(&out)).expect("pid list");
    assert_eq!(pids, vec![pid]);
    let out = berth(&root, &["ps", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("UID"), "{text}");
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("sleep 100"), "{text}");
    let out = berth(&root, &["ps", &id, "-o", "pid,comm"]);
    assert!(
        stdout(&out).contains(&format!("{pid} sleep")),
        "{}",
        stdout(&out)
    );
    let out = berth(&root, &["ps", "-f", "xml", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("invalid format option"));

    let out = berth(&root, &["resume", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("container not paused"),
        "{}",
        stderr(&out)
    );
    let out = berth(&root, &["pause", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(status(&root, &id), "paused");
    let out = berth(&root, &["pause", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("container not running"),
        "{}",
        stderr(&out)
    );
    let out = berth(&root, &["exec", &id, "true"]);
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
    let out = berth(&root, &["resume", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(wait_exit(&mut exec).code(), Some(4));
    assert_eq!(status(&root, &id), "running");
    let out = berth(&root, &["pause", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn update_changes_the_cgroup_and_the_process_feels_it() {
    if !usable() {
        return;
    }
    let dir = TempDir::new("update");
    let root = TempDir::new("update-root");
    let mut guard = Guard::new(&root, "update");
    let id = start(&dir, &mut guard, "update", &["sleep", "100"]);
    let pid = init_pid(&root, &id);

    let out = berth(
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
    let out = berth(
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
        let out = berth(&root, &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
    }
    let out = berth(&root, &["update", "--memory", "12Q", &id]);
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
    if !usable() {
        return;
    }
    let dir = TempDir::new("events");
    let root = TempDir::new("events-root");
    let mut guard = Guard::new(&root, "events");
    let id = start(&dir, &mut guard, "events", &["sleep", "100"]);
    let pid = init_pid(&root, &id);
    let out = berth(
        &root,
        &["update", "--pids-limit", "50", "--memory", "128M", &id],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let out = berth(&root, &["events", "--stats", &id]);
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
    let out = berth(&root, &limit);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = berth(&root, &["exec", &id, "sh", "-c", "tail /dev/zero"]);
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    std::thread::sleep(Duration::from_millis(400));
    let out = berth(&root, &["kill", &id, "KILL"]);
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
    let out = berth(&root, &["events", "--stats", &id]);
    assert_eq!(out.status.code(), Some(1));
    let out = berth(&root, &["events", "--interval", "0s", &id]);
    assert!(stderr(&out).contains("duration interval must be greater than 0"));
}

#[test]
fn list_of_100_containers_is_fast() {
    if !usable() {
        return;
    }
    let dir = TempDir::new("list");
    let root = TempDir::new("list-root");
    let mut guard = Guard::new(&root, "list");
    let b = bundle(&dir, &["sleep", "100"], &guard.cgroup_parent, "list");
    // One rootfs, one small bundle per id (config.json only), each container in its
    // own cgroup below the test's parent.
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(b.join("config.json")).expect("read"))
            .expect("json");
    config["root"]["path"] = b.join("rootfs").to_str().expect("utf-8").into();
    let deadline = Instant::now() + Duration::from_secs(120);
    for n in 0..100 {
        let id = format!("{}-{n:03}", unique_id("list"));
        guard.ids.push(id.clone());
        let bn = dir.path().join(format!("b-{n}"));
        std::fs::create_dir_all(&bn).expect("mkdir bundle");
        config["linux"]["cgroupsPath"] = format!("/{}/{id}", guard.cgroup_parent).into();
        std::fs::write(bn.join("config.json"), config.to_string()).expect("write");
        let out = berth(&root, &["create", "-b", bn.to_str().expect("utf-8"), &id]);
        assert!(out.status.success(), "create {id}: {}", stderr(&out));
        assert!(
            Instant::now() < deadline,
            "creating 100 containers took too long"
        );
    }
    let t = Instant::now();
    let out = berth(&root, &["list"]);
    let took = t.elapsed();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 101);
    assert!(took < Duration::from_secs(2), "list took {took:?}");
    let out = berth(&root, &["list", "-q"]);
    assert_eq!(stdout(&out).lines().count(), 100);
    let out = berth(&root, &["list", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("list json");
    let all = v.as_array().expect("array");
    assert_eq!(all.len(), 100);
    assert!(all.iter().all(|c| c["status"] == "created"));
}

#[test]
fn features_document_has_the_spec_fields() {
    let root = TempDir::new("features-root");
    let out = berth(&root, &["features"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("features json");
    assert_eq!(v["ociVersionMin"], "1.0.0");
    assert!(v["ociVersionMax"]
        .as_str()
        .is_some_and(|s| s.starts_with("1.")));
    for hook in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        assert!(
            v["hooks"]
                .as_array()
                .expect("hooks")
                .iter()
                .any(|h| h == hook),
            "{hook}"
        );
    }
    assert!(v["mountOptions"]
        .as_array()
        .expect("mountOptions")
        .iter()
        .any(|o| o == "rbind"));
    let linux = &v["linux"];
    for ns in ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"] {
        assert!(
            linux["namespaces"]
                .as_array()
                .expect("namespaces")
                .iter()
                .any(|n| n == ns),
            "{ns}"
        );
    }
    let caps = linux["capabilities"].as_array().expect("capabilities");
    assert!(caps.iter().any(|c| c == "CAP_SYS_ADMIN"));
    assert!(caps
        .iter()
        .all(|c| c.as_str().is_some_and(|s| s.starts_with("CAP_"))));
    for k in ["v1", "v2", "systemd", "systemdUser"] {
        assert!(linux["cgroup"][k].is_boolean(), "cgroup.{k}");
    }
    let seccomp = &linux["seccomp"];
    assert_eq!(seccomp["enabled"], true);
    for k in [
        "actions",
        "operators",
        "archs",
        "knownFlags",
        "supportedFlags",
    ] {
        assert!(seccomp[k].is_array(), "seccomp.{k}: {seccomp}");
    }
    assert!(seccomp["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .any(|a| a == "SCMP_ACT_ERRNO"));
    for k in ["apparmor", "selinux", "intelRdt"] {
        assert!(linux[k]["enabled"].is_boolean(), "{k}");
    }
    assert_eq!(linux["mountExtensions"]["idmap"]["enabled"], false);
    let a = &v["annotations"];
    assert_eq!(a["org.berth.version"], env!("CARGO_PKG_VERSION"));
    assert!(a["org.berth.commit"].is_string());
    assert!(a["org.berth.checkpoint.enabled"].is_string());
}

#[test]
fn checkpoint_and_restore_argument_handling_and_criu_errors() {
    if !usable() {
        return;
    }
    let dir = TempDir::new("cr");
    let root = TempDir::new("cr-root");
    let mut guard = Guard::new(&root, "cr");
    let id = start(
        &dir,
        &mut guard,
        "cr",
        &[
            "sh",
            "-c",
            "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.1; done",
        ],
    );
    let image = dir.path().join("image");
    let image_s = image.to_str().expect("utf-8");
    let out = berth(
        &root,
        &[
            "checkpoint",
            "--manage-cgroups-mode",
            "bogus",
            "--image-path",
            image_s,
            &id,
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("Invalid manage cgroups mode"),
        "{}",
        stderr(&out)
    );
    let out = berth(
        &root,
        &[
            "checkpoint",
            "--empty-ns",
            "pid",
            "--image-path",
            image_s,
            &id,
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not supported"),
        "{}",
        stderr(&out)
    );
    let out = berth(&root, &["checkpoint", "nosuch"]);
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    let out = run_bounded(Command::new(BERTH).arg("--root").arg(root.path()).args([
        "--criu",
        "/nonexistent/criu",
        "checkpoint",
        "--image-path",
        image_s,
        &id,
    ]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("criu binary \\\"/nonexistent/criu\\\" not found"),
        "{}",
        stderr(&out)
    );
    let out = berth(&root, &["restore", "--image-path", image_s, &id]);
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    let bundle_dir = dir.path().join(format!("bundle-{id}"));
    let new_id = unique_id("cr-restored");
    guard.ids.push(new_id.clone());
    let out = berth(
        &root,
        &[
            "restore",
            "-b",
            bundle_dir.to_str().expect("utf-8"),
            "--image-path",
            image_s,
            &new_id,
        ],
    );
    assert!(
        stderr(&out).contains("inventory.img is missing"),
        "{}",
        stderr(&out)
    );

    // The real checkpoint: CRIU decides.
    let out = berth(
        &root,
        &[
            "checkpoint",
            "--leave-running",
            "--image-path",
            image_s,
            "--work-path",
            image_s,
            &id,
        ],
    );
    if !out.status.success() {
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("criu"), "{err}");
        eprintln!("skipped: real checkpoint/restore: {}", err.trim());
        assert_eq!(
            status(&root, &id),
            "running",
            "a failed checkpoint changes nothing"
        );
        return;
    }
    assert!(image.join("inventory.img").exists());
    assert!(image.join("descriptors.json").exists());
    assert_eq!(status(&root, &id), "running");
}

#[test]
fn help_docs_and_global_flags() {
    let root = TempDir::new("help-root");
    let out = berth(&root, &["--help"]);
    assert!(out.status.success());
    let text = stdout(&out);
    for verb in [
        "checkpoint",
        "events",
        "exec",
        "features",
        "pause",
        "ps",
        "restore",
        "resume",
        "update",
    ] {
        assert!(text.contains(verb), "help lacks {verb}: {text}");
    }
    assert!(!text.contains("generate-docs"), "hidden verb shown");
    let out = berth(&root, &["--nosuchflag", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("level=error msg=\"flag provided but not defined: -nosuchflag\""),
        "{}",
        stderr(&out)
    );
    for args in [
        &["--systemd-cgroup", "list"][..],
        &["--rootless", "false", "list"],
        &["--criu", "/usr/sbin/criu", "list"],
    ] {
        let out = berth(&root, args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    let dir = TempDir::new("docs");
    let out = berth(&root, &["generate-docs", dir.str()]);
    assert!(out.status.success(), "{}", stderr(&out));
    for f in [
        "man/berth.8",
        "man/berth-exec.8",
        "man/berth-update.8",
        "completions/berth.bash",
        "completions/_berth",
        "completions/berth.fish",
    ] {
        assert!(dir.path().join(f).is_file(), "{f} missing");
    }
}

#[test]
fn checked_in_man_pages_and_completions_are_current() {
    let root = TempDir::new("docs-root");
    let dir = TempDir::new("docs-current");
    let out = berth(&root, &["generate-docs", dir.str()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
    for sub in ["man", "completions"] {
        let fresh = dir.path().join(sub);
        for e in std::fs::read_dir(&fresh)
            .expect("read generated docs")
            .flatten()
        {
            let name = e.file_name();
            let checked_in = std::fs::read(docs.join(sub).join(&name)).unwrap_or_default();
            assert!(
                checked_in == std::fs::read(e.path()).expect("read generated file"),
                "docs/{sub}/{} is stale: run `berth generate-docs docs`",
                name.to_string_lossy()
            );
        }
    }
}
