//! Host cgroup hierarchies, as the driver sees them, for checks and cleanup.

use std::path::PathBuf;

/// Mount points of every cgroup (v1) and cgroup2 hierarchy.
pub fn hierarchies() -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v = Vec::new();
    for line in text.lines() {
        let Some((_, post)) = line.split_once(" - ") else {
            continue;
        };
        let fstype = post.split(' ').next().unwrap_or("");
        if fstype == "cgroup" || fstype == "cgroup2" {
            if let Some(mp) = line.split(' ').nth(4) {
                let p = PathBuf::from(crate::bundle::unescape(mp));
                if !v.contains(&p) {
                    v.push(p);
                }
            }
        }
    }
    v
}

/// Whether the runtime can see a cgroup2 hierarchy at /sys/fs/cgroup or
/// /sys/fs/cgroup/unified. In the driver's v1-only view both are covered, so a runtime
/// manages only the v1 hierarchies and a process's `0::` line stays the caller's.
pub fn unified_visible() -> bool {
    [
        "/sys/fs/cgroup/cgroup.controllers",
        "/sys/fs/cgroup/unified/cgroup.procs",
    ]
    .iter()
    .any(|p| std::path::Path::new(p).exists())
}

/// Lines of a /proc/PID/cgroup text for the hierarchies a runtime manages here: all of
/// them, less the `0::` line when no cgroup2 hierarchy is visible ([`unified_visible`]).
pub fn managed_lines(text: &str) -> Vec<&str> {
    let unified = unified_visible();
    text.lines()
        .filter(|l| unified || !l.starts_with("0::"))
        .collect()
}

/// The v1 mount point of a controller (`pids`, `memory`...), if mounted.
pub fn v1_controller(name: &str) -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in text.lines() {
        let Some((_, post)) = line.split_once(" - ") else {
            continue;
        };
        let mut f = post.split(' ');
        if f.next() != Some("cgroup") {
            continue;
        }
        let opts = f.nth(1).unwrap_or("");
        if opts.split(',').any(|o| o == name) {
            return line
                .split(' ')
                .nth(4)
                .map(|m| PathBuf::from(crate::bundle::unescape(m)));
        }
    }
    None
}

/// Removes `rel` (a path like `/berth-conformance-1/x`) in every hierarchy, deepest
/// directories first; only empty cgroups can go, so nothing of others is touched.
pub fn remove_everywhere(rel: &str) {
    let rel = rel.trim_start_matches('/');
    if rel.is_empty() {
        return;
    }
    for h in hierarchies() {
        let dir = h.join(rel);
        remove_dirs(&dir);
    }
}

fn remove_dirs(dir: &std::path::Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_dirs(&e.path());
            }
        }
        let _ = std::fs::remove_dir(dir);
    }
}

/// Which hierarchies still hold `rel`.
pub fn existing(rel: &str) -> Vec<PathBuf> {
    let rel = rel.trim_start_matches('/');
    hierarchies()
        .into_iter()
        .map(|h| h.join(rel))
        .filter(|p| p.is_dir())
        .collect()
}

/// Where a controller's files live: a v1 hierarchy, or a cgroup2 mount that has the
/// controller enabled (checked on its `cgroup.controllers`).
#[derive(Clone, Debug)]
pub enum Controller {
    V1(PathBuf),
    V2(PathBuf),
}

impl Controller {
    pub fn dir(&self, rel: &str) -> PathBuf {
        let rel = rel.trim_start_matches('/');
        match self {
            Controller::V1(p) | Controller::V2(p) => p.join(rel),
        }
    }
}

/// The controller on v1 if mounted there, else on the cgroup2 mount if the host is in
/// unified mode (cgroup2 at /sys/fs/cgroup; a hybrid host's extra cgroup2 mount does not
/// delegate its controllers).
pub fn controller(name: &str) -> Option<Controller> {
    if let Some(p) = v1_controller(name) {
        return Some(Controller::V1(p));
    }
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in text.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        if post.split(' ').next() != Some("cgroup2") {
            continue;
        }
        let Some(mp) = pre.split(' ').nth(4) else {
            continue;
        };
        let mp = PathBuf::from(crate::bundle::unescape(mp));
        if mp != std::path::Path::new("/sys/fs/cgroup") {
            continue;
        }
        let ctrls = std::fs::read_to_string(mp.join("cgroup.controllers")).unwrap_or_default();
        if ctrls.split_whitespace().any(|c| c == name) {
            return Some(Controller::V2(mp));
        }
    }
    None
}
