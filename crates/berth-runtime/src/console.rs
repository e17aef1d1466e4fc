//! `process.terminal`: the init opens a pty pair in the container's devpts, sends the
//! master over `--console-socket` with SCM_RIGHTS (the protocol containerd and conmon
//! speak: one message whose payload is the pty's name and whose control data carries
//! the fd), and makes the slave its controlling terminal and stdio.
//!
//! An embedder may have the master handed back in-process instead
//! ([`Console::InProcess`]): the library makes a socketpair, gives one end to the
//! process as its "console socket" and receives the master from the other end, so the
//! child side is the same for both.
//!
//! Before the master leaves, the pty gets `process.consoleSize`, and the slave is
//! given to the process's user (its group stays the one devpts chose, the mount's
//! `gid=`, usually tty), as runc's fixStdioPermissions does, so a process that is not
//! root can reopen and control its terminal.

use crate::error::{Error, Result};
use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// Where the pty master of a process with `process.terminal` goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Console {
    /// runc's `--console-socket`: the master is sent to this AF_UNIX socket, with the
    /// pty's name as the payload (the protocol containerd's runc shim and conmon speak).
    Socket(PathBuf),
    /// The master is handed back to the caller in-process:
    /// [`crate::Container::take_pty_master`] after `create`,
    /// [`crate::ExecProcess::take_pty_master`] after `exec`.
    InProcess,
}

/// The two ends of an in-process hand-off: (the process's end, the caller's end).
pub(crate) fn in_process_pair() -> Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| Error::sys("socketpair", "console hand-off", e))?;
    Ok((a, b))
}

/// The console end for a process (`terminal`) and the caller's end for an in-process
/// hand-off; the errors name runc's flag, as the CLI reports them.
pub(crate) fn plan(
    console: Option<&Console>,
    terminal: bool,
) -> Result<(Option<OwnedFd>, Option<OwnedFd>)> {
    match (console, terminal) {
        (Some(Console::Socket(path)), true) => Ok((Some(connect(path)?), None)),
        (Some(Console::InProcess), true) => {
            let (theirs, ours) = in_process_pair()?;
            Ok((Some(theirs), Some(ours)))
        }
        (None, true) => Err(Error::Config(
            "process.terminal is true but no --console-socket was given".into(),
        )),
        (Some(_), false) => Err(Error::Config(
            "--console-socket was given but process.terminal is false".into(),
        )),
        (None, false) => Ok((None, None)),
    }
}

/// Receives the pty master from the caller's end of an in-process hand-off. Called
/// once the process has reported past the point where it sends the master (ready at
/// create, execve at exec), so it is queued: the receive does not wait, and a missing
/// master is an error rather than a hang (the parent may still hold the other end).
pub(crate) fn recv_master(ours: &OwnedFd) -> Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned};
    use std::os::fd::FromRawFd;
    let mut name = [0u8; 128];
    let mut iov = [std::io::IoSliceMut::new(&mut name)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        ours.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_DONTWAIT,
    )
    .map_err(|e| match e {
        nix::Error::EAGAIN => Error::Init("the process sent no pty master".into()),
        e => Error::sys("recvmsg", "console hand-off", e),
    })?;
    let mut fds = Vec::new();
    for c in msg
        .cmsgs()
        .map_err(|e| Error::sys("recvmsg", "console hand-off", e))?
    {
        if let ControlMessageOwned::ScmRights(list) = c {
            fds.extend(list);
        }
    }
    // SAFETY: each fd was just received and is owned by nobody else.
    let mut owned = fds
        .into_iter()
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
    owned
        .next()
        .ok_or_else(|| Error::Init("the process sent no pty master".into()))
}

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

/// Gives the pty slave to `uid` (in the container's user namespace), keeping its
/// group. As runc, a uid the namespace does not map (EINVAL), an owner this process
/// may not change (EPERM) or a read-only devpts (EROFS) leave the slave as it is.
fn chown_slave(slave: &OwnedFd, uid: u32, name: &str) -> Result<()> {
    let st = nix::sys::stat::fstat(slave).map_err(|e| Error::sys("fstat", name, e))?;
    if st.st_uid == uid {
        return Ok(());
    }
    match nix::unistd::fchown(slave, Some(nix::unistd::Uid::from_raw(uid)), None) {
        Ok(()) | Err(nix::Error::EINVAL | nix::Error::EPERM | nix::Error::EROFS) => Ok(()),
        Err(e) => Err(Error::sys("fchown", format!("{name} to uid {uid}"), e)),
    }
}

/// In the init (inside the new root: after pivot_root, /dev/ptmx is the container's)
/// or an exec'd process: a pty of `size` (rows, columns) whose slave belongs to
/// `uid`; with `as_written`, output is not translated (ONLCR off), for a caller that
/// relays it (runc clears it for its own foreground terminal). Returns the slave's
/// path (/dev/pts/N) and the slave itself (close-on-exec), for the /dev/console bind.
pub(crate) fn setup(
    socket: &OwnedFd,
    size: Option<(u16, u16)>,
    uid: u32,
    as_written: bool,
) -> Result<(std::ffi::CString, OwnedFd)> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(|e| Error::sys("open", "/dev/ptmx", e))?;
    grantpt(&master).map_err(|e| Error::sys("grantpt", "/dev/ptmx", e))?;
    unlockpt(&master).map_err(|e| Error::sys("unlockpt", "/dev/ptmx", e))?;
    let name = ptsname_r(&master).map_err(|e| Error::sys("ptsname", "/dev/ptmx", e))?;
    if let Some((rows, cols)) = size {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize struct, which lives across the call.
        if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
            return Err(Error::sys(
                "ioctl TIOCSWINSZ",
                format!("{name} to {cols}x{rows}"),
                nix::Error::last(),
            ));
        }
    }
    if as_written {
        use nix::sys::termios::{tcgetattr, tcsetattr, OutputFlags, SetArg};
        let mut t = tcgetattr(&master).map_err(|e| Error::sys("tcgetattr", &name, e))?;
        t.output_flags.remove(OutputFlags::ONLCR);
        tcsetattr(&master, SetArg::TCSANOW, &t).map_err(|e| Error::sys("tcsetattr", &name, e))?;
    }
    let slave = open_peer(&master, &name)?;
    chown_slave(&slave, uid, &name)?;
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
