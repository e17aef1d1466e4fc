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
        }
    }

    /// Starts a scenario's time budget; commands after it has run out fail at once.
    pub fn start_budget(&self) {
        self.deadline.set(Some(Instant::now() + SCENARIO_BUDGET));
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
        let mut argv = vec![
            self.path.display().to_string(),
            "--root".to_string(),
            self.root.display().to_string(),
        ];
        argv.extend(args.iter().map(|a| a.to_string()));
        let mut res = CmdOut {
            argv: argv.join(" "),
            code: None,
            timed_out: false,
            stdout: String::new(),
            stderr: String::new(),
        };
        if self.deadline.get().is_some_and(|d| Instant::now() > d) {
            res.timed_out = true;
            res.stderr = format!("not run: the scenario used up its {SCENARIO_BUDGET:?} budget");
            return res;
        }
        let files = File::create(out).and_then(|o| File::create(err).map(|e| (o, e)));
        let (o, e) = match files {
            Ok(f) => f,
            Err(e) => {
                res.stderr = format!("cannot create output files {}: {e}", out.display());
                return res;
            }
        };
        // Its own process group, so a timeout can end the runtime with everything it forked.
        let child = Command::new(&self.path)
            .process_group(0)
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(o)
            .stderr(e)
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                res.stderr = format!("cannot run {}: {e}", self.path.display());
                return res;
            }
        };
        let started = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(st)) => {
                    res.code = st.code();
                    break;
                }
                Ok(None) if started.elapsed() > COMMAND_TIMEOUT => {
                    // The group leader is unreaped until wait below, so the pgid is still ours.
                    let pgid = nix::unistd::Pid::from_raw(-(child.id() as i32));
                    let _ = nix::sys::signal::kill(pgid, nix::sys::signal::Signal::SIGKILL);
                    let _ = child.kill();
                    let _ = child.wait();
                    res.timed_out = true;
                    break;
                }
                Ok(None) => sleep(Duration::from_millis(3)),
                Err(e) => {
                    res.stderr = format!("waitpid on {}: {e}", child.id());
                    break;
                }
            }
        }
        res.stderr = std::fs::read_to_string(err).unwrap_or_default();
        res
    }
}
