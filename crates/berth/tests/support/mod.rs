//! Helpers shared by the integration tests: temporary directories, bounded runs of the
//! `berth` binary, busybox bundles and a guard that deletes containers and cgroups.
// Each test binary compiles this module and uses only a subset of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");
/// Every berth command in these tests ends well within this.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// The test binary's name, in temporary paths, container ids and cgroup names so that
/// leftovers say which test file made them.
const BINARY: &str = env!("CARGO_CRATE_NAME");

/// A unique temporary directory, removed on drop (on failure too).
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!(
            "berth-{BINARY}-{tag}-{}-{n}-{nanos}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn str(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A unique container id for this test run.
pub fn unique_id(tag: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{BINARY}-{tag}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// Runs `cmd` to completion (killed after [`TIMEOUT`]). Output goes to files, not
/// pipes: a container init created by the command inherits its stdio and would hold
/// a pipe open long after berth exits.
pub fn run_bounded(cmd: &mut Command) -> Output {
    let dir = TempDir::new("out");
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let out_file = std::fs::File::create(&out_path).expect("create stdout file");
    let err_file = std::fs::File::create(&err_path).expect("create stderr file");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out_file)
        .stderr(err_file)
        .spawn()
        .expect("spawn command");
    let status = wait_exit(&mut child);
    Output {
        status,
        stdout: std::fs::read(&out_path).expect("read stdout"),
        stderr: std::fs::read(&err_path).expect("read stderr"),
    }
}

/// Waits for `child` to exit; kills it and fails after [`TIMEOUT`].
pub fn wait_exit(child: &mut Child) -> ExitStatus {
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

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs berth with `args` in `cwd`, killing it if it outlives [`TIMEOUT`].
pub fn berth_in(cwd: &Path, args: &[&str]) -> Output {
    run_bounded(Command::new(BERTH).args(args).current_dir(cwd))
}

/// Runs berth with `args` in the temporary directory.
pub fn berth(args: &[&str]) -> Output {
    berth_in(&std::env::temp_dir(), args)
}

/// berth with `--root <root>` before the other arguments.
pub fn berth_root(root: &TempDir, args: &[&str]) -> Output {
    let mut all = vec!["--root", root.str()];
    all.extend_from_slice(args);
    berth(&all)
}

// --- real containers: as root, with busybox ----------------------------------------

/// The environment the container tests need: root and busybox.
pub fn usable() -> bool {
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
pub fn bundle(dir: &TempDir, args: &[&str], cgroup_parent: &str, id: &str) -> PathBuf {
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
    let out = berth_root(&root, &["spec", "-b", bundle.to_str().expect("utf-8")]);
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
pub struct Guard<'a> {
    pub root: &'a TempDir,
    pub ids: Vec<String>,
    pub cgroup_parent: String,
}

impl Guard<'_> {
    pub fn new<'a>(root: &'a TempDir, tag: &str) -> Guard<'a> {
        Guard {
            root,
            ids: Vec::new(),
            cgroup_parent: format!("berth-{BINARY}-test-{tag}-{}", std::process::id()),
        }
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        for id in &self.ids {
            let _ = berth_root(self.root, &["delete", "--force", id]);
        }
        if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
            for e in rd.flatten() {
                let _ = std::fs::remove_dir(e.path().join(&self.cgroup_parent));
            }
        }
    }
}

/// `run -d` a container running `args`; returns its id.
pub fn start(dir: &TempDir, guard: &mut Guard, tag: &str, args: &[&str]) -> String {
    let id = unique_id(tag);
    guard.ids.push(id.clone());
    let b = bundle(dir, args, &guard.cgroup_parent, &id);
    let out = berth_root(
        guard.root,
        &["run", "-d", "-b", b.to_str().expect("utf-8"), &id],
    );
    assert!(out.status.success(), "run {id}: {}", stderr(&out));
    id
}

/// The `status` field of `berth state`, or "" when there is no state.
pub fn status(root: &TempDir, id: &str) -> String {
    let out = berth_root(root, &["state", id]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap_or_default();
    v["status"].as_str().unwrap_or("").to_string()
}

/// The `pid` field of `berth state`.
pub fn init_pid(root: &TempDir, id: &str) -> i32 {
    let out = berth_root(root, &["state", id]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("state json");
    v["pid"].as_i64().expect("pid") as i32
}

/// The v1 directory of `controller` for a process.
pub fn cgroup_dir(pid: i32, controller: &str) -> PathBuf {
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

/// A file's contents without surrounding whitespace; fails naming the path.
pub fn read_trim(path: PathBuf) -> String {
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_string()
}

/// Whether each of `controllers` is a cgroup v1 hierarchy mounted at
/// /sys/fs/cgroup/<controller> (possibly co-mounted, e.g. cpu,cpuacct), as the tests
/// that read those files expect; prints which is missing when not (a v2-only host, or
/// a kernel without the controller).
pub fn v1_hierarchies(test: &str, controllers: &[&str]) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let missing: Vec<&str> = controllers
        .iter()
        .copied()
        .filter(|c| {
            !info.lines().any(|l| {
                let Some((pre, post)) = l.split_once(" - ") else {
                    return false;
                };
                let mut post = post.split(' ');
                post.next() == Some("cgroup")
                    && post.nth(1).is_some_and(|o| o.split(',').any(|o| o == *c))
                    && pre
                        .split(' ')
                        .nth(4)
                        .is_some_and(|mp| mp.starts_with("/sys/fs/cgroup/"))
            })
        })
        .collect();
    if !missing.is_empty() {
        eprintln!("skipped {test}: no cgroup v1 hierarchy for {missing:?} under /sys/fs/cgroup");
    }
    missing.is_empty()
}
