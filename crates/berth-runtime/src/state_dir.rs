//! Removal of a container's state directory that never crosses a mount point.
//!
//! `restore` binds the container's rootfs at `<state dir>/criu-root` for CRIU (and
//! CRIU, run in the caller's mount namespace, may mount its own scratch under its work
//! directory). A `delete` that removed the directory recursively by path while such a
//! mount was there, or appeared (a live restore racing the delete), would reach
//! through it and empty the container's rootfs. Here every directory is opened from
//! its parent's fd with `RESOLVE_NO_XDEV`, so a mount point is refused (`EXDEV`) and
//! never entered, and every name is removed relative to the fd of the directory that
//! was opened: a bind made after that open lands on a path this walk no longer uses.

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

/// Deepest nesting walked: a state directory is one or two levels deep; anything far
/// deeper is not berth's and is left.
const MAX_DEPTH: usize = 16;

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

fn open_below(parent: BorrowedFd<'_>, name: &std::ffi::CStr) -> nix::Result<OwnedFd> {
    let how = OpenHow::new().flags(DIR_FLAGS).resolve(
        ResolveFlag::RESOLVE_BENEATH
            | ResolveFlag::RESOLVE_NO_XDEV
            | ResolveFlag::RESOLVE_NO_SYMLINKS,
    );
    openat2(parent, name, how)
}

/// Empties the directory open at `dir`, `depth` levels below the top.
fn empty(dir: OwnedFd, depth: usize) -> nix::Result<()> {
    if depth > MAX_DEPTH {
        return Err(Errno::ELOOP);
    }
    let fd = dir.as_fd().as_raw_fd();
    let mut names = Vec::new();
    let mut listing = Dir::from_fd(
        dir.try_clone()
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?,
    )?;
    for entry in listing.iter() {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        names.push((name.to_owned(), entry.file_type()));
    }
    // The state file goes last: a removal stopped by a mount below (EXDEV) leaves a
    // directory that still loads, so `delete` can be retried through the library
    // rather than by a recursive removal that would reach through that mount.
    if depth == 0 {
        names.sort_by_key(|(name, _)| name.to_bytes() == crate::state::STATE_FILE.as_bytes());
    }
    // SAFETY: `fd` is `dir`'s descriptor, which lives until the end of this function.
    let parent = unsafe { BorrowedFd::borrow_raw(fd) };
    for (name, typ) in names {
        let is_dir = match typ {
            Some(t) => t == nix::dir::Type::Directory,
            None => nix::sys::stat::fstatat(
                parent,
                name.as_c_str(),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)?,
        };
        if is_dir {
            empty(open_below(parent, &name)?, depth + 1)?;
            unlinkat(parent, name.as_c_str(), UnlinkatFlags::RemoveDir)?;
        } else {
            match unlinkat(parent, name.as_c_str(), UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Removes the directory `path` and everything in it without entering any mount
/// point: a directory with something mounted on it anywhere below fails the removal
/// with `EXDEV` (what was removed before stays removed; nothing of the mount is
/// touched). A missing `path` is not an error.
pub(crate) fn remove(path: &Path) -> std::io::Result<()> {
    // The directory itself is opened from its parent with RESOLVE_NO_XDEV too: a
    // mount on the directory is refused, never entered.
    let (parent, name) = match (path.parent(), path.file_name()) {
        (Some(p), Some(n)) if !p.as_os_str().is_empty() => (p, n),
        _ => return Err(Errno::EINVAL.into()),
    };
    let parent = nix::fcntl::open(parent, DIR_FLAGS, nix::sys::stat::Mode::empty())?;
    let name = std::ffi::CString::new(name.as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
    let dir = match open_below(parent.as_fd(), &name) {
        Err(Errno::ENOENT) => return Ok(()),
        other => other?,
    };
    empty(dir, 0)?;
    match unlinkat(parent.as_fd(), name.as_c_str(), UnlinkatFlags::RemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::remove;
    use nix::mount::{mount, umount2, MntFlags, MsFlags};

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("berth-state-dir-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn removes_files_and_nested_directories() {
        let dir = scratch("plain");
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        std::fs::write(dir.join("a/b/f"), "x").unwrap();
        std::fs::write(dir.join("state.json"), "{}").unwrap();
        std::os::unix::fs::symlink("/etc", dir.join("link")).unwrap();
        remove(&dir).unwrap();
        assert!(!dir.exists());
        assert!(std::path::Path::new("/etc").is_dir());
        remove(&dir).unwrap(); // gone: not an error
    }

    #[test]
    fn never_enters_a_mount_point() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: binding a directory needs root");
            return;
        }
        let dir = scratch("bind");
        let rootfs = scratch("rootfs");
        std::fs::write(rootfs.join("precious"), "keep").unwrap();
        std::fs::create_dir(dir.join("criu-root")).unwrap();
        std::fs::write(dir.join("state.json"), "{}").unwrap();
        let at = dir.join("criu-root");
        if let Err(e) = mount(
            Some(&rootfs),
            &at,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        ) {
            eprintln!("skipped: bind mount failed here: {e}");
            return;
        }
        let err = remove(&dir).expect_err("a removal through a mount point");
        // The state file goes last: the directory stopped by the mount still loads.
        let state_kept = dir.join("state.json").exists();
        let _ = umount2(&at, MntFlags::MNT_DETACH);
        assert!(state_kept, "state.json removed before the walk stopped");
        assert_eq!(err.raw_os_error(), Some(libc::EXDEV), "{err}");
        assert_eq!(
            std::fs::read_to_string(rootfs.join("precious")).unwrap(),
            "keep"
        );
        remove(&dir).unwrap();
        assert!(!dir.exists());
        std::fs::remove_dir_all(&rootfs).unwrap();
    }

    #[test]
    fn never_enters_a_mount_on_the_directory_itself() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: binding a directory needs root");
            return;
        }
        let dir = scratch("self");
        let rootfs = scratch("self-rootfs");
        std::fs::write(rootfs.join("precious"), "keep").unwrap();
        if let Err(e) = mount(
            Some(&rootfs),
            &dir,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        ) {
            eprintln!("skipped: bind mount failed here: {e}");
            return;
        }
        let err = remove(&dir).expect_err("a removal of a mount point");
        let kept = std::fs::read_to_string(rootfs.join("precious")).ok();
        let _ = umount2(&dir, MntFlags::MNT_DETACH);
        assert_eq!(err.raw_os_error(), Some(libc::EXDEV), "{err}");
        assert_eq!(kept.as_deref(), Some("keep"));
        remove(&dir).unwrap();
        std::fs::remove_dir_all(&rootfs).unwrap();
    }
}
