//! The protected image: the runtime binary re-executed, with the same argv and
//! environment, from a read-only detached bind of itself or, failing that, from a
//! sealed memfd copy.

use super::Exposure;
use crate::error::{Error, Result};
use nix::errno::Errno;
use nix::fcntl::{fcntl, AtFlags, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::statvfs::{fstatvfs, FsFlags};
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// What a sealed copy carries: no further seal, no size change, no write.
const SEALS: SealFlag = SealFlag::F_SEAL_SEAL
    .union(SealFlag::F_SEAL_SHRINK)
    .union(SealFlag::F_SEAL_GROW)
    .union(SealFlag::F_SEAL_WRITE);

/// The memfd's name, what `/proc/<pid>/exe` shows: `/memfd:berth-sealed-exe (deleted)`.
const NAME: &std::ffi::CStr = c"berth-sealed-exe";

fn failed(step: &'static str, errno: Errno) -> Error {
    Error::SealedExe { step, errno }
}

fn io_failed(step: &'static str, e: &std::io::Error) -> Error {
    failed(step, Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
}

fn open_exe() -> Result<File> {
    File::open("/proc/self/exe").map_err(|e| io_failed("open /proc/self/exe", &e))
}

/// `F_GET_SEALS` answers only for a memfd (EINVAL for any other file): a binary
/// carrying every seal of [`SEALS`] is a sealed copy, whoever made it (an
/// administrator may bind-mount one over the runtime's path).
fn is_sealed(exe: &File) -> Result<bool> {
    match fcntl(exe, FcntlArg::F_GET_SEALS) {
        Ok(bits) => Ok(SealFlag::from_bits_retain(bits).contains(SEALS)),
        Err(Errno::EINVAL) => Ok(false),
        Err(e) => Err(failed("fcntl F_GET_SEALS on /proc/self/exe", e)),
    }
}

/// What protects the image a process runs from (see [`protection`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// The binary lies on a read-only mount: berth's own detached read-only bind of
    /// itself, or a read-only mount it was installed on.
    ReadOnlyMount,
    /// A memfd copy carrying every seal against change.
    SealedCopy,
}

/// The protection of `exe`, an open `/proc/self/exe`, if any.
fn protection_of(exe: &File) -> Result<Option<Protection>> {
    if is_sealed(exe)? {
        return Ok(Some(Protection::SealedCopy));
    }
    let fs = fstatvfs(exe).map_err(|e| failed("fstatvfs /proc/self/exe", e))?;
    Ok(fs
        .flags()
        .contains(FsFlags::ST_RDONLY)
        .then_some(Protection::ReadOnlyMount))
}

/// What protects the image this process runs from: a write-open of its
/// `/proc/self/exe` fails whoever tries (`EROFS`, or `EPERM` for the seals); `None`
/// if nothing does.
pub fn protection() -> Result<Option<Protection>> {
    protection_of(&open_exe()?)
}

/// Whether `/proc/self/exe` names an image of berth's own re-execution: the root of
/// a dissolved detached mount (the kernel shows `/`) or a memfd (`/memfd:...`). Read
/// without a marker in the environment: the loop guard and the process name use it.
fn anonymous_image() -> bool {
    std::fs::read_link("/proc/self/exe").is_ok_and(|l| {
        let l = l.as_os_str().as_bytes();
        l == b"/" || l.starts_with(b"/memfd:")
    })
}

/// After a re-execution through an fd the kernel may name the process after the
/// fd's number (`execveat(AT_EMPTY_PATH)` on kernels before 6.14): the name goes back
/// to the basename of argv[0], so `ps` and `pgrep berth` find it. Best effort.
fn restore_name() {
    let Some(arg0) = std::env::args_os().next() else {
        return;
    };
    let arg0 = arg0.as_bytes();
    let base = arg0.rsplit(|&b| b == b'/').next().unwrap_or(arg0);
    let Ok(name) = CString::new(base) else {
        return;
    };
    // SAFETY: PR_SET_NAME reads a NUL-terminated string (at most 16 bytes with the
    // NUL, the kernel truncates) from a CString that outlives the call.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr(), 0, 0, 0) };
}

/// open_tree(2) flags (linux/mount.h).
const OPEN_TREE_CLONE: libc::c_uint = 1;
const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;
/// mount_setattr(2) attribute (linux/mount.h).
const MOUNT_ATTR_RDONLY: u64 = 0x1;

/// `struct mount_attr` of linux/mount.h.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// A detached, read-only bind of the running binary (`open_tree(OPEN_TREE_CLONE)`
/// of `/proc/self/exe`, then `mount_setattr(MOUNT_ATTR_RDONLY)`), close-on-exec. It is
/// in no mount table; once the fd is closed (at the exec) the anonymous tree is
/// dissolved, and no one can remount it read-write. The failed step on error.
fn read_only_bind() -> std::result::Result<OwnedFd, (&'static str, Errno)> {
    // SAFETY: the path is a static NUL-terminated string; the kernel returns a new fd
    // or -1 and touches no memory of ours otherwise.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c"/proc/self/exe".as_ptr(),
            OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC,
        )
    };
    let fd = Errno::result(fd).map_err(|e| ("open_tree /proc/self/exe", e))?;
    // SAFETY: a fresh fd returned by open_tree, owned by nobody else.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: mount_setattr reads `size` bytes of `attr`, a live repr(C) struct
    // matching the kernel's struct mount_attr; the path is a static empty C string.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            std::os::fd::AsRawFd::as_raw_fd(&tree),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(rc).map_err(|e| ("mount_setattr MOUNT_ATTR_RDONLY", e))?;
    Ok(tree)
}

/// A memfd that may be sealed and executed.
fn memfd() -> Result<OwnedFd> {
    let flags = MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING;
    // MFD_EXEC (Linux 6.3): executable whatever vm.memfd_noexec asks of memfds made
    // without it. Older kernels refuse the flag, and their memfds are executable.
    let exec = MFdFlags::from_bits_retain(libc::MFD_EXEC);
    match memfd_create(NAME, flags | exec) {
        Err(Errno::EINVAL) => memfd_create(NAME, flags),
        r => r,
    }
    .map_err(|e| match e {
        Errno::EACCES => failed(
            "memfd_create (an executable memfd: vm.memfd_noexec = 2?)",
            e,
        ),
        e => failed("memfd_create", e),
    })
}

/// `exe` copied into a new memfd (copy_file_range or sendfile: no pass through user
/// memory), then sealed.
fn sealed_copy(mut exe: File) -> Result<OwnedFd> {
    let size = exe
        .metadata()
        .map_err(|e| io_failed("fstat /proc/self/exe", &e))?
        .len();
    let mut copy = File::from(memfd()?);
    let copied = std::io::copy(&mut exe, &mut copy)
        .map_err(|e| io_failed("copy /proc/self/exe into the memfd", &e))?;
    if copied != size {
        return Err(failed(
            "copy /proc/self/exe into the memfd (short copy)",
            Errno::EIO,
        ));
    }
    fcntl(&copy, FcntlArg::F_ADD_SEALS(SEALS)).map_err(|e| failed("seal the memfd", e))?;
    Ok(copy.into())
}

fn cstrings(items: impl Iterator<Item = Vec<u8>>, step: &'static str) -> Result<Vec<CString>> {
    items
        .map(|b| CString::new(b).map_err(|_| failed(step, Errno::EINVAL)))
        .collect()
}

/// Makes this process run from a protected image of its binary (see the
/// [module](super)): returns `Ok(())` at once if it already does ([`protection`]),
/// or if the binary lies on a read-only mount. Otherwise re-executes it with this
/// process's argv and environment (`execveat(AT_EMPTY_PATH)`) from a read-only
/// detached bind of itself or, where the kernel or the caller's privileges allow no
/// bind (`open_tree`/`mount_setattr` fail: Linux before 5.12, no CAP_SYS_ADMIN over
/// the mount namespace, as rootless), from a sealed memfd copy; it returns only on
/// failure, naming the step. Every fd that is not close-on-exec is kept across; the
/// program starts again from `main` and must make the same decision, which this
/// function then answers with `Ok(())`. A process that already runs from such an
/// image and finds it unprotected fails (`ELOOP`) rather than trying again. `why` is
/// logged (debug) before the re-execution.
pub fn run_protected(why: Exposure) -> Result<()> {
    let exe = open_exe()?;
    let anonymous = anonymous_image();
    if protection_of(&exe)?.is_some() {
        if anonymous {
            restore_name();
        }
        return Ok(());
    }
    if anonymous {
        return Err(failed(
            "already re-executed, yet /proc/self/exe is neither read-only nor sealed",
            Errno::ELOOP,
        ));
    }
    let argv = cstrings(std::env::args_os().map(OsStringExt::into_vec), "argv")?;
    let env = cstrings(
        std::env::vars_os().map(|(k, v)| {
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend(v.into_vec());
            kv
        }),
        "environment",
    )?;
    match read_only_bind() {
        Ok(bind) => {
            tracing::debug!(
                "re-executing from a protected image of the runtime binary (a read-only bind): {why}"
            );
            let Err(e) = nix::unistd::execveat(&bind, c"", &argv, &env, AtFlags::AT_EMPTY_PATH);
            tracing::debug!(
                "execveat of the read-only bind of the runtime binary: {e}; a sealed copy instead"
            );
        }
        Err((step, e)) => {
            tracing::debug!(
                "no read-only bind of the runtime binary ({step}: {e}); a sealed copy instead"
            );
        }
    }
    let copy = sealed_copy(exe)?;
    tracing::debug!(
        "re-executing from a protected image of the runtime binary (a sealed copy): {why}"
    );
    let Err(e) = nix::unistd::execveat(&copy, c"", &argv, &env, AtFlags::AT_EMPTY_PATH);
    Err(failed("execveat the sealed copy", e))
}

#[cfg(test)]
mod tests {
    use super::{
        anonymous_image, is_sealed, memfd, open_exe, protection_of, read_only_bind, sealed_copy,
        Protection,
    };

    #[test]
    fn a_copy_of_this_binary_is_sealed_and_the_binary_is_not() {
        assert!(!is_sealed(&open_exe().unwrap()).unwrap());
        let copy = sealed_copy(open_exe().unwrap()).unwrap();
        let copy = std::fs::File::from(copy);
        assert!(is_sealed(&copy).unwrap());
        let len = std::fs::metadata("/proc/self/exe").unwrap().len();
        assert_eq!(copy.metadata().unwrap().len(), len);
        // Sealed against writes: no byte can go in.
        use std::io::Write;
        assert!((&copy).write(b"x").is_err());
    }

    #[test]
    fn an_unsealed_memfd_is_not_a_copy() {
        let fd = std::fs::File::from(memfd().unwrap());
        assert!(!is_sealed(&fd).unwrap());
    }

    #[test]
    fn this_test_binary_is_no_anonymous_image_and_a_sealed_copy_is_protected() {
        assert!(!anonymous_image());
        let copy = std::fs::File::from(sealed_copy(open_exe().unwrap()).unwrap());
        assert_eq!(protection_of(&copy).unwrap(), Some(Protection::SealedCopy));
    }

    #[test]
    fn a_read_only_bind_is_read_only_and_in_no_mount_table() {
        use nix::errno::Errno;
        use nix::sys::statvfs::{fstatvfs, FsFlags};
        use std::os::unix::fs::MetadataExt;
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let bind = match read_only_bind() {
            Ok(b) => std::fs::File::from(b),
            // No bind without CAP_SYS_ADMIN (or on an old kernel): the fallback's case.
            Err((_, Errno::EPERM | Errno::ENOSYS)) => return,
            Err((step, e)) => panic!("{step}: {e}"),
        };
        assert!(fstatvfs(&bind)
            .unwrap()
            .flags()
            .contains(FsFlags::ST_RDONLY));
        assert_eq!(
            std::fs::read_to_string("/proc/self/mountinfo").unwrap(),
            mounts
        );
        let exe = std::fs::metadata("/proc/self/exe").unwrap();
        let m = bind.metadata().unwrap();
        assert_eq!((m.dev(), m.ino()), (exe.dev(), exe.ino()));
    }
}
