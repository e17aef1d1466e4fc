//! One config driven to completion twice, as engines drive a runtime: create, state,
//! start, wait for the init's exit status (the driver is its subreaper, as a shim
//! is), state, delete; then `run` in the foreground. Both must give exit code 0 and
//! the expected output, and leave no container behind.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use serde_json::Value;

use super::terminal::{console_listener, read_master, receive_fd};
use crate::bundle::Bundle;
use crate::ctx::{judge_tap, verbose_dump, Ctx};
use crate::verdict::{Res, Verdict};
use crate::{ensure, fail, reaper};

/// Where config.json and the rootfs sit.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `<bundle>/config.json` with `root.path` relative to it (`rootfs`); a copy of
    /// the config at the rootfs's top for the checker.
    Rootfs,
    /// runtime-tools' validation layout (`root.path` "."): the bundle directory is the
    /// rootfs and config.json lies inside it, where the checker reads it.
    BundleIsRootfs,
}

/// What the container must print.
pub enum Expect {
    /// Exactly this (carriage returns from a terminal removed).
    Text(String),
    /// The checker's TAP: no `not ok`, ending with its plan.
    Tap,
}

/// How to build the bundle for one container of a flow.
pub struct Plan<'p> {
    pub cfg: &'p Value,
    pub layout: Layout,
    /// Copy the checker (`/runtimetest`) into the rootfs.
    pub checker: bool,
    /// Called with the config and the new bundle before config.json is written
    /// (engine replays put their stand-in files there).
    pub adapt: &'p dyn Fn(&mut Value, &Bundle) -> Res,
    pub expect: Expect,
}

/// No change to the config.
pub fn as_is(_: &mut Value, _: &Bundle) -> Res {
    Ok(())
}

/// create/start/state/delete, then run: both with exit code 0 and the expected output.
pub fn lifecycle_and_run(c: &mut Ctx, p: &Plan) -> Res {
    lifecycle(c, p).map_err(|v| prefix("create/start/delete", v))?;
    run(c, p).map_err(|v| prefix("run", v))
}

fn prefix(what: &str, v: Verdict) -> Verdict {
    match v {
        Verdict::Fail(s) => Verdict::Fail(format!("{what}: {s}")),
        other => other,
    }
}

/// A fresh id and bundle holding the plan's config, with the run's cgroupsPath.
fn prepare(c: &mut Ctx, p: &Plan) -> Result<(String, Bundle, PathBuf), Verdict> {
    let id = c.new_id();
    let mut cfg = p.cfg.clone();
    // Engines always name the cgroup; without one the runtime would nest the
    // container under the driver's own cgroup, which belongs to the workplace.
    let cg = c.cgroups_path(&id);
    cfg["linux"]["cgroupsPath"] = Value::from(cg);
    let b = c.bundle(&id, p.checker)?;
    (p.adapt)(&mut cfg, &b)?;
    let text = serde_json::to_string_pretty(&cfg).map_err(std::io::Error::other)?;
    let dir = match p.layout {
        Layout::Rootfs => {
            b.write_config(&cfg)?;
            b.dir.clone()
        }
        Layout::BundleIsRootfs => {
            std::fs::write(b.rootfs().join("config.json"), text)?;
            b.rootfs()
        }
    };
    Ok((id, b, dir))
}

fn terminal(cfg: &Value) -> bool {
    cfg.pointer("/process/terminal") == Some(&Value::Bool(true))
}

fn lifecycle(c: &mut Ctx, p: &Plan) -> Res {
    let (id, b, dir) = prepare(c, p)?;
    let dir_s = dir.display().to_string();
    let mut args = vec!["create", "--bundle", dir_s.as_str()];
    let sock = c.suite.bundles.join(format!("{id}.sock"));
    let sock_s = sock.display().to_string();
    let listener = if terminal(p.cfg) {
        args.extend(["--console-socket", sock_s.as_str()]);
        Some(console_listener(&sock)?)
    } else {
        None
    };
    args.push(&id);
    let out = c.suite.rt.run_to(&args, &b.stdout_path(), &b.stderr_path());
    let _ = std::fs::remove_file(&sock);
    ensure!(out.ok(), "{}", out.describe());
    let master: Option<OwnedFd> = match &listener {
        Some(l) => Some(receive_fd(l)?),
        None => None,
    };
    let st = c.state(&id)?;
    ensure!(
        st["status"] == "created" && st["id"] == id.as_str(),
        "state after create: {st}"
    );
    let want_bundle = std::fs::canonicalize(&dir).unwrap_or(dir.clone());
    ensure!(
        st["bundle"].as_str().map(Path::new) == Some(want_bundle.as_path()),
        "state names bundle {} (want {})",
        st["bundle"],
        want_bundle.display()
    );
    let pid = c.pid(&id)?;
    // Ours to wait for, not the orphan reaper's: its exit status is the point.
    reaper::protect(pid);
    let res = started(c, p, &id, &b, pid, master.as_ref());
    reaper::unprotect(pid);
    res
}

fn started(c: &mut Ctx, p: &Plan, id: &str, b: &Bundle, pid: i32, master: Option<&OwnedFd>) -> Res {
    c.must(&["start", id])?;
    let st = c.status(id)?;
    ensure!(
        st == "running" || st == "stopped",
        "state right after start: {st}"
    );
    let mut text = match master {
        Some(m) => read_master(m, until(&p.expect), Duration::from_secs(10)),
        None => String::new(),
    };
    let code = wait_exit(pid, Duration::from_secs(10))?;
    if let Some(m) = master {
        text.push_str(&read_master(m, "\u{1}", Duration::from_millis(200)));
    } else {
        text = std::fs::read_to_string(b.stdout_path()).unwrap_or_default();
    }
    let err = std::fs::read_to_string(b.stderr_path()).unwrap_or_default();
    ensure!(
        code == 0,
        "the container's process exited {code}; stdout {text:?}, stderr {:?}",
        err.trim()
    );
    c.wait_stopped(id)?;
    judge(&p.expect, &text, &err)?;
    c.must(&["delete", id])?;
    ensure!(
        !c.rt(&["state", id]).ok(),
        "state {id} still answers after delete"
    );
    Ok(())
}

fn run(c: &mut Ctx, p: &Plan) -> Res {
    let (id, b, dir) = prepare(c, p)?;
    let dir_s = dir.display().to_string();
    let args = ["run", "--bundle", dir_s.as_str(), id.as_str()];
    let (o, e) = (b.stdout_path(), b.stderr_path());
    let out = if terminal(p.cfg) {
        // The user's terminal: the runtime's stdin; the master stays open until the
        // run is over (its other end must not hang up under the runtime).
        let pty =
            nix::pty::openpty(None, None).map_err(|e| Verdict::Fail(format!("openpty: {e}")))?;
        let out = c.suite.rt.run_to_with_stdin(&args, &o, &e, pty.slave);
        drop(pty.master);
        out
    } else {
        c.suite.rt.run_to(&args, &o, &e)
    };
    let text = std::fs::read_to_string(b.stdout_path()).unwrap_or_default();
    ensure!(
        out.ok(),
        "{} (want exit 0); stdout {text:?}",
        out.describe()
    );
    judge(&p.expect, &text, &out.stderr)?;
    ensure!(
        !c.rt(&["state", &id]).ok(),
        "run returned but container {id} is still there"
    );
    Ok(())
}

/// A text that shows the process has printed all it will.
fn until(e: &Expect) -> &str {
    match e {
        Expect::Text(t) => t.trim_end().rsplit('\n').next().unwrap_or(""),
        Expect::Tap => "\n1..",
    }
}

fn judge(e: &Expect, out: &str, err: &str) -> Res {
    let out = out.replace('\r', "");
    match e {
        Expect::Text(want) => {
            ensure!(
                out == *want,
                "output {out:?} (want {want:?}); stderr {:?}",
                err.trim()
            );
            Ok(())
        }
        Expect::Tap => {
            verbose_dump(&out);
            judge_tap(&out, err)
        }
    }
}

/// Waits for the container's init (a child of this subreaper once the runtime's
/// create has exited) and returns its exit code (128+N for signal N).
fn wait_exit(pid: i32, limit: Duration) -> Result<i32, Verdict> {
    let t = Instant::now();
    loop {
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) => {}
            Err(Errno::ECHILD) => fail!(
                "container init {pid} is not a child of the driver (its subreaper): \
                 its exit status cannot be read as an engine's shim reads it"
            ),
            Err(e) => fail!("waitpid {pid}: {e}"),
        }
        if t.elapsed() > limit {
            fail!("container init {pid} still running after {limit:?}");
        }
        sleep(Duration::from_millis(10));
    }
}
