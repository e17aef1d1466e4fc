//! Shared by the `contract_*` scenarios, which check what runc 1.1.5's integration
//! suite (`tests/integration/*.bats`) holds runc to, on the runtime under test: the
//! busybox image those tests use (every applet), `run -d` with a console socket, and
//! small waits and readers.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::terminal::{console_listener, receive_fd};
use crate::bundle::Bundle;
use crate::ctx::Ctx;
use crate::spec::{default_config, set};
use crate::verdict::Verdict;
use crate::{ensure, fail};

/// The default config running `args`, with a cgroup under the run's parent.
pub fn cfg(args: &[&str]) -> Value {
    default_config(args, "/placeholder")
}

/// Links every busybox applet into the rootfs, as in the busybox image runc's tests
/// run (`ps`, `env`, `tee`, `mknod`, `dd`...).
pub fn full_busybox(b: &Bundle) -> Result<(), Verdict> {
    let list = std::process::Command::new(b.rootfs().join("bin/busybox"))
        .arg("--list")
        .output()
        .map_err(|e| Verdict::Fail(format!("busybox --list: {e}")))?;
    for a in String::from_utf8_lossy(&list.stdout).lines() {
        let link = b.rootfs().join("bin").join(a);
        if a != "busybox" && !link.exists() {
            std::os::unix::fs::symlink("busybox", &link)?;
        }
    }
    Ok(())
}

/// A prepared bundle (every applet linked) for `cfg`.
pub fn prepare(c: &mut Ctx, cfg: Value) -> Result<(String, Bundle), Verdict> {
    let (id, b) = c.prepare(cfg, false)?;
    full_busybox(&b)?;
    Ok((id, b))
}

/// `run -d` of a prepared bundle; the container's stdio are the bundle's output files.
pub fn run_detached(c: &Ctx, b: &Bundle, id: &str) -> Result<(), Verdict> {
    let bp = b.path_str();
    let out = c.suite.rt.run_to(
        &["run", "-d", "--bundle", &bp, id],
        &b.stdout_path(),
        &b.stderr_path(),
    );
    ensure!(out.ok(), "run -d failed: {}", out.describe());
    Ok(())
}

/// A started container as runc's tests make one: `sh` on a terminal, `run -d` with a
/// console socket. The pty master is returned: the shell lives while it is open.
pub fn run_tty_shell(
    c: &mut Ctx,
    edit: impl FnOnce(&mut Value),
) -> Result<(String, Bundle, OwnedFd), Verdict> {
    let mut cfg = cfg(&["sh"]);
    set(&mut cfg, "process/terminal", json!(true));
    edit(&mut cfg);
    let (id, b) = prepare(c, cfg)?;
    let master = run_tty(c, &b, &id, &["run", "-d"])?;
    Ok((id, b, master))
}

/// `verb... --console-socket S --bundle B id` for a terminal config; the pty master.
pub fn run_tty(c: &Ctx, b: &Bundle, id: &str, verb: &[&str]) -> Result<OwnedFd, Verdict> {
    let sock = c.suite.bundles.join(format!("{id}.tty.sock"));
    let listener = console_listener(&sock)?;
    let (ss, bp) = (sock.display().to_string(), b.path_str());
    let mut args = verb.to_vec();
    args.extend_from_slice(&["--console-socket", &ss, "--bundle", &bp, id]);
    let out = c.rt(&args);
    let _ = std::fs::remove_file(&sock);
    ensure!(out.ok(), "{}", out.describe());
    receive_fd(&listener)
}

/// Polls until `f` holds or `limit` passes.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        sleep(Duration::from_millis(20));
    }
    f()
}

/// The status `state` reports, or a failure naming the state output.
pub fn expect_status(c: &Ctx, id: &str, want: &str) -> Result<(), Verdict> {
    let got = c.status(id)?;
    ensure!(got == want, "{id} is {got:?}, want {want:?}");
    Ok(())
}

/// `state id` must fail: the container is gone.
pub fn expect_gone(c: &Ctx, id: &str, why: &str) -> Result<(), Verdict> {
    let out = c.rt(&["state", id]);
    if out.ok() {
        fail!("state {id} still works {why}: {}", out.stdout.trim());
    }
    Ok(())
}

/// The container's cgroup directory in the hierarchy of `controller` (v1) or on the
/// unified mount (v2), for the cgroupsPath `rel`.
pub fn cgroup_dir(controller: &str, rel: &str) -> Result<std::path::PathBuf, Verdict> {
    crate::cgroup::controller(controller)
        .map(|c| c.dir(rel))
        .ok_or_else(|| Verdict::Skip(format!("no {controller} controller on this host")))
}

/// A cgroup file's trimmed text, or a failure naming it.
pub fn read_cg(dir: &Path, file: &str) -> Result<String, Verdict> {
    let p = dir.join(file);
    std::fs::read_to_string(&p)
        .map(|s| s.trim().to_string())
        .map_err(|e| Verdict::Fail(format!("read {}: {e}", p.display())))
}

/// True if this host's cgroup hierarchy is cgroup2 only.
pub fn unified_host() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// A foreground `run` of a prepared bundle, its output captured.
pub fn run_foreground(c: &Ctx, b: &Bundle, id: &str) -> crate::runtime::CmdOut {
    let bp = b.path_str();
    c.rt(&["run", "--bundle", &bp, id])
}

/// The `cgroup` mount at /sys/fs/cgroup that runc's `spec` writes (read-only); its
/// tests drop the `ro` where the container must write there.
pub fn cgroup_mount(read_only: bool) -> Value {
    let mut options = vec!["nosuid", "noexec", "nodev", "relatime"];
    if read_only {
        options.push("ro");
    }
    json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
           "options": options})
}
