//! A process's standard streams as containerd names them: fifo paths (what `ctr` and
//! the CRI plugin create), `file://` paths (`ctr run --log-uri`), or nothing.
//!
//! Output fifos are handed to the process itself (no copy through the shim): the
//! reader containerd opened sees end of file when the container's last writer is gone.
//! stdin goes through a pipe that a thread fills from the fifo, so that CloseIO can
//! end it whatever containerd does with its side. With a terminal, threads copy
//! between the pty master and the fifos.

use nix::fcntl::{fcntl, open, FcntlArg, OFlag};
use nix::sys::stat::Mode;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long an output fifo may lack its reader before the open fails: containerd
/// opens its end before it asks for the process, so this is only a safety net.
const FIFO_READER_WAIT: Duration = Duration::from_secs(5);

/// A process's stdin/stdout/stderr as containerd gave them, and its terminal flag.
#[derive(Debug, Clone, Default)]
pub struct IoPaths {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// /dev/null, opened with `flags`.
pub fn null(flags: OFlag) -> Result<OwnedFd, String> {
    open("/dev/null", flags | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| format!("open /dev/null: {e}"))
}

/// Opens an output stream: a fifo (waiting a bounded time for its reader), a
/// `file://` path (appended to, created with its directory), or /dev/null for "".
pub fn open_output(uri: &str) -> Result<OwnedFd, String> {
    if uri.is_empty() {
        return null(OFlag::O_WRONLY);
    }
    if let Some(path) = uri.strip_prefix("file://") {
        if let Some(dir) = Path::new(path).parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        }
        let f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| format!("open {path}: {e}"))?;
        return Ok(f.into());
    }
    if let Some(scheme) = uri.split_once("://").map(|(s, _)| s) {
        if scheme != "fifo" {
            return Err(format!(
                "stdio {uri}: the {scheme}:// scheme is not supported"
            ));
        }
    }
    let path = uri.strip_prefix("fifo://").unwrap_or(uri);
    // O_NONBLOCK: an open for writing fails (ENXIO) instead of hanging while no
    // reader is there.
    let deadline = Instant::now() + FIFO_READER_WAIT;
    let fd = loop {
        match open(
            path,
            OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => break fd,
            Err(nix::Error::ENXIO) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => return Err(format!("open fifo {path}: {e}")),
        }
    };
    // The process expects blocking writes.
    fcntl(&fd, FcntlArg::F_SETFL(OFlag::O_WRONLY)).map_err(|e| format!("fcntl {path}: {e}"))?;
    Ok(fd)
}

/// Where stdin bytes go: the pipe to the process, or the pty master. `close` (CloseIO)
/// drops it, so the process reads end of file (pipe).
#[derive(Clone, Default)]
pub struct StdinSink(Arc<Mutex<Option<File>>>);

impl StdinSink {
    /// Ends the stream: the process sees end of file once it has read what was sent.
    pub fn close(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

/// Starts copying the stdin fifo at `path` into `target`; the copy ends at the fifo's
/// end of file (containerd closed its side, or never had one), then closes `target`.
///
/// The fifo is opened here, without blocking: a writer containerd has pending is
/// released by it and counts from then on, so a read finds either data, nothing yet
/// (EAGAIN: wait), or end of file (no writer: `ctr` closes a stdin of /dev/null
/// before the process exists, and a blocking open would then wait for ever).
pub fn relay_stdin(path: &str, target: File) -> Result<StdinSink, String> {
    let fd = open(
        path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("open stdin fifo {path}: {e}"))?;
    let mut fifo = File::from(fd);
    let sink = StdinSink(Arc::new(Mutex::new(Some(target))));
    let s = sink.clone();
    spawn("stdin", move || {
        let mut buf = [0u8; 32 * 1024];
        loop {
            let n = match fifo.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let mut p = libc::pollfd {
                        fd: fifo.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: poll on one pollfd that lives across the call.
                    unsafe { libc::poll(&mut p, 1, -1) };
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let mut guard = s.0.lock().unwrap_or_else(|p| p.into_inner());
            let Some(t) = guard.as_mut() else { break };
            if t.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        s.close();
    });
    Ok(sink)
}

/// A pipe for a process's stdin: (the process's read end, our write end).
pub fn stdin_pipe() -> Result<(OwnedFd, File), String> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    Ok((r, File::from(w)))
}

/// Copies the pty master's output to `out` until the terminal is gone (EIO once no
/// process holds the slave); the receiver gets a message when the copy has ended.
pub fn relay_pty_output(master: File, mut out: File) -> Receiver<()> {
    let (tx, rx) = channel();
    spawn("pty-out", move || {
        let mut master = master;
        let mut buf = [0u8; 32 * 1024];
        loop {
            match master.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        let _ = tx.send(());
    });
    rx
}

/// Sets the window size of the terminal whose master is `master`.
pub fn resize(master: &OwnedFd, width: u32, height: u32) -> Result<(), String> {
    let ws = libc::winsize {
        ws_row: height.min(u16::MAX as u32) as u16,
        ws_col: width.min(u16::MAX as u32) as u16,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize that lives across the call, on an fd we own.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) } != 0 {
        return Err(format!("resize pty: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) {
    if let Err(e) = std::thread::Builder::new().name(name.into()).spawn(f) {
        log::error!("spawn {name} thread: {e}");
    }
}
