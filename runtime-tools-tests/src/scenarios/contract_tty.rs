//! runc's terminal contract (tty.bats): a container process with `terminal: true`
//! has the pty as stdin, stdout and stderr (`/dev/pts/N`), owned by its user and the
//! tty group (5), with a working `stty size`, for a foreground `run` and `exec -t`
//! whose own stdin is not a terminal (a user's shell with input redirected: the
//! runtime finds its controlling terminal); and `terminal: false` containers run
//! detached or not without hanging on their stdio. Non-zero uids and consoleSize are
//! checked elsewhere (the mounts helper's branch).

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use super::terminal::{console_listener, receive_fd};
use crate::ctx::Ctx;
use crate::runtime::{CmdOut, COMMAND_TIMEOUT};
use crate::spec::{default_config, set, sh};
use crate::verdict::{Res, Verdict};
use crate::{ensure, fail};

/// The script run with a terminal: stty's status, where fds 0-2 point, the pty's owner.
const TTY_SCRIPT: &str = "s=$(stty size); echo stty=$? size=$s; \
     for f in 0 1 2; do readlink /proc/self/fd/$f; done; \
     echo owner=$(stat -c %u:%g $(tty))";

/// Starts the runtime with stdin /dev/null and stdout/stderr to files; with `ctty`,
/// in a session of its own whose controlling terminal is a pty the driver holds
/// (returned, to be kept open until the runtime is done).
fn spawn_runtime(
    c: &Ctx,
    args: &[&str],
    out: &Path,
    err: &Path,
    ctty: bool,
) -> Result<(Child, Option<OwnedFd>), Verdict> {
    let mut cmd = Command::new(&c.suite.rt.path);
    cmd.arg("--root")
        .arg(&c.suite.rt.root)
        .args(args)
        .stdin(Stdio::null())
        .stdout(File::create(out)?)
        .stderr(File::create(err)?);
    let mut master = None;
    if ctty {
        let pty =
            nix::pty::openpty(None, None).map_err(|e| Verdict::Fail(format!("openpty: {e}")))?;
        for fd in [&pty.master, &pty.slave] {
            nix::fcntl::fcntl(
                fd,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
            )
            .map_err(|e| Verdict::Fail(format!("cloexec on the pty: {e}")))?;
        }
        // The caller's terminal size, which the runtime gives the container's pty.
        let ws = libc::winsize {
            ws_row: 33,
            ws_col: 111,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize struct.
        if unsafe { libc::ioctl(pty.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) } != 0 {
            fail!("TIOCSWINSZ: {}", std::io::Error::last_os_error());
        }
        let slave = pty.slave.as_raw_fd();
        // SAFETY: setsid and ioctl are async-signal-safe; `slave` stays open in the
        // parent until after spawn returns.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setsid() < 0 || libc::ioctl(slave, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        drop(pty.slave);
        master = Some(pty.master);
        return Ok((child, master));
    }
    // Its own process group, so a timeout ends everything it forked.
    cmd.process_group(0);
    Ok((cmd.spawn()?, master))
}

/// Waits for a spawned runtime (COMMAND_TIMEOUT at most, then its group is killed).
fn wait_runtime(mut child: Child, argv: String, out: &Path, err: &Path) -> CmdOut {
    let started = Instant::now();
    let mut res = CmdOut {
        argv,
        code: None,
        timed_out: false,
        stdout: String::new(),
        stderr: String::new(),
    };
    loop {
        match child.try_wait() {
            Ok(Some(st)) => {
                res.code = st.code();
                break;
            }
            Ok(None) if started.elapsed() > COMMAND_TIMEOUT => {
                let pgid = nix::unistd::Pid::from_raw(-(child.id() as i32));
                let _ = nix::sys::signal::kill(pgid, nix::sys::signal::Signal::SIGKILL);
                let _ = child.kill();
                let _ = child.wait();
                res.timed_out = true;
                break;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => break,
        }
    }
    res.stdout = std::fs::read_to_string(out).unwrap_or_default();
    res.stderr = std::fs::read_to_string(err).unwrap_or_default();
    res
}

/// Runs the runtime to its end with a controlling terminal and stdin /dev/null.
fn run_with_ctty(c: &Ctx, args: &[&str], scratch: &Path) -> Result<CmdOut, Verdict> {
    let (out, err) = (scratch.join("ctty.out"), scratch.join("ctty.err"));
    let (child, master) = spawn_runtime(c, args, &out, &err, true)?;
    let res = wait_runtime(
        child,
        format!("{} {}", c.suite.rt.path.display(), args.join(" ")),
        &out,
        &err,
    );
    drop(master);
    Ok(res)
}

/// Judges TTY_SCRIPT's output.
fn judge_tty(what: &str, out: &CmdOut, uid_gid: &str) -> Res {
    ensure!(out.ok(), "{what}: {}", out.describe());
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .collect();
    ensure!(
        lines.contains(&"stty=0 size=33 111"),
        "{what}: `stty size` must work and give the caller's terminal size (33 111): {:?}",
        out.stdout
    );
    // runc clears ONLCR on the pty it proxies: the output is the process's bytes.
    ensure!(
        !out.stdout.contains('\r'),
        "{what}: the output has carriage returns the process did not write: {:?}",
        out.stdout
    );
    let fds = lines.iter().filter(|l| l.starts_with("/dev/pts/")).count();
    ensure!(
        fds == 3,
        "{what}: stdin, stdout and stderr must be /dev/pts/N: {:?}",
        out.stdout
    );
    let owner = format!("owner={uid_gid}");
    ensure!(
        lines.contains(&owner.as_str()),
        "{what}: the pty must belong to {uid_gid}: {:?}",
        out.stdout
    );
    Ok(())
}

/// `run` in the foreground with `terminal: true`, the runtime's stdin /dev/null but a
/// controlling terminal present: the process has the pty on 0, 1 and 2 (/dev/pts/N),
/// owned by 0:5, of the caller's terminal size; its output arrives as written.
pub fn contract_tty_run(c: &mut Ctx) -> Res {
    let a = sh(TTY_SCRIPT);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let mut cfg = default_config(&a, "/placeholder");
    set(&mut cfg, "process/terminal", json!(true));
    let (id, b) = c.prepare(cfg, false)?;
    let bp = b.path_str();
    let out = run_with_ctty(c, &["run", "--bundle", &bp, &id], &b.dir)?;
    judge_tty("run with a terminal", &out, "0:5")
}

/// `exec -t` in the foreground into a running container (itself started with a
/// terminal on a console socket), stdin /dev/null: the same as for `run`.
pub fn contract_tty_exec(c: &mut Ctx) -> Res {
    let mut cfg = default_config(&["/bin/sleep", "60"], "/placeholder");
    set(&mut cfg, "process/terminal", json!(true));
    let (id, b) = c.prepare(cfg, false)?;
    let sock = b.dir.join("console.sock");
    let listener = console_listener(&sock)?;
    let sp = sock.display().to_string();
    let out = c.create_with(&b, &id, &["--console-socket", &sp]);
    ensure!(out.ok(), "create --console-socket: {}", out.describe());
    let _master = receive_fd(&listener)?;
    c.must(&["start", &id])?;
    c.wait_status(&id, "running", Duration::from_secs(10))?;
    let out = run_with_ctty(c, &["exec", "-t", &id, "/bin/sh", "-c", TTY_SCRIPT], &b.dir)?;
    judge_tty("exec -t", &out, "0:5")?;
    c.must(&["kill", &id, "KILL"])?;
    c.wait_stopped(&id)?;
    c.must(&["delete", &id])?;
    Ok(())
}

/// `terminal: false` with the runtime's stdio inherited by the container: `create` +
/// `start`, `run` in the foreground (left running, then killed: it returns the
/// process's status and deletes the container) and `run -d` (returns at once) all
/// give a running container that `kill KILL` ends (runc#1354).
pub fn contract_terminal_false(c: &mut Ctx) -> Res {
    let cfg = default_config(&["/bin/sleep", "1000"], "/placeholder");
    let (id, b) = c.prepare(cfg.clone(), false)?;
    c.must_create(&b, &id)?;
    c.must(&["start", &id])?;
    c.wait_status(&id, "running", Duration::from_secs(10))?;
    c.must(&["kill", &id, "KILL"])?;
    c.wait_stopped(&id)?;
    c.must(&["delete", &id])?;

    let (id, b) = c.prepare(cfg.clone(), false)?;
    let bp = b.path_str();
    let (out, err) = (b.dir.join("run.out"), b.dir.join("run.err"));
    let args = ["run", "--bundle", bp.as_str(), id.as_str()];
    let (mut child, _) = spawn_runtime(c, &args, &out, &err, false)?;
    // Waited for here, not by the orphan reaper.
    let pid = child.id() as i32;
    crate::reaper::protect(pid);
    // The container appears once `run` has created it: until then `state` fails.
    let deadline = Instant::now() + Duration::from_secs(10);
    let running = loop {
        let st = c.rt(&["state", &id]);
        if st.ok() && st.stdout.contains("\"running\"") {
            break Ok(());
        }
        if Instant::now() > deadline {
            break Err(Verdict::Fail(format!(
                "not running within 10 s: {}",
                st.describe()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let killed = running.and_then(|_| c.must(&["kill", &id, "KILL"]).map(|_| ()));
    if let Err(e) = killed {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(-pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = child.wait();
        crate::reaper::unprotect(pid);
        let said = std::fs::read_to_string(&err).unwrap_or_default();
        fail!(
            "a foreground run with its container running, then killed: {e}; run's stderr: {said:?}"
        );
    }
    let res = wait_runtime(child, args.join(" "), &out, &err);
    crate::reaper::unprotect(pid);
    ensure!(
        res.code == Some(128 + libc::SIGKILL) && !res.timed_out,
        "the foreground run of a killed container must exit 137: {}",
        res.describe()
    );
    ensure!(
        !c.rt(&["state", &id]).ok(),
        "the foreground run left {id} behind"
    );

    let (id, b) = c.prepare(cfg, false)?;
    let bp = b.path_str();
    let out = c.rt(&["run", "-d", "--bundle", &bp, &id]);
    ensure!(out.ok(), "run -d: {}", out.describe());
    ensure!(
        c.status(&id)? == "running",
        "after run -d the container is not running"
    );
    c.must(&["kill", &id, "KILL"])?;
    c.wait_stopped(&id)?;
    c.must(&["delete", &id])?;
    Ok(())
}
