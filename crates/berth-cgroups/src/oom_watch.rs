//! Being told of OOM kills in a container's memory cgroup as they happen, without
//! polling: on cgroup v1 an eventfd registered through `cgroup.event_control` for
//! `memory.oom_control` (the kernel signals it on every OOM in the cgroup, and when
//! the cgroup is removed); on cgroup v2 an inotify watch on `memory.events`, which the
//! kernel rewrites (a modify event) when its `oom_kill` count goes up. A shim uses it
//! to report an OOM kill while the container keeps running, as containerd expects.

use crate::{oom_kills, CgroupState, Error, Result};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

/// A watch on a container's memory cgroup.
#[derive(Debug)]
pub struct OomWatch {
    fd: OwnedFd,
    state: CgroupState,
    /// The file the kernel signals through, for errors.
    watched: std::path::PathBuf,
}

impl OomWatch {
    /// Starts watching the memory cgroup of `state`; fails without a memory cgroup
    /// (v1 hierarchy `memory`, or a v2 directory with `memory.events`).
    pub fn new(state: &CgroupState) -> Result<Self> {
        let (key, what) = if state.driver == "v1" {
            ("memory", "memory")
        } else {
            ("", "unified")
        };
        let dir = state.paths.get(key).ok_or_else(|| {
            Error::Unsupported(format!(
                "no {what} cgroup to watch for OOM kills (driver {}, hierarchies: {})",
                state.driver,
                hierarchies(state)
            ))
        })?;
        let (fd, watched) = if key.is_empty() {
            (v2_inotify(dir)?, dir.join("memory.events"))
        } else {
            (v1_eventfd(dir)?, dir.join("memory.oom_control"))
        };
        Ok(OomWatch {
            fd,
            state: state.clone(),
            watched,
        })
    }

    /// Blocks until the kernel signals a memory event in the cgroup (true) or
    /// `timeout` passes (false). A wake-up is a hint: compare [`OomWatch::oom_kills`]
    /// with the count seen before to tell an OOM kill.
    pub fn wait(&self, timeout: Duration) -> Result<bool> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: one valid pollfd, which poll(2) only writes `revents` of.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                return Ok(false);
            }
            return Err(Error::io("poll", &self.watched, e));
        }
        if n == 0 {
            return Ok(false);
        }
        // Drain it (an eventfd counter, or queued inotify events); the fd is
        // non-blocking, so an empty read ends the loop.
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: reads into a buffer we own, of its length.
            let r = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if r <= 0 {
                break;
            }
        }
        Ok(true)
    }

    /// The kernel's count of OOM kills in the cgroup now (see [`oom_kills`]).
    pub fn oom_kills(&self) -> Option<u64> {
        oom_kills(&self.state)
    }
}

/// The hierarchies `state` has paths in, for errors ("unified" for v2's "").
fn hierarchies(state: &CgroupState) -> String {
    let mut names: Vec<&str> = state
        .paths
        .keys()
        .map(|k| if k.is_empty() { "unified" } else { k.as_str() })
        .collect();
    names.sort_unstable();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

fn cstring(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::InvalidPath {
        path: path.display().to_string(),
        reason: "contains a NUL byte".into(),
    })
}

/// An eventfd the kernel signals on each OOM in the v1 memory cgroup `dir`.
fn v1_eventfd(dir: &Path) -> Result<OwnedFd> {
    let control = dir.join("memory.oom_control");
    let file = std::fs::File::open(&control).map_err(|e| Error::io("open", &control, e))?;
    // SAFETY: eventfd(2) with flags only; the result is checked before use.
    let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if efd < 0 {
        return Err(Error::io(
            "eventfd for",
            &control,
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: a new fd that nothing else owns.
    let efd = unsafe { OwnedFd::from_raw_fd(efd) };
    // The kernel keeps its own reference to the eventfd; memory.oom_control is only
    // looked at during the write, so our fd of it may close afterwards.
    let event_control = dir.join("cgroup.event_control");
    std::fs::write(
        &event_control,
        format!("{} {}", efd.as_raw_fd(), file.as_raw_fd()),
    )
    .map_err(|e| Error::io("write", &event_control, e))?;
    Ok(efd)
}

/// An inotify fd with a modify watch on the v2 cgroup `dir`'s memory.events.
fn v2_inotify(dir: &Path) -> Result<OwnedFd> {
    let events = dir.join("memory.events");
    let path = cstring(&events)?;
    // SAFETY: inotify_init1(2) with flags only; the result is checked before use.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
    if fd < 0 {
        return Err(Error::io(
            "inotify for",
            &events,
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: a new fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: a valid inotify fd and a NUL-terminated path that outlives the call.
    let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), libc::IN_MODIFY) };
    if wd < 0 {
        return Err(Error::io(
            "inotify watch",
            &events,
            std::io::Error::last_os_error(),
        ));
    }
    Ok(fd)
}
