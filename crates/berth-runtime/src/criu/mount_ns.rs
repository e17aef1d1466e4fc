//! The mount namespace CRIU restores from, the peer groups of the restored mounts,
//! and the cleanup of what CRIU leaves in ours when it runs there.
//!
//! CRIU runs in a private namespace (a slave copy of ours) when the container has a
//! mount namespace of its own: its scratch mounts (its cgroup yard, `.criu.cgyard.*` in
//! the work directory) stay out of ours even when CRIU is killed. Where it runs in ours
//! (a container without a mount namespace of its own, or no CAP_SYS_ADMIN), a restore
//! killed midway can leave the yard in the work directory, which the state records for
//! `delete` ([`release_criu_yards`]).
//!
//! CRIU (3.17) does not keep a restored mount in a peer group of a mount outside the
//! container: a bind the container shared with the host (Kubernetes' Bidirectional
//! propagation: the bind asks for `shared` or `rshared`, or `linux.rootfsPropagation`
//! is shared) comes back shared in a group of its own, in whichever namespace CRIU
//! ran (seen in the VM lane with CRIU in a private namespace, with clones of the
//! sources moved into it, and with CRIU in ours). So once CRIU is done, berth puts
//! each such mount back into its source's peer group itself ([`rejoin_peer_groups`]:
//! `move_mount(MOVE_MOUNT_SET_GROUP)`, Linux 5.15).

use crate::error::{Error, Result};
use nix::mount::{umount2, MntFlags};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The name CRIU gives its cgroup yard (`mkdtemp` in its work directory).
const YARD_PREFIX: &str = ".criu.cgyard.";

/// move_mount(2) flags (linux/mount.h).
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_SET_GROUP: libc::c_uint = 0x100;

/// Whether CRIU restores `spec`'s container from a private mount namespace: when the
/// container has one of its own (see [`own_mount_namespace`]).
pub(super) fn private_mounts(spec: &Spec) -> bool {
    own_mount_namespace(spec)
}

/// Puts the restored mounts of the binds in [`shared_sources`] back into the peer
/// group of their source's mount (as create left them), from a child that joins the
/// mount namespace of `pid` (the restored init): each destination is made private,
/// then `move_mount(MOVE_MOUNT_SET_GROUP)` copies the group of the source, opened here
/// in ours. The source must be a mount point (the kubelet's Bidirectional source is
/// one) and shared; a source that is neither is skipped. Only the top mount of a
/// recursive bind rejoins. Failures are returned, naming the destination.
pub(super) fn rejoin_peer_groups(spec: &Spec, rootfs: &Path, pid: i32) -> Result<()> {
    let mut pairs: Vec<(OwnedFd, CString, String)> = Vec::new();
    for m in spec.mounts().iter().flatten() {
        let Some(src) = m.source() else { continue };
        if !shared_sources(spec).iter().any(|(s, _)| s == src) || !crate::rootfs::is_bind(m) {
            continue;
        }
        if !is_shared_mount_point(src) {
            tracing::debug!("restore: {} is not a shared mount point", src.display());
            continue;
        }
        let from = nix::fcntl::open(
            src.as_path(),
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| Error::sys("open", src.display(), e))?;
        let dest = crate::rootfs::resolve_destination(rootfs, m.destination())
            .unwrap_or_else(|| m.destination().clone());
        let shown = dest.display().to_string();
        let dest = CString::new(dest.as_os_str().as_bytes())
            .map_err(|_| Error::Config(format!("mount destination {shown} has a NUL byte")))?;
        pairs.push((from, dest, shown));
    }
    if pairs.is_empty() {
        return Ok(());
    }
    let ns_path = format!("/proc/{pid}/ns/mnt");
    let ns = nix::fcntl::open(
        ns_path.as_str(),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| Error::sys("open", &ns_path, e))?;
    // SAFETY: the child only calls setns(2), mount(2), move_mount(2) and _exit(2) on
    // memory prepared above (async-signal-safe, no allocation, no locks).
    match unsafe { nix::unistd::fork() }.map_err(|e| Error::sys("fork", "restore", e))? {
        nix::unistd::ForkResult::Child => {
            // SAFETY: setns(2) with an fd we hold; _exit never returns.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNS) } != 0 {
                unsafe { libc::_exit(100) };
            }
            for (i, (from, dest, _)) in pairs.iter().enumerate() {
                // SAFETY: mount(2) and move_mount(2) on NUL-terminated strings made
                // before the fork and an fd we hold; no memory of ours is written.
                let ok = unsafe {
                    libc::mount(
                        c"none".as_ptr(),
                        dest.as_ptr(),
                        std::ptr::null(),
                        libc::MS_PRIVATE,
                        std::ptr::null(),
                    ) == 0
                        && libc::syscall(
                            libc::SYS_move_mount,
                            from.as_raw_fd(),
                            c"".as_ptr(),
                            libc::AT_FDCWD,
                            dest.as_ptr(),
                            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_SET_GROUP,
                        ) == 0
                };
                if !ok {
                    // SAFETY: _exit never returns.
                    unsafe { libc::_exit(i.min(99) as libc::c_int) };
                }
            }
            // SAFETY: _exit never returns.
            unsafe { libc::_exit(101) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            use nix::sys::wait::{waitpid, WaitStatus};
            let status = loop {
                match waitpid(child, None) {
                    Ok(WaitStatus::Exited(_, c)) => break Some(c),
                    Ok(WaitStatus::Signaled(..)) => break None,
                    Ok(_) | Err(nix::Error::EINTR) => continue,
                    Err(e) => return Err(Error::sys("waitpid", "restore", e)),
                }
            };
            let why = match status {
                Some(101) => return Ok(()),
                Some(100) => format!("could not join the mount namespace of {pid}"),
                Some(i) => format!(
                    "could not put {} back into the peer group of its source",
                    pairs
                        .get(i as usize)
                        .map(|p| p.2.as_str())
                        .unwrap_or("a mount")
                ),
                None => "the child that sets peer groups was killed".to_string(),
            };
            Err(Error::Criu {
                op: "restore",
                reason: why,
            })
        }
    }
}

/// Whether `path` is the root of a shared mount of ours (mountinfo's `shared:N`).
fn is_shared_mount_point(path: &Path) -> bool {
    let Ok(real) = std::fs::canonicalize(path) else {
        return false;
    };
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let escaped = escape(&real);
    // The last mount at the path is the one on top.
    text.lines()
        .rfind(|l| l.split(' ').nth(4).map(str::as_bytes) == Some(escaped.as_slice()))
        .is_some_and(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            let sep = fields
                .iter()
                .position(|f| *f == "-")
                .unwrap_or(fields.len());
            fields[6.min(sep)..sep]
                .iter()
                .any(|f| f.starts_with("shared:"))
        })
}

/// A path as mountinfo writes it (space, tab, newline and backslash octal-escaped).
fn escape(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for b in path.as_os_str().as_bytes() {
        match b {
            b' ' | b'\t' | b'\n' | b'\\' => out.extend(format!("\\{b:03o}").bytes()),
            _ => out.push(*b),
        }
    }
    out
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
    use nix::mount::MsFlags;
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
    fn private_only_with_a_mount_namespace_of_its_own() {
        assert!(private_mounts(&spec(bind(&["rbind", "rshared"]), own_ns())));
        assert!(!private_mounts(&spec(json!([]), json!({"namespaces": []}))));
        let joined = json!({"namespaces": [{"type": "mount", "path": "/proc/1/ns/mnt"}]});
        assert!(!private_mounts(&spec(json!([]), joined)));
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(escape(Path::new("/a b\\c")), b"/a\\040b\\134c");
    }

    /// A bind that CRIU left in a peer group of its own (here: a private bind in a
    /// namespace of a child, as `unshare -m` makes it) rejoins its source's group:
    /// a tmpfs mounted under the source in ours then shows in the child's namespace.
    /// Needs root and unshare(1); skipped without.
    #[test]
    fn a_restored_bind_rejoins_its_source_s_peer_group() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let base = std::env::temp_dir().join(format!("berth-rejoin-{}", std::process::id()));
        let (src, dest) = (base.join("src"), base.join("dest"));
        std::fs::create_dir_all(src.join("in")).expect("mkdir src/in");
        std::fs::create_dir_all(&dest).expect("mkdir dest");
        let change = |f| nix::mount::mount(None::<&str>, &src, None::<&str>, f, None::<&str>);
        nix::mount::mount(
            Some(&src),
            &src,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .expect("bind src onto itself");
        change(MsFlags::MS_PRIVATE).expect("private");
        change(MsFlags::MS_SHARED).expect("shared");
        let script = format!(
            "mount --bind {0} {1} && mount --make-private {1} && echo ready && exec sleep 30",
            src.display(),
            dest.display()
        );
        let mut child = std::process::Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .stdout(std::process::Stdio::piped())
            .spawn();
        let mut ready = String::new();
        if let Ok(c) = &mut child {
            use std::io::BufRead;
            let out = c.stdout.take().expect("stdout");
            let _ = std::io::BufReader::new(out).read_line(&mut ready);
        }
        let mounts = json!([{"destination": dest, "type": "bind", "source": src,
                             "options": ["bind", "rshared"]}]);
        let result = child
            .as_ref()
            .ok()
            .filter(|_| ready.trim() == "ready")
            .map(|c| rejoin_peer_groups(&spec(mounts, own_ns()), Path::new("/"), c.id() as i32));
        let mut seen = String::new();
        if let (Some(Ok(())), Ok(c)) = (&result, &child) {
            nix::mount::mount(
                Some("berth-rejoin"),
                &src.join("in"),
                Some("tmpfs"),
                MsFlags::empty(),
                None::<&str>,
            )
            .expect("tmpfs under src");
            seen =
                std::fs::read_to_string(format!("/proc/{}/mountinfo", c.id())).unwrap_or_default();
        }
        if let Ok(c) = &mut child {
            let _ = c.kill();
            let _ = c.wait();
        }
        for _ in 0..3 {
            let _ = umount2(&src, MntFlags::MNT_DETACH);
        }
        let _ = std::fs::remove_dir_all(&base);
        match result {
            None => eprintln!("skipped: no unshare(1) child ({ready:?})"),
            Some(r) => {
                r.expect("rejoin");
                let want = format!("{}/in ", dest.display());
                assert!(
                    seen.contains(&want),
                    "no tmpfs at {want} in the child: {seen}"
                );
            }
        }
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
