//! `process.terminal`: the init opens a pty pair in the container's devpts, sends the
//! master over `--console-socket` with SCM_RIGHTS (the protocol containerd and conmon
//! speak: one message whose payload is the pty's name and whose control data carries
//! the fd), and makes the slave its controlling terminal and stdio.

use crate::error::{Error, Result};
use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

/// In the parent: connects to the console socket early, so a bad path fails `create`
/// before anything is set up.
pub(crate) fn connect(path: &Path) -> Result<OwnedFd> {
    let s = UnixStream::connect(path).map_err(|e| Error::io("connect console socket", path, e))?;
    Ok(OwnedFd::from(s))
}

/// The pty's slave, opened from the master with TIOCGPTPEER (Linux 4.13): no path is
/// resolved, so nothing in the container's /dev can swap the slave for another file
/// (CVE-2025-52565). Older kernels: by name.
fn open_peer(master: &nix::pty::PtyMaster, name: &str) -> Result<OwnedFd> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER on a pty master fd we own returns a new fd or -1.
    let fd = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) };
    if fd >= 0 {
        // SAFETY: a new fd from the kernel, owned by nobody else.
        return Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) });
    }
    match nix::Error::last() {
        nix::Error::ENOTTY | nix::Error::EINVAL => nix::fcntl::open(
            name,
            OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| Error::sys("open", name, e)),
        e => Err(Error::sys("ioctl TIOCGPTPEER", name, e)),
    }
}

/// In the init, inside the new root (after pivot_root, /dev/ptmx is the container's).
/// Returns the slave's path (/dev/pts/N) and the slave itself (close-on-exec), for the
/// /dev/console bind.
pub(crate) fn setup(socket: &OwnedFd) -> Result<(std::ffi::CString, OwnedFd)> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(|e| Error::sys("open", "/dev/ptmx", e))?;
    grantpt(&master).map_err(|e| Error::sys("grantpt", "/dev/ptmx", e))?;
    unlockpt(&master).map_err(|e| Error::sys("unlockpt", "/dev/ptmx", e))?;
    let name = ptsname_r(&master).map_err(|e| Error::sys("ptsname", "/dev/ptmx", e))?;
    let slave = open_peer(&master, &name)?;
    let fds = [master.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(name.as_bytes())];
    sendmsg::<()>(socket.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
        .map_err(|e| Error::sys("sendmsg", "console socket", e))?;
    drop(master);
    for target in 0..=2 {
        // SAFETY: dup2 onto the standard descriptors; `slave` stays open until the end.
        if unsafe { libc::dup2(slave.as_raw_fd(), target) } < 0 {
            return Err(Error::sys(
                "dup2",
                format!("{name} onto fd {target}"),
                nix::Error::last(),
            ));
        }
    }
    // SAFETY: TIOCSCTTY with argument 0 on a terminal fd; we are a session leader.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
        return Err(Error::sys("ioctl TIOCSCTTY", &name, nix::Error::last()));
    }
    let name = std::ffi::CString::new(name)
        .map_err(|_| Error::Init("pty name contains a NUL byte".into()))?;
    Ok((name, slave))
}
