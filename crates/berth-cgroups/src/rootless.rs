//! The cgroup of a rootless container (runc's `--rootless` cgroup manager for
//! cgroupfs): a caller that is not host root usually cannot make or join cgroups, and
//! then the container runs without them instead of failing.
//!
//! runc tries each hierarchy and drops the ones whose mkdir or join fails with EPERM,
//! EACCES or EROFS, but only when `linux.cgroupsPath` is not set: a path the user asked
//! for must work. berth decides the same before anything is made, by asking the kernel
//! whether the caller may create the directory (write access to its nearest existing
//! ancestor) or join it (write access to `cgroup.procs` and, on v1, `tasks`), so that the
//! state, the self-attach files and the later verbs all see the same set.

use crate::detect::{CgroupSetup, Mounts};
use crate::error::Result;
use crate::path::{read_proc_cgroup, CgroupsPath};
use crate::v1::V1Manager;
use crate::v2::V2Manager;
use crate::CgroupManager;
use nix::fcntl::AtFlags;
use nix::unistd::{faccessat, AccessFlags};
use std::path::Path;

/// The manager for a new rootless container (see the module comment). With the
/// systemd driver the caller's own user manager delegates a scope (as runc asks it
/// over the session bus), so nothing is dropped.
pub fn new_rootless_manager(
    cgroups_path: Option<&str>,
    id: &str,
    systemd: bool,
) -> Result<Box<dyn CgroupManager>> {
    if systemd {
        return crate::new_systemd_manager(cgroups_path, id, true);
    }
    let cg = CgroupsPath::new(cgroups_path, id)?;
    let mounts = Mounts::read()?;
    let own = if cg.is_relative() {
        Some(read_proc_cgroup()?)
    } else {
        None
    };
    let explicit = cgroups_path.is_some_and(|p| !p.is_empty());
    match mounts.setup()? {
        CgroupSetup::Unified => {
            let m = V2Manager::new(&mounts, &cg, own.as_ref())?.with_rootless(true);
            if explicit || can_use(m.dir(), &["cgroup.procs"]) {
                Ok(Box::new(m))
            } else {
                tracing::debug!(dir = %m.dir().display(), "rootless: no writable cgroup, running without one");
                Ok(Box::new(V1Manager::rootless_without_cgroups()))
            }
        }
        CgroupSetup::Legacy | CgroupSetup::Hybrid => {
            let mut m = V1Manager::new(&mounts, &cg, own.as_ref())?;
            // The cgroup2 side of a hybrid host, which runc's v1 manager does not use:
            // moving a process there also needs write access to the common ancestor
            // of the caller's cgroup and the target, so the caller's own cgroup must
            // be writable too; it is left out otherwise, even under a given path.
            let own_unified = match (&own, mounts.unified()) {
                (Some(o), Some(u)) => o
                    .get("")
                    .map(|p| u.mount_point.join(p.trim_start_matches('/'))),
                (None, Some(u)) => read_proc_cgroup().ok().and_then(|o| {
                    o.get("")
                        .map(|p| u.mount_point.join(p.trim_start_matches('/')))
                }),
                _ => None,
            };
            m.set_rootless(|controller, dir| {
                let keep = if controller == crate::v1::UNIFIED {
                    can_use(dir, &["cgroup.procs"])
                        && own_unified
                            .as_ref()
                            .is_some_and(|d| can_use(d, &["cgroup.procs"]))
                } else {
                    explicit || can_use(dir, &["cgroup.procs", "tasks"])
                };
                if !keep {
                    tracing::debug!(controller, dir = %dir.display(), "rootless: cgroup not writable, left out");
                }
                keep
            });
            Ok(Box::new(m))
        }
    }
}

/// Whether the caller (by its effective ids) can join `dir` (it exists and `files`
/// are writable) or create it (its nearest existing ancestor is writable).
fn can_use(dir: &Path, files: &[&str]) -> bool {
    let writable = |p: &Path| {
        let mode = if p.is_dir() {
            AccessFlags::W_OK | AccessFlags::X_OK
        } else {
            AccessFlags::W_OK
        };
        faccessat(nix::fcntl::AT_FDCWD, p, mode, AtFlags::AT_EACCESS).is_ok()
    };
    if dir.exists() {
        return files.iter().all(|f| writable(&dir.join(f)));
    }
    let mut cur = dir;
    while let Some(parent) = cur.parent() {
        if parent.exists() {
            return writable(parent);
        }
        cur = parent;
    }
    false
}
