//! The standard streams of a container process as values: the caller hands the fds
//! for stdin, stdout and stderr to `create` or `exec`, and the process gets them as
//! its 0, 1 and 2. A stream left out is inherited from the caller's own fd of the same
//! number (what the CLI wants: runc's processes get the runtime's stdio).

use crate::error::{Error, Result};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// The fds a container process gets as its standard streams.
///
/// The library does not close these: they stay open in the caller until the options
/// holding them are dropped. Drop them once `create` or `exec` has returned, so that a
/// pipe's reading end sees end-of-file when the container's side is done with it.
/// Pipes and sockets made with close-on-exec (as std and nix make them) are right:
/// only the container process gets them without it.
#[derive(Debug, Default)]
pub struct Stdio {
    /// Becomes the process's fd 0; `None` inherits the caller's fd 0.
    pub stdin: Option<OwnedFd>,
    /// Becomes the process's fd 1; `None` inherits the caller's fd 1.
    pub stdout: Option<OwnedFd>,
    /// Becomes the process's fd 2; `None` inherits the caller's fd 2.
    pub stderr: Option<OwnedFd>,
}

impl Stdio {
    /// Every stream inherited from the caller (the default).
    pub fn inherit() -> Self {
        Stdio::default()
    }

    /// Every stream on /dev/null (stdin read-only, stdout and stderr write-only).
    pub fn null() -> Result<Self> {
        let open = |flags: nix::fcntl::OFlag| {
            nix::fcntl::open(
                c"/dev/null",
                flags | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|e| Error::sys("open", "/dev/null", e))
        };
        use nix::fcntl::OFlag;
        Ok(Stdio {
            stdin: Some(open(OFlag::O_RDONLY)?),
            stdout: Some(open(OFlag::O_WRONLY)?),
            stderr: Some(open(OFlag::O_WRONLY)?),
        })
    }

    /// The raw numbers for the child (-1: inherit), read before fork.
    pub(crate) fn raw(&self) -> [RawFd; 3] {
        let n = |f: &Option<OwnedFd>| f.as_ref().map_or(-1, |f| f.as_raw_fd());
        [n(&self.stdin), n(&self.stdout), n(&self.stderr)]
    }
}

/// In a forked child (the intermediate), before anything else: puts the given fds on
/// 0, 1 and 2 (see [`install_raw`]).
pub(crate) fn install(fds: [RawFd; 3]) -> Result<()> {
    install_raw(fds).map_err(|(op, e)| Error::sys(op, "a stdio fd", e))
}

/// [`install`] with system calls only, no allocation, on failure too (the call that
/// failed and its errno): for a forked child of a threaded process. Each fd is first
/// copied above 2 so that a source already sitting on a target number (a caller whose
/// stdin was closed can get a pipe as fd 0) is not overwritten before it is used.
pub(crate) fn install_raw(fds: [RawFd; 3]) -> std::result::Result<(), (&'static str, nix::Error)> {
    let mut copies = [-1; 3];
    for (copy, &fd) in copies.iter_mut().zip(&fds) {
        if fd < 0 {
            continue;
        }
        // SAFETY: fcntl on an fd number the caller gave us; a new fd or -1.
        let c = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
        if c < 0 {
            return Err(("fcntl F_DUPFD", nix::Error::last()));
        }
        *copy = c;
    }
    for (target, &copy) in copies.iter().enumerate() {
        if copy < 0 {
            continue;
        }
        // SAFETY: dup2 onto a standard fd number; the copy is ours and closed next.
        // dup2 leaves the new fd without close-on-exec, as stdio must be.
        let r = unsafe { libc::dup2(copy, target as RawFd) };
        let e = nix::Error::last();
        // SAFETY: the copy was made above and nothing else refers to it.
        unsafe { libc::close(copy) };
        if r < 0 {
            return Err(("dup2", e));
        }
    }
    Ok(())
}
