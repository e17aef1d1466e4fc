//! `--view v1-only`: the whole run in a private mount namespace whose /sys/fs/cgroup
//! holds only the host's cgroup v1 hierarchies, as on a legacy host or in a private
//! view an engine builds.
//!
//! The view is made the way such views are often made: a new tmpfs mounted over
//! /sys/fs/cgroup, the v1 hierarchies bound back into it. The host's cgroup2 mount at
//! /sys/fs/cgroup/unified is covered, not unmounted, so /proc/self/mountinfo still
//! lists it although nothing can reach it; a runtime that trusts mountinfo alone
//! there fails every create (`mkdir /sys/fs/cgroup/unified/...`), which runc does not.
//! The hierarchies are the host's own: cgroups made in the view are seen (and removed)
//! on the host as usual.

use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};

const ROOT: &str = "/sys/fs/cgroup";

/// Enters the view, or returns Ok(false) when the host has no v1 hierarchy to show
/// (a cgroup v2-only host: the view does not apply). Call while the process is
/// single-threaded (unshare of the mount namespace refuses otherwise); `scratch` is
/// an empty directory for the moves.
pub fn enter_v1_only(scratch: &Path) -> Result<bool, String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("read /proc/self/mountinfo: {e}"))?;
    let v1 = v1_hierarchies(&info);
    if v1.is_empty() {
        return Ok(false);
    }
    // Co-mounted controllers are often reached through symlinks (cpu -> cpu,cpuacct).
    let links: Vec<(String, PathBuf)> = std::fs::read_dir(ROOT)
        .map_err(|e| format!("read {ROOT}: {e}"))?
        .flatten()
        .filter_map(|e| {
            let target = std::fs::read_link(e.path()).ok()?;
            Some((e.file_name().to_string_lossy().into_owned(), target))
        })
        .collect();
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare(CLONE_NEWNS): {e}"))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("make / private: {e}"))?;
    let mut held = Vec::new();
    for name in &v1 {
        let save = scratch.join(name);
        std::fs::create_dir_all(&save).map_err(|e| format!("mkdir {}: {e}", save.display()))?;
        let from = Path::new(ROOT).join(name);
        mount(
            Some(&from),
            &save,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| format!("bind {} to {}: {e}", from.display(), save.display()))?;
        held.push((name, save));
    }
    mount(
        Some("berth-v1-view"),
        ROOT,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=755"),
    )
    .map_err(|e| format!("tmpfs over {ROOT}: {e}"))?;
    for (name, save) in held {
        let to = Path::new(ROOT).join(name);
        std::fs::create_dir(&to).map_err(|e| format!("mkdir {}: {e}", to.display()))?;
        mount(
            Some(&save),
            &to,
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )
        .map_err(|e| format!("move {} to {}: {e}", save.display(), to.display()))?;
    }
    for (name, target) in links {
        let at = Path::new(ROOT).join(&name);
        if !at.exists() {
            let _ = std::os::unix::fs::symlink(&target, &at);
        }
    }
    if Path::new(ROOT).join("unified").exists() {
        return Err(format!("{ROOT}/unified is still reachable in the view"));
    }
    Ok(true)
}

/// Names (under /sys/fs/cgroup) of the v1 hierarchies mounted directly there.
fn v1_hierarchies(mountinfo: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        if post.split(' ').next() != Some("cgroup") {
            continue;
        }
        let Some(mp) = pre.split(' ').nth(4) else {
            continue;
        };
        let mp = crate::bundle::unescape(mp);
        let Some(name) = mp.strip_prefix("/sys/fs/cgroup/") else {
            continue;
        };
        if !name.is_empty() && !name.contains('/') && !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::v1_hierarchies;

    #[test]
    fn lists_v1_hierarchies_only() {
        let info = "\
31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
50 23 0:32 / /mnt/mem rw - cgroup cgroup rw,memory
";
        assert_eq!(v1_hierarchies(info), ["cpu,cpuacct", "systemd"]);
    }
}
