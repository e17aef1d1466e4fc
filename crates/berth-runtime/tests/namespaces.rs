//! Namespaces as `create` leaves them, checked from the host in the created state:
//! new ones (including user with maps), joined ones by path, and a wrong-type path
//! refused.

use berth_runtime::{CreateOptions, Runtime};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};

static N: AtomicUsize = AtomicUsize::new(0);

struct Fixture {
    dir: PathBuf,
    runtime: Runtime,
    id: String,
    helpers: Vec<Child>,
}

impl Fixture {
    fn new(name: &str) -> Self {
        let n = N.fetch_add(1, Ordering::SeqCst);
        let id = format!("ns-{name}-{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(format!("berth-{id}"));
        let rootfs = dir.join("bundle/rootfs");
        for d in ["bin", "proc", "dev"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        // Copied by cp, not in this process: a write fd of ours could reach a
        // concurrent test's forked child and fail its execve with ETXTBSY.
        assert!(std::process::Command::new("cp")
            .arg("/bin/busybox")
            .arg(rootfs.join("bin/busybox"))
            .status()
            .unwrap()
            .success());
        std::os::unix::fs::symlink("busybox", rootfs.join("bin/sleep")).unwrap();
        let runtime = Runtime::new(dir.join("root")).unwrap();
        Fixture {
            dir,
            runtime,
            id,
            helpers: Vec::new(),
        }
    }

    fn create(
        &self,
        namespaces: serde_json::Value,
        linux_extra: serde_json::Value,
    ) -> berth_runtime::Result<i32> {
        let mut linux = serde_json::json!({"cgroupsPath": format!("/berth-{}", self.id), "namespaces": namespaces});
        for (k, v) in linux_extra.as_object().unwrap() {
            linux[k] = v.clone();
        }
        let cfg = serde_json::json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "process": {"args": ["sleep", "30"], "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}},
            "mounts": if namespaces.as_array().is_some_and(|a| a.is_empty()) { serde_json::json!([]) } else { serde_json::json!([
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]}]) },
            "linux": linux
        });
        std::fs::write(
            self.dir.join("bundle/config.json"),
            serde_json::to_vec(&cfg).unwrap(),
        )
        .unwrap();
        self.runtime
            .create(
                &self.id,
                &self.dir.join("bundle"),
                &CreateOptions::default(),
            )
            .map(|c| c.pid())
    }

    /// A process in new namespaces of the given `unshare` flags.
    fn helper(&mut self, flags: &[&str]) -> u32 {
        let child = Command::new("unshare")
            .args(flags)
            .args(["sleep", "30"])
            .spawn()
            .unwrap();
        let pid = child.id();
        self.helpers.push(child);
        // Wait until unshare has exec'd sleep (its namespaces are then in place).
        for _ in 0..200 {
            if std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "sleep")
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        pid
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Ok(c) = self.runtime.load(&self.id) {
            let _ = c.delete(true);
        }
        for h in &mut self.helpers {
            let _ = h.kill();
            let _ = h.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ns_link(pid: impl std::fmt::Display, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn all_new_namespaces_including_user() {
    let f = Fixture::new("new");
    let ns = serde_json::json!([
        {"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"},
        {"type": "network"}, {"type": "user"}, {"type": "cgroup"}
    ]);
    let maps = serde_json::json!({
        "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
        "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]
    });
    let pid = f.create(ns, maps).unwrap();
    for kind in ["pid", "mnt", "ipc", "uts", "net", "user", "cgroup"] {
        assert_ne!(
            ns_link(pid, kind),
            ns_link("self", kind),
            "{kind} namespace not new"
        );
    }
    let uid_map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    assert_eq!(
        uid_map.split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "65536"]
    );
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.contains("100000")),
        "{status}"
    );
}

#[test]
fn no_namespaces_means_the_callers() {
    let f = Fixture::new("none");
    let pid = f
        .create(serde_json::json!([]), serde_json::json!({}))
        .unwrap();
    for kind in ["pid", "mnt", "ipc", "uts", "net", "user", "cgroup"] {
        assert_eq!(
            ns_link(pid, kind),
            ns_link("self", kind),
            "{kind} namespace changed"
        );
    }
}

#[test]
fn joined_by_path() {
    let mut f = Fixture::new("join");
    let h = f.helper(&["--net", "--uts", "--ipc", "--mount", "--pid", "--fork"]);
    // With --fork, sleep is the helper's child; its namespaces are what we join.
    let children =
        std::fs::read_to_string(format!("/proc/{h}/task/{h}/children")).unwrap_or_default();
    let member: u32 = children
        .split_whitespace()
        .next()
        .map(|p| p.parse().unwrap())
        .unwrap_or(h);
    let ns = serde_json::json!([
        {"type": "network", "path": format!("/proc/{member}/ns/net")},
        {"type": "uts", "path": format!("/proc/{member}/ns/uts")},
        {"type": "ipc", "path": format!("/proc/{member}/ns/ipc")},
        {"type": "mount", "path": format!("/proc/{member}/ns/mnt")},
        {"type": "pid", "path": format!("/proc/{member}/ns/pid")}
    ]);
    let pid = f.create(ns, serde_json::json!({})).unwrap();
    for kind in ["net", "uts", "ipc", "mnt", "pid"] {
        assert_eq!(
            ns_link(pid, kind),
            ns_link(member, kind),
            "{kind} namespace not joined"
        );
    }
}

#[test]
fn wrong_namespace_type_is_refused() {
    let f = Fixture::new("wrongtype");
    let ns = serde_json::json!([{"type": "ipc", "path": "/proc/self/ns/net"}]);
    let err = f.create(ns, serde_json::json!({})).unwrap_err().to_string();
    assert!(err.contains("is a network namespace, not ipc"), "{err}");
    assert!(!f.runtime.root().join(&f.id).exists());
}
