//! Which mount namespace CRIU restores from, and the cleanup of what CRIU leaves in
//! ours when it cannot have one of its own.
//!
//! A private namespace (a slave copy of ours) keeps CRIU's scratch mounts (its cgroup
//! yard, `.criu.cgyard.*` in the work directory) out of ours even when CRIU is
//! killed. But the restored tree's mounts are made from that copy, and in a slave copy
//! every mount has left the peer groups of ours: a bind mount the container shares
//! with the host (Kubernetes' Bidirectional propagation: the bind asks for `shared` or
//! `rshared`, or `linux.rootfsPropagation` is shared) would join a peer group of the
//! copy instead of the host's, and what the container mounts under it would no longer
//! reach the host. So the source of each such bind is cloned in our namespace first
//! (`open_tree(OPEN_TREE_CLONE)`: a detached copy of a shared mount is a peer of it)
//! and the clone is moved onto the same path in CRIU's namespace, above the slave
//! copy (on a slave mount, which propagates nothing back to ours): CRIU binds the
//! clone, a peer of the host's mount, and its own scratch mounts still stay in its
//! namespace. Where a clone cannot be made (Linux before 5.2, no CAP_SYS_ADMIN) CRIU
//! runs in ours, as runc runs it for every container; a restore killed midway can then
//! leave the yard in the work directory, which the state records for `delete`
//! ([`release_criu_yards`]).

use nix::mount::{umount2, MntFlags};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The name CRIU gives its cgroup yard (`mkdtemp` in its work directory).
const YARD_PREFIX: &str = ".criu.cgyard.";

/// open_tree(2) flag (linux/mount.h).
const OPEN_TREE_CLONE: libc::c_uint = 1;

/// A detached clone of a bind source made in our mount namespace, to be moved onto
/// the same path in CRIU's (`move_mount(2)` by the child that execs CRIU).
pub(super) struct PeerCopy {
    /// The clone (close-on-exec: CRIU does not inherit it).
    pub fd: OwnedFd,
    /// The source's path, where the clone goes.
    pub at: CString,
}

/// The mount namespace CRIU restores `spec`'s container from: `None` for ours (the
/// container has no mount namespace of its own, or a bind source that must stay a
/// peer of ours could not be cloned); else a private one, with the clones of those
/// sources (see the module comment).
pub(super) fn criu_namespace(spec: &Spec) -> Option<Vec<PeerCopy>> {
    if !own_mount_namespace(spec) {
        return None;
    }
    let mut copies = Vec::new();
    for (source, recursive) in shared_sources(spec) {
        match clone_tree(&source, recursive) {
            Ok(copy) => copies.push(copy),
            Err(e) => {
                tracing::debug!(
                    "criu restores from our mount namespace: open_tree {}: {e}",
                    source.display()
                );
                return None;
            }
        }
    }
    Some(copies)
}

/// `open_tree(OPEN_TREE_CLONE)` of `source` (with its submounts when `recursive`).
pub(super) fn clone_tree(
    source: &Path,
    recursive: bool,
) -> std::result::Result<PeerCopy, nix::Error> {
    let at = CString::new(source.as_os_str().as_bytes()).map_err(|_| nix::Error::EINVAL)?;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: a NUL-terminated path that outlives the call; the kernel returns a new
    // fd or -1 and touches no memory of ours otherwise.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, at.as_ptr(), flags) };
    let fd = nix::Error::result(fd)?;
    // SAFETY: a fresh fd returned by open_tree, owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
    Ok(PeerCopy { fd, at })
}

/// The bind sources whose mounts must stay peers of the host's in the restored
/// container, with whether the bind is recursive: every bind's when
/// `linux.rootfsPropagation` is shared or rshared (a bind of a shared host mount then
/// stays in its peer group), else those of binds with `shared` or `rshared` among
/// their options. A mount of another type made shared starts a peer group of its
/// own, which the slave copy changes nothing about.
fn shared_sources(spec: &Spec) -> Vec<(PathBuf, bool)> {
    let shared = |o: &str| o == "shared" || o == "rshared";
    let root = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
        .is_some_and(shared);
    let mut out: Vec<(PathBuf, bool)> = Vec::new();
    for m in spec.mounts().iter().flatten() {
        let options = m.options().as_deref().unwrap_or_default();
        let asks = root || options.iter().any(|o| shared(o));
        if let (true, true, Some(src)) = (crate::rootfs::is_bind(m), asks, m.source()) {
            let recursive = options.iter().any(|o| o == "rbind");
            if !out.iter().any(|(s, _)| s == src) {
                out.push((src.clone(), recursive));
            }
        }
    }
    out
}

/// Whether the container has a mount namespace of its own (a new one, not one joined
/// by path): CRIU then makes the restored tree's namespace itself, and can run in a
/// private one. A container in the runtime's mount namespace is restored into CRIU's,
/// so CRIU stays in ours for it.
fn own_mount_namespace(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == LinuxNamespaceType::Mount && n.path().is_none())
        })
}

/// Detaches and removes CRIU's cgroup yards (`.criu.cgyard.*`) left in `work_dir` by
/// a CRIU that was killed in our mount namespace. Best effort: what cannot be undone
/// is logged and left. Only called once that CRIU is gone (its cgroup emptied): a live
/// CRIU's yard in the same work directory would be detached too.
pub(crate) fn release_criu_yards(work_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(work_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let is_yard = name.to_str().is_some_and(|n| n.starts_with(YARD_PREFIX));
        if !is_yard || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let at = entry.path();
        // The yard and the hierarchies under it go with one detach; a stacked one
        // (never made by CRIU) takes more. EINVAL once nothing is mounted there.
        for _ in 0..8 {
            match umount2(&at, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW) {
                Ok(()) => continue,
                Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => break,
                Err(e) => {
                    tracing::warn!("unmount criu's cgroup yard {}: {e}", at.display());
                    break;
                }
            }
        }
        if let Err(e) = std::fs::remove_dir(&at) {
            tracing::warn!("remove criu's cgroup yard {}: {e}", at.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(mounts: serde_json::Value, linux: serde_json::Value) -> Spec {
        serde_json::from_value(json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "mounts": mounts,
            "linux": linux,
        }))
        .expect("a spec")
    }

    fn own_ns() -> serde_json::Value {
        json!({"namespaces": [{"type": "pid"}, {"type": "mount"}]})
    }

    fn bind(options: &[&str]) -> serde_json::Value {
        json!([{"destination": "/data", "type": "bind", "source": "/srv/data",
                "options": options}])
    }

    fn sources(s: &Spec) -> Vec<(String, bool)> {
        shared_sources(s)
            .into_iter()
            .map(|(p, r)| (p.display().to_string(), r))
            .collect()
    }

    #[test]
    fn no_source_without_shared_propagation() {
        for options in [&["rbind"][..], &["rbind", "rslave"], &["bind", "private"]] {
            assert!(
                sources(&spec(bind(options), own_ns())).is_empty(),
                "{options:?}"
            );
        }
        // A tmpfs made shared peers with nothing of the host.
        let tmpfs = json!([{"destination": "/t", "type": "tmpfs", "source": "tmpfs",
                            "options": ["rshared"]}]);
        assert!(sources(&spec(tmpfs, own_ns())).is_empty());
        for root in ["rslave", "private", "slave", ""] {
            let mut linux = own_ns();
            linux["rootfsPropagation"] = json!(root);
            assert!(
                sources(&spec(bind(&["rbind"]), linux)).is_empty(),
                "{root:?}"
            );
        }
    }

    #[test]
    fn shared_binds_are_sources() {
        // Kubernetes' Bidirectional: the bind asks for rshared.
        assert_eq!(
            sources(&spec(bind(&["rbind", "rshared"]), own_ns())),
            [("/srv/data".to_string(), true)]
        );
        assert_eq!(
            sources(&spec(bind(&["shared", "bind"]), own_ns())),
            [("/srv/data".to_string(), false)]
        );
        // A bind by its type alone; the same source twice is cloned once.
        let typed = json!([
            {"destination": "/d", "type": "bind", "source": "/d", "options": ["rshared"]},
            {"destination": "/e", "type": "bind", "source": "/d", "options": ["shared"]},
        ]);
        assert_eq!(sources(&spec(typed, own_ns())), [("/d".to_string(), false)]);
        // A shared root: every bind, whatever its options.
        for root in ["shared", "rshared"] {
            let mut linux = own_ns();
            linux["rootfsPropagation"] = json!(root);
            let two = json!([
                {"destination": "/a", "type": "bind", "source": "/a", "options": ["rbind"]},
                {"destination": "/b", "type": "bind", "source": "/b", "options": ["rslave", "bind"]},
                {"destination": "/t", "type": "tmpfs", "source": "tmpfs"},
            ]);
            assert_eq!(
                sources(&spec(two, linux)),
                [("/a".to_string(), true), ("/b".to_string(), false)],
                "{root}"
            );
        }
    }

    #[test]
    fn ours_without_a_mount_namespace_of_its_own() {
        let shared = bind(&["rbind", "rshared"]);
        assert!(criu_namespace(&spec(shared.clone(), json!({"namespaces": []}))).is_none());
        let joined = json!({"namespaces": [{"type": "mount", "path": "/proc/1/ns/mnt"}]});
        assert!(criu_namespace(&spec(shared, joined)).is_none());
        assert!(criu_namespace(&spec(bind(&["rbind"]), own_ns())).is_some_and(|c| c.is_empty()));
    }

    /// A source that cannot be cloned (here: missing) sends CRIU to our namespace.
    #[test]
    fn ours_when_a_source_cannot_be_cloned() {
        let missing = json!([{"destination": "/d", "type": "bind",
                              "source": "/nonexistent/berth-peer-source", "options": ["rshared"]}]);
        assert!(criu_namespace(&spec(missing, own_ns())).is_none());
    }

    /// A yard left in the work directory (here not mounted: the unmount needs root)
    /// is removed; other entries stay.
    #[test]
    fn yards_are_removed_and_nothing_else() {
        let dir = std::env::temp_dir().join(format!("berth-yards-{}", std::process::id()));
        std::fs::create_dir_all(dir.join(".criu.cgyard.AbC123")).expect("mkdir yard");
        std::fs::create_dir_all(dir.join("other")).expect("mkdir other");
        std::fs::write(dir.join(".criu.cgyard.file"), "").expect("a file");
        release_criu_yards(&dir);
        let left: Vec<String> = std::fs::read_dir(&dir)
            .expect("read_dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let _ = std::fs::remove_dir_all(&dir);
        let mut left = left;
        left.sort();
        assert_eq!(left, [".criu.cgyard.file", "other"]);
    }
}
