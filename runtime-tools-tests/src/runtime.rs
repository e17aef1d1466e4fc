//! Running the runtime under test: one verb at a time, bounded in time, output captured.

use std::cell::Cell;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// How long any single runtime command may take before it is killed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// How long one scenario may keep running runtime commands (cleanup is exempt).
pub const SCENARIO_BUDGET: Duration = Duration::from_secs(120);

/// The runtime binary and its private state directory.
pub struct Runtime {
    pub path: PathBuf,
    pub root: PathBuf,
    scratch: PathBuf,
    counter: Cell<u64>,
    deadline: Cell<Option<Instant>>,
    reaping: Cell<bool>,
}

/// The result of one runtime command.
#[derive(Debug, Clone)]
pub struct CmdOut {
    pub argv: String,
    pub code: Option<i32>,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOut {
    pub fn ok(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }

    /// A one-line account of what happened, for failure messages.
    pub fn describe(&self) -> String {
        let how = if self.timed_out {
            "timed out".to_string()
        } else {
            match self.code {
                Some(c) => format!("exit {c}"),
                None => "killed by a signal".to_string(),
            }
        };
        let err = self.stderr.trim().replace('\n', " | ");
        let n = err.chars().count();
        let err: String = if n > 600 {
            format!("...{}", err.chars().skip(n - 600).collect::<String>())
        } else {
            err
        };
        format!("`{}` {how}; stderr: {err}", self.argv)
    }
}

impl Runtime {
    pub fn new(path: PathBuf, root: PathBuf, scratch: PathBuf) -> Runtime {
        Runtime {
            path,
            root,
            scratch,
            counter: Cell::new(0),
            deadline: Cell::new(None),
            reaping: Cell::new(true),
        }
    }

    /// Starts a scenario's time budget; commands after it has run out fail at once.
    pub fn start_budget(&self) {
        self.deadline.set(Some(Instant::now() + SCENARIO_BUDGET));
    }

    /// Gives the scenario a longer budget than [`SCENARIO_BUDGET`], from now (for a
    /// sweep that is slow by nature and bounds itself, such as restores under
    /// emulation).
    pub fn start_budget_for(&self, budget: Duration) {
        self.deadline.set(Some(Instant::now() + budget));
    }

    /// Lifts the budget (for cleanup).
    pub fn end_budget(&self) {
        self.deadline.set(None);
    }

    /// Runs `<runtime> --root <root> args...`, capturing stdout and stderr.
    pub fn run(&self, args: &[&str]) -> CmdOut {
        let n = self.counter.get() + 1;
        self.counter.set(n);
        let out = self.scratch.join(format!("cmd-{n}.out"));
        let err = self.scratch.join(format!("cmd-{n}.err"));
        let mut res = self.run_to(args, &out, &err);
        res.stdout = std::fs::read_to_string(&out).unwrap_or_default();
        res.stderr = std::fs::read_to_string(&err).unwrap_or_default();
        let _ = std::fs::remove_file(&out);
        let _ = std::fs::remove_file(&err);
        res
    }

    /// Runs the runtime with stdout and stderr sent to the given files (left in place; the
    /// runtime hands them on to the container). The returned stderr holds the file's text.
    pub fn run_to(&self, args: &[&str], out: &Path, err: &Path) -> CmdOut {
        let cmd = self.command(args);
        self.run_cmds(vec![(cmd, args, out, err)])
            .pop()
            .unwrap_or_else(|| self.not_run(args, "no result".into()))
    }

    /// Whether orphans are reaped while a command runs (the default, as an engine's
    /// shim reaps): a container's exec'd process reparented to the driver must not
    /// stay a zombie, or the pid namespace's init cannot finish dying and a runtime
    /// that waits for it (runc's `delete --force`) times out. Off for scenarios that
    /// need a zombie to stay.
    pub fn set_reaping(&self, on: bool) {
        self.reaping.set(on);
    }
}

impl Runtime {
    /// Like `run_to`, with `fds` handed to the runtime as fds 3, 4, ... without
    /// CLOEXEC (what an engine does for `create --preserve-fds N`).
    pub fn run_to_with_fds(
        &self,
        args: &[&str],
        out: &Path,
        err: &Path,
        fds: &[std::os::fd::BorrowedFd<'_>],
    ) -> CmdOut {
        use std::os::fd::AsRawFd;
        // CLOEXEC copies first (above every fd in use), so dup2 onto 3.. in the child
        // never clobbers a source that already sits on a low number.
        let copies = match fds
            .iter()
            .map(|f| f.try_clone_to_owned())
            .collect::<std::io::Result<Vec<_>>>()
        {
            Ok(c) => c,
            Err(e) => return self.not_run(args, format!("dup of an extra fd: {e}")),
        };
        let raw: Vec<i32> = copies.iter().map(AsRawFd::as_raw_fd).collect();
        let mut cmd = self.command(args);
        // SAFETY: the closure only calls dup2, which is async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                for (i, &src) in raw.iter().enumerate() {
                    if libc::dup2(src, 3 + i as i32) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let mut res = self.run_cmds(vec![(cmd, args, out, err)]);
        drop(copies);
        res.pop()
            .unwrap_or_else(|| self.not_run(args, "no result".into()))
    }

    /// Runs several runtime commands at the same moment (each bounded like `run`), for
    /// races between verbs; the results in the order given.
    pub fn run_concurrently(&self, argvs: &[Vec<&str>]) -> Vec<CmdOut> {
        let files: Vec<(PathBuf, PathBuf)> = argvs
            .iter()
            .map(|_| {
                let n = self.counter.get() + 1;
                self.counter.set(n);
                let f = |ext| self.scratch.join(format!("cmd-{n}.{ext}"));
                (f("out"), f("err"))
            })
            .collect();
        let cmds = argvs
            .iter()
            .zip(&files)
            .map(|(a, (o, e))| (self.command(a), a.as_slice(), o.as_path(), e.as_path()))
            .collect();
        let res = self.run_cmds(cmds);
        for (o, e) in &files {
            let _ = std::fs::remove_file(o);
            let _ = std::fs::remove_file(e);
        }
        res
    }

    /// Like `run_to`, with `stdin` as the runtime's standard input: a terminal for a
    /// foreground `run` of a terminal config, as a user at a shell gives it (runc
    /// refuses to proxy a console without one).
    pub fn run_to_with_stdin(
        &self,
        args: &[&str],
        out: &Path,
        err: &Path,
        stdin: std::os::fd::OwnedFd,
    ) -> CmdOut {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::from(stdin));
        let mut res = self.run_cmds(vec![(cmd, args, out, err)]);
        res.pop()
            .unwrap_or_else(|| self.not_run(args, "no result".into()))
    }

    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.path);
        // Its own process group, so a timeout can end the runtime with everything it forked.
        cmd.process_group(0)
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    fn not_run(&self, args: &[&str], why: String) -> CmdOut {
        let mut argv = vec![
            self.path.display().to_string(),
            "--root".to_string(),
            self.root.display().to_string(),
        ];
        argv.extend(args.iter().map(|a| a.to_string()));
        CmdOut {
            argv: argv.join(" "),
            code: None,
            timed_out: false,
            stdout: String::new(),
            stderr: why,
        }
    }

    /// Spawns every command with stdout and stderr to its files, then waits for all,
    /// killing any still running after COMMAND_TIMEOUT together with its process group.
    fn run_cmds(&self, cmds: Vec<(Command, &[&str], &Path, &Path)>) -> Vec<CmdOut> {
        let over = self.deadline.get().is_some_and(|d| Instant::now() > d);
        let mut all = Vec::new();
        for (mut cmd, args, out, err) in cmds {
            let mut res = self.not_run(args, String::new());
            let mut child = None;
            if over {
                res.timed_out = true;
                res.stderr =
                    format!("not run: the scenario used up its {SCENARIO_BUDGET:?} budget");
            } else {
                let spawned = File::create(out)
                    .and_then(|o| File::create(err).map(|e| (o, e)))
                    .and_then(|(o, e)| cmd.stdout(o).stderr(e).spawn());
                match spawned {
                    Ok(c) => {
                        // Ours to wait for: the orphan reaper below leaves it alone.
                        crate::reaper::protect(c.id() as i32);
                        child = Some(c)
                    }
                    Err(e) => res.stderr = format!("cannot run {}: {e}", self.path.display()),
                }
            }
            all.push((res, child, out, err));
        }
        let started = Instant::now();
        let mut polls = 0u32;
        loop {
            polls += 1;
            if self.reaping.get() && polls.is_multiple_of(10) {
                crate::reaper::reap_orphans();
            }
            let mut pending = false;
            for (res, slot, _, _) in all.iter_mut() {
                let Some(c) = slot.as_mut() else { continue };
                match c.try_wait() {
                    Ok(Some(st)) => res.code = st.code(),
                    Ok(None) if started.elapsed() > COMMAND_TIMEOUT => {
                        // The group leader is unreaped until wait below, so the pgid is ours.
                        let pgid = nix::unistd::Pid::from_raw(-(c.id() as i32));
                        let _ = nix::sys::signal::kill(pgid, nix::sys::signal::Signal::SIGKILL);
                        let _ = c.kill();
                        let _ = c.wait();
                        res.timed_out = true;
                    }
                    Ok(None) => {
                        pending = true;
                        continue;
                    }
                    Err(e) => res.stderr = format!("waitpid on {}: {e}", c.id()),
                }
                crate::reaper::unprotect(c.id() as i32);
                *slot = None;
            }
            if !pending {
                break;
            }
            sleep(Duration::from_millis(3));
        }
        all.into_iter()
            .map(|(mut res, _, out, err)| {
                if res.stderr.is_empty() {
                    res.stdout = std::fs::read_to_string(out).unwrap_or_default();
                    res.stderr = std::fs::read_to_string(err).unwrap_or_default();
                }
                res
            })
            .collect()
    }
}

/// What a command needs beyond its arguments: where it runs and what it reads.
#[derive(Default, Clone, Copy)]
pub struct Opts<'a> {
    /// The runtime's working directory (a relative `--pid-file`, `run` without
    /// `--bundle`); the driver's own otherwise.
    pub cwd: Option<&'a Path>,
    /// A file handed to the runtime as stdin (`update -r -`); /dev/null otherwise.
    pub stdin: Option<&'a Path>,
}

/// A runtime command left running in the background (`events`): killed with its
/// process group and reaped when dropped, and kept from the orphan reaper meanwhile.
pub struct Background {
    child: std::process::Child,
    pub out: PathBuf,
    pub err: PathBuf,
}

impl Background {
    /// The runtime process's pid (to signal it on its own, without its group).
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// What it has written to stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Waits up to `limit` for it to exit on its own; its exit code, or None if it
    /// is still running (it is left running) or was killed by a signal.
    pub fn wait_exit(&mut self, limit: Duration) -> Result<Option<i32>, String> {
        let t = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(st)) => return Ok(st.code()),
                Ok(None) if t.elapsed() > limit => {
                    return Err(format!("still running after {limit:?}"))
                }
                Ok(None) => sleep(Duration::from_millis(20)),
                Err(e) => return Err(format!("waitpid {}: {e}", self.child.id())),
            }
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        if let Ok(None) = self.child.try_wait() {
            let pgid = nix::unistd::Pid::from_raw(-pid);
            let _ = nix::sys::signal::kill(pgid, nix::sys::signal::Signal::SIGKILL);
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        crate::reaper::unprotect(pid);
        let _ = std::fs::remove_file(&self.out);
        let _ = std::fs::remove_file(&self.err);
    }
}

impl Runtime {
    /// Like `run`, with a working directory and stdin of the caller's choice.
    pub fn run_opts(&self, args: &[&str], opts: Opts<'_>) -> CmdOut {
        let (out, err) = self.next_files();
        let mut cmd = self.command(args);
        if let Some(d) = opts.cwd {
            cmd.current_dir(d);
        }
        if let Some(p) = opts.stdin {
            match File::open(p) {
                Ok(f) => {
                    cmd.stdin(f);
                }
                Err(e) => return self.not_run(args, format!("stdin {}: {e}", p.display())),
            }
        }
        let res = self
            .run_cmds(vec![(cmd, args, out.as_path(), err.as_path())])
            .pop()
            .unwrap_or_else(|| self.not_run(args, "no result".into()));
        let _ = std::fs::remove_file(&out);
        let _ = std::fs::remove_file(&err);
        res
    }

    /// Starts `args` in the background with stdout and stderr sent to files.
    pub fn spawn(&self, args: &[&str]) -> Result<Background, String> {
        let (out, err) = self.next_files();
        let files = File::create(&out).and_then(|o| File::create(&err).map(|e| (o, e)));
        let (o, e) = files.map_err(|e| format!("output files {}: {e}", out.display()))?;
        let child = self
            .command(args)
            .stdout(o)
            .stderr(e)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.path.display()))?;
        crate::reaper::protect(child.id() as i32);
        Ok(Background { child, out, err })
    }

    /// The same runtime binary with another state directory (`--root`); its command
    /// output files live in a scratch directory of their own.
    pub fn with_root(&self, root: &Path) -> std::io::Result<Runtime> {
        let n = self.counter.get() + 1;
        self.counter.set(n);
        let scratch = self.scratch.join(format!("root-{n}"));
        std::fs::create_dir_all(&scratch)?;
        let rt = Runtime::new(self.path.clone(), root.to_path_buf(), scratch);
        rt.deadline.set(self.deadline.get());
        Ok(rt)
    }

    pub(crate) fn next_files(&self) -> (PathBuf, PathBuf) {
        let n = self.counter.get() + 1;
        self.counter.set(n);
        let f = |ext| self.scratch.join(format!("cmd-{n}.{ext}"));
        (f("out"), f("err"))
    }
}
