//! Resolution of paths inside the rootfs that never leaves it: `openat2` with
//! `RESOLVE_IN_ROOT` on a rootfs fd, creating missing components on the way, and the
//! `/proc/self/fd/<n>` name that lets mount(2) act on exactly the resolved inode
//! (runc's defence against symlink-exchange races, CVE-2021-30465 and kin).

use super::buf::StackCStr;
use nix::errno::Errno;
use nix::fcntl::{openat, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{mkdirat, Mode};
use std::ffi::CStr;
use std::fmt::Write;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

/// Longest path handled by the component walk (PATH_MAX).
const PATH_MAX: usize = 4096;
/// Longest single path component (NAME_MAX + NUL).
const NAME_MAX: usize = 256;

/// What to create at the end of a path that does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Leaf {
    Dir,
    File,
}

/// How mount(2) is told the target: `/proc/self/fd/<fd>`, a path naming exactly
/// the inode an fd refers to; or, after pivot in a container without /proc, the
/// path itself (relative to the cwd `/`, so still inside the new root).
pub(super) struct ProcFd(StackCStr<4096>);

impl ProcFd {
    pub(super) fn new(fd: &OwnedFd) -> Self {
        let mut s = StackCStr::new();
        // An i32 always fits with the prefix.
        let _ = write!(s, "/proc/self/fd/{}", fd.as_raw_fd());
        ProcFd(s)
    }

    /// `/proc/self/fd/<fd>` when `use_fd`, else `path`.
    pub(super) fn or_path(fd: &OwnedFd, path: &CStr, use_fd: bool) -> Self {
        if use_fd {
            return Self::new(fd);
        }
        let mut s = StackCStr::new();
        s.push_bytes(path.to_bytes());
        ProcFd(s)
    }

    pub(super) fn as_cstr(&self) -> &CStr {
        self.0.as_cstr().unwrap_or(c"/proc/self/fd/-1")
    }
}

/// Opens `path` (relative to `root`, `.` for the root itself) as an O_PATH fd,
/// resolving every symlink and `..` as if `root` were `/`. `extra` adds resolve
/// flags (RESOLVE_NO_SYMLINKS for proc and sysfs destinations).
pub(super) fn open_in_root(
    root: BorrowedFd<'_>,
    path: &CStr,
    extra: ResolveFlag,
) -> nix::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS | extra);
    // EAGAIN: a rename or mount raced with the lookup; the kernel asks to retry.
    let mut tries = 0;
    loop {
        match openat2(root, path, how) {
            Err(Errno::EAGAIN) if tries < 16 => tries += 1,
            other => return other,
        }
    }
}

/// Like [`open_in_root`], but creates what is missing: directories for every
/// component, and `leaf` for the last one. A dangling symlink on the way is
/// followed (inside the root) and its target created, as runc's securejoin-based
/// code does for e.g. an image's `/etc/resolv.conf -> /run/...`. Returns the fd
/// and whether the last component was created.
pub(super) fn open_or_create(
    root: BorrowedFd<'_>,
    path: &CStr,
    leaf: Leaf,
    extra: ResolveFlag,
) -> nix::Result<(OwnedFd, bool)> {
    match open_in_root(root, path, extra) {
        Err(Errno::ENOENT) => {}
        other => return other.map(|fd| (fd, false)),
    }
    let mut current = StackCStr::<PATH_MAX>::new();
    let mut next = StackCStr::<PATH_MAX>::new();
    current.push_bytes(path.to_bytes());
    // Linux's own limit on symlinks followed in one lookup.
    for _ in 0..40 {
        next.clear();
        if let Some(done) = walk(root, current.as_bytes(), leaf, extra, &mut next)? {
            return Ok(done);
        }
        std::mem::swap(&mut current, &mut next);
    }
    Err(Errno::ELOOP)
}

/// One pass over `bytes`, creating missing components. Returns the fd when done;
/// `None` when a component is a dangling symlink, with the path to resolve
/// instead written to `next`.
fn walk(
    root: BorrowedFd<'_>,
    bytes: &[u8],
    leaf: Leaf,
    extra: ResolveFlag,
    next: &mut StackCStr<PATH_MAX>,
) -> nix::Result<Option<(OwnedFd, bool)>> {
    let mut parent = open_in_root(root, c".", extra)?;
    let mut created = false;
    let mut prefix = StackCStr::<PATH_MAX>::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let end = bytes[pos..]
            .iter()
            .position(|&b| b == b'/')
            .map_or(bytes.len(), |i| pos + i);
        let comp = &bytes[pos..end];
        let comp_start = pos;
        pos = end + 1;
        if comp.is_empty() || comp == b"." {
            continue;
        }
        let rest = bytes.get(end..).unwrap_or_default();
        let parent_len = prefix.as_bytes().len();
        if parent_len > 0 {
            prefix.push_bytes(b"/");
        }
        prefix.push_bytes(comp);
        let prefix_c = prefix.as_cstr().ok_or(Errno::ENAMETOOLONG)?;
        match open_in_root(root, prefix_c, extra) {
            Ok(fd) => {
                parent = fd;
                created = false;
                continue;
            }
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        if comp == b".." || comp.len() >= NAME_MAX {
            return Err(Errno::ENOENT);
        }
        let mut name = StackCStr::<NAME_MAX>::new();
        name.push_bytes(comp);
        let name = name.as_cstr().ok_or(Errno::ENAMETOOLONG)?;
        let is_last = rest
            .split(|&b| b == b'/')
            .all(|c| c.is_empty() || c == b".");
        let made = if is_last && leaf == Leaf::File {
            let flags = OFlag::O_CREAT
                | OFlag::O_EXCL
                | OFlag::O_WRONLY
                | OFlag::O_NOFOLLOW
                | OFlag::O_CLOEXEC;
            openat(&parent, name, flags, Mode::from_bits_truncate(0o755)).map(drop)
        } else {
            mkdirat(&parent, name, Mode::from_bits_truncate(0o755))
        };
        match made {
            Ok(()) => {}
            Err(Errno::EEXIST) => {
                // Lookup said ENOENT, yet the name exists: a dangling symlink.
                let mut target = [0u8; PATH_MAX];
                // SAFETY: readlinkat writes at most target.len() bytes into the
                // buffer; parent is a live fd and name a NUL-terminated string.
                let n = unsafe {
                    libc::readlinkat(
                        parent.as_raw_fd(),
                        name.as_ptr(),
                        target.as_mut_ptr().cast(),
                        target.len(),
                    )
                };
                let n = usize::try_from(Errno::result(n)?).map_err(|_| Errno::EINVAL)?;
                if n >= target.len() {
                    return Err(Errno::ENAMETOOLONG);
                }
                if target.first() != Some(&b'/') {
                    next.push_bytes(&bytes[..comp_start]);
                }
                next.push_bytes(&target[..n]);
                next.push_bytes(rest);
                next.as_cstr().ok_or(Errno::ENAMETOOLONG)?;
                return Ok(None);
            }
            Err(e) => return Err(e),
        }
        parent = open_in_root(root, prefix_c, extra)?;
        created = true;
    }
    Ok(Some((parent, created)))
}

/// Writes the path of `fd` relative to `root` (no leading `/`, empty for the root
/// itself) into `out`, as the kernel names both (readlink of /proc/self/fd/<n>);
/// false when `fd` is not below `root`. No allocation: for the init.
pub(super) fn path_in_root(
    root: BorrowedFd<'_>,
    fd: &OwnedFd,
    out: &mut StackCStr<PATH_MAX>,
) -> nix::Result<bool> {
    let mut root_buf = [0u8; PATH_MAX];
    let mut fd_buf = [0u8; PATH_MAX];
    let root_path = fd_path(root.as_raw_fd(), &mut root_buf)?;
    let path = fd_path(fd.as_raw_fd(), &mut fd_buf)?;
    let rest = if root_path == b"/" {
        &path[1..]
    } else if path == root_path {
        &[][..]
    } else {
        match path.strip_prefix(root_path) {
            Some(rest) if rest.first() == Some(&b'/') => &rest[1..],
            _ => return Ok(false),
        }
    };
    out.clear();
    out.push_bytes(rest);
    out.as_cstr().ok_or(Errno::ENAMETOOLONG)?;
    Ok(true)
}

/// readlink of /proc/self/fd/<fd> into `buf`.
fn fd_path(fd: i32, buf: &mut [u8; PATH_MAX]) -> nix::Result<&[u8]> {
    let mut link = StackCStr::<64>::new();
    let _ = write!(link, "/proc/self/fd/{fd}");
    let link = link.as_cstr().ok_or(Errno::ENAMETOOLONG)?;
    // SAFETY: readlink writes at most buf.len() bytes into the buffer; link is a
    // NUL-terminated string.
    let n = unsafe { libc::readlink(link.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    let n = usize::try_from(Errno::result(n)?).map_err(|_| Errno::EINVAL)?;
    if n >= buf.len() || buf.first() != Some(&b'/') {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(&buf[..n])
}

/// The filesystem type (`f_type`) and mount flags (`ST_*`) of the mount holding `fd`.
pub(super) fn fs_info(fd: &OwnedFd) -> nix::Result<(i64, u64)> {
    let mut st = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: fd is a live descriptor and st points to writable memory of the right size.
    let rc = unsafe { libc::fstatfs(fd.as_raw_fd(), st.as_mut_ptr()) };
    Errno::result(rc)?;
    // SAFETY: fstatfs succeeded, so it filled the struct.
    let st = unsafe { st.assume_init() };
    let mut vfs = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: as above, for statvfs (which carries the mount flags).
    let rc = unsafe { libc::fstatvfs(fd.as_raw_fd(), vfs.as_mut_ptr()) };
    Errno::result(rc)?;
    // SAFETY: fstatvfs succeeded, so it filled the struct.
    let vfs = unsafe { vfs.assume_init() };
    #[allow(clippy::unnecessary_cast)]
    Ok((st.f_type as i64, vfs.f_flag as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::fcntl::open;
    use std::os::fd::AsFd;

    fn tmpdir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("berth-resolve-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn creates_inside_root_through_absolute_symlink() {
        let dir = tmpdir("abs");
        std::fs::create_dir(dir.join("tmp")).unwrap();
        std::os::unix::fs::symlink("/", dir.join("evil")).unwrap();
        let root = open(&dir, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        let name = format!("berth-resolve-probe-{}", std::process::id());
        let path = std::ffi::CString::new(format!("evil/tmp/{name}/x")).unwrap();
        let (_fd, created) =
            open_or_create(root.as_fd(), &path, Leaf::File, ResolveFlag::empty()).unwrap();
        assert!(created);
        assert!(dir.join("tmp").join(&name).join("x").is_file());
        assert!(!std::path::Path::new("/tmp").join(&name).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dotdot_stays_in_root() {
        let dir = tmpdir("dotdot");
        let root = open(&dir, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        let (_fd, created) = open_or_create(
            root.as_fd(),
            c"../../a/../b",
            Leaf::Dir,
            ResolveFlag::empty(),
        )
        .unwrap();
        assert!(created);
        assert!(dir.join("b").is_dir());
        assert!(dir.join("a").is_dir());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dangling_symlinks_are_followed_inside_root() {
        let dir = tmpdir("dangling");
        std::fs::create_dir(dir.join("etc")).unwrap();
        std::os::unix::fs::symlink("/run/resolve/resolv.conf", dir.join("etc/resolv.conf"))
            .unwrap();
        std::os::unix::fs::symlink("../gone/deeper", dir.join("etc/rel")).unwrap();
        let root = open(&dir, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        let (_fd, created) = open_or_create(
            root.as_fd(),
            c"etc/resolv.conf",
            Leaf::File,
            ResolveFlag::empty(),
        )
        .unwrap();
        assert!(created);
        assert!(dir.join("run/resolve/resolv.conf").is_file());
        let (_fd, _) =
            open_or_create(root.as_fd(), c"etc/rel/x", Leaf::Dir, ResolveFlag::empty()).unwrap();
        assert!(dir.join("gone/deeper/x").is_dir());
        std::os::unix::fs::symlink("loop", dir.join("loop")).unwrap();
        assert!(open_or_create(root.as_fd(), c"loop/x", Leaf::Dir, ResolveFlag::empty()).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn path_in_root_reads_back_where_a_symlink_led() {
        let dir = tmpdir("pathin");
        std::fs::create_dir_all(dir.join("real/sub")).unwrap();
        std::os::unix::fs::symlink("/real", dir.join("link")).unwrap();
        let root = open(&dir, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        let fd = open_in_root(root.as_fd(), c"link/sub", ResolveFlag::empty()).unwrap();
        let mut out = StackCStr::<PATH_MAX>::new();
        assert!(path_in_root(root.as_fd(), &fd, &mut out).unwrap());
        assert_eq!(out.as_bytes(), b"real/sub");
        let top = open_in_root(root.as_fd(), c".", ResolveFlag::empty()).unwrap();
        assert!(path_in_root(root.as_fd(), &top, &mut out).unwrap());
        assert_eq!(out.as_bytes(), b"");
        let outside = open(c"/", OFlag::O_PATH, Mode::empty()).unwrap();
        assert!(!path_in_root(root.as_fd(), &outside, &mut out).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn existing_path_is_not_created() {
        let dir = tmpdir("exists");
        std::fs::create_dir(dir.join("d")).unwrap();
        let root = open(&dir, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        let (_fd, created) =
            open_or_create(root.as_fd(), c"d", Leaf::Dir, ResolveFlag::empty()).unwrap();
        assert!(!created);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
