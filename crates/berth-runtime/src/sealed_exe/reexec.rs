//! The sealed copy: the runtime binary copied into a memfd, sealed, and executed
//! with the same argv and environment.

use super::Exposure;
use crate::error::{Error, Result};
use nix::errno::Errno;
use nix::fcntl::{fcntl, AtFlags, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};
use std::ffi::CString;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStringExt;

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

/// Whether this process runs from a sealed copy of its binary.
pub fn running_from_sealed_copy() -> Result<bool> {
    is_sealed(&open_exe()?)
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

/// Makes this process run from a sealed copy of its binary (see the
/// [module](super)): returns `Ok(())` at once if it already does; otherwise copies
/// `/proc/self/exe` into a sealed memfd and executes it with this process's argv and
/// environment (`execveat(AT_EMPTY_PATH)`), so that it returns only on failure, naming
/// the step. Every fd that is not close-on-exec is kept across; the program then
/// starts again from `main` and must make the same decision, which this function then
/// answers with `Ok(())`. `why` is logged (debug) before the re-execution.
pub fn run_from_sealed_copy(why: Exposure) -> Result<()> {
    let exe = open_exe()?;
    if is_sealed(&exe)? {
        return Ok(());
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
    let copy = sealed_copy(exe)?;
    tracing::debug!("re-executing from a sealed copy of the runtime binary: {why}");
    let Err(e) = nix::unistd::execveat(&copy, c"", &argv, &env, AtFlags::AT_EMPTY_PATH);
    Err(failed("execveat the sealed copy", e))
}

#[cfg(test)]
mod tests {
    use super::{is_sealed, memfd, open_exe, sealed_copy};

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
}
