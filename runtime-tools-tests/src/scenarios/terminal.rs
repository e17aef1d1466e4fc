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
