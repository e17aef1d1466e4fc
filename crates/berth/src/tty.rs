//! The terminal bridge of `berth run` in the foreground when the container wants a
//! terminal and no `--console-socket` was given: berth is its own console socket
//! listener, receives the pty master, puts the caller's terminal (stdio, or the
//! controlling terminal when stdio is redirected) in raw mode, copies its size (unless
//! the process asks for a size of its own, `process.consoleSize`), and copies bytes
//! both ways until the container's side closes (as runc does).

use anyhow::{anyhow, Context};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, OutputFlags, SetArg, Termios};
use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

/// Whether `<bundle>/config.json` asks for a terminal.
pub fn wants_terminal(bundle: &Path) -> bool {
    config_pointer(bundle, "/process/terminal")
        .and_then(|t| t.as_bool())
        .unwrap_or(false)
}

/// Whether `<bundle>/config.json` gives the terminal a size (`process.consoleSize`).
pub fn has_console_size(bundle: &Path) -> bool {
    config_pointer(bundle, "/process/consoleSize").is_some_and(|v| v.is_object())
}

fn config_pointer(bundle: &Path, pointer: &str) -> Option<serde_json::Value> {
    let data = std::fs::read(bundle.join("config.json")).ok()?;
    serde_json::from_slice::<serde_json::Value>(&data)
        .ok()?
        .pointer(pointer)
        .cloned()
}

/// A private console socket waiting for the pty master.
pub struct Listener {
    dir: PathBuf,
    socket: PathBuf,
    accept: Option<JoinHandle<anyhow::Result<OwnedFd>>>,
}

impl Listener {
    /// `keep_size`: the process asks for a size of its own (`process.consoleSize`),
    /// which the pty already has; the caller's is not copied over it.
    pub fn new(id: &str, keep_size: bool) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("berth-console-{id}-{}", std::process::id()));
        std::fs::create_dir(&dir).with_context(|| format!("create {}", dir.display()))?;
        let socket = dir.join("console.sock");
        let listener = UnixListener::bind(&socket)
            .with_context(|| format!("listen on {}", socket.display()))?;
        let accept = std::thread::spawn(move || receive_master(&listener, keep_size));
        Ok(Listener {
            dir,
            socket,
            accept: Some(accept),
        })
    }

    pub fn path(&self) -> &Path {
        &self.socket
    }

    /// After create: the master the init sent.
    pub fn master(&mut self) -> anyhow::Result<OwnedFd> {
        let handle = self
            .accept
            .take()
            .ok_or_else(|| anyhow!("console master already taken"))?;
        handle
            .join()
            .map_err(|_| anyhow!("console listener thread panicked"))?
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn receive_master(listener: &UnixListener, keep_size: bool) -> anyhow::Result<OwnedFd> {
    let (conn, _) = listener.accept().context("accept on the console socket")?;
    let mut name = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut name)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .context("receive the pty master")?;
    for c in msg.cmsgs().context("read the console message")? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: a descriptor just received, owned by nobody else.
                let master = unsafe { OwnedFd::from_raw_fd(*fd) };
                prepare_master(&master, keep_size)?;
                return Ok(master);
            }
        }
    }
    Err(anyhow!("the console message carried no descriptor"))
}

/// Restores the caller's terminal settings when dropped.
pub struct Bridge {
    /// The caller's terminal and its settings before raw mode.
    saved: Option<(OwnedFd, Termios)>,
    output: Option<JoinHandle<()>>,
}

/// The caller's terminal, as runc finds it: stderr, stdout or stdin if one is a
/// terminal, else the controlling terminal (`/dev/tty`) when stdio is all redirected.
fn host_console() -> Option<OwnedFd> {
    for fd in [
        std::io::stderr().as_fd(),
        std::io::stdout().as_fd(),
        std::io::stdin().as_fd(),
    ] {
        if tcgetattr(fd).is_ok() {
            return fd.try_clone_to_owned().ok();
        }
    }
    std::fs::File::open("/dev/tty").ok().map(OwnedFd::from)
}

/// Done as soon as the master arrives (the process may already be about to run):
/// the container's output passes on as written (ONLCR off, as runc sets it), and the
/// pty takes the caller's terminal size unless it keeps its own.
fn prepare_master(master: &OwnedFd, keep_size: bool) -> anyhow::Result<()> {
    if let Ok(mut t) = tcgetattr(master.as_fd()) {
        t.output_flags.remove(OutputFlags::ONLCR);
        tcsetattr(master.as_fd(), SetArg::TCSANOW, &t)
            .context("clear ONLCR on the container's terminal")?;
    }
    if let Some(host) = host_console().filter(|_| !keep_size) {
        copy_window_size(host.as_raw_fd(), master.as_raw_fd());
    }
    Ok(())
}

impl Bridge {
    /// Starts copying stdin → master and master → stdout; the caller's terminal, if
    /// any, goes raw meanwhile.
    pub fn start(master: OwnedFd) -> anyhow::Result<Self> {
        let mut saved = None;
        if let Some(host) = host_console() {
            if let Ok(t) = tcgetattr(host.as_fd()) {
                let mut raw = t.clone();
                cfmakeraw(&mut raw);
                tcsetattr(host.as_fd(), SetArg::TCSANOW, &raw)
                    .context("set the terminal to raw mode")?;
                saved = Some((host, t));
            }
        }
        let mut to_container =
            std::fs::File::from(master.try_clone().context("dup the pty master")?);
        std::thread::spawn(move || {
            let mut input = std::io::stdin().lock();
            let mut buf = [0u8; 4096];
            while let Ok(n) = input.read(&mut buf) {
                if n == 0 || to_container.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
        let mut from_container = std::fs::File::from(master);
        let output = std::thread::spawn(move || {
            let mut out = std::io::stdout().lock();
            let mut buf = [0u8; 4096];
            // EIO once the last slave fd is closed: the container is done with it.
            while let Ok(n) = from_container.read(&mut buf) {
                if n == 0 || out.write_all(&buf[..n]).and_then(|_| out.flush()).is_err() {
                    break;
                }
            }
        });
        Ok(Bridge {
            saved,
            output: Some(output),
        })
    }

    /// Waits until the container's output is drained.
    pub fn finish(mut self) {
        if let Some(h) = self.output.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some((host, t)) = &self.saved {
            let _ = tcsetattr(host.as_fd(), SetArg::TCSANOW, t);
        }
    }
}

/// The caller's terminal size as (rows, columns), if it has a terminal.
pub fn host_size() -> Option<(u16, u16)> {
    let host = host_console()?;
    // SAFETY: winsize is plain integers; all-zero is a valid value.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize struct.
    if unsafe { libc::ioctl(host.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) } != 0 {
        return None;
    }
    Some((ws.ws_row, ws.ws_col))
}

fn copy_window_size(from: RawFd, to: RawFd) {
    // SAFETY: winsize is plain integers; all-zero is a valid value.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ read and write one winsize struct.
    unsafe {
        if libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(to, libc::TIOCSWINSZ, &ws);
        }
    }
}
