//! One task (a container) served by the shim: its berth container, its init and
//! exec'd processes, and what happens when they are created, started and end.

use crate::errors::{from_berth, invalid, not_found, other};
use crate::events::{timestamp, Events};
use crate::io::{self, IoPaths};
use crate::process::{ExitRecord, Phase, Proc};
use crate::reaper::Children;
use berth_runtime::{
    Console, Container, CreateOptions, ExecOptions, Runtime, Status, Stdio, WaitHandle,
};
use containerd_shim::protos::events::task::{TaskExit, TaskOOM};
use containerd_shim::protos::topics;
use containerd_shim::protos::ttrpc;
use nix::fcntl::OFlag;
use std::collections::HashMap;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

type Result<T> = std::result::Result<T, ttrpc::Error>;

/// How long an exit waits for the terminal output to be copied out: a background
/// process may hold the terminal open after the one waited for is gone.
const PTY_DRAIN: Duration = Duration::from_secs(2);

/// After an OOM notice, how long (steps of OOM_SETTLE_STEP) the OOM monitor waits for
/// the kernel's kill count to move.
const OOM_SETTLE_STEPS: u32 = 50;
const OOM_SETTLE_STEP: Duration = Duration::from_millis(10);

/// What every task of the shim shares.
pub struct Shared {
    /// containerd's namespace of this shim's tasks.
    pub namespace: String,
    pub events: Events,
    pub children: Arc<Children>,
    /// The host is cgroup2-only: stats in the v2 metrics type.
    pub unified: bool,
}

/// A container and its processes.
pub struct Task {
    pub id: String,
    pub bundle: PathBuf,
    /// `<bundle>/rootfs` when the shim mounted containerd's rootfs mounts there.
    pub rootfs: Option<PathBuf>,
    container: Mutex<Option<Container>>,
    pub init: Arc<Proc>,
    execs: Mutex<HashMap<String, Arc<Proc>>>,
    /// The container has no pid namespace of its own: when its init ends, what is
    /// left of it is killed (the kernel does that only for a pid namespace's init).
    host_pidns: bool,
    /// The init was restored from a checkpoint at create: it runs already, and the
    /// first `start` only reports it (set once that start has come).
    restored: bool,
    restored_started: std::sync::atomic::AtomicBool,
    oom: Mutex<OomSeen>,
}

/// How a task's init comes to be.
pub enum Origin {
    /// Created from the bundle, started by `start` (the usual case).
    Create(CreateOptions),
    /// Restored by CRIU from the checkpoint in `criu.image_dir` (containerd's create
    /// with `checkpoint`: `ctr container restore --live`), running from then on.
    Restore(berth_runtime::criu::RestoreOptions),
}

/// The OOM kills of a container reported to containerd so far, by the live monitor
/// or at a process's exit (whichever sees one first: one TaskOOM per kill count).
struct OomSeen {
    /// The memory cgroup's OOM-kill count last reported (its count at create first).
    reported: u64,
    /// The init's exit has been handled: no TaskOOM after its TaskExit.
    closed: bool,
}

/// A process's stdio prepared for berth: the fds for it, the terminal request, and
/// what the shim keeps (our stdin end).
struct PreparedIo {
    stdio: Stdio,
    console: Option<Console>,
    stdin: Option<File>,
}

fn prepare_io(io: &IoPaths) -> Result<PreparedIo> {
    if io.terminal {
        // The pty's slave becomes the process's stdio; the master comes back to us.
        return Ok(PreparedIo {
            stdio: Stdio::null().map_err(from_berth)?,
            console: Some(Console::InProcess),
            stdin: None,
        });
    }
    let (stdin, ours) = if io.stdin.is_empty() {
        (io::null(OFlag::O_RDONLY).map_err(other)?, None)
    } else {
        let (r, w) = io::stdin_pipe().map_err(other)?;
        (r, Some(w))
    };
    Ok(PreparedIo {
        stdio: Stdio {
            stdin: Some(stdin),
            stdout: Some(io::open_output(&io.stdout).map_err(other)?),
            stderr: Some(io::open_output(&io.stderr).map_err(other)?),
        },
        console: None,
        stdin: ours,
    })
}

/// Starts the copies of a process's streams that go through the shim (stdin; all of
/// them with a terminal); returns the end-of-output notice for a terminal.
fn start_relays(
    proc: &Proc,
    stdin: Option<File>,
    master: Option<OwnedFd>,
) -> Result<Option<Receiver<()>>> {
    let mut st = proc.lock();
    if let Some(w) = stdin {
        st.stdin = Some(io::relay_stdin(&proc.io.stdin, w).map_err(other)?);
    }
    let Some(master) = master else {
        return Ok(None);
    };
    let dup = |m: &OwnedFd| {
        m.try_clone()
            .map(File::from)
            .map_err(|e| other(format!("dup pty master: {e}")))
    };
    let out = io::open_output(&proc.io.stdout).map_err(other)?;
    let done = io::relay_pty_output(dup(&master)?, File::from(out));
    if !proc.io.stdin.is_empty() {
        st.stdin = Some(io::relay_stdin(&proc.io.stdin, dup(&master)?).map_err(other)?);
    }
    st.console = Some(Arc::new(master));
    Ok(Some(done))
}

impl Task {
    /// Creates container `id` from `bundle` (whose rootfs is mounted already) with
    /// the init's stdio as containerd named it. The init is created, not started;
    /// restored (`Origin::Restore`), it runs.
    pub fn create(
        shared: &Arc<Shared>,
        runtime: &Runtime,
        id: &str,
        bundle: PathBuf,
        rootfs: Option<PathBuf>,
        io: IoPaths,
        origin: Origin,
    ) -> Result<Arc<Task>> {
        let prepared = prepare_io(&io)?;
        let restored = matches!(origin, Origin::Restore(_));
        // CRIU forks and is waited for, as create's helpers are: under the spawn lock.
        let guard = shared.children.spawn_guard();
        let mut container = match origin {
            Origin::Create(create_options) => {
                let options = CreateOptions {
                    console: prepared.console,
                    stdio: prepared.stdio,
                    ..create_options
                };
                let c = runtime.create(id, &bundle, &options);
                // Our copies of the process's fds go now: a reader of its output
                // sees end of file when the container is done with it.
                drop(options);
                c
            }
            Origin::Restore(_) if prepared.console.is_some() => {
                return Err(crate::errors::status(
                    ttrpc::Code::UNIMPLEMENTED,
                    format!(
                        "container {id}: restoring a task with a terminal is not supported \
                         by the berth shim (CRIU would need the pty master handed over)"
                    ),
                ));
            }
            Origin::Restore(mut restore_options) => {
                restore_options.stdio = prepared.stdio;
                let c = runtime.restore(id, &bundle, &restore_options);
                drop(restore_options);
                c
            }
        }
        .map_err(from_berth)?;
        let handle = match container.wait_handle() {
            Ok(h) => h,
            Err(e) => {
                drop(guard);
                let _ = container.delete(true);
                return Err(from_berth(e));
            }
        };
        let pid = container.pid();
        shared.children.track(pid);
        drop(guard);

        let host_pidns = !container
            .config()
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .is_some_and(|ns| {
                ns.iter().any(|n| {
                    n.typ() == oci_spec::runtime::LinuxNamespaceType::Pid && n.path().is_none()
                })
            });
        if host_pidns {
            shared.children.expect_orphans();
        }
        let master = container.take_pty_master();
        let oom_watch = match container.oom_watch() {
            Ok(w) => Some(w),
            Err(e) => {
                log::warn!("{id}: no live OOM monitor (TaskOOM only at exit): {e}");
                None
            }
        };
        let oom_baseline = container.oom_kills().unwrap_or(0);
        let init = Proc::new("", io);
        {
            let mut st = init.lock();
            st.pid = pid;
            if restored {
                st.phase = Phase::Running;
            }
        }
        let task = Arc::new(Task {
            id: id.to_string(),
            bundle,
            rootfs,
            container: Mutex::new(Some(container)),
            init: Arc::clone(&init),
            execs: Mutex::new(HashMap::new()),
            host_pidns,
            restored,
            restored_started: std::sync::atomic::AtomicBool::new(false),
            oom: Mutex::new(OomSeen {
                reported: oom_baseline,
                closed: false,
            }),
        });
        let done = match start_relays(&init, prepared.stdin, master) {
            Ok(d) => d,
            Err(e) => {
                task.destroy_after_failed_create();
                return Err(e);
            }
        };
        spawn_waiter(Arc::clone(shared), Arc::clone(&task), init, handle, done);
        if let Some(w) = oom_watch {
            spawn_oom_monitor(Arc::clone(shared), Arc::clone(&task), w);
        }
        Ok(task)
    }

    /// Publishes TaskOOM if the memory cgroup's OOM-kill count `now` is past the
    /// count reported (without a count: if `fallback`, the exit's own verdict, and no
    /// kill was reported yet). `close`: the init's exit, after which none is sent.
    fn report_oom(&self, shared: &Shared, now: Option<u64>, fallback: bool, close: bool) {
        let mut seen = self.oom.lock().unwrap_or_else(|p| p.into_inner());
        if seen.closed {
            return;
        }
        let send = match now {
            Some(n) if n > seen.reported => {
                seen.reported = n;
                true
            }
            Some(_) => false,
            None => fallback,
        };
        if send {
            shared.events.send(
                topics::TASK_OOM_EVENT_TOPIC,
                TaskOOM {
                    container_id: self.id.clone(),
                    ..Default::default()
                },
            );
        }
        seen.closed |= close;
    }

    fn oom_closed(&self) -> bool {
        self.oom.lock().unwrap_or_else(|p| p.into_inner()).closed
    }

    fn oom_reported(&self) -> u64 {
        self.oom.lock().unwrap_or_else(|p| p.into_inner()).reported
    }

    fn destroy_after_failed_create(&self) {
        if let Some(c) = self.container().take() {
            let _ = c.delete(true);
        }
    }

    /// The berth container (None once deleted).
    pub fn container(&self) -> MutexGuard<'_, Option<Container>> {
        self.container.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the container, or fails with not found once it is deleted.
    pub fn with_container<T>(
        &self,
        f: impl FnOnce(&mut Container) -> berth_runtime::Result<T>,
    ) -> Result<T> {
        let mut c = self.container();
        let c = c
            .as_mut()
            .ok_or_else(|| not_found(format!("container {}", self.id)))?;
        f(c).map_err(from_berth)
    }

    /// The process with `exec_id` ("" for the init).
    pub fn process(&self, exec_id: &str) -> Result<Arc<Proc>> {
        if exec_id.is_empty() {
            return Ok(Arc::clone(&self.init));
        }
        self.execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(exec_id)
            .cloned()
            .ok_or_else(|| not_found(format!("process {exec_id} of container {}", self.id)))
    }

    /// Every exec'd process by id.
    pub fn execs(&self) -> Vec<Arc<Proc>> {
        self.execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Registers an exec'd process (started by [`Task::start`]).
    pub fn add_exec(
        &self,
        exec_id: &str,
        io: IoPaths,
        spec: oci_spec::runtime::Process,
    ) -> Result<()> {
        let mut execs = self.execs.lock().unwrap_or_else(|p| p.into_inner());
        if execs.contains_key(exec_id) {
            return Err(crate::errors::status(
                ttrpc::Code::ALREADY_EXISTS,
                format!("process {exec_id} of container {} already exists", self.id),
            ));
        }
        let p = Proc::new(exec_id, io);
        p.lock().spec = Some(spec);
        execs.insert(exec_id.to_string(), p);
        Ok(())
    }

    /// Removes an exec'd process that has exited or never started.
    pub fn remove_exec(&self, exec_id: &str) -> Result<Arc<Proc>> {
        let p = self.process(exec_id)?;
        if p.phase() == Phase::Running {
            return Err(crate::errors::status(
                ttrpc::Code::FAILED_PRECONDITION,
                format!("process {exec_id} of container {} is running", self.id),
            ));
        }
        self.execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(exec_id);
        Ok(p)
    }

    /// Starts the init (`exec_id` "") or a registered exec'd process; returns its pid.
    pub fn start(self: &Arc<Self>, shared: &Arc<Shared>, exec_id: &str) -> Result<i32> {
        let proc = self.process(exec_id)?;
        if exec_id.is_empty() && self.restored {
            // Restored at create: running since, nothing to release. A second start
            // is refused, as runc's shim refuses to start a running init.
            if self
                .restored_started
                .swap(true, std::sync::atomic::Ordering::SeqCst)
            {
                return Err(crate::errors::status(
                    ttrpc::Code::FAILED_PRECONDITION,
                    format!("container {}: cannot start a running process", self.id),
                ));
            }
            return Ok(proc.lock().pid);
        }
        if exec_id.is_empty() {
            // startContainer and poststart hooks fork: under the spawn lock.
            let _guard = shared.children.spawn_guard();
            self.with_container(|c| c.start())?;
            let mut st = proc.lock();
            if st.phase == Phase::Created {
                st.phase = Phase::Running;
            }
            return Ok(st.pid);
        }
        let spec = {
            let mut st = proc.lock();
            if st.phase != Phase::Created {
                return Err(crate::errors::status(
                    ttrpc::Code::FAILED_PRECONDITION,
                    format!("process {exec_id} of container {} was started", self.id),
                ));
            }
            st.spec
                .take()
                .ok_or_else(|| invalid(format!("process {exec_id}: no spec")))?
        };
        let terminal = spec.terminal().unwrap_or(false);
        let mut io_paths = proc.io.clone();
        io_paths.terminal = terminal;
        let prepared = prepare_io(&io_paths)?;
        let options = ExecOptions {
            console: prepared.console,
            stdio: prepared.stdio,
            ..Default::default()
        };
        let guard = shared.children.spawn_guard();
        let mut process = self.with_container(|c| c.exec(&spec, &options))?;
        drop(options);
        let handle = match process.wait_handle() {
            Ok(h) => h,
            Err(e) => {
                // SAFETY: kill(2) on the pid of a child we just made and have not reaped.
                unsafe { libc::kill(process.pid(), libc::SIGKILL) };
                let _ = process.wait();
                return Err(from_berth(e));
            }
        };
        let pid = process.pid();
        shared.children.track(pid);
        drop(guard);
        {
            let mut st = proc.lock();
            st.pid = pid;
            st.phase = Phase::Running;
        }
        let done = start_relays(&proc, prepared.stdin, process.take_pty_master());
        spawn_waiter(
            Arc::clone(shared),
            Arc::clone(self),
            Arc::clone(&proc),
            handle,
            done.unwrap_or_else(|e| {
                log::warn!("exec {exec_id} of {}: stdio: {e}", self.id);
                None
            }),
        );
        Ok(pid)
    }

    /// Dumps the container's processes with CRIU into `options.criu.image_dir`
    /// (containerd's checkpoint of a task). Unless `leave_running`, they are gone
    /// afterwards: the init's waiter reports its exit, and containerd's delete removes
    /// the container, as with any stopped task.
    pub fn checkpoint(
        &self,
        shared: &Shared,
        options: &berth_runtime::criu::CheckpointOptions,
    ) -> Result<()> {
        // CRIU is forked and waited for: under the spawn lock, away from the reaper.
        let _guard = shared.children.spawn_guard();
        self.with_container(|c| c.dump(options))
    }

    /// Signals a process; the init's signal goes through berth (`all`: every process
    /// of the container).
    pub fn kill(&self, exec_id: &str, signal: u32, all: bool) -> Result<()> {
        let sig = berth_runtime::parse_signal(&signal.to_string()).map_err(from_berth)?;
        let proc = self.process(exec_id)?;
        if exec_id.is_empty() {
            if proc.phase() == Phase::Stopped && !all {
                return Err(not_found("process already finished"));
            }
            return self.with_container(|c| c.kill(sig, all));
        }
        let st = proc.lock();
        if st.phase != Phase::Running {
            return Err(not_found("process already finished"));
        }
        // SAFETY: kill(2) on a process of ours that has not been collected (its phase
        // turns Stopped, under this lock, only after it is).
        if unsafe { libc::kill(st.pid, sig.number()) } != 0 {
            let e = std::io::Error::last_os_error();
            return Err(other(format!("kill pid {} ({exec_id}): {e}", st.pid)));
        }
        Ok(())
    }

    /// Deletes the container (its init stopped or never started) and unmounts the
    /// rootfs; returns the init's exit.
    pub fn delete(&self, shared: &Arc<Shared>) -> Result<(i32, ExitRecord)> {
        {
            let _guard = shared.children.spawn_guard();
            let mut slot = self.container();
            if let Some(c) = slot.as_ref() {
                let status = c.status();
                if matches!(status, Status::Running | Status::Paused)
                    && self.init.phase() != Phase::Stopped
                {
                    return Err(crate::errors::status(
                        ttrpc::Code::FAILED_PRECONDITION,
                        format!("container {} is {status}: cannot delete it", self.id),
                    ));
                }
            }
            if let Some(c) = slot.take() {
                // A created init is killed here; its waiter collects it.
                c.delete(true).map_err(from_berth)?;
            }
        }
        if let Some(r) = &self.rootfs {
            crate::mounts::unmount_rootfs(r);
        }
        let exit = self
            .init
            .wait_timeout(Duration::from_secs(10))
            .unwrap_or(ExitRecord {
                code: 128 + libc::SIGKILL as u32,
                at: SystemTime::now(),
            });
        Ok((self.init.lock().pid, exit))
    }
}

/// Waits for a process in a thread of its own: records its exit, publishes TaskOOM
/// (when the OOM killer took it, or for the init, anything in its container) and
/// TaskExit.
fn spawn_waiter(
    shared: Arc<Shared>,
    task: Arc<Task>,
    proc: Arc<Proc>,
    handle: WaitHandle,
    output_done: Option<Receiver<()>>,
) {
    let name = format!("wait-{}", handle.pid());
    let run = move || {
        let pid = handle.pid();
        let result = handle.wait();
        shared.children.untrack(pid);
        let at = SystemTime::now();
        // The init's end reports any OOM kill in the container during its life (the
        // OOM killer may have chosen a child, whose death ended the init): what
        // containerd-shim-runc-v2's cgroup OOM monitor would have reported by then.
        let (code, oom) = match result {
            Ok(e) if proc.exec_id.is_empty() => (e.status.code() as u32, e.oom_kills > 0),
            Ok(e) => (e.status.code() as u32, e.oom_killed),
            Err(e) => {
                log::error!("wait for pid {pid} of {}: {e}", task.id);
                (255, false)
            }
        };
        if let Some(rx) = output_done {
            let _ = rx.recv_timeout(PTY_DRAIN);
        }
        if proc.exec_id.is_empty() && task.host_pidns {
            // Without a pid namespace, the init's end does not end the others.
            if let Some(c) = task.container().as_ref() {
                let _ = c.kill(nix::sys::signal::Signal::SIGKILL, true);
            }
        }
        // Under the lock the live monitor reports with: its TaskOOM, if any, comes
        // before this TaskExit, and a kill it reported is not reported again.
        let now = task.container().as_ref().and_then(|c| c.oom_kills());
        task.report_oom(&shared, now, oom, proc.exec_id.is_empty());
        proc.set_exited(ExitRecord { code, at });
        let id = if proc.exec_id.is_empty() {
            task.id.clone()
        } else {
            proc.exec_id.clone()
        };
        shared.events.send(
            topics::TASK_EXIT_EVENT_TOPIC,
            TaskExit {
                container_id: task.id.clone(),
                id,
                pid: pid as u32,
                exit_status: code,
                exited_at: Some(timestamp(at)).into(),
                ..Default::default()
            },
        );
    };
    if let Err(e) = std::thread::Builder::new().name(name).spawn(run) {
        log::error!("spawn a waiter thread: {e}");
    }
}

/// Watches the container's memory cgroup while its init lives and publishes TaskOOM
/// on each OOM kill, as containerd-shim-runc-v2's OOM monitor does: the OOM killer may
/// take a child while the init keeps running, and containerd (the CRI plugin's
/// OOMKilled reason, `ctr events`) should hear of it then, not only at the end.
fn spawn_oom_monitor(shared: Arc<Shared>, task: Arc<Task>, watch: berth_cgroups::OomWatch) {
    let name = format!("oom-{}", task.init.lock().pid);
    let run = move || loop {
        // The timeout only bounds how long the thread outlives the init.
        let woke = watch.wait(Duration::from_secs(1));
        if task.oom_closed() {
            return;
        }
        match woke {
            Ok(true) => {
                // The kernel signals when the cgroup goes under OOM, before the
                // killer has picked its victim and counted the kill: give the count
                // a moment to move (no count change, e.g. the cgroup's removal or
                // an OOM that reclaim resolved, reports nothing).
                for _ in 0..OOM_SETTLE_STEPS {
                    let now = watch.oom_kills();
                    if now.is_some_and(|n| n > task.oom_reported()) || task.oom_closed() {
                        task.report_oom(&shared, now, false, false);
                        break;
                    }
                    std::thread::sleep(OOM_SETTLE_STEP);
                }
            }
            Ok(false) => {}
            Err(e) => {
                log::warn!("{}: OOM monitor: {e}", task.id);
                return;
            }
        }
    };
    if let Err(e) = std::thread::Builder::new().name(name).spawn(run) {
        log::error!("spawn an OOM monitor thread: {e}");
    }
}
