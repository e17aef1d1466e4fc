//! process.terminal with --console-socket: the runtime hands the pty master to the
//! engine over a unix socket (SCM_RIGHTS), and the process's stdio is the pty slave.

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    accept, bind, listen, recvmsg, socket, AddressFamily, Backlog, ControlMessageOwned, MsgFlags,
    SockFlag, SockType, UnixAddr,
};
use serde_json::json;

use super::running::stop_and_delete;
use crate::ctx::Ctx;
use crate::spec::{default_config, set, sh};
use crate::verdict::{Res, Verdict};
use crate::{ensure, fail};

fn err(what: &str) -> impl Fn(nix::errno::Errno) -> Verdict + '_ {
    move |e| Verdict::Fail(format!("{what}: {e}"))
}

/// A listening unix socket at `path` for `--console-socket`.
pub(super) fn console_listener(path: &std::path::Path) -> Result<OwnedFd, Verdict> {
    let listener = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(err("socket"))?;
    let addr = UnixAddr::new(path).map_err(err("socket address"))?;
    bind(listener.as_raw_fd(), &addr).map_err(err("bind console socket"))?;
    listen(&listener, Backlog::new(4).map_err(err("backlog"))?).map_err(err("listen"))?;
    Ok(listener)
}

/// Waits for the runtime's connection and takes the one fd it sends.
pub(super) fn receive_fd(listener: &OwnedFd) -> Result<OwnedFd, Verdict> {
    let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
    let n = poll(&mut fds, PollTimeout::from(5000u16)).map_err(err("poll console socket"))?;
    ensure!(n == 1, "the runtime never connected to the console socket");
    let conn = accept(listener.as_raw_fd()).map_err(err("accept console socket"))?;
    // SAFETY: accept returned a new descriptor that nothing else owns.
    let conn = unsafe { OwnedFd::from_raw_fd(conn) };
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 2]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(err("recvmsg console socket"))?;
    for cm in msg.cmsgs().map_err(err("control messages"))? {
        if let ControlMessageOwned::ScmRights(fds) = cm {
            if let Some(fd) = fds.first() {
                // SAFETY: the kernel installed this descriptor for us; we own it now.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    fail!("the console socket message carried no file descriptor")
}

/// Reads what the pty master yields until `until` appears or the time is up.
pub(super) fn read_master(master: &OwnedFd, until: &str, limit: Duration) -> String {
    let mut out = Vec::new();
    let t = Instant::now();
    while t.elapsed() < limit && !String::from_utf8_lossy(&out).contains(until) {
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if !matches!(poll(&mut fds, PollTimeout::from(200u16)), Ok(n) if n > 0) {
            continue;
        }
        let mut buf = [0u8; 1024];
        match nix::unistd::read(master, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn process_terminal(c: &mut Ctx) -> Res {
    let script = "test -t 0 && test -t 1 && test -t 2 && echo TTY-OK; \
                  test -c /dev/console && echo CONSOLE-OK; echo DONE; sleep 1";
    let a = sh(script);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let mut cfg = default_config(&a, "/placeholder");
    set(&mut cfg, "process/terminal", json!(true));
    let (id, b) = c.prepare(cfg, false)?;
    let path = c.suite.bundles.join(format!("{id}.sock"));
    let listener = console_listener(&path)?;
    let ps = path.display().to_string();
    let out = c.create_with(&b, &id, &["--console-socket", &ps]);
    let _ = std::fs::remove_file(&path);
    ensure!(
        out.ok(),
        "create --console-socket failed: {}",
        out.describe()
    );
    let master = receive_fd(&listener)?;
    let md = nix::sys::stat::fstat(master.as_fd()).map_err(err("fstat pty master"))?;
    let rdev = md.st_rdev;
    ensure!(
        (libc::major(rdev), libc::minor(rdev)) == (5, 2),
        "the received fd is {}:{} not a pty master (5:2)",
        libc::major(rdev),
        libc::minor(rdev)
    );
    c.must(&["start", &id])?;
    let text = read_master(&master, "DONE", Duration::from_secs(5));
    c.wait_stopped(&id)?;
    c.must(&["delete", &id])?;
    ensure!(
        text.contains("TTY-OK"),
        "stdin, stdout and stderr are not all the terminal: {text:?}"
    );
    ensure!(
        text.contains("CONSOLE-OK"),
        "/dev/console is not a character device in the container: {text:?}"
    );
    Ok(())
}

/// CVE-2025-52565: the console is bound only onto a plain /dev/console of the
/// container's /dev, never over a mount point (here a bind of a bundle file onto
/// /dev/console): create fails naming it, and the file is untouched. runc 1.1.5 binds
/// the pty over it; this is berth's behaviour.
pub fn console_not_bound_over_a_mount_point(c: &mut Ctx) -> Res {
    let mut cfg = default_config(&["/bin/true"], "/placeholder");
    set(&mut cfg, "process/terminal", json!(true));
    let (id, b) = c.prepare(cfg.clone(), false)?;
    // The config is written again below: keep the run's own cgroupsPath, not the
    // placeholder (a fixed path is shared with whatever else runs on the host).
    let cg = c.cgroups_path(&id);
    set(&mut cfg, "linux/cgroupsPath", json!(cg));
    let victim = b.dir.join("victim");
    std::fs::write(&victim, "untouched")
        .map_err(|e| Verdict::Fail(format!("write {}: {e}", victim.display())))?;
    crate::spec::push(
        &mut cfg,
        "mounts",
        json!({"destination": "/dev/console", "type": "bind",
               "source": victim, "options": ["bind"]}),
    );
    b.write_config(&cfg)?;
    let path = c.suite.bundles.join(format!("{id}.sock"));
    let listener = console_listener(&path)?;
    let ps = path.display().to_string();
    let out = c.create_with(&b, &id, &["--console-socket", &ps]);
    let _ = std::fs::remove_file(&path);
    drop(listener);
    if out.ok() {
        let _ = c.rt(&["delete", "--force", &id]);
        fail!("create bound the console over a mount point at /dev/console");
    }
    ensure!(
        out.stderr.contains("/dev/console") && out.stderr.contains("mount point"),
        "the refusal does not name /dev/console as a mount point: {}",
        out.stderr.trim()
    );
    ensure!(
        !c.rt(&["state", &id]).ok(),
        "a failed create left container {id} behind"
    );
    let text = std::fs::read_to_string(&victim).unwrap_or_default();
    ensure!(text == "untouched", "the bound file changed: {text:?}");
    Ok(())
}

/// `create --console-socket` of `cfg` (a terminal process), `start`, and what the
/// pty master yields until `DONE`.
fn run_on_console(c: &mut Ctx, cfg: serde_json::Value) -> Result<String, Verdict> {
    let (id, b) = c.prepare(cfg, false)?;
    let path = c.suite.bundles.join(format!("{id}.sock"));
    let listener = console_listener(&path)?;
    let ps = path.display().to_string();
    let out = c.create_with(&b, &id, &["--console-socket", &ps]);
    let _ = std::fs::remove_file(&path);
    ensure!(
        out.ok(),
        "create --console-socket failed: {}",
        out.describe()
    );
    let master = receive_fd(&listener)?;
    c.must(&["start", &id])?;
    let text = read_master(&master, "DONE", Duration::from_secs(5));
    c.wait_stopped(&id)?;
    c.must(&["delete", &id])?;
    Ok(text)
}

/// `exec --detach --tty --console-socket S <args>` and what its pty master yields
/// until `DONE`.
fn exec_on_console(c: &mut Ctx, args: &[&str]) -> Result<String, Verdict> {
    // A fresh name per call, short enough for a unix socket address.
    let path = c.suite.bundles.join(format!("{}.sock", c.new_id()));
    let listener = console_listener(&path)?;
    let ps = path.display().to_string();
    let mut argv = vec!["exec", "--detach", "--tty", "--console-socket", &ps];
    argv.extend_from_slice(args);
    let out = c.rt(&argv);
    let _ = std::fs::remove_file(&path);
    ensure!(out.ok(), "`{}` failed: {}", out.argv, out.describe());
    let master = receive_fd(&listener)?;
    Ok(read_master(&master, "DONE", Duration::from_secs(5)))
}

/// The `<uid>:<gid>` line a `stat -c %u:%g $(tty)` printed on the terminal.
fn owner_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).find(|l| {
        l.split_once(':')
            .is_some_and(|(u, g)| u.parse::<u32>().is_ok() && g.parse::<u32>().is_ok())
    })
}

/// tty.bats "[tty owner] ({u,g}id != 0)" for run and exec: the pty slave belongs to
/// the process's uid, and its group stays the devpts mount's `gid=5` (not the
/// process's gid 100), as runc has it.
pub fn terminal_owner_is_process_user(c: &mut Ctx) -> Res {
    let script = "stat -c %u:%g $(tty); echo DONE; sleep 1";
    let a = sh(script);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let mut cfg = default_config(&a, "/placeholder");
    set(&mut cfg, "process/terminal", json!(true));
    set(&mut cfg, "process/user", json!({"uid": 1000, "gid": 100}));
    let text = run_on_console(c, cfg)?;
    ensure!(
        owner_line(&text) == Some("1000:5"),
        "run: the terminal's owner is not 1000:5: {text:?}"
    );

    let (id, _b) = super::running::start_with(c, &["/bin/sleep", "60"], |cfg| {
        set(cfg, "process/user", json!({"uid": 1000, "gid": 100}));
    })?;
    let text = exec_on_console(c, &[&id, "/bin/sh", "-c", script])?;
    stop_and_delete(c, &id)?;
    ensure!(
        owner_line(&text) == Some("1000:5"),
        "exec: the terminal's owner is not 1000:5: {text:?}"
    );
    Ok(())
}

/// The `<rows> <columns>` line `stty size` printed on the terminal.
fn size_line(text: &str) -> Option<&str> {
    text.lines()
        .map(str::trim)
        .find(|l| l.split(' ').count() == 2 && l.split(' ').all(|n| n.parse::<u16>().is_ok()))
}

/// `process.consoleSize` is set on the pty before the process starts: for the
/// container's process (config.json) and for `exec -p` (tty.bats "runc exec [tty
/// consolesize]").
pub fn terminal_console_size(c: &mut Ctx) -> Res {
    let script = "stty size; echo DONE; sleep 1";
    let a = sh(script);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let mut cfg = default_config(&a, "/placeholder");
    set(&mut cfg, "process/terminal", json!(true));
    set(
        &mut cfg,
        "process/consoleSize",
        json!({"height": 10, "width": 110}),
    );
    let text = run_on_console(c, cfg)?;
    ensure!(
        size_line(&text) == Some("10 110"),
        "run: stty size is not \"10 110\": {text:?}"
    );

    let (id, b) = super::running::start_sleeper(c)?;
    let process = b.dir.join("process.json");
    std::fs::write(
        &process,
        json!({"terminal": true, "consoleSize": {"height": 12, "width": 90},
               "args": ["/bin/sh", "-c", script], "cwd": "/",
               "user": {"uid": 0, "gid": 0},
               "env": ["PATH=/bin"]})
        .to_string(),
    )?;
    let p = process.display().to_string();
    let text = exec_on_console(c, &["-p", &p, &id])?;
    stop_and_delete(c, &id)?;
    ensure!(
        size_line(&text) == Some("12 90"),
        "exec -p: stty size is not \"12 90\": {text:?}"
    );
    Ok(())
}

/// berth's `exec --console-size WIDTHxHEIGHT` (runc 1.1.5 has no such flag; it
/// sets process.consoleSize): the size is on the pty before the process starts, and
/// the flag without a terminal is refused.
pub fn exec_tty_console_size_flag(c: &mut Ctx) -> Res {
    let (id, _b) = super::running::start_sleeper(c)?;
    let text = exec_on_console(
        c,
        &[
            "--console-size",
            "100x20",
            &id,
            "/bin/sh",
            "-c",
            "stty size; echo DONE; sleep 1",
        ],
    )?;
    ensure!(
        size_line(&text) == Some("20 100"),
        "exec --console-size 100x20: stty size is not \"20 100\": {text:?}"
    );
    c.must_fail(
        &["exec", "--console-size", "100x20", &id, "/bin/true"],
        "--console-size without a terminal",
    )?;
    stop_and_delete(c, &id)?;
    Ok(())
}
