//! Where a process started by `exec` joins: the container's cgroup2 directory, or,
//! when that directory cannot take processes, the cgroup its init is in now.

use crate::fsutil;
use crate::SelfAttach;
use std::path::{Path, PathBuf};

/// Controllers that work in threaded mode: enabling only these leaves a cgroup able
/// to hold processes beside its children.
const THREADED: &[&str] = &["cpu", "cpuset", "perf_event", "pids"];

impl SelfAttach {
    /// For `exec`: a container that moved its init into a sub-cgroup and enabled a
    /// domain controller for its children (systemd in a container does) has a cgroup2
    /// directory that refuses new processes (the no-internal-process rule, EBUSY). The
    /// process then joins the init's cgroup instead, as runc's exec does (runc#2356).
    pub fn for_exec(mut self, init_pid: i32) -> SelfAttach {
        let busy = self.unified.as_deref().is_some_and(takes_no_processes);
        if busy {
            if let Some(dir) = init_cgroup2_dir(init_pid) {
                self.unified = Some(dir);
            }
        }
        self
    }
}

/// True for a domain cgroup with a domain controller enabled in its subtree_control.
fn takes_no_processes(dir: &Path) -> bool {
    let kind = fsutil::read(dir, "cgroup.type").unwrap_or_default();
    if kind.trim() != "domain" {
        return false;
    }
    fsutil::read(dir, "cgroup.subtree_control")
        .unwrap_or_default()
        .split_whitespace()
        .any(|c| !THREADED.contains(&c))
}

/// The cgroup2 directory of `pid`, from its /proc/PID/cgroup `0::` line, on the
/// caller's cgroup2 mount.
fn init_cgroup2_dir(pid: i32) -> Option<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    let mounts = crate::detect::Mounts::read().ok()?;
    let m = mounts.unified()?;
    let rel = Path::new(path).strip_prefix(&m.root).ok()?;
    let dir = m.mount_point.join(rel);
    dir.is_dir().then_some(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_directory_keeps_its_target() {
        let dir = std::env::temp_dir().join(format!("berth-exec-join-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cgroup.type"), "domain\n").unwrap();
        std::fs::write(dir.join("cgroup.subtree_control"), "pids cpu\n").unwrap();
        let threaded_only = takes_no_processes(&dir);
        std::fs::write(dir.join("cgroup.subtree_control"), "memory pids\n").unwrap();
        let with_memory = takes_no_processes(&dir);
        std::fs::write(dir.join("cgroup.type"), "domain threaded\n").unwrap();
        let threaded_root = takes_no_processes(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(!threaded_only);
        assert!(with_memory);
        assert!(!threaded_root);
        let attach = SelfAttach {
            tasks: Vec::new(),
            unified: None,
        };
        assert_eq!(attach.clone().for_exec(1), attach);
    }
}
