//! Waiting for a container process without polling: a pidfd per process (the init,
//! or one started by `exec`), readable when the process has exited, and
//! `waitid(P_PIDFD)` to collect its status.
//!
//! The init and exec'd processes are children of the process that called `create` or
//! `exec` (the intermediate clones them with CLONE_PARENT), so that process, and only
//! it, can collect their status. The pidfd is opened while the child cannot have been
//! reaped yet, so it always refers to the right process, whatever happens to its pid
//! later. A process that is not our child (a container another process created) can
//! still be watched through the fd; its status cannot be collected.

use crate::container::ExitStatus;
use crate::error::{Error, Result};
use berth_cgroups::CgroupState;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, OnceLock};

/// How a process ended, as [`WaitHandle::wait`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// Its exit code or the signal that killed it.
    pub status: ExitStatus,
    /// It was killed by SIGKILL while the kernel's OOM-kill count of the container's
    /// memory cgroup went up: the OOM killer chose it (or, if a sibling in the same
    /// cgroup was chosen at the same moment while this one was killed by someone
    /// else, it looks so). False when the container has no memory cgroup or the
    /// kernel keeps no count.
    pub oom_killed: bool,
    /// How many OOM kills the container's memory cgroup saw during this process's
    /// life (from when the handle's baseline was taken to its exit), whichever
    /// process they hit.
    pub oom_kills: u64,
}

/// A container process to wait for: a pidfd plus what is needed to tell an OOM kill.
///
/// The fd (see [`AsFd`]) becomes readable when the process exits, so it can be
/// registered with an event loop, e.g. `tokio::io::unix::AsyncFd::with_interest(handle,
/// Interest::READABLE)`; after readiness, [`WaitHandle::try_wait`] collects the status
/// without blocking. [`WaitHandle::wait`] blocks the calling thread instead.
///
/// Collecting the status reaps the process, so it works only in the process that
/// called `create` or `exec` (its parent). The first [`Exit`] is kept: later calls,
/// from any thread and on any clone of the handle, return it again.
#[derive(Debug)]
pub struct WaitHandle {
    pid: i32,
    pidfd: OwnedFd,
    /// "init of container X" or "exec process of container X", for errors.
    what: String,
    /// The container's cgroup, for its OOM-kill count; None without one.
    cgroup: Option<CgroupState>,
    /// The count when the process was started (or the handle made).
    oom_before: Option<u64>,
    /// The exit once collected, shared by the handle's clones: whichever collects
    /// it, all report it.
    exit: Arc<OnceLock<Exit>>,
}

impl WaitHandle {
    /// A handle on `pid`, which must not have been reaped (a child of ours not yet
    /// waited for, or any process checked afterwards by the caller).
    pub(crate) fn open(
        pid: i32,
        what: String,
        cgroup: Option<CgroupState>,
        oom_before: Option<u64>,
    ) -> Result<Self> {
        let pidfd = pidfd_open(pid).map_err(|e| Error::sys("pidfd_open", &what, e))?;
        Ok(WaitHandle {
            pid,
            pidfd,
            what,
            cgroup,
            oom_before,
            exit: Arc::new(OnceLock::new()),
        })
    }

    /// A second handle on the same process (a duplicate of the pidfd). The exit is
    /// shared: whichever handle collects it first reaps the process, and every clone
    /// then reports the same [`Exit`].
    pub(crate) fn try_clone(&self) -> Result<Self> {
        Ok(WaitHandle {
            pid: self.pid,
            pidfd: self
                .pidfd
                .try_clone()
                .map_err(|e| Error::io("dup pidfd", &self.what, e))?,
            what: self.what.clone(),
            cgroup: self.cgroup.clone(),
            oom_before: self.oom_before,
            exit: Arc::clone(&self.exit),
        })
    }

    /// The process's pid on the host.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Blocks until the process has exited, reaps it and returns how it ended.
    /// [`Error::NotChild`] when the caller is not its parent.
    pub fn wait(&self) -> Result<Exit> {
        self.collect(true)
            .map(|e| e.expect("a blocking wait returns an exit"))
    }

    /// The exit if the process has ended (reaping it), `None` while it runs; never
    /// blocks. For an event loop, after the fd turned readable.
    pub fn try_wait(&self) -> Result<Option<Exit>> {
        self.collect(false)
    }

    fn collect(&self, block: bool) -> Result<Option<Exit>> {
        if let Some(e) = self.exit.get() {
            return Ok(Some(*e));
        }
        // Look first without reaping (WNOWAIT), so that the OOM count is read and the
        // result stored before the process disappears: a concurrent waiter then finds
        // the stored exit, never a reaped process it cannot account for.
        let mut flags = libc::WEXITED | libc::WNOWAIT;
        if !block {
            flags |= libc::WNOHANG;
        }
        let status = match waitid(&self.pidfd, flags) {
            Ok(Some(s)) => s,
            Ok(None) => return Ok(None),
            Err(nix::Error::ECHILD) => {
                return match self.exit.get() {
                    Some(e) => Ok(Some(*e)),
                    None => Err(Error::NotChild {
                        pid: self.pid,
                        what: self.what.clone(),
                    }),
                }
            }
            Err(e) => return Err(Error::sys("waitid", &self.what, e)),
        };
        let exit = *self.exit.get_or_init(|| {
            let after = self.cgroup.as_ref().and_then(berth_cgroups::oom_kills);
            let oom_kills = match (self.oom_before, after) {
                (Some(b), Some(a)) => a.saturating_sub(b),
                _ => 0,
            };
            Exit {
                status,
                oom_killed: status == ExitStatus::Signaled(libc::SIGKILL) && oom_kills > 0,
                oom_kills,
            }
        });
        // Reap only once the exit is stored (a waiter that finds the process gone
        // finds the exit); of several threads here, one reaps, the others get ECHILD.
        let _ = waitid(&self.pidfd, libc::WEXITED | libc::WNOHANG);
        Ok(Some(exit))
    }
}

impl AsFd for WaitHandle {
    /// The pidfd: readable once the process has exited.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }
}

impl AsRawFd for WaitHandle {
    fn as_raw_fd(&self) -> RawFd {
        self.pidfd.as_raw_fd()
    }
}

/// pidfd_open(2), close-on-exec (pidfds always are).
pub(crate) fn pidfd_open(pid: i32) -> nix::Result<OwnedFd> {
    // SAFETY: pidfd_open with a pid and no flags returns a new fd or -1.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if raw < 0 {
        return Err(nix::Error::last());
    }
    // SAFETY: a fresh fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(raw as RawFd) })
}

/// waitid(P_PIDFD): `Some(status)` once exited, `None` with WNOHANG while running.
/// Signals are reported by number, real-time ones included.
fn waitid(pidfd: &OwnedFd, flags: libc::c_int) -> nix::Result<Option<ExitStatus>> {
    loop {
        // SAFETY: an all-zero siginfo_t is a valid value to be filled in.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid with a pidfd we own and a siginfo_t that lives across the call.
        let r = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                pidfd.as_raw_fd() as libc::id_t,
                &mut info,
                flags,
            )
        };
        if r < 0 {
            match nix::Error::last() {
                nix::Error::EINTR => continue,
                e => return Err(e),
            }
        }
        // SAFETY: waitid succeeded, so si_pid and si_status are set (si_pid 0 with
        // WNOHANG: nothing has exited yet).
        let (pid, code) = unsafe { (info.si_pid(), info.si_status()) };
        if pid == 0 {
            return Ok(None);
        }
        return Ok(Some(match info.si_code {
            libc::CLD_EXITED => ExitStatus::Exited(code),
            _ => ExitStatus::Signaled(code),
        }));
    }
}

#[cfg(test)]
mod tests {
    /// A handle can be moved to, and shared between, threads and async tasks.
    #[test]
    fn wait_handle_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<super::WaitHandle>();
        check::<super::Exit>();
    }
}
