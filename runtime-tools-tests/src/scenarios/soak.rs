//! Under load: many container lives in a row and at once, and many execs into one
//! container, each phase ending with nothing left behind: no cgroup in any hierarchy,
//! no new mount, no state entry, no process, no fd of the driver.
//!
//! The counts come from the environment so that `make soak` runs the long round and
//! the conformance stage a short one: BERTH_SOAK_SEQUENTIAL (default 50),
//! BERTH_SOAK_PARALLEL (20), BERTH_SOAK_EXEC (10), BERTH_SOAK_JOBS (how many of the
//! parallel lives run at once; default all of them) and BERTH_SOAK_SECONDS (the bound
//! on the whole scenario; default 300).
//!
//! The runtime is run directly here, not through `Ctx::rt`: the lives of the parallel
//! phase run in threads, and a long round outlasts the per-scenario command budget.

use std::collections::BTreeSet;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::bundle::{mounts_under, Bundle};
use crate::ctx::Ctx;
use crate::spec::default_config;
use crate::verdict::{Res, Verdict};
use crate::{cgroup, ensure, fail, reaper};

/// One runtime command's bound: a life's verbs take milliseconds, but 200 creates at
/// once on two busy cores queue for the CPU.
const COMMAND_LIMIT: Duration = Duration::from_secs(120);

fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// What the phases share: the runtime, its state root, the shared rootfs, where the
/// per-life bundles go, and the ids not yet deleted (for the cleanup of a failure).
struct Soak {
    runtime: PathBuf,
    root: PathBuf,
    rootfs: PathBuf,
    bundles: PathBuf,
    cg_parent: String,
    prefix: String,
    next: AtomicUsize,
    live: Mutex<BTreeSet<String>>,
    deadline: Instant,
}

impl Soak {
    fn new_id(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}{n}", self.prefix)
    }

    /// `<runtime> --root <root> args...` in its own process group, bounded in time;
    /// stdout and stderr go to a file (a container inherits the runtime's stdio, and
    /// would hold a pipe open). Returns (exit code, stderr text, stdout text).
    fn run(&self, args: &[&str]) -> Result<(i32, String, String), String> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let out_path = self.bundles.join(format!(".cmd-{n}.out"));
        let err_path = self.bundles.join(format!(".cmd-{n}.err"));
        let files = File::create(&out_path).and_then(|o| Ok((o, File::create(&err_path)?)));
        let (out, err) = files.map_err(|e| format!("create output files: {e}"))?;
        let mut child = Command::new(&self.runtime)
            .process_group(0)
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", self.runtime.display()))?;
        let started = Instant::now();
        // Backing off from 0.25 ms to 20 ms: hundreds of threads polling fast would take
        // the CPU the runtime needs.
        let mut pause = Duration::from_micros(250);
        let code = loop {
            match child.try_wait() {
                Ok(Some(st)) => break st.code().unwrap_or(-1),
                Ok(None) if started.elapsed() > COMMAND_LIMIT => {
                    let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
                    let _ = child.wait();
                    let _ = std::fs::remove_file(&out_path);
                    let _ = std::fs::remove_file(&err_path);
                    return Err(format!(
                        "`{}` timed out after {COMMAND_LIMIT:?}",
                        args.join(" ")
                    ));
                }
                Ok(None) => {
                    sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(e) => return Err(format!("wait for `{}`: {e}", args.join(" "))),
            }
        };
        let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
        let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
        let _ = std::fs::remove_file(&out_path);
        let _ = std::fs::remove_file(&err_path);
        Ok((code, stderr, stdout))
    }

    /// Runs a verb that must succeed.
    fn must(&self, args: &[&str]) -> Result<String, String> {
        let (code, err, out) = self.run(args)?;
        if code != 0 {
            return Err(format!(
                "`{}` exited {code}: {}",
                args.join(" "),
                err.trim()
            ));
        }
        Ok(out)
    }

    /// A bundle for `id`: a config.json of `args` whose rootfs is the shared one and
    /// whose cgroup is below the run's parent cgroup.
    fn bundle(&self, id: &str, args: &[&str]) -> Result<PathBuf, String> {
        let dir = self.bundles.join(id);
        std::fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let cgroups_path = format!("/{}/{id}", self.cg_parent);
        let mut cfg = default_config(args, &cgroups_path);
        crate::spec::set(
            &mut cfg,
            "root/path",
            serde_json::Value::String(self.rootfs.display().to_string()),
        );
        let text = serde_json::to_vec_pretty(&cfg).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("config.json"), text)
            .map_err(|e| format!("write {}/config.json: {e}", dir.display()))?;
        Ok(dir)
    }

    /// Polls `state` until the container has stopped.
    fn wait_stopped(&self, id: &str, reap: bool) -> Result<(), String> {
        let started = Instant::now();
        loop {
            if reap {
                reaper::reap_orphans();
            }
            let out = self.must(&["state", id])?;
            let st: serde_json::Value =
                serde_json::from_str(&out).map_err(|e| format!("state {id}: {e}: {out}"))?;
            if st["status"] == "stopped" {
                return Ok(());
            }
            if started.elapsed() > COMMAND_LIMIT {
                return Err(format!("{id} did not stop within {COMMAND_LIMIT:?}: {st}"));
            }
            sleep(Duration::from_millis(5));
        }
    }

    /// One life of busybox /bin/true: create, start, wait until stopped, delete. The
    /// sequential phase reaps the exited inits (the driver is their subreaper) as it
    /// waits; the parallel phase leaves them zombies until it ends, so that no thread
    /// reaps another's runtime command (a zombie init is `stopped`).
    fn life(&self, reap: bool) -> Result<(), String> {
        let id = self.new_id();
        let bundle = self.bundle(&id, &["/bin/true"])?;
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone());
        let bp = bundle.display().to_string();
        self.must(&["create", "--bundle", &bp, &id])?;
        self.must(&["start", &id])?;
        self.wait_stopped(&id, reap)?;
        self.must(&["delete", &id])?;
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        std::fs::remove_dir_all(&bundle).map_err(|e| format!("rm {}: {e}", bundle.display()))
    }

    fn check_time(&self, what: &str) -> Result<(), String> {
        if Instant::now() > self.deadline {
            return Err(format!("{what}: over the BERTH_SOAK_SECONDS bound"));
        }
        Ok(())
    }

    /// Force-deletes every id a failed phase left.
    fn clean_up(&self) {
        let ids: Vec<String> =
            std::mem::take(&mut *self.live.lock().unwrap_or_else(|p| p.into_inner()))
                .into_iter()
                .collect();
        for id in ids {
            let _ = self.run(&["delete", "--force", &id]);
        }
        reaper::reap_orphans();
    }
}

/// What the driver and the host hold before a phase, to compare after it.
struct Snapshot {
    fds: BTreeSet<String>,
    mounts: BTreeSet<String>,
}

impl Snapshot {
    fn take() -> Snapshot {
        let fds = std::fs::read_dir("/proc/self/fd")
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        Snapshot {
            fds,
            mounts: mount_lines(),
        }
    }
}

/// /proc/self/mountinfo as a set of "mount point, source, options" lines (the mount
/// id left out would not matter: a new mount has a new id anyway).
fn mount_lines() -> BTreeSet<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Everything the phase left: one line per thing.
fn leftovers(s: &Soak, before: &Snapshot) -> Vec<String> {
    reaper::reap_orphans();
    let mut found = Vec::new();
    // cgroups: every hierarchy, v1 and the unified one, below the run's parent.
    for h in cgroup::hierarchies() {
        let parent = h.join(&s.cg_parent);
        for dir in dirs_with_prefix(&parent, &s.prefix, 4) {
            found.push(format!("cgroup {}", dir.display()));
        }
    }
    // Mounts: new lines of mountinfo that are ours (other tests on the host may mount
    // and unmount meanwhile: only what names our rootfs, state root or ids counts),
    // and anything still mounted under the rootfs or the state root.
    let ours = |line: &str| {
        line.contains(&s.prefix)
            || line.contains(&*s.rootfs.to_string_lossy())
            || line.contains(&*s.root.to_string_lossy())
    };
    for line in mount_lines().difference(&before.mounts) {
        if ours(line) {
            found.push(format!("mount {line}"));
        }
    }
    for dir in [&s.rootfs, &s.root] {
        for m in mounts_under(dir) {
            let line = format!("mount under {}: {}", dir.display(), m.display());
            if !found.contains(&line) {
                found.push(line);
            }
        }
    }
    // State entries.
    if let Ok(entries) = std::fs::read_dir(&s.root) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&s.prefix) {
                found.push(format!("state entry {}", e.path().display()));
            }
        }
    }
    // Processes: any live one in a cgroup of ours, naming our state root or an id of
    // ours on its command line (the runtime and its forks), or rooted in our rootfs.
    for pid in processes(s) {
        found.push(format!("process {pid}"));
    }
    // The driver's own fds: the runtime commands' pipes and files are all closed.
    let fds = Snapshot::take().fds;
    for fd in fds.difference(&before.fds) {
        let target = std::fs::read_link(format!("/proc/self/fd/{fd}"))
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        // The read_dir of /proc/self/fd itself.
        if target.starts_with("/proc/") && target.ends_with("/fd") {
            continue;
        }
        found.push(format!("driver fd {fd} -> {target}"));
    }
    found
}

/// Directories whose name starts with `prefix`, at most `depth` levels below `dir`.
fn dirs_with_prefix(dir: &Path, prefix: &str, depth: u32) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let p = e.path();
        if e.file_name().to_string_lossy().starts_with(prefix) {
            out.push(p.clone());
        }
        if depth > 1 {
            out.extend(dirs_with_prefix(&p, prefix, depth - 1));
        }
    }
    out
}

fn processes(s: &Soak) -> Vec<i32> {
    let root = s.root.to_string_lossy().into_owned();
    super::crash_create::live_processes(|dir| {
        let cg = std::fs::read_to_string(dir.join("cgroup")).unwrap_or_default();
        let in_cgroup = cg.lines().any(|l| l.contains(&s.prefix));
        let cmdline =
            String::from_utf8_lossy(&std::fs::read(dir.join("cmdline")).unwrap_or_default())
                .into_owned();
        let named = cmdline
            .split('\0')
            .any(|a| a == root || a.starts_with(&s.prefix));
        in_cgroup || named || super::crash_create::has_cwd_or_root_under(dir, &s.rootfs)
    })
}

/// Runs `phase`, then checks that it left nothing; a failure cleans up what it can.
fn phase(
    s: &Soak,
    name: &str,
    lives: usize,
    f: impl FnOnce() -> Result<(), String>,
) -> Result<(), Verdict> {
    let before = Snapshot::take();
    let started = Instant::now();
    let res = f();
    let secs = started.elapsed().as_secs_f64();
    if let Err(e) = res {
        s.clean_up();
        fail!("{name}: {e}");
    }
    let left = leftovers(s, &before);
    if !left.is_empty() {
        s.clean_up();
        fail!("{name}: {} thing(s) left: {}", left.len(), left.join(" | "));
    }
    eprintln!(
        "soak: {name}: {lives} in {secs:.1} s ({:.1}/s), 0 leaked",
        lives as f64 / secs.max(1e-9)
    );
    Ok(())
}

/// Container lives in a row, at once, and execs into one container, under the
/// counts of the environment (see the module's words); after each phase no cgroup
/// (every hierarchy), mount, state entry, process or driver fd is left.
pub fn soak_lives(c: &mut Ctx) -> Res {
    let sequential = count("BERTH_SOAK_SEQUENTIAL", 50);
    let parallel = count("BERTH_SOAK_PARALLEL", 20);
    let execs = count("BERTH_SOAK_EXEC", 10);
    let jobs = count("BERTH_SOAK_JOBS", parallel).clamp(1, 256);
    let seconds = count("BERTH_SOAK_SECONDS", 300) as u64;
    ensure!(
        !cgroup::hierarchies().is_empty(),
        "no cgroup hierarchy mounted: cannot check what the lives leave"
    );
    let shared_id = c.new_id();
    let shared: Bundle = c.bundle(&shared_id, false)?;
    let bundles = c.suite.bundles.join(format!("{shared_id}-lives"));
    std::fs::create_dir_all(&bundles).map_err(|e| Verdict::Fail(format!("mkdir: {e}")))?;
    c.own_dir(&bundles);
    let s = Soak {
        runtime: c.suite.rt.path.clone(),
        root: c.suite.rt.root.clone(),
        rootfs: shared.rootfs(),
        bundles,
        cg_parent: c.suite.cg_parent.clone(),
        prefix: format!("soak-{}-", std::process::id()),
        next: AtomicUsize::new(0),
        live: Mutex::new(BTreeSet::new()),
        deadline: Instant::now() + Duration::from_secs(seconds),
    };

    phase(&s, "sequential lives", sequential, || {
        for _ in 0..sequential {
            s.check_time("sequential lives")?;
            s.life(true)?;
        }
        Ok(())
    })?;

    phase(&s, "parallel lives", parallel, || {
        let next = AtomicUsize::new(0);
        let errors = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..jobs.min(parallel) {
                scope.spawn(|| {
                    while next.fetch_add(1, Ordering::Relaxed) < parallel {
                        if let Err(e) = s.check_time("parallel lives").and_then(|()| s.life(false))
                        {
                            errors.lock().unwrap_or_else(|p| p.into_inner()).push(e);
                            return;
                        }
                    }
                });
            }
        });
        reaper::reap_orphans();
        let errors = errors.into_inner().unwrap_or_else(|p| p.into_inner());
        match errors.first() {
            None => Ok(()),
            Some(e) => Err(format!("{} of the lives failed; first: {e}", errors.len())),
        }
    })?;

    phase(&s, "concurrent execs", execs, || {
        let id = s.new_id();
        let bundle = s.bundle(&id, &["/bin/sleep", "3600"])?;
        s.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone());
        let bp = bundle.display().to_string();
        s.must(&["create", "--bundle", &bp, &id])?;
        s.must(&["start", &id])?;
        let errors = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..execs {
                scope.spawn(|| {
                    if let Err(e) = s.must(&["exec", &id, "/bin/true"]) {
                        errors.lock().unwrap_or_else(|p| p.into_inner()).push(e);
                    }
                });
            }
        });
        s.must(&["kill", &id, "KILL"])?;
        s.wait_stopped(&id, true)?;
        s.must(&["delete", &id])?;
        s.live.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        let _ = std::fs::remove_dir_all(&bundle);
        let errors = errors.into_inner().unwrap_or_else(|p| p.into_inner());
        match errors.first() {
            None => Ok(()),
            Some(e) => Err(format!(
                "{} of {execs} execs failed; first: {e}",
                errors.len()
            )),
        }
    })?;
    Ok(())
}
