//! A seccomp agent run by the driver, for SCMP_ACT_NOTIFY profiles: it listens at the
//! profile's listenerPath (a file or an abstract name), takes the notify fd and the
//! container process state from each connection, and answers the container's
//! notified syscalls as runc's example agent does: `mkdir P` makes `P-<metadata>`
//! instead (in the container's root), the chmod family fails with ENOMEDIUM, and every
//! other call goes on untouched. `stop` closes every notify fd, as a killed agent would:
//! the kernel then fails the notified calls with ENOSYS.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

use crate::ctx::Ctx;
use crate::verdict::Verdict;

/// What one connection brought: the JSON payload and how many fds came with it.
#[derive(Debug, Clone)]
pub struct Received {
    pub payload: String,
    pub fds: usize,
}

/// Shared between the agent's threads.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    /// Stop by itself after answering this many notifications (0: never).
    stop_after: AtomicUsize,
    received: Mutex<Vec<Received>>,
    /// Names of the syscalls answered, in order (`mkdir`, `chmod`, `continue:59`, ...).
    answered: Mutex<Vec<String>>,
    /// What went wrong inside the agent (never silently dropped: scenarios report it).
    errors: Mutex<Vec<String>>,
    /// An `execve` of this path is answered (go on) only after `hold_for`: the
    /// caller waits in the syscall meanwhile, still the image that called it.
    hold_path: Mutex<Option<String>>,
    hold_for: Mutex<Duration>,
}

impl Shared {
    fn error(&self, e: String) {
        if let Ok(mut v) = self.errors.lock() {
            v.push(e);
        }
    }
}

pub struct Agent {
    /// The value for linux.seccomp.listenerPath.
    pub listener_path: String,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const NR_MKDIR: i32 = 83;
const NR_EXECVE: i32 = 59;
const NR_CHMOD: i32 = 90;
const NR_FCHMOD: i32 = 91;
const NR_MKDIRAT: i32 = 258;
const NR_FCHMODAT: i32 = 268;
const NR_FCHMODAT2: i32 = 452;

impl Agent {
    /// An agent listening on a socket file in a scratch directory of the scenario.
    pub fn start(c: &mut Ctx) -> Result<Agent, Verdict> {
        // A short name: a socket path must fit in sun_path (108 bytes), and ids carry
        // the scenario's long name.
        let id = c.new_id();
        let n = id.rsplit('-').next().unwrap_or("0");
        let dir = c.suite.bundles.join(format!("agent-{n}"));
        c.own_dir(&dir);
        std::fs::create_dir_all(&dir)?;
        let sock = dir.join("agent.sock");
        let listener = UnixListener::bind(&sock)?;
        Ok(Agent::serve(listener, sock.display().to_string()))
    }

    /// An agent listening on the abstract socket `@<name>` (runc dials a listenerPath
    /// starting with `@` as an abstract address, as Go does).
    pub fn start_abstract(name: &str) -> Result<Agent, Verdict> {
        let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
        let listener = UnixListener::bind_addr(&addr)?;
        Ok(Agent::serve(listener, format!("@{name}")))
    }

    fn serve(listener: UnixListener, listener_path: String) -> Agent {
        let shared = Arc::new(Shared::default());
        let s = Arc::clone(&shared);
        let t = std::thread::spawn(move || accept_loop(listener, s));
        Agent {
            listener_path,
            shared,
            threads: vec![t],
        }
    }

    /// Holds every `execve(path)` for `d` before letting it go on.
    pub fn hold_execve(&self, path: &str, d: Duration) {
        if let Ok(mut p) = self.shared.hold_path.lock() {
            *p = Some(path.to_string());
        }
        if let Ok(mut h) = self.shared.hold_for.lock() {
            *h = d;
        }
    }

    /// Makes the agent go away by itself once it has answered `n` notifications, as
    /// if it were killed then.
    pub fn stop_after(&self, n: usize) {
        self.shared.stop_after.store(n, Ordering::SeqCst);
    }

    /// Ends the agent: no more connections, every notify fd closed (the filter's
    /// pending and later notifications then fail with ENOSYS).
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared
            .received
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default()
    }

    pub fn answered(&self) -> Vec<String> {
        self.shared
            .answered
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default()
    }

    /// Fails if anything went wrong inside the agent.
    pub fn check_errors(&self) -> Result<(), Verdict> {
        let errs = self
            .shared
            .errors
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default();
        if errs.is_empty() {
            Ok(())
        } else {
            Err(Verdict::Fail(format!("seccomp agent: {}", errs.join("; "))))
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(listener: UnixListener, shared: Arc<Shared>) {
    if let Err(e) = listener.set_nonblocking(true) {
        shared.error(format!("listener nonblocking: {e}"));
        return;
    }
    let mut handlers = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((conn, _)) => match take_notify_fd(&conn, &shared) {
                Ok((fd, metadata)) => {
                    let s = Arc::clone(&shared);
                    handlers.push(std::thread::spawn(move || answer_loop(fd, &metadata, &s)));
                }
                Err(e) => shared.error(e),
            },
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => {
                shared.error(format!("accept: {e}"));
                break;
            }
        }
    }
    for h in handlers {
        let _ = h.join();
    }
}

/// Reads one message (the state JSON with SCM_RIGHTS), records it, and returns the fd
/// named `seccompFd` in the payload's `fds` (the others are closed) and the metadata.
fn take_notify_fd(conn: &UnixStream, shared: &Shared) -> Result<(OwnedFd, String), String> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    conn.set_nonblocking(false)
        .and_then(|_| conn.set_read_timeout(Some(Duration::from_secs(10))))
        .map_err(|e| format!("connection setup: {e}"))?;
    let mut payload = vec![0u8; 64 * 1024];
    let mut iov = [IoSliceMut::new(&mut payload)];
    let mut space = nix::cmsg_space!([RawFd; 8]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| format!("recvmsg: {e}"))?;
    let n = msg.bytes;
    let mut fds: Vec<OwnedFd> = Vec::new();
    for c in msg.cmsgs().map_err(|e| format!("cmsgs: {e}"))? {
        if let ControlMessageOwned::ScmRights(raw) = c {
            // SAFETY: each fd was just installed for us by the kernel; nothing else owns it.
            fds.extend(raw.into_iter().map(|f| unsafe { OwnedFd::from_raw_fd(f) }));
        }
    }
    let text = String::from_utf8_lossy(&payload[..n]).into_owned();
    if let Ok(mut v) = shared.received.lock() {
        v.push(Received {
            payload: text.clone(),
            fds: fds.len(),
        });
    }
    let doc: Value =
        serde_json::from_str(&text).map_err(|e| format!("payload is not JSON ({e}): {text}"))?;
    let names = doc["fds"].as_array().cloned().unwrap_or_default();
    let idx = names
        .iter()
        .position(|v| v == "seccompFd")
        .ok_or_else(|| format!("no seccompFd in the payload's fds: {text}"))?;
    if idx >= fds.len() {
        return Err(format!(
            "seccompFd is fds[{idx}] but {} fds came with the payload",
            fds.len()
        ));
    }
    let fd = fds.swap_remove(idx);
    let metadata = doc["metadata"].as_str().unwrap_or("").to_string();
    Ok((fd, metadata))
}

/// Answers notifications until stopped or until every filter user is gone (POLLHUP).
fn answer_loop(fd: OwnedFd, metadata: &str, shared: &Shared) {
    while !shared.stop.load(Ordering::SeqCst) {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, 50 ms bound.
        let n = unsafe { libc::poll(&mut pfd, 1, 50) };
        if n <= 0 {
            continue;
        }
        if pfd.revents & libc::POLLIN == 0 {
            // POLLHUP: no task uses the filter any more.
            return;
        }
        // SAFETY: seccomp_notif is plain data; the kernel wants it zeroed on input.
        let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: the ioctl fills `req`, a live struct of the right type.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) } != 0 {
            // ENOENT: the caller went away (a signal) before we read it.
            continue;
        }
        hold(&req, shared);
        let (name, mut resp) = decide(&fd, &req, metadata);
        let count = match shared.answered.lock() {
            Ok(mut v) => {
                v.push(name);
                v.len()
            }
            Err(_) => 0,
        };
        // SAFETY: the ioctl reads `resp`, a live struct of the right type.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ENOENT) {
                shared.error(format!("NOTIF_SEND: {e}"));
            }
        }
        let limit = shared.stop_after.load(Ordering::SeqCst);
        if limit > 0 && count >= limit {
            shared.stop.store(true, Ordering::SeqCst);
        }
    }
}

/// Sleeps while an `execve` of the held path waits (see `Agent::hold_execve`).
fn hold(req: &libc::seccomp_notif, shared: &Shared) {
    let Some(path) = shared.hold_path.lock().ok().and_then(|p| p.clone()) else {
        return;
    };
    if req.data.arch != AUDIT_ARCH_X86_64 || req.data.nr != NR_EXECVE {
        return;
    }
    if read_string(req.pid, req.data.args[0]).is_ok_and(|p| p == path) {
        let d = shared.hold_for.lock().map(|d| *d).unwrap_or_default();
        std::thread::sleep(d);
    }
}

fn errno_resp(id: u64, errno: i32) -> libc::seccomp_notif_resp {
    libc::seccomp_notif_resp {
        id,
        val: 0,
        error: -errno,
        flags: 0,
    }
}

/// The answer to one notification: its name for the log and the response.
fn decide(
    fd: &OwnedFd,
    req: &libc::seccomp_notif,
    metadata: &str,
) -> (String, libc::seccomp_notif_resp) {
    let nr = req.data.nr;
    let a = req.data.args;
    let id = req.id;
    let go_on = libc::seccomp_notif_resp {
        id,
        val: 0,
        error: 0,
        flags: libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
    };
    if req.data.arch != AUDIT_ARCH_X86_64 {
        return (format!("continue:{nr}"), go_on);
    }
    match nr {
        NR_CHMOD | NR_FCHMOD | NR_FCHMODAT | NR_FCHMODAT2 => {
            ("chmod".into(), errno_resp(id, libc::ENOMEDIUM))
        }
        NR_MKDIR | NR_MKDIRAT => {
            let (dirfd, path, mode) = if nr == NR_MKDIR {
                (libc::AT_FDCWD, a[0], a[1])
            } else {
                (a[0] as i32, a[1], a[2])
            };
            let res = read_string(req.pid, path)
                .and_then(|p| {
                    // The path was read from the caller's memory: still the same call?
                    // SAFETY: ID_VALID reads a u64 we own.
                    let mut idv = id;
                    if unsafe {
                        libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &mut idv)
                    } != 0
                    {
                        return Err(libc::ENOENT);
                    }
                    Ok(p)
                })
                .and_then(|p| mkdir_for(req.pid, dirfd, &p, metadata, mode as u32));
            match res {
                Ok(()) => (
                    "mkdir".into(),
                    libc::seccomp_notif_resp {
                        id,
                        val: 0,
                        error: 0,
                        flags: 0,
                    },
                ),
                Err(e) => (format!("mkdir-failed:{e}"), errno_resp(id, e)),
            }
        }
        other => (format!("continue:{other}"), go_on),
    }
}

/// A NUL-terminated string at `addr` in process `pid`'s memory.
fn read_string(pid: u32, addr: u64) -> Result<String, i32> {
    use std::os::unix::fs::FileExt;
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).map_err(|_| libc::EFAULT)?;
    let mut buf = vec![0u8; 4096];
    let n = mem.read_at(&mut buf, addr).map_err(|_| libc::EFAULT)?;
    let end = buf[..n]
        .iter()
        .position(|&b| b == 0)
        .ok_or(libc::ENAMETOOLONG)?;
    Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// `mkdir <path>-<metadata>` as process `pid` would see it (relative to its root, its
/// cwd or `dirfd`), resolved with RESOLVE_IN_ROOT from there: a symlink in the
/// container can never lead the driver out of it.
fn mkdir_for(pid: u32, dirfd: i32, path: &str, metadata: &str, mode: u32) -> Result<(), i32> {
    // runc's agent takes only the last element of the metadata, so it cannot name
    // another directory.
    let suffix = metadata.rsplit('/').next().unwrap_or("");
    let target = format!("{path}-{suffix}");
    let base = if target.starts_with('/') {
        format!("/proc/{pid}/root")
    } else if dirfd == libc::AT_FDCWD {
        format!("/proc/{pid}/cwd")
    } else {
        format!("/proc/{pid}/fd/{dirfd}")
    };
    let (parent, name) = match target.trim_end_matches('/').rsplit_once('/') {
        Some((p, n)) => (if p.is_empty() { "/" } else { p }, n),
        None => (".", target.as_str()),
    };
    let start = std::fs::File::open(&base).map_err(|_| libc::ESRCH)?;
    // SAFETY: open_how is plain data (all zero is a valid value).
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT;
    let cpath = std::ffi::CString::new(parent).map_err(|_| libc::EINVAL)?;
    // SAFETY: openat2 with a valid dirfd, a NUL-terminated path and an open_how of the
    // size passed; the returned fd is owned below.
    let pfd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            start.as_raw_fd(),
            cpath.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if pfd < 0 {
        return Err(last_errno());
    }
    // SAFETY: openat2 returned a new fd that nothing else owns.
    let pfd = unsafe { OwnedFd::from_raw_fd(pfd as RawFd) };
    let cname = std::ffi::CString::new(name).map_err(|_| libc::EINVAL)?;
    // SAFETY: mkdirat on an fd we own and a NUL-terminated name.
    if unsafe { libc::mkdirat(pfd.as_raw_fd(), cname.as_ptr(), mode as libc::mode_t) } != 0 {
        return Err(last_errno());
    }
    Ok(())
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}
