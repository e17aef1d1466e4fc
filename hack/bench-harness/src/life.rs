//! One container life (`create`, `start`, wait for the init, `delete`), timed and
//! accounted, plus the watchdog that bounds every step.
//!
//! The harness is a child subreaper: when `create` exits, the container init is
//! re-parented to the harness, which reaps it with `waitpid` (no polling of `state`).
//! Every runtime process and the init are reaped here, so the growth of
//! `getrusage(RUSAGE_CHILDREN)` over a life is the CPU time that life cost.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::resource::{getrusage, UsageWho};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::memory::MemCg;

/// How long one step (one runtime command, or the init's run) may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// A runtime under test and where it keeps its things.
pub struct Runtime {
    pub name: String,
    pub path: PathBuf,
    /// The runtime's state directory (`--root`).
    pub root: PathBuf,
    pub bundle: PathBuf,
    /// Where the runtime's stderr goes (appended).
    pub log: PathBuf,
    /// The memory cgroup the runtime's commands run in (see memory.rs).
    pub mem: Option<MemCg>,
}

/// What one life cost.
#[derive(Clone, Copy)]
pub struct Sample {
    pub wall: Duration,
    pub cpu: Duration,
    /// Peak memory charged to the runtime's cgroup over the life, above what was
    /// charged before it (bytes).
    pub peak: Option<u64>,
}

static EPOCH: OnceLock<Instant> = OnceLock::new();
static WATCH_PID: AtomicI32 = AtomicI32::new(0);
static WATCH_DEADLINE_MS: AtomicU64 = AtomicU64::new(0);
static WATCH_FIRED: AtomicBool = AtomicBool::new(false);

fn now_ms() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// Start the watchdog thread: it SIGKILLs the watched pid once its deadline passes.
/// It wakes every 100 ms and does nothing else, so it does not disturb the timings.
pub fn start_watchdog() {
    now_ms();
    thread::spawn(|| loop {
        thread::sleep(Duration::from_millis(100));
        let pid = WATCH_PID.load(Ordering::SeqCst);
        if pid > 0 && now_ms() > WATCH_DEADLINE_MS.load(Ordering::SeqCst) {
            WATCH_FIRED.store(true, Ordering::SeqCst);
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            WATCH_PID.store(0, Ordering::SeqCst);
        }
    });
}

fn watch(pid: i32) {
    WATCH_FIRED.store(false, Ordering::SeqCst);
    WATCH_DEADLINE_MS.store(now_ms() + STEP_TIMEOUT.as_millis() as u64, Ordering::SeqCst);
    WATCH_PID.store(pid, Ordering::SeqCst);
}

/// Stop watching; true if the watchdog had to kill.
fn unwatch() -> bool {
    WATCH_PID.store(0, Ordering::SeqCst);
    WATCH_FIRED.load(Ordering::SeqCst)
}

/// CPU time (user + system) of all reaped descendants so far.
pub fn children_cpu() -> Result<Duration, String> {
    let u = getrusage(UsageWho::RUSAGE_CHILDREN).map_err(|e| format!("getrusage: {e}"))?;
    let tv = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
    };
    Ok(tv(u.user_time()) + tv(u.system_time()))
}

/// Reap every child that has already exited (processes orphaned to us by a runtime).
pub fn reap_strays() {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => break,
            Ok(_) => continue,
        }
    }
}

impl Runtime {
    /// Run `<runtime> --root <root> ARGS`, stdout to /dev/null, stderr to the log.
    fn run(&self, args: &[&str]) -> Result<(), String> {
        self.run_in(args, self.mem.as_ref().map(|m| m.tasks()))
    }

    /// [`Runtime::run`] in the memory cgroup whose `tasks` file is given, if any.
    pub fn run_in(&self, args: &[&str], tasks: Option<&std::ffi::CString>) -> Result<(), String> {
        use std::os::unix::process::CommandExt;
        let what = format!("{} {}", self.name, args.join(" "));
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("open {}: {e}", self.log.display()))?;
        let log_len = log.metadata().map(|m| m.len()).unwrap_or(0);
        let mut cmd = Command::new(&self.path);
        cmd.arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(tasks) = tasks.cloned() {
            // SAFETY: the hook only opens and writes a file (memory::join), which is
            // allowed between fork and exec.
            unsafe { cmd.pre_exec(move || crate::memory::join(&tasks)) };
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("{what}: spawn {}: {e}", self.path.display()))?;
        watch(child.id() as i32);
        let status = child.wait();
        let killed = unwatch();
        let status = status.map_err(|e| format!("{what}: wait: {e}"))?;
        if killed {
            return Err(format!("{what}: killed after {}s", STEP_TIMEOUT.as_secs()));
        }
        if !status.success() {
            return Err(format!("{what}: {status}: {}", self.log_tail(log_len)));
        }
        Ok(())
    }

    /// What the runtime wrote to its log since offset `from`, on one line.
    fn log_tail(&self, from: u64) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(&self.log) {
            let _ = f.seek(SeekFrom::Start(from));
            let _ = f.take(2000).read_to_string(&mut text);
        }
        let text = text.trim().replace('\n', " | ");
        if text.is_empty() {
            "(no output)".to_string()
        } else {
            text
        }
    }

    /// One timed life of container `id`.
    pub fn life(&self, id: &str) -> Result<Sample, String> {
        let pid_file = self.root.join(format!("{id}.pid"));
        let pid_arg = pid_file.to_string_lossy().into_owned();
        let bundle = self.bundle.to_string_lossy().into_owned();

        // The init writes to the same log (it inherits create's stderr).
        let log_start = fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0);
        let base = self.mem.as_ref().map(MemCg::reset).transpose()?;
        let cpu0 = children_cpu()?;
        let t0 = Instant::now();
        self.run(&["create", "--bundle", &bundle, "--pid-file", &pid_arg, id])?;
        let pid = read_pid(&pid_file)?;
        self.run(&["start", id])?;
        wait_init(&self.name, id, pid).map_err(|e| format!("{e}: {}", self.log_tail(log_start)))?;
        self.run(&["delete", id])?;
        reap_strays();
        let wall = t0.elapsed();
        let cpu = children_cpu()?.saturating_sub(cpu0);
        let peak = match (&self.mem, base) {
            (Some(m), Some(base)) => Some(m.peak()?.saturating_sub(base)),
            _ => None,
        };

        let _ = fs::remove_file(&pid_file);
        Ok(Sample { wall, cpu, peak })
    }

    /// After a failed life: force the container away, whatever state it is in.
    pub fn force_delete(&self, id: &str) {
        let _ = self.run(&["delete", "--force", id]);
        let _ = fs::remove_file(self.root.join(format!("{id}.pid")));
        reap_strays();
    }
}

/// `create` of container `id`, untimed (to fill the state directory).
impl Runtime {
    pub fn create_only(&self, id: &str) -> Result<(), String> {
        let bundle = self.bundle.to_string_lossy().into_owned();
        self.run_in(&["create", "--bundle", &bundle, id], None)
    }

    /// `run` of the bundle's /bin/true in the memory cgroup `tasks`; Ok(true) when it
    /// exited 0.
    pub fn run_limited(&self, id: &str, tasks: &std::ffi::CString) -> Result<bool, String> {
        let bundle = self.bundle.to_string_lossy().into_owned();
        let ok = self
            .run_in(&["run", "--bundle", &bundle, id], Some(tasks))
            .is_ok();
        reap_strays();
        Ok(ok)
    }
}

fn read_pid(path: &Path) -> Result<i32, String> {
    let text =
        fs::read_to_string(path).map_err(|e| format!("read pid file {}: {e}", path.display()))?;
    text.trim()
        .parse::<i32>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("pid file {}: bad pid {:?}", path.display(), text.trim()))
}

/// Block until the container init (our child, as subreaper) exits.
fn wait_init(runtime: &str, id: &str, pid: i32) -> Result<(), String> {
    watch(pid);
    let r = loop {
        match waitpid(Pid::from_raw(pid), None) {
            Err(Errno::EINTR) => continue,
            other => break other,
        }
    };
    let killed = unwatch();
    match r {
        _ if killed => Err(format!(
            "{runtime}: container {id} init {pid} still running after {}s, killed",
            STEP_TIMEOUT.as_secs()
        )),
        Ok(WaitStatus::Exited(_, 0)) => Ok(()),
        Ok(s) => Err(format!(
            "{runtime}: container {id} init {pid} ended badly: {s:?}"
        )),
        Err(e) => Err(format!(
            "{runtime}: waitpid {pid} (init of {id}): {e} (is the harness its subreaper?)"
        )),
    }
}
