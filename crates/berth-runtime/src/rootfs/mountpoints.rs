//! Mount points for a restore: CRIU mounts the container's mounts itself, onto the
//! rootfs it is given, and fails where a mount point is missing (a rootfs copied to
//! another place or host, which the original `create` never touched). Made as `create`
//! would make them, inside the root without following symlinks out of it. Mount points
//! on a tmpfs of the config are skipped (CRIU restores the tmpfs with its content), and
//! so are cgroup mounts (CRIU's own).

use super::rel_path;
use super::resolve::{open_in_root, open_or_create, Leaf, ProcFd};
use crate::error::{Error, Result};
use nix::fcntl::{open, OFlag, ResolveFlag};
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::Spec;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

/// Creates the missing mount points of `spec`'s mounts under `rootfs`. A mount point
/// inside a bind mount (nested binds: /test, then /test/for/nested) belongs in the
/// bind's source, so the binds are mounted on the way, as `create` mounts them (runc
/// does the same): in a private mount namespace of a short-lived thread, so they
/// vanish with it and nothing reaches the host's mounts.
pub(crate) fn ensure_mount_points(rootfs: &Path, spec: &Spec) -> Result<()> {
    std::thread::scope(|s| {
        s.spawn(|| make_mount_points(rootfs, spec))
            .join()
            .unwrap_or_else(|_| {
                Err(Error::Init(
                    "the thread making mount points panicked".into(),
                ))
            })
    })
}

fn make_mount_points(rootfs: &Path, spec: &Spec) -> Result<()> {
    // CLONE_NEWNS for this thread alone (it implies CLONE_FS, which a thread may
    // unshare); everything below is private, so the binds propagate nowhere.
    unshare(CloneFlags::CLONE_FS | CloneFlags::CLONE_NEWNS)
        .map_err(|e| Error::sys("unshare", "a mount namespace for the mount points", e))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| Error::sys("mount", "/ private", e))?;
    let mounts = spec.mounts().clone().unwrap_or_default();
    let tmpfs: Vec<PathBuf> = mounts
        .iter()
        .filter(|m| m.typ().as_deref() == Some("tmpfs"))
        .map(|m| m.destination().clone())
        .collect();
    let root = open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::sys("open", rootfs.display(), e))?;
    for m in &mounts {
        let dest = m.destination();
        if matches!(m.typ().as_deref(), Some("cgroup" | "cgroup2"))
            || tmpfs.iter().any(|t| t != dest && dest.starts_with(t))
        {
            continue;
        }
        let bind = super::is_bind(m);
        let source_dir = m.source().as_ref().filter(|s| bind && s.is_dir());
        let leaf = match m.source() {
            Some(src) if bind && src.exists() && !src.is_dir() => Leaf::File,
            _ => Leaf::Dir,
        };
        let (rel, display) = rel_path(dest)?;
        if rel.as_bytes() == b"." {
            continue;
        }
        let (fd, _) = open_or_create(root.as_fd(), &rel, leaf, ResolveFlag::empty())
            .map_err(|e| Error::sys("create mount point", &display, e))?;
        if let Some(src) = source_dir {
            mount(
                Some(src.as_path()),
                ProcFd::new(&fd).as_cstr(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(|e| Error::sys("mount", format!("{} on {display}", src.display()), e))?;
        }
    }
    Ok(())
}

/// Where `dest` of the config really is inside `rootfs` (symlinks followed inside the
/// root, as the mount was made), as an absolute path in the container; `None` when
/// it cannot be resolved. CRIU knows a mount by that place, not by the config's name.
pub(crate) fn resolve_destination(rootfs: &Path, dest: &Path) -> Option<PathBuf> {
    let root = open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let (rel, _) = rel_path(dest).ok()?;
    let fd = open_in_root(root.as_fd(), &rel, ResolveFlag::empty()).ok()?;
    let real = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
    let base = std::fs::read_link(format!("/proc/self/fd/{}", root.as_raw_fd())).ok()?;
    let inside = real.strip_prefix(&base).ok()?;
    Some(Path::new("/").join(inside))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_bind_mount_points_land_in_the_bind_source() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: mounting needs root");
            return;
        }
        let dir = std::env::temp_dir().join(format!("berth-mountpoints-{}", std::process::id()));
        let (rootfs, bind1, bind2) = (dir.join("rootfs"), dir.join("bind1"), dir.join("bind2"));
        for d in [&rootfs, &bind1, &bind2] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::create_dir_all(rootfs.join("real/conf")).unwrap();
        std::os::unix::fs::symlink("/real/conf", rootfs.join("conf")).unwrap();
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.2.0",
            "mounts": [
                {"destination": "/conf", "source": bind2, "options": ["bind"]},
                {"destination": "/test", "type": "bind", "source": bind1, "options": ["bind"]},
                {"destination": "/test/for/nested", "type": "bind", "source": bind2,
                 "options": ["bind"]}
            ]
        }))
        .unwrap();
        ensure_mount_points(&rootfs, &spec).unwrap();
        assert!(
            bind1.join("for/nested").is_dir(),
            "nested mount point not in bind1"
        );
        assert!(
            !rootfs.join("test/for").exists(),
            "made under the covered directory"
        );
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mountinfo.contains(&dir.display().to_string()),
            "a bind leaked into this mount namespace"
        );
        assert_eq!(
            resolve_destination(&rootfs, Path::new("/conf")),
            Some(PathBuf::from("/real/conf"))
        );
        assert_eq!(
            resolve_destination(&rootfs, Path::new("/test")),
            Some(PathBuf::from("/test"))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
