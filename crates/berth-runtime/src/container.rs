//! A container handle: id, persisted state, and the lifecycle operations on it.
//!
//! The status is observed, not stored: the init's pid (checked against its start time
//! so a reused pid is not mistaken for it) tells running from stopped, a zombie init is
//! stopped, and the exec fifo's presence tells created from running.

use crate::error::{Error, Result};
use crate::hooks;
use crate::runtime::Runtime;
use crate::state::{Persisted, State, Status, EXEC_ERROR, EXEC_FIFO};
use crate::wait::WaitHandle;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// How the container's init ended (from `wait`, for `berth run`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Exited with this code.
    Exited(i32),
    /// Killed by this signal.
    Signaled(i32),
}

impl ExitStatus {
    /// The shell convention runc uses for its own exit status: the code, or 128+signal.
    pub fn code(&self) -> i32 {
        match *self {
            ExitStatus::Exited(c) => c,
            ExitStatus::Signaled(s) => 128 + s,
        }
    }
}

/// One container in a [`Runtime`]'s state directory.
///
/// A handle is a view of the state on disk: several may exist for one container (in
/// several processes), and dropping one changes nothing. The one that `create`
/// returned also holds what only the creating process can have: the init's
/// [`WaitHandle`] (the init is this process's child) and, with
/// [`Console::InProcess`](crate::Console::InProcess), the pty master.
#[derive(Debug)]
pub struct Container {
    pub(crate) runtime: Runtime,
    pub(crate) state: Persisted,
    /// The init's pidfd, opened by `create` before anyone could reap it.
    pub(crate) init: Option<WaitHandle>,
    pub(crate) pty_master: Option<OwnedFd>,
}

impl Container {
    pub(crate) fn load(runtime: &Runtime, id: &str) -> Result<Self> {
        crate::id::validate_id(id)?;
        let state = Persisted::load(&runtime.container_dir(id), id)?;
        Ok(Container::from_state(runtime, state))
    }

    /// A handle on a container whose state is `state`, with nothing live yet.
    pub(crate) fn from_state(runtime: &Runtime, state: Persisted) -> Self {
        Container {
            runtime: runtime.clone(),
            state,
            init: None,
            pty_master: None,
        }
    }

    /// The pty master of a `process.terminal` init created with
    /// [`Console::InProcess`](crate::Console::InProcess); `None` otherwise, or once
    /// taken. Reading it gives the container's terminal output, writing it types.
    pub fn take_pty_master(&mut self) -> Option<OwnedFd> {
        self.pty_master.take()
    }

    /// A handle to wait for the init's exit (see [`WaitHandle`]).
    ///
    /// From the container `create` returned: the pidfd opened at create (so it is
    /// the init even if it has exited since), and the OOM baseline taken then. From
    /// a loaded container: a pidfd opened now, checked against the init's recorded
    /// start time, with the OOM baseline taken now; its status can be collected only
    /// by the init's parent (the process that created it), others get
    /// [`Error::NotChild`] but can still watch the fd.
    pub fn wait_handle(&self) -> Result<WaitHandle> {
        if let Some(h) = &self.init {
            return h.try_clone();
        }
        let what = format!("init of container {}", self.state.id);
        if self.state.pid <= 0 {
            return Err(self.bad_status(Status::Stopped, "the container has no init"));
        }
        let handle = WaitHandle::open(
            self.state.pid,
            what,
            self.state.cgroup.clone(),
            self.state
                .cgroup
                .as_ref()
                .and_then(berth_cgroups::oom_kills),
        )?;
        // The pid may have been reused since: the start time tells.
        let start = proc_start_time(self.state.pid);
        if self.state.pid_start_time != 0 && start != Some(self.state.pid_start_time) {
            return Err(self.bad_status(Status::Stopped, "the init has exited"));
        }
        Ok(handle)
    }

    /// The kernel's count of OOM kills in the container's memory cgroup now (see
    /// [`berth_cgroups::oom_kills`]); `None` without a memory cgroup or a count.
    pub fn oom_kills(&self) -> Option<u64> {
        self.state
            .cgroup
            .as_ref()
            .and_then(berth_cgroups::oom_kills)
    }

    /// A watch that wakes on each OOM event in the container's memory cgroup (see
    /// [`berth_cgroups::OomWatch`]): for reporting an OOM kill while the container
    /// runs. Fails without a memory cgroup.
    pub fn oom_watch(&self) -> Result<berth_cgroups::OomWatch> {
        let cgroup = self.state.cgroup.as_ref().ok_or_else(|| {
            Error::Cgroup(berth_cgroups::Error::Unsupported(format!(
                "container {} has no cgroup to watch for OOM kills",
                self.state.id
            )))
        })?;
        Ok(berth_cgroups::OomWatch::new(cgroup)?)
    }

    /// The id.
    pub fn id(&self) -> &str {
        &self.state.id
    }

    /// The init's pid on the host as recorded at create.
    pub fn pid(&self) -> i32 {
        self.state.pid
    }

    /// The config as it was at create time (with later `update`s merged in).
    pub fn config(&self) -> &oci_spec::runtime::Spec {
        &self.state.config
    }

    /// The bundle directory.
    pub fn bundle(&self) -> &std::path::Path {
        &self.state.bundle
    }

    /// The OCI state, with the status observed now (a dead or zombie init is `stopped`).
    pub fn state(&self) -> Result<State> {
        Ok(self.state.to_state(self.status()))
    }

    /// The status observed now.
    pub fn status(&self) -> Status {
        if !self.init_alive() {
            return Status::Stopped;
        }
        if !self.state.created_done {
            return Status::Creating;
        }
        let frozen = || {
            self.cgroup()
                .ok()
                .flatten()
                .is_some_and(|cg| cg.frozen().unwrap_or(false))
        };
        if frozen() {
            return Status::Paused;
        }
        if self.dir().join(EXEC_FIFO).exists() {
            return Status::Created;
        }
        Status::Running
    }

    /// Freezes every process of the container (`berth pause`).
    pub fn pause(&self) -> Result<()> {
        let _lock = self.lock(true)?;
        let status = self.status();
        if !matches!(status, Status::Running | Status::Created) {
            return Err(self.bad_status(status, "container not running"));
        }
        let cg = self
            .cgroup()?
            .ok_or_else(|| self.bad_status(status, "container has no cgroup to freeze"))?;
        Ok(cg.freeze(true)?)
    }

    /// Thaws a paused container (`berth resume`).
    pub fn resume(&self) -> Result<()> {
        // Shared: an `exec --ignore-paused` waiting in the frozen cgroup must not
        // keep the resume that would let it go on.
        let _lock = self.lock(false)?;
        let status = self.status();
        if status != Status::Paused {
            return Err(self.bad_status(status, "container not paused"));
        }
        let cg = self
            .cgroup()?
            .ok_or_else(|| self.bad_status(status, "container has no cgroup to thaw"))?;
        Ok(cg.freeze(false)?)
    }

    /// Host pids of every process in the container's cgroup (`berth ps`).
    pub fn processes(&self) -> Result<Vec<i32>> {
        // A rootless container that got no cgroup (none was writable): as runc, there
        // is nothing to list the container's processes from.
        let no_cgroup = |s: &berth_cgroups::CgroupState| s.rootless && s.paths.is_empty();
        if self.state.cgroup.as_ref().is_some_and(no_cgroup) {
            return Err(Error::Cgroup(berth_cgroups::Error::Unsupported(format!(
                "container {} has no cgroup to list its processes from (rootless, no writable cgroup)",
                self.state.id
            ))));
        }
        match self.cgroup()? {
            Some(cg) => {
                let mut pids = cg.pids()?;
                pids.sort_unstable();
                Ok(pids)
            }
            None => Ok(if self.init_alive() {
                vec![self.state.pid]
            } else {
                Vec::new()
            }),
        }
    }

    pub(crate) fn dir(&self) -> std::path::PathBuf {
        self.runtime.container_dir(&self.state.id)
    }

    /// Takes this container's lock (see `lock.rs`); [`Error::NotFound`] once a
    /// concurrent `delete` has removed it.
    pub(crate) fn lock(&self, exclusive: bool) -> Result<crate::lock::IdLock> {
        crate::lock::lock(&self.dir(), &self.state.id, exclusive)
    }

    pub(crate) fn init_alive(&self) -> bool {
        let pid = self.state.pid;
        if pid <= 0 {
            return false;
        }
        match proc_stat(pid) {
            Some((state, start)) => {
                !matches!(state, 'Z' | 'X' | 'x')
                    && (self.state.pid_start_time == 0 || start == self.state.pid_start_time)
            }
            None => false,
        }
    }

    pub(crate) fn bad_status(&self, status: Status, reason: &str) -> Error {
        Error::BadStatus {
            id: self.state.id.clone(),
            status: status.to_string(),
            reason: reason.to_string(),
        }
    }

    /// Lets a `created` container run its process, then runs poststart hooks; a failing
    /// poststart hook stops and deletes the container and fails `start` (runtime spec
    /// 1.3, runc).
    pub fn start(&mut self) -> Result<()> {
        self.start_traced(None)
    }

    /// [`Container::start`], recording its phases in `trace` (see [`crate::trace`]):
    /// the status check, the wait from the exec fifo write to the init's execve, and
    /// the poststart hooks.
    pub fn start_traced(&mut self, trace: Option<&crate::TraceSink>) -> Result<()> {
        use crate::trace::{Mark, Phase};
        let m = Mark::start(trace);
        // Exclusive until the init is released: a racing `delete` comes before (this
        // start then finds nothing) or after (and kills a running container).
        let lock = self.lock(true)?;
        let status = self.status();
        m.end(Phase::Load);
        let m = Mark::start(trace);
        if status != Status::Created {
            return Err(self.bad_status(status, "cannot start a container that is not created"));
        }
        let fifo = self.dir().join(EXEC_FIFO);
        let fd = nix::fcntl::open(
            &fifo,
            nix::fcntl::OFlag::O_WRONLY
                | nix::fcntl::OFlag::O_NONBLOCK
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| match e {
            // No reader: the init is gone.
            nix::Error::ENXIO => self.bad_status(Status::Stopped, "the init exited before start"),
            e => Error::sys("open", fifo.display(), e),
        })?;
        // One start at a time: a second concurrent `start` would write another byte and
        // run the poststart hooks again.
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(self.bad_status(
                Status::Created,
                "another start of this container is in progress",
            ));
        }
        nix::unistd::write(&fd, b"0").map_err(|e| Error::sys("write", fifo.display(), e))?;
        // Not held while startContainer hooks and execve run: a `delete --force` of a
        // container stuck there must not wait for it.
        lock.release();
        // The init's read end is close-on-exec: when no reader is left, the init has
        // exec'd the process (or died). poststart hooks must run after the process is
        // executed (runtime spec), and `start` returns only then, as runc's does.
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: 0,
            revents: 0,
        };
        loop {
            // SAFETY: one valid pollfd; with no events asked, only POLLERR/POLLHUP wake us.
            let n = unsafe { libc::poll(&mut p, 1, -1) };
            if n >= 0 || nix::Error::last() != nix::Error::EINTR {
                break;
            }
        }
        drop(fd);
        m.end(Phase::Exec);
        let m = Mark::start(trace);
        // Through the directory the lock holds open, not by path: the lock is
        // released, and a `delete` and a new `create` of the same id may have come in
        // meanwhile, whose fifo and error file must not be touched.
        let _ = lock.unlink(EXEC_FIFO);
        // A failure between start and execve (a startContainer hook, the exec itself)
        // was written to exec.err by the init before it exited.
        let error = lock.read_file(EXEC_ERROR);
        if !error.is_empty() {
            self.undo_start(&lock);
            return Err(Error::Init(error));
        }
        let hooks = self.state.config.hooks().clone().unwrap_or_default();
        if let Some(poststart) = hooks.poststart().as_deref().filter(|h| !h.is_empty()) {
            // A `delete` that came in meanwhile has removed the container: its
            // poststop hooks have run, so no poststart hook may follow them. The hooks
            // run under the poststart lock only (lock.rs): a hung one keeps no other
            // verb waiting, and a `delete` only for a while.
            lock.relock(false)?;
            let held = lock.poststart();
            lock.release();
            let poststart_lock = match held {
                Ok(l) => l,
                Err(e) => {
                    // No hook may run unlocked; the started process must not stay
                    // without them either (as after a failing hook).
                    self.undo_start(&lock);
                    return Err(e);
                }
            };
            let state =
                serde_json::to_string(&self.state.to_state(Status::Running)).unwrap_or_default();
            if let Err(e) = hooks::run_all(
                "poststart",
                poststart,
                &state,
                Some(&self.state.bundle),
                hooks::Inherit::Runtime,
            ) {
                drop(poststart_lock);
                self.undo_start(&lock);
                return Err(e);
            }
        } else {
            lock.relock(false)?;
        }
        m.end(Phase::Hooks);
        Ok(())
    }

    /// After a failed start: kills and removes the container, under its lock again,
    /// unless a `delete` that came in since the lock was released has removed it
    /// already (it must not be undone twice, nor a new container of the same id).
    fn undo_start(&self, lock: &crate::lock::IdLock) {
        match lock.relock(true) {
            Err(Error::NotFound(_)) => {}
            held => {
                self.kill_and_wait(Signal::SIGKILL);
                self.destroy();
                if held.is_ok() {
                    lock.release();
                }
            }
        }
    }

    /// Sends `signal` to the init (or with `all` to every process in its cgroup);
    /// signal 0 only checks that the init is there. A stopped container refuses a
    /// signal to its init; with `all` it is not an error (runc 1.1.5: containerd's shim
    /// sends `kill --all` after the init of a shared-PID pod has exited), and whatever
    /// is left in the cgroup is signalled.
    pub fn kill(&self, signal: impl Into<crate::KillSignal>, all: bool) -> Result<()> {
        let signal = signal.into();
        // Shared: kills run side by side, but never into a container a `delete` is
        // removing (whose init pid may be gone, or reused, by the time we signal).
        let _lock = self.lock(false)?;
        let status = self.status();
        if all {
            let cg = match self.cgroup() {
                Ok(cg) => cg,
                Err(_) if status == Status::Stopped => return Ok(()),
                Err(e) => return Err(e),
            };
            if let Some(cg) = cg {
                let pids = match cg.pids() {
                    Ok(p) => p,
                    Err(_) if status == Status::Stopped => return Ok(()),
                    Err(e) => return Err(e.into()),
                };
                for pid in pids {
                    // SAFETY: kill(2) with a pid read from the cgroup and a signal
                    // number checked by parse_signal; an exited pid gives ESRCH.
                    unsafe { libc::kill(pid, signal.number()) };
                }
                return Ok(());
            }
            if status == Status::Stopped {
                return Ok(());
            }
        }
        if status == Status::Stopped {
            return Err(self.bad_status(status, "container not running"));
        }
        // SAFETY: kill(2) on the init's pid (alive: the status is not stopped) with a
        // signal number checked by parse_signal.
        if unsafe { libc::kill(self.state.pid, signal.number()) } != 0 {
            return Err(Error::sys(
                "kill",
                format!("pid {} of container {}", self.state.pid, self.state.id),
                nix::Error::last(),
            ));
        }
        // A frozen task acts on SIGKILL only once thawed (runc thaws for SIGKILL only).
        if status == Status::Paused && signal.as_signal() == Some(Signal::SIGKILL) {
            if let Some(cg) = self.cgroup()? {
                cg.freeze(false)?;
            }
        }
        Ok(())
    }

    /// Deletes a stopped (or, like runc, a created) container: cgroup, state, then
    /// poststop hooks. A running or paused one is refused unless `force`, which kills
    /// it first.
    pub fn delete(self, force: bool) -> Result<()> {
        // One delete at a time: a concurrent one waits, then finds nothing to delete
        // (poststop hooks must run once).
        let lock = self.lock(true)?;
        let status = self.status();
        match status {
            Status::Stopped => {}
            Status::Created | Status::Creating => self.kill_and_wait(Signal::SIGKILL),
            Status::Running | Status::Paused if force => self.kill_and_wait(Signal::SIGKILL),
            _ => {
                return Err(Error::BadStatus {
                    id: self.state.id.clone(),
                    status: status.to_string(),
                    reason: "cannot delete a container that is not stopped (use --force)".into(),
                })
            }
        }
        // poststop hooks after poststart hooks, unless those hang (lock.rs).
        if !lock.wait_poststart(crate::lock::POSTSTART_WAIT) {
            tracing::warn!(
                "delete {}: poststart hooks of its start still run after {:?}; deleting anyway",
                self.state.id,
                crate::lock::POSTSTART_WAIT
            );
        }
        self.destroy();
        Ok(())
    }

    /// Detaches what the container mounted in the runtime's mount namespace (when it
    /// has none of its own), removes cgroup and state directory, then runs poststop
    /// hooks (warnings only).
    fn destroy(&self) {
        // A create killed between the rootfs bind and its record left only what the
        // rootfs was on: the bind is the mount stacked on that at the rootfs.
        let bind = self.state.shared_ns_mount.clone().or_else(|| {
            self.state
                .shared_ns_under
                .as_ref()
                .and_then(|u| u.bind_over())
        });
        if let Some(m) = &bind {
            if let Err(e) = crate::rootfs::release_shared_ns(m) {
                tracing::warn!("delete {}: {e}", self.state.id);
            }
        }
        match self.cgroup() {
            Ok(Some(_)) if self.state.cgroup.as_ref().is_some_and(|c| c.shared) => {
                // Others' processes share it: kill none of them (the init is gone).
                if let Some(c) = &self.state.cgroup {
                    berth_cgroups::release_shared(c);
                }
            }
            Ok(Some(cg)) => {
                if let Err(e) = cg.destroy() {
                    tracing::warn!("delete {}: {e}", self.state.id);
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("delete {}: {e}", self.state.id),
        }
        // A restore killed while CRIU ran in our mount namespace: CRIU (in the cgroup)
        // is gone now, its cgroup yard may still be mounted in the work directory.
        if let Some(work) = &self.state.criu_work_dir {
            crate::criu::release_criu_yards(work);
        }
        let dir = self.dir();
        // A restore killed after it bound the rootfs for CRIU left that bind in the
        // state directory: removing the directory recursively through it would empty
        // the rootfs. Detached first; if it cannot be, the directory stays.
        if !crate::criu::release_criu_root(&dir) {
            tracing::warn!(
                "delete {}: the rootfs bind of an interrupted restore is still mounted in {}; \
                 the directory is left",
                self.state.id,
                dir.display()
            );
        } else if let Err(e) = crate::state_dir::remove(&dir) {
            // EXDEV: something is mounted below it (a live restore's rootfs bind):
            // never removed through.
            tracing::warn!("delete {}: remove {}: {e}", self.state.id, dir.display());
        }
        let hooks = self.state.config.hooks().clone().unwrap_or_default();
        if let Some(poststop) = hooks.poststop().as_deref().filter(|h| !h.is_empty()) {
            let state =
                serde_json::to_string(&self.state.to_state(Status::Stopped)).unwrap_or_default();
            hooks::run_all_warn("poststop", poststop, &state, None);
        }
    }

    pub(crate) fn cgroup(&self) -> Result<Option<Box<dyn berth_cgroups::CgroupManager>>> {
        match &self.state.cgroup {
            Some(s) => Ok(Some(berth_cgroups::from_state(s)?)),
            None => Ok(None),
        }
    }

    /// Kills the init (and the rest of the cgroup) and waits up to 10 s for it to go.
    fn kill_and_wait(&self, signal: Signal) {
        if !self.init_alive() {
            return;
        }
        let pid = self.state.pid;
        // SAFETY: pidfd_open with a pid and no flags returns a new fd or -1.
        let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let pidfd = (raw >= 0).then(|| {
            // SAFETY: a fresh fd owned by nobody else.
            unsafe { OwnedFd::from_raw_fd(raw as i32) }
        });
        let _ = kill(Pid::from_raw(pid), signal);
        // Frozen tasks act on SIGKILL only once thawed.
        if let Ok(Some(cg)) = self.cgroup() {
            if cg.frozen().unwrap_or(false) {
                let _ = cg.freeze(false);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.init_alive() && Instant::now() < deadline {
            match &pidfd {
                Some(fd) => {
                    let mut p = libc::pollfd {
                        fd: fd.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd.
                    unsafe { libc::poll(&mut p, 1, 100) };
                }
                None => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    /// Waits for the init to end; only for a caller that is the init's parent (the
    /// process that called `create`, as `berth run` is). On the container `create`
    /// returned this goes through its [`WaitHandle`], so a handle taken before sees
    /// the same exit.
    pub fn wait(&self) -> Result<ExitStatus> {
        if let Some(h) = &self.init {
            return h.wait().map(|e| e.status);
        }
        wait_pid(
            self.state.pid,
            &format!("init of container {}", self.state.id),
        )
    }
}

/// Waits for a child of ours.
pub(crate) fn wait_pid(pid: i32, what: &str) -> Result<ExitStatus> {
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(ExitStatus::Exited(code)),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(ExitStatus::Signaled(sig as i32)),
            Ok(_) | Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(Error::sys("waitpid", what, e)),
        }
    }
}

/// (state letter, start time) from /proc/<pid>/stat.
fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    // After the state (field 3), start time is field 22: 18 more fields on.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// The start time of a process (field 22 of /proc/<pid>/stat).
pub(crate) fn proc_start_time(pid: i32) -> Option<u64> {
    proc_stat(pid).map(|(_, s)| s)
}

#[cfg(test)]
mod tests {
    use super::proc_stat;

    #[test]
    fn reads_own_stat() {
        let (state, start) = proc_stat(std::process::id() as i32).unwrap();
        assert!(state == 'R' || state == 'S', "{state}");
        assert!(start > 0);
    }
}
