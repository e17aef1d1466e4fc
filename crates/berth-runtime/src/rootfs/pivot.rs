//! Entering the rootfs: pivot_root(".", ".") with the old root detached, or with
//! `--no-pivot` a move of the rootfs onto `/` and chroot, or without a mount
//! namespace a plain chroot. Afterwards the cwd is `/`.

use crate::error::{Error, Result};
use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{fstat, Mode};
use nix::unistd::{chdir, chroot, fchdir, pivot_root};
use std::ffi::CStr;
use std::os::fd::{AsRawFd, OwnedFd};

fn open_dir(path: &CStr) -> Result<OwnedFd> {
    open(
        path,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::sys("open", path.to_string_lossy(), e))
}

fn chdir_root() -> Result<()> {
    chdir(c"/").map_err(|e| Error::sys("chdir", "/", e))
}

/// pivot_root(".", "."): the old root ends up stacked under the new one and is
/// detached from the cwd, so no put_old directory is needed in the rootfs (the LXC
/// trick runc uses).
pub(super) fn pivot(rootfs: &CStr) -> Result<()> {
    let old_root = open_dir(c"/")?;
    let new_root = open_dir(rootfs)?;
    fchdir(&new_root).map_err(|e| Error::sys("fchdir", rootfs.to_string_lossy(), e))?;
    pivot_root(c".", c".").map_err(|e| Error::sys("pivot_root", rootfs.to_string_lossy(), e))?;
    fchdir(&old_root).map_err(|e| Error::sys("fchdir", "old root", e))?;
    // Slave, not private: unmounts must not reach the host, yet the host keeps its
    // view of mounts we still reference (runc's reasoning).
    mount(
        None::<&CStr>,
        c".",
        None::<&CStr>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&CStr>,
    )
    .map_err(|e| Error::sys("mount", "old root with propagation rslave", e))?;
    umount2(c".", MntFlags::MNT_DETACH).map_err(|e| Error::sys("umount2", "old root", e))?;
    chdir_root()
}

/// `--no-pivot`: hide the host's full proc and sysfs mounts (the kernel allows a
/// new proc mount only when a full one is visible), move the rootfs onto `/`,
/// chroot into it.
pub(super) fn move_root(rootfs: &CStr) -> Result<()> {
    mask_host_proc_sys(rootfs)?;
    let new_root = open_dir(rootfs)?;
    fchdir(&new_root).map_err(|e| Error::sys("fchdir", rootfs.to_string_lossy(), e))?;
    mount(
        Some(rootfs),
        c"/",
        None::<&CStr>,
        MsFlags::MS_MOVE,
        None::<&CStr>,
    )
    .map_err(|e| Error::sys("move mount", rootfs.to_string_lossy(), e))?;
    chroot(c".").map_err(|e| Error::sys("chroot", rootfs.to_string_lossy(), e))?;
    chdir_root()
}

/// No mount namespace: chroot only.
pub(super) fn chroot_only(rootfs: &CStr) -> Result<()> {
    chdir(rootfs).map_err(|e| Error::sys("chdir", rootfs.to_string_lossy(), e))?;
    chroot(c".").map_err(|e| Error::sys("chroot", rootfs.to_string_lossy(), e))?;
    chdir_root()
}

/// Unmounts (or covers with a tmpfs where that is refused) every full proc and
/// sysfs mount outside the rootfs. Reads mountinfo on the heap: only for the rare
/// `--no-pivot` path.
fn mask_host_proc_sys(rootfs: &CStr) -> Result<()> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::io("read", "/proc/self/mountinfo", e))?;
    let rootfs = rootfs.to_bytes();
    for line in info.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        let (Some(root), Some(point), Some(fstype)) =
            (fields.get(3), fields.get(4), fields.get(sep + 1))
        else {
            continue;
        };
        let point = unescape(point);
        let inside = point.as_bytes().starts_with(rootfs)
            && matches!(point.as_bytes().get(rootfs.len()), None | Some(b'/'));
        if *root != "/" || !(*fstype == "proc" || *fstype == "sysfs") || inside {
            continue;
        }
        let p = std::ffi::CString::new(point.clone())
            .map_err(|_| Error::Init(format!("bad mount point {point}")))?;
        match mount(
            None::<&CStr>,
            p.as_c_str(),
            None::<&CStr>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&CStr>,
        ) {
            Ok(()) => {}
            // A parent was already detached.
            Err(Errno::ENOENT | Errno::EINVAL) => continue,
            Err(e) => {
                return Err(Error::sys(
                    "mount",
                    format_args!("{point} with propagation rslave"),
                    e,
                ))
            }
        }
        match umount2(p.as_c_str(), MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(Errno::EINVAL | Errno::EPERM) => {
                mount(
                    Some(c"tmpfs"),
                    p.as_c_str(),
                    Some(c"tmpfs"),
                    MsFlags::empty(),
                    None::<&CStr>,
                )
                .map_err(|e| Error::sys("mount tmpfs over", &point, e))?;
            }
            Err(e) => return Err(Error::sys("umount2", &point, e)),
        }
    }
    Ok(())
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// runc's reOpenDevNull: stdio fds that are the host's /dev/null are replaced by
/// the container's, so nothing keeps a reference into the old root.
pub(super) fn reopen_dev_null() -> Result<()> {
    let null = open(
        c"/dev/null",
        OFlag::O_RDWR | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::sys("open", "/dev/null in the container", e))?;
    let null_st = fstat(&null).map_err(|e| Error::sys("fstat", "/dev/null", e))?;
    for fd in 0..3 {
        let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
        // SAFETY: fstat writes into `st`, a live stat struct; fd may be closed (EBADF).
        let rc = unsafe { libc::fstat(fd, st.as_mut_ptr()) };
        if rc != 0 {
            continue;
        }
        // SAFETY: fstat succeeded and filled the struct.
        let st = unsafe { st.assume_init() };
        let is_char = st.st_mode & libc::S_IFMT == libc::S_IFCHR;
        if is_char && st.st_rdev == null_st.st_rdev {
            // SAFETY: dup3 onto a stdio slot; both fds are valid and distinct.
            let rc = unsafe { libc::dup3(null.as_raw_fd(), fd, 0) };
            Errno::result(rc)
                .map_err(|e| Error::sys("dup3", format_args!("/dev/null onto fd {fd}"), e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn unescapes_mountinfo() {
        assert_eq!(super::unescape(r"/a\040b"), "/a b");
        assert_eq!(super::unescape(r"/plain"), "/plain");
    }
}
