//! After pivot: `readonlyPaths` bound read-only, `maskedPaths` covered (a
//! read-only empty tmpfs over directories, /dev/null over anything else), and a
//! read-only `/` for `root.readonly`. Missing paths are skipped, as the spec allows.

use super::mounts::{current_flags, remount_keeping_locked};
use super::resolve::{open_in_root, ProcFd};
use crate::error::{Error, Result};
use nix::errno::Errno;
use nix::fcntl::ResolveFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, SFlag};
use std::ffi::{CStr, CString};
use std::os::fd::{BorrowedFd, OwnedFd};

/// Resolves `path` (relative to the new root) without leaving it and without
/// magic links; `None` when it does not exist.
fn resolve(root: BorrowedFd<'_>, path: &CStr, what: &'static str) -> Result<Option<OwnedFd>> {
    match open_in_root(root, path, ResolveFlag::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT | Errno::ENOTDIR) => Ok(None),
        Err(e) => Err(Error::sys(
            what,
            format_args!("/{}", path.to_string_lossy()),
            e,
        )),
    }
}

/// Masks one path so it cannot be read. `data`: the tmpfs's (`linux.mountLabel`'s
/// SELinux context, as runc gives it).
pub(super) fn mask(
    root: BorrowedFd<'_>,
    path: &CString,
    use_fd: bool,
    data: Option<&CStr>,
) -> Result<()> {
    let err = |call, e| {
        Error::sys(
            call,
            format_args!("masked path /{}", path.to_string_lossy()),
            e,
        )
    };
    let Some(fd) = resolve(root, path, "open masked path")? else {
        return Ok(());
    };
    let st = fstat(&fd).map_err(|e| err("fstat", e))?;
    let target = ProcFd::or_path(&fd, path, use_fd);
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
        mount(
            Some(c"tmpfs"),
            target.as_cstr(),
            Some(c"tmpfs"),
            MsFlags::MS_RDONLY,
            data,
        )
        .map_err(|e| err("mount tmpfs over", e))
    } else {
        let null = dev_null(root)?;
        let source = ProcFd::or_path(&null, c"/dev/null", use_fd);
        mount(
            Some(source.as_cstr()),
            target.as_cstr(),
            None::<&CStr>,
            MsFlags::MS_BIND,
            None::<&CStr>,
        )
        .map_err(|e| err("bind mount /dev/null over", e))
    }
}

/// The container's /dev/null, checked to be the null device (1:3) and reached without
/// following a symlink. An image (or a racing container process) that makes it a
/// symlink or another file would otherwise have berth bind something else over the
/// masked paths, e.g. a writable /proc/sys/kernel/core_pattern (CVE-2025-31133).
fn dev_null(root: BorrowedFd<'_>) -> Result<OwnedFd> {
    let bad =
        |reason: String| Error::Init(format!("masked paths: /dev/null in the container {reason}"));
    let fd = open_in_root(root, c"dev/null", ResolveFlag::RESOLVE_NO_SYMLINKS)
        .map_err(|e| bad(format!("cannot be opened without following symlinks: {e}")))?;
    let st = fstat(&fd).map_err(|e| bad(format!("cannot be examined: {e}")))?;
    let is_char = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
    if !is_char || nix::sys::stat::major(st.st_rdev) != 1 || nix::sys::stat::minor(st.st_rdev) != 3
    {
        return Err(bad("is not the null device (char 1:3)".into()));
    }
    Ok(fd)
}

/// Makes one path read-only: a recursive bind onto itself, then a read-only
/// remount that keeps the nosuid/nodev/noexec/atime flags the mount already has
/// (dropping them fails with EPERM in a user namespace).
pub(super) fn readonly(root: BorrowedFd<'_>, path: &CString, use_fd: bool) -> Result<()> {
    let err = |call, e| {
        Error::sys(
            call,
            format_args!("readonly path /{}", path.to_string_lossy()),
            e,
        )
    };
    let Some(fd) = resolve(root, path, "open readonly path")? else {
        return Ok(());
    };
    let target = ProcFd::or_path(&fd, path, use_fd);
    mount(
        Some(target.as_cstr()),
        target.as_cstr(),
        None::<&CStr>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&CStr>,
    )
    .map_err(|e| err("bind mount", e))?;
    let Some(fd) = resolve(root, path, "open readonly path")? else {
        return Ok(());
    };
    let keep = current_flags(&fd).map_err(|e| err("fstatfs", e))?
        & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    let flags = keep | MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    let target = ProcFd::or_path(&fd, path, use_fd);
    remount_keeping_locked(&fd, target.as_cstr(), flags, MsFlags::empty())
        .map_err(|e| err("remount read-only", e))
}

/// `root.readonly`: remounts `/` read-only, keeping its locked flags.
pub(super) fn readonly_root(root: &OwnedFd) -> Result<()> {
    let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    remount_keeping_locked(root, c"/", flags, MsFlags::empty())
        .map_err(|e| Error::sys("remount read-only", "/", e))
}
