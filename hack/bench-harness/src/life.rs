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
}

/// What one life cost.
#[derive(Clone, Copy)]
pub struct Sample {
    pub wall: Duration,
    pub cpu: Duration,
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
        let what = format!("{} {}", self.name, args.join(" "));
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("open {}: {e}", self.log.display()))?;
        let log_len = log.metadata().map(|m| m.len()).unwrap_or(0);
        let mut child = Command::new(&self.path)
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
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

        let _ = fs::remove_file(&pid_file);
        Ok(Sample { wall, cpu })
    }

    /// After a failed life: force the container away, whatever state it is in.
    pub fn force_delete(&self, id: &str) {
        let _ = self.run(&["delete", "--force", id]);
        let _ = fs::remove_file(self.root.join(format!("{id}.pid")));
        reap_strays();
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
