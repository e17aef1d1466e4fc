//! Device nodes in the container's /dev: the defaults every container gets, the
//! config's `linux.devices`, the /dev/ptmx and /proc/self/fd symlinks. Created with
//! mknod, or in a user namespace (where mknod is refused) by bind-mounting the
//! host's node onto an empty file, as runc does.

use super::resolve::{open_or_create, Leaf, ProcFd};
use super::{cstring, rel_path};
use crate::error::{Error, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag, ResolveFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstatat, makedev, mknodat, umask, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The devices the runtime spec requires in every container (config-linux.md,
/// "Default Devices"); /dev/console is the console code's, /dev/ptmx a symlink.
const DEFAULTS: [(&str, u64, u64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// A device node prepared in the parent.
#[derive(Debug)]
pub(super) struct DevicePlan {
    /// Absolute path as configured: the host node bound in a user namespace.
    path: CString,
    /// Parent directory relative to the rootfs, and the node's name in it.
    parent: CString,
    name: CString,
    kind: SFlag,
    rdev: libc::dev_t,
    mode: Mode,
    uid: u32,
    gid: u32,
}

/// Builds the device list: the config's devices, then the defaults it does not
/// override (same path).
pub(super) fn plan(devices: &[LinuxDevice]) -> Result<Vec<DevicePlan>> {
    let mut out = Vec::with_capacity(devices.len() + DEFAULTS.len());
    for d in devices {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(Error::Config(format!(
                    "device {}: type a is not a device",
                    d.path().display()
                )))
            }
        };
        let (major, minor) = (d.major(), d.minor());
        if kind != SFlag::S_IFIFO && (major < 0 || minor < 0) {
            return Err(Error::Config(format!(
                "device {}: negative major or minor",
                d.path().display()
            )));
        }
        let rdev = if kind == SFlag::S_IFIFO {
            0
        } else {
            makedev(major as u64, minor as u64)
        };
        let mode = d.file_mode().unwrap_or(0o666) & 0o7777;
        if let Some(p) = node(
            d.path(),
            kind,
            rdev,
            mode,
            d.uid().unwrap_or(0),
            d.gid().unwrap_or(0),
        )? {
            out.push(p);
        }
    }
    for (path, major, minor) in DEFAULTS {
        if out.iter().any(|d| d.path.as_bytes() == path.as_bytes()) {
            continue;
        }
        if let Some(p) = node(
            Path::new(path),
            SFlag::S_IFCHR,
            makedev(major, minor),
            0o666,
            0,
            0,
        )? {
            out.push(p);
        }
    }
    Ok(out)
}

fn node(
    path: &Path,
    kind: SFlag,
    rdev: libc::dev_t,
    mode: u32,
    uid: u32,
    gid: u32,
) -> Result<Option<DevicePlan>> {
    let (rel, display) = rel_path(path)?;
    // /dev/ptmx is the devpts symlink made below (runc skips it too).
    if rel.as_bytes() == b"dev/ptmx" {
        return Ok(None);
    }
    let rel = Path::new(std::ffi::OsStr::from_bytes(rel.as_bytes()));
    let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
        return Err(Error::Config(format!("device {display}: not a file path")));
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    Ok(Some(DevicePlan {
        path: cstring(Path::new(&display))?,
        parent: cstring(parent)?,
        name: cstring(Path::new(name))?,
        kind,
        rdev,
        mode: Mode::from_bits_truncate(mode),
        uid,
        gid,
    }))
}

impl DevicePlan {
    fn err(&self, call: &'static str, errno: Errno) -> Error {
        Error::sys(
            call,
            format_args!("device {}", self.path.to_string_lossy()),
            errno,
        )
    }

    fn create(&self, root: BorrowedFd<'_>, bind: bool) -> Result<()> {
        let (dir, _) = open_or_create(root, &self.parent, Leaf::Dir, ResolveFlag::empty())
            .map_err(|e| self.err("open parent of", e))?;
        if bind {
            return self.bind(&dir);
        }
        match mknodat(&dir, self.name.as_c_str(), self.kind, self.mode, self.rdev) {
            Ok(()) => fchownat(
                &dir,
                self.name.as_c_str(),
                Some(Uid::from_raw(self.uid)),
                Some(Gid::from_raw(self.gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| self.err("chown", e)),
            Err(Errno::EEXIST) => self.check_existing(&dir),
            Err(Errno::EPERM) => self.bind(&dir),
            Err(e) => Err(self.err("mknod", e)),
        }
    }

    /// The spec: a file already at `path` that is not the requested device is an error.
    fn check_existing(&self, dir: &OwnedFd) -> Result<()> {
        let st = fstatat(dir, self.name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| self.err("stat", e))?;
        let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        if kind == self.kind && (kind == SFlag::S_IFIFO || st.st_rdev == self.rdev) {
            Ok(())
        } else {
            Err(Error::Config(format!(
                "device {}: a different file already exists there",
                self.path.to_string_lossy()
            )))
        }
    }

    fn bind(&self, dir: &OwnedFd) -> Result<()> {
        let name = self.name.as_c_str();
        match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(_) => {}
            Err(Errno::ENOENT) => {
                let flags = OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_WRONLY
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC;
                drop(
                    openat(dir, name, flags, Mode::from_bits_truncate(0o644))
                        .map_err(|e| self.err("create", e))?,
                );
            }
            Err(e) => return Err(self.err("stat", e)),
        }
        let fd = openat(
            dir,
            name,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.err("open", e))?;
        mount(
            Some(self.path.as_c_str()),
            ProcFd::new(&fd).as_cstr(),
            None::<&CStr>,
            MsFlags::MS_BIND,
            None::<&CStr>,
        )
        .map_err(|e| self.err("bind mount host node onto", e))
    }
}

/// Creates every device under umask 0, so `fileMode` is exact.
pub(super) fn create_all(root: BorrowedFd<'_>, devices: &[DevicePlan], bind: bool) -> Result<()> {
    let old = umask(Mode::empty());
    let result = devices.iter().try_for_each(|d| d.create(root, bind));
    umask(old);
    result
}

/// /dev/fd, /dev/std{in,out,err}, /dev/core (when the host has /proc/kcore) and
/// /dev/ptmx -> pts/ptmx (replacing whatever is there, as runc does).
pub(super) fn symlinks(root: BorrowedFd<'_>, kcore: bool) -> Result<()> {
    let err = |call, path: &str, e| Error::sys(call, path, e);
    let (dev, _) = open_or_create(root, c"dev", Leaf::Dir, ResolveFlag::empty())
        .map_err(|e| err("open", "/dev", e))?;
    match unlinkat(&dev, c"ptmx", UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(err("unlink", "/dev/ptmx", e)),
    }
    symlinkat(c"pts/ptmx", &dev, c"ptmx").map_err(|e| err("symlink", "/dev/ptmx", e))?;
    let links: [(&CStr, &CStr, &str); 5] = [
        (c"/proc/self/fd", c"fd", "/dev/fd"),
        (c"/proc/self/fd/0", c"stdin", "/dev/stdin"),
        (c"/proc/self/fd/1", c"stdout", "/dev/stdout"),
        (c"/proc/self/fd/2", c"stderr", "/dev/stderr"),
        (c"/proc/kcore", c"core", "/dev/core"),
    ];
    for (target, name, display) in links {
        if name == c"core" && !kcore {
            continue;
        }
        match symlinkat(target, &dev, name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(err("symlink", display, e)),
        }
    }
    Ok(())
}

/// runc's mountConsole, after pivot: the terminal's pty slave bound onto
/// /dev/console (an empty file made for it, replacing a symlink). Against
/// CVE-2025-52565 the source is the slave the init holds (through /proc/self/fd, no
/// path lookup), and the target must be a file or character device on the container's
/// /dev itself, not a mount point or another kind of file.
pub(super) fn bind_console(pty: &CStr, slave: BorrowedFd<'_>) -> Result<()> {
    let err = |call, e| Error::sys(call, "/dev/console", e);
    let root = nix::fcntl::open(
        c"/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| err("open /", e))?;
    let (dev, _) = open_or_create(root.as_fd(), c"dev", Leaf::Dir, ResolveFlag::empty())
        .map_err(|e| err("open", e))?;
    if let Ok(st) = fstatat(&dev, c"console", AtFlags::AT_SYMLINK_NOFOLLOW) {
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK {
            unlinkat(&dev, c"console", UnlinkatFlags::NoRemoveDir).map_err(|e| err("unlink", e))?;
        }
    }
    let old = umask(Mode::empty());
    let flags =
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let made = openat(&dev, c"console", flags, Mode::from_bits_truncate(0o666)).map(drop);
    umask(old);
    match made {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(err("create", e)),
    }
    let fd = openat(
        &dev,
        c"console",
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| err("open", e))?;
    let st = nix::sys::stat::fstat(&fd).map_err(|e| err("fstat", e))?;
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    if kind != SFlag::S_IFREG && kind != SFlag::S_IFCHR {
        return Err(Error::Init(format!(
            "/dev/console is not a file or a character device (mode {:o}): refusing to mount the console over it",
            st.st_mode
        )));
    }
    match (mount_id(fd.as_fd()), mount_id(dev.as_fd())) {
        (Some(a), Some(b)) if a != b => {
            return Err(Error::Init(
                "/dev/console is a mount point, not a file of the container's /dev: refusing to mount the console over it".into(),
            ))
        }
        _ => {}
    }
    let use_fd = nix::unistd::access(c"/proc/self/fd", nix::unistd::AccessFlags::F_OK).is_ok();
    let target = ProcFd::or_path(&fd, c"/dev/console", use_fd);
    let by_fd = {
        use std::os::fd::AsRawFd;
        CString::new(format!("/proc/self/fd/{}", slave.as_raw_fd()))
            .map_err(|_| Error::Init("fd path with a NUL byte".into()))?
    };
    let source: &CStr = if use_fd { &by_fd } else { pty };
    mount(
        Some(source),
        target.as_cstr(),
        None::<&CStr>,
        MsFlags::MS_BIND,
        None::<&CStr>,
    )
    .map_err(|e| {
        Error::sys(
            "bind mount",
            format_args!("{} onto /dev/console", pty.to_string_lossy()),
            e,
        )
    })
}

/// The mount id of the file `fd` refers to (statx STATX_MNT_ID, Linux 5.8); `None`
/// where the kernel does not tell.
fn mount_id(fd: BorrowedFd<'_>) -> Option<u64> {
    use std::os::fd::AsRawFd;
    // SAFETY: statx fills the zeroed struct we pass; an empty path with AT_EMPTY_PATH
    // names the fd itself.
    let mut sx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd, NUL-terminated empty path, a struct of the right type.
    let r = unsafe {
        libc::statx(
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            libc::STATX_MNT_ID,
            &mut sx,
        )
    };
    (r == 0 && sx.stx_mask & libc::STATX_MNT_ID != 0).then_some(sx.stx_mnt_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceBuilder;

    #[test]
    fn defaults_are_added_unless_overridden() {
        let d = LinuxDeviceBuilder::default()
            .path("/dev/null")
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .file_mode(0o600u32)
            .build()
            .unwrap();
        let fuse = LinuxDeviceBuilder::default()
            .path("/dev/fuse")
            .typ(LinuxDeviceType::C)
            .major(10)
            .minor(229)
            .build()
            .unwrap();
        let plans = plan(&[d, fuse]).unwrap();
        assert_eq!(plans.len(), 7);
        let null = plans
            .iter()
            .find(|p| p.path.as_bytes() == b"/dev/null")
            .unwrap();
        assert_eq!(null.mode.bits(), 0o600);
        assert_eq!(null.parent.as_bytes(), b"dev");
        assert_eq!(null.name.as_bytes(), b"null");
        assert_eq!(
            plans
                .iter()
                .filter(|p| p.path.as_bytes() == b"/dev/null")
                .count(),
            1
        );
    }

    #[test]
    fn ptmx_and_type_a_are_handled() {
        let ptmx = LinuxDeviceBuilder::default()
            .path("/dev/ptmx")
            .typ(LinuxDeviceType::C)
            .major(5)
            .minor(2)
            .build()
            .unwrap();
        assert_eq!(plan(&[ptmx]).unwrap().len(), 6);
        let all = LinuxDeviceBuilder::default()
            .path("/dev/x")
            .typ(LinuxDeviceType::A)
            .build()
            .unwrap();
        assert!(plan(&[all]).is_err());
    }
}
