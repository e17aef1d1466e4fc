//! Mount points for a restore: CRIU mounts the container's mounts itself, onto the
//! rootfs it is given, and fails where a mount point is missing (a rootfs copied to
//! another place or host, which the original `create` never touched). Made as `create`
//! would make them, inside the root without following symlinks out of it. Mount points
//! on a tmpfs of the config are skipped (CRIU restores the tmpfs with its content), and
//! so are cgroup mounts (CRIU's own).

use super::rel_path;
use super::resolve::{open_or_create, Leaf};
use crate::error::{Error, Result};
use nix::fcntl::{open, OFlag, ResolveFlag};
use nix::sys::stat::Mode;
use oci_spec::runtime::Spec;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// Creates the missing mount points of `spec`'s mounts under `rootfs`.
pub(crate) fn ensure_mount_points(rootfs: &Path, spec: &Spec) -> Result<()> {
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
        let leaf = match m.source() {
            Some(src) if bind && src.exists() && !src.is_dir() => Leaf::File,
            _ => Leaf::Dir,
        };
        let (rel, display) = rel_path(dest)?;
        if rel.as_bytes() == b"." {
            continue;
        }
        open_or_create(root.as_fd(), &rel, leaf, ResolveFlag::empty())
            .map_err(|e| Error::sys("create mount point", &display, e))?;
    }
    Ok(())
}
