//! Shared fixture of the security_* tests: a busybox bundle whose process runs a shell
//! script with /out bound from the host, run through the library as root.

#![allow(dead_code)]

use berth_runtime::{CreateOptions, ExitStatus, Runtime};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

static N: AtomicUsize = AtomicUsize::new(0);

/// Held while busybox is copied and while a container is created: a child forked by
/// `create` in one test must not inherit the write fd of a copy in another, or the
/// copied busybox cannot be executed (ETXTBSY).
static FORK_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn fork_lock() -> std::sync::MutexGuard<'static, ()> {
    FORK_LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

pub struct Fixture {
    pub dir: PathBuf,
    pub runtime: Runtime,
    pub id: String,
    pub cgroup: String,
}

/// The outcome of one run.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    /// /out/log written by the script.
    pub log: String,
}

impl Fixture {
    pub fn new(name: &str) -> Self {
        let n = N.fetch_add(1, Ordering::SeqCst);
        let id = format!("sec-{name}-{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(format!("berth-{id}"));
        let rootfs = dir.join("bundle/rootfs");
        for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "out"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::create_dir_all(dir.join("out")).unwrap();
        {
            let _guard = fork_lock();
            std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        }
        let list = std::process::Command::new("/bin/busybox")
            .arg("--list")
            .output()
            .unwrap();
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet));
        }
        std::fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(rootfs.join("etc/group"), "root:x:0:\nuser:x:1000:\n").unwrap();
        // The container's non-root user writes its log too.
        std::fs::set_permissions(
            dir.join("out"),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        let runtime = Runtime::new(dir.join("root")).unwrap();
        Fixture {
            cgroup: format!("/berth-{id}"),
            dir,
            runtime,
            id,
        }
    }

    /// A config running `script`, root, default-ish capabilities, pid/mount/ipc/uts
    /// namespaces, /proc, a 1777 tmpfs on /tmp and /out bound from the host.
    pub fn config(&self, script: &str) -> serde_json::Value {
        let caps = [
            "CAP_CHOWN",
            "CAP_KILL",
            "CAP_SETUID",
            "CAP_SETGID",
            "CAP_DAC_OVERRIDE",
        ];
        serde_json::json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "process": {
                "args": ["sh", "-c", script],
                "cwd": "/",
                "env": ["PATH=/bin"],
                "user": {"uid": 0, "gid": 0},
                "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
                "noNewPrivileges": true
            },
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["mode=1777"]},
                {"destination": "/out", "type": "bind", "source": self.dir.join("out"), "options": ["rbind", "rw"]}
            ],
            "linux": {
                "cgroupsPath": self.cgroup,
                "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}]
            }
        })
    }

    fn write(&self, cfg: &serde_json::Value) {
        std::fs::write(
            self.dir.join("bundle/config.json"),
            serde_json::to_vec_pretty(cfg).unwrap(),
        )
        .unwrap();
    }

    /// create, start, wait, delete; panics (with the error) if create fails.
    pub fn run(&self, cfg: &serde_json::Value) -> Run {
        self.try_run(cfg)
            .unwrap_or_else(|e| panic!("create failed: {e}"))
    }

    /// As `run`, returning create's error instead.
    pub fn try_run(&self, cfg: &serde_json::Value) -> Result<Run, berth_runtime::Error> {
        self.write(cfg);
        let _ = std::fs::remove_file(self.dir.join("out/log"));
        let created = {
            let _guard = fork_lock();
            self.runtime.create(
                &self.id,
                &self.dir.join("bundle"),
                &CreateOptions::default(),
            )
        };
        let mut c = created?;
        c.start().unwrap();
        let status = c.wait().unwrap();
        c.delete(false).unwrap();
        Ok(Run {
            status,
            log: std::fs::read_to_string(self.dir.join("out/log")).unwrap_or_default(),
        })
    }

    /// Create must fail; returns the error text after checking nothing is left.
    pub fn create_fails(&self, cfg: &serde_json::Value) -> String {
        let e = match self.try_run(cfg) {
            Ok(r) => panic!("create succeeded: {r:?}"),
            Err(e) => e.to_string(),
        };
        assert!(!e.contains('\n'), "error is not one line: {e}");
        self.assert_nothing_left();
        e
    }

    pub fn assert_nothing_left(&self) {
        assert!(
            self.runtime.load(&self.id).is_err(),
            "state of {} left",
            self.id
        );
        for h in ["pids", "memory", "cpu", "devices", "freezer"] {
            let p = format!("/sys/fs/cgroup/{h}{}", self.cgroup);
            assert!(!std::path::Path::new(&p).exists(), "cgroup {p} left");
        }
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let bundle = self.dir.join("bundle").display().to_string();
        assert!(
            !mounts.lines().any(|l| l.contains(&bundle)),
            "mounts left under {bundle}"
        );
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Ok(c) = self.runtime.load(&self.id) {
            let _ = c.delete(true);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Bits of a /proc/self/status capability line (`CapEff:\t...`) found in `text`.
pub fn status_bits(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

/// Is capability `n` in this (the test's) bounding set?
pub fn host_bounding_has(n: u32) -> bool {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status_bits(&s, "CapBnd").is_some_and(|b| b & (1 << n) != 0)
}

/// Sets a value at a `/`-separated path of object keys, creating objects on the way.
pub fn set(cfg: &mut serde_json::Value, path: &str, v: serde_json::Value) {
    let parts: Vec<&str> = path.split('/').collect();
    let mut cur = cfg;
    for p in &parts[..parts.len() - 1] {
        cur = cur
            .as_object_mut()
            .unwrap()
            .entry(p.to_string())
            .or_insert_with(|| serde_json::json!({}));
    }
    cur.as_object_mut()
        .unwrap()
        .insert(parts[parts.len() - 1].to_string(), v);
}
