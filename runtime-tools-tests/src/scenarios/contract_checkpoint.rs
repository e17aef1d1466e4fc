//! runc's checkpoint contract (checkpoint.bats): `--parent-path` checked before CRIU
//! is asked anything; checkpoint and restore again and again of a container with a
//! cgroup namespace, a joined network namespace (the same one after restore), a bind
//! mount whose destination is a symlink and nested bind mounts whose mount points
//! are gone before restore; a pre-dump, a dump on top of it, and a restore whose stdio
//! pipes are the ones the container had; a container's own CRIU configuration file
//! (`org.criu.config`); lazy migration (`--lazy-pages` with a page server and CRIU's
//! lazy-pages daemon). Where CRIU cannot work (this host's kernel) the CRIU scenarios
//! skip with its reason; the VM lane runs them (a skip there is a failure).

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sched::CloneFlags;
use serde_json::json;

use super::running::start_with;
use crate::bundle::Bundle;
use crate::ctx::Ctx;
use crate::runtime::{CmdOut, COMMAND_TIMEOUT};
use crate::spec::{default_config, push};
use crate::verdict::{Res, Verdict};
use crate::{ensure, fail, skip};

/// A shell that runs on with its stdio on the container's own /dev/null (files of the
/// driver's could not be restored), so that pid 1 after restore can be recognised.
const SPINNER: &str =
    "exec </dev/null >/dev/null 2>&1; i=0; while :; do i=$((i+1)); sleep 0.2; done";

/// Skips unless `criu check` passes here (asked once per run: under emulation a
/// check takes seconds).
pub(super) fn need_criu() -> Res {
    static VERDICT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    match VERDICT.get_or_init(criu_unusable) {
        Some(why) => skip!("{why}"),
        None => Ok(()),
    }
}

/// Why CRIU cannot work here, or `None` when `criu check` passes.
fn criu_unusable() -> Option<String> {
    let out = Command::new("timeout")
        // No default configuration: one naming a log file would take the reason.
        .args(["30", "criu", "check", "--no-default-config"])
        .stdin(Stdio::null())
        .output();
    match out {
        Err(e) => Some(format!("criu cannot be run: {e}")),
        Ok(o) if !o.status.success() => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            let why = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no reason given")
                .to_string();
            Some(format!("CRIU cannot work here (`criu check`: {why})"))
        }
        Ok(_) => None,
    }
}

/// `--parent-path` that is absolute, or names no directory under the image path,
/// fails naming the flag, before CRIU is involved; the container keeps running.
pub fn contract_checkpoint_parent_path_refused(c: &mut Ctx) -> Res {
    let (id, b) = start_with(c, &["/bin/sleep", "60"], |_| {})?;
    let image = b.dir.join("image-dir").display().to_string();
    let work = b.dir.join("work-dir").display().to_string();
    let absolute = b.dir.join("parent-dir").display().to_string();
    for parent in [absolute.as_str(), "./parent-dir"] {
        let out = c.rt(&[
            "checkpoint",
            "--parent-path",
            parent,
            "--work-path",
            &work,
            "--image-path",
            &image,
            &id,
        ]);
        ensure!(
            !out.ok() && !out.timed_out && out.stderr.contains("--parent-path"),
            "checkpoint --parent-path {parent}: want a failure naming --parent-path: {}",
            out.describe()
        );
        ensure!(
            c.status(&id)? == "running",
            "after the refused checkpoint ({parent}) the container is not running"
        );
    }
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// checkpoint (the container is gone: `state` fails), then restore (running again,
/// pid 1 the same shell), with the global flags given.
fn cycle(c: &Ctx, id: &str, b: &Bundle, globals: &[&str], round: usize) -> Res {
    let work = b.dir.join("work-dir").display().to_string();
    let image = b.dir.join("image-dir").display().to_string();
    let mut args: Vec<&str> = globals.to_vec();
    args.extend([
        "checkpoint",
        "--work-path",
        &work,
        "--image-path",
        &image,
        id,
    ]);
    let out = c.rt(&args);
    ensure!(out.ok(), "round {round}: checkpoint: {}", out.describe());
    ensure!(
        !c.rt(&["state", id]).ok(),
        "round {round}: the container still exists after checkpoint"
    );
    Ok(())
}

fn restore(c: &Ctx, id: &str, b: &Bundle, globals: &[&str], round: usize) -> Res {
    let work = b.dir.join("work-dir").display().to_string();
    let image = b.dir.join("image-dir").display().to_string();
    let bp = b.path_str();
    let mut args: Vec<&str> = globals.to_vec();
    args.extend([
        "restore",
        "-d",
        "--work-path",
        &work,
        "--image-path",
        &image,
        "--bundle",
        &bp,
        id,
    ]);
    let out = c.rt(&args);
    ensure!(out.ok(), "round {round}: restore: {}", out.describe());
    let st = c.status(id)?;
    ensure!(
        st == "running",
        "round {round}: status after restore is {st:?}"
    );
    let init = c.must(&["exec", id, "cat", "/proc/1/cmdline"])?.stdout;
    ensure!(
        init.contains("while"),
        "round {round}: pid 1 after restore is not the shell: {init:?}"
    );
    Ok(())
}

fn ns_inode(pid: i32, ns: &str) -> Result<u64, Verdict> {
    let p = format!("/proc/{pid}/ns/{ns}");
    std::fs::metadata(&p)
        .map(|m| m.ino())
        .map_err(|e| Verdict::Fail(format!("stat {p}: {e}")))
}

/// Two rounds of checkpoint and restore (the second with `--debug`) of a container
/// with a cgroup namespace, a network namespace joined by path, a bind mount onto a
/// symlink (/conf -> /real/conf) and nested bind mounts (/test, /test/for/nested)
/// whose mount points are removed from the source before each restore: each restore
/// brings the same shell back, in the same network namespace, with the mounts where
/// they were and the cgroup namespace's root at its own cgroup.
pub fn contract_checkpoint_restore_cycles(c: &mut Ctx) -> Res {
    need_criu()?;
    let helper = crate::nshelper::spawn(CloneFlags::CLONE_NEWNET)
        .map_err(|e| Verdict::Fail(format!("a network namespace helper: {e}")))?;
    c.own_helper(helper);
    let netns = format!("/proc/{helper}/ns/net");
    let netns_ino = ns_inode(helper, "net")?;
    let dir = c.suite.bundles.join(format!("{}-binds", c.new_id()));
    c.own_dir(&dir);
    let (conf, bind1, bind2) = (dir.join("conf"), dir.join("bind1"), dir.join("bind2"));
    for d in [&conf, &bind1, &bind2] {
        std::fs::create_dir_all(d)?;
    }
    std::fs::write(conf.join("marker"), "conf\n")?;
    std::fs::write(bind2.join("marker"), "nested\n")?;
    let mut cfg = default_config(&["/bin/sh", "-c", SPINNER], "/placeholder");
    if let Some(ns) = cfg["linux"]["namespaces"].as_array_mut() {
        ns.retain(|n| n["type"] != "network");
        ns.push(json!({"type": "network", "path": netns}));
        ns.push(json!({"type": "cgroup"}));
    }
    push(
        &mut cfg,
        "mounts",
        json!({"source": conf, "destination": "/conf", "options": ["bind"]}),
    );
    push(
        &mut cfg,
        "mounts",
        json!({"type": "bind", "source": bind1, "destination": "/test",
               "options": ["rw", "bind"]}),
    );
    push(
        &mut cfg,
        "mounts",
        json!({"type": "bind", "source": bind2, "destination": "/test/for/nested",
               "options": ["rw", "bind"]}),
    );
    let (id, b) = c.prepare(cfg, false)?;
    symlink_layout(&b)?;
    c.must_create(&b, &id)?;
    c.must(&["start", &id])?;
    c.wait_status(&id, "running", Duration::from_secs(30))?;
    for (round, globals) in [(1, &[][..]), (2, &["--debug"][..])] {
        cycle(c, &id, &b, globals, round)?;
        // The mount points create made in the source are gone, as on another host.
        std::fs::remove_dir_all(bind1.join("for"))?;
        restore(c, &id, &b, globals, round)?;
        let pid = c.pid(&id)?;
        let ino = ns_inode(pid, "net")?;
        ensure!(
            ino == netns_ino,
            "round {round}: the restored container is in network namespace {ino}, not \
             the joined {netns_ino}"
        );
        let seen = c
            .must(&[
                "exec",
                &id,
                "sh",
                "-c",
                "cat /real/conf/marker /test/for/nested/marker; cat /proc/self/cgroup",
            ])?
            .stdout;
        ensure!(
            seen.starts_with("conf\nnested\n"),
            "round {round}: the bind mounts after restore: {seen:?}"
        );
        let cg_ok = seen
            .lines()
            .skip(2)
            .all(|l| l.ends_with(":/") || l.ends_with("::/"));
        ensure!(
            cg_ok,
            "round {round}: the cgroup namespace's root is not the container's cgroup: {seen:?}"
        );
    }
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// The rootfs layout for the cycles scenario: /real/conf and /conf -> /real/conf.
fn symlink_layout(b: &Bundle) -> Res {
    std::fs::create_dir_all(b.rootfs().join("real/conf"))?;
    std::os::unix::fs::symlink("/real/conf", b.rootfs().join("conf"))?;
    Ok(())
}

/// Reads a pipe until EOF (or `limit`).
fn read_to_eof(fd: OwnedFd, limit: Duration) -> String {
    let mut f = std::fs::File::from(fd);
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    while Instant::now() < deadline {
        let mut pfd = libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, 200 ms bound.
        if unsafe { libc::poll(&mut pfd, 1, 200) } <= 0 {
            continue;
        }
        let mut buf = [0u8; 4096];
        match f.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Runs the runtime with the given stdio (bounded like every runtime command).
fn run_with_stdio(
    c: &Ctx,
    args: &[&str],
    stdin: &OwnedFd,
    stdout: &OwnedFd,
    stderr: &OwnedFd,
) -> Result<CmdOut, Verdict> {
    let dup = |f: &OwnedFd| {
        f.as_fd()
            .try_clone_to_owned()
            .map_err(|e| Verdict::Fail(format!("dup: {e}")))
    };
    let mut child = Command::new(&c.suite.rt.path)
        .arg("--root")
        .arg(&c.suite.rt.root)
        .args(args)
        .stdin(Stdio::from(dup(stdin)?))
        .stdout(Stdio::from(dup(stdout)?))
        .stderr(Stdio::from(dup(stderr)?))
        .spawn()?;
    let started = Instant::now();
    let mut res = CmdOut {
        argv: args.join(" "),
        code: None,
        timed_out: false,
        stdout: String::new(),
        stderr: String::new(),
    };
    loop {
        match child.try_wait() {
            Ok(Some(st)) => {
                res.code = st.code();
                return Ok(res);
            }
            Ok(None) if started.elapsed() > COMMAND_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                res.timed_out = true;
                return Ok(res);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => fail!("wait for `{}`: {e}", res.argv),
        }
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), Verdict> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| Verdict::Fail(format!("pipe: {e}")))
}

/// A container whose stdio are pipes of the driver's (`run -d`): pre-dumped (it runs
/// on), dumped on top of the pre-dump (`--parent-path ../parent-dir`, kept as the
/// image's `parent` link), restored with the same pipes: `exec` works, and the process
/// still answers on its stdin and stdout ("Ping" -> "ponG Ping"), with nothing on
/// stderr.
pub fn contract_checkpoint_pre_dump_pipes(c: &mut Ctx) -> Res {
    need_criu()?;
    let cfg = default_config(
        &[
            "/bin/sh",
            "-c",
            "for i in $(seq 10); do read xxx || continue; echo ponG $xxx; done",
        ],
        "/placeholder",
    );
    let (id, b) = c.prepare(cfg, false)?;
    let seq = b.rootfs().join("bin/seq");
    if !seq.exists() {
        std::os::unix::fs::symlink("busybox", &seq)?;
    }
    let (in_r, in_w) = pipe()?;
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let bp = b.path_str();
    let out = run_with_stdio(
        c,
        &["run", "-d", "--bundle", &bp, &id],
        &in_r,
        &out_w,
        &err_w,
    )?;
    ensure!(out.ok(), "run -d with pipes: {}", out.describe());
    let image = b.dir.join("image-dir");
    let parent = b.dir.join("parent-dir");
    let work = b.dir.join("work-dir");
    for d in [&image, &parent, &work] {
        std::fs::create_dir_all(d)?;
    }
    let (img, par, wrk) = (
        image.display().to_string(),
        parent.display().to_string(),
        work.display().to_string(),
    );
    c.must(&["checkpoint", "--pre-dump", "--image-path", &par, &id])?;
    ensure!(
        c.status(&id)? == "running",
        "after --pre-dump the container is not running"
    );
    c.must(&[
        "checkpoint",
        "--parent-path",
        "../parent-dir",
        "--work-path",
        &wrk,
        "--image-path",
        &img,
        &id,
    ])?;
    ensure!(
        std::fs::symlink_metadata(image.join("parent")).is_ok(),
        "no `parent` link in the image directory after a dump on a pre-dump"
    );
    ensure!(
        !c.rt(&["state", &id]).ok(),
        "the container still exists after checkpoint"
    );
    let out = run_with_stdio(
        c,
        &[
            "restore",
            "-d",
            "--work-path",
            &wrk,
            "--image-path",
            &img,
            "--bundle",
            &bp,
            &id,
        ],
        &in_r,
        &out_w,
        &err_w,
    )?;
    ensure!(out.ok(), "restore with the pipes: {}", out.describe());
    ensure!(c.status(&id)? == "running", "not running after restore");
    let ok = c.must(&["exec", "--cwd", "/bin", &id, "echo", "ok"])?;
    ensure!(
        ok.stdout == "ok\n",
        "exec after restore said {:?}",
        ok.stdout
    );
    nix::unistd::write(&in_w, b"Ping\n").map_err(|e| Verdict::Fail(format!("write: {e}")))?;
    drop((in_w, out_w, err_w, in_r));
    let said = read_to_eof(out_r, Duration::from_secs(30));
    let errors = read_to_eof(err_r, Duration::from_secs(1));
    ensure!(
        said.contains("ponG Ping"),
        "the restored process did not answer on its pipes: stdout {said:?}"
    );
    ensure!(
        errors.is_empty(),
        "stderr of the runtime or the process: {errors:?}"
    );
    c.wait_stopped(&id)?;
    c.must(&["delete", &id])?;
    Ok(())
}

/// The annotation `org.criu.config` names a CRIU configuration file that wins over
/// /etc/criu/default.conf: its `log-file` is where CRIU logs, at checkpoint and at
/// restore, and the default file's is not used.
pub fn contract_checkpoint_criu_config(c: &mut Ctx) -> Res {
    need_criu()?;
    const DEFAULT_CONF: &str = "/etc/criu/default.conf";
    let tag = format!("{}-{}", std::process::id(), c.new_id());
    let mine = format!("berth-criu-mine-{tag}.log");
    let conf_dir = c.suite.bundles.join(format!("{tag}-criu"));
    c.own_dir(&conf_dir);
    std::fs::create_dir_all(&conf_dir)?;
    let conf = conf_dir.join("container.conf");
    std::fs::write(&conf, format!("log-file={mine}\n"))?;
    // The default file's log name: ours if there is none (removed at the end), else
    // whatever the machine's says (left as it is).
    let existing = std::fs::read_to_string(DEFAULT_CONF).ok();
    let default_log = match &existing {
        Some(text) => text
            .lines()
            .find_map(|l| l.trim().strip_prefix("log-file="))
            .map(str::to_string),
        None => {
            let name = format!("berth-criu-default-{tag}.log");
            std::fs::create_dir_all("/etc/criu")?;
            std::fs::write(DEFAULT_CONF, format!("log-file={name}\n"))?;
            Some(name)
        }
    };
    let res = criu_config_run(c, &conf, &mine, default_log.as_deref());
    if existing.is_none() {
        let _ = std::fs::remove_file(DEFAULT_CONF);
    }
    res
}

fn criu_config_run(c: &mut Ctx, conf: &Path, mine: &str, default_log: Option<&str>) -> Res {
    let conf_s = conf.display().to_string();
    let (id, b) = start_with(c, &["/bin/sh", "-c", SPINNER], |cfg| {
        cfg["annotations"] = json!({"org.criu.config": conf_s});
    })?;
    let work = b.dir.join("work-dir");
    let judge = |verb: &str| -> Res {
        ensure!(
            work.join(mine).exists(),
            "{verb}: CRIU did not log to the annotation's file {mine} in the work dir"
        );
        if let Some(d) = default_log {
            ensure!(
                !work.join(d).exists(),
                "{verb}: CRIU logged to /etc/criu/default.conf's {d} although the \
                 container names its own configuration"
            );
        }
        Ok(())
    };
    cycle(c, &id, &b, &[], 1)?;
    judge("checkpoint")?;
    std::fs::remove_file(work.join(mine))?;
    restore(c, &id, &b, &[], 1)?;
    judge("restore")?;
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// Skips unless CRIU has `feature` here (`criu check --feature`), as runc's test does
/// for lazy migration (`uffd-noncoop`: userfaultfd events of a process CRIU did not
/// start).
fn need_criu_feature(feature: &str) -> Res {
    let out = Command::new("timeout")
        .args([
            "30",
            "criu",
            "check",
            "--no-default-config",
            "--feature",
            feature,
        ])
        .stdin(Stdio::null())
        .output();
    match out {
        Err(e) => skip!("criu cannot be run: {e}"),
        Ok(o) if !o.status.success() => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            let why = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no reason given")
                .to_string();
            skip!("this CRIU has no {feature} (`criu check --feature {feature}`: {why})")
        }
        Ok(_) => Ok(()),
    }
}

/// A process of the scenario's own that runs in the background (its own process
/// group): killed with everything it forked when the scenario ends before it, and
/// kept from the driver's orphan reaper while it runs.
struct Background {
    what: &'static str,
    child: Option<std::process::Child>,
    log: std::path::PathBuf,
}

impl Background {
    fn spawn(what: &'static str, mut cmd: Command, log: &Path) -> Result<Background, Verdict> {
        let out = std::fs::File::create(log)?;
        let err = out.try_clone()?;
        let child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| Verdict::Fail(format!("start {what}: {e}")))?;
        crate::reaper::protect(child.id() as i32);
        Ok(Background {
            what,
            child: Some(child),
            log: log.to_path_buf(),
        })
    }

    /// Waits (bounded) for the process to exit 0; its output is in the error.
    fn wait_ok(&mut self, limit: Duration) -> Res {
        let Some(mut child) = self.child.take() else {
            fail!("{} was already waited for", self.what);
        };
        let pid = child.id() as i32;
        let deadline = Instant::now() + limit;
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break Some(st),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => break None,
            }
        };
        if status.is_none() {
            self.child = Some(child);
            fail!(
                "{} did not exit within {limit:?}: {}",
                self.what,
                self.output()
            );
        }
        crate::reaper::unprotect(pid);
        match status {
            Some(st) if st.success() => Ok(()),
            st => fail!("{} exited with {st:?}: {}", self.what, self.output()),
        }
    }

    /// The last lines of what the process printed.
    fn output(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id() as i32;
            // SAFETY: kill(2) on the process group this scenario started.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            let _ = child.wait();
            crate::reaper::unprotect(pid);
        }
    }
}

/// A TCP port nothing listens on now (the kernel's pick), so that runs side by side
/// do not share one.
fn free_port() -> Result<u16, Verdict> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Waits (bounded) for one byte on `fd`: `None` on EOF or when none came in time.
fn read_one_byte(fd: OwnedFd, limit: Duration) -> Option<u8> {
    let mut f = std::fs::File::from(fd);
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let mut pfd = libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, 200 ms bound.
        if unsafe { libc::poll(&mut pfd, 1, 200) } <= 0 {
            continue;
        }
        let mut buf = [0u8; 1];
        return match f.read(&mut buf) {
            Ok(1) => Some(buf[0]),
            _ => None,
        };
    }
    None
}

/// CRIU's error lines in a log, for a failure message.
fn log_errors(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let errors: Vec<&str> = text.lines().filter(|l| l.contains("Error")).collect();
    if errors.is_empty() {
        format!("no Error lines in {}", path.display())
    } else {
        format!("{}: {}", path.display(), errors.join(" | "))
    }
}

/// runc's "checkpoint --lazy-pages and restore": a container whose stdio are pipes of
/// the driver's is checkpointed in the background with `--lazy-pages --page-server
/// 0.0.0.0:PORT --status-fd FD`, which writes \0 on FD once its page server is ready
/// (the images, inventory.img among them, are written by then); CRIU's lazy-pages
/// daemon fetches the pages from that server while the container is restored under
/// another id with `--lazy-pages`: it runs, `exec` works, both background processes
/// exit 0 once every page has moved, the checkpointed container is gone, and the
/// restored process answers on the original pipes ("Ping" -> "ponG Ping").
pub fn contract_checkpoint_lazy_pages(c: &mut Ctx) -> Res {
    need_criu()?;
    need_criu_feature("uffd-noncoop")?;
    let mut cfg = default_config(
        &[
            "/bin/sh",
            "-c",
            "for i in $(seq 10); do read xxx || continue; echo ponG $xxx; done",
        ],
        "/placeholder",
    );
    let (id, b) = c.prepare(cfg.clone(), false)?;
    let seq = b.rootfs().join("bin/seq");
    if !seq.exists() {
        std::os::unix::fs::symlink("busybox", &seq)?;
    }
    let (in_r, in_w) = pipe()?;
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let bp = b.path_str();
    let out = run_with_stdio(
        c,
        &["run", "-d", "--bundle", &bp, &id],
        &in_r,
        &out_w,
        &err_w,
    )?;
    ensure!(out.ok(), "run -d with pipes: {}", out.describe());
    ensure!(c.status(&id)? == "running", "not running after run -d");
    let image = b.dir.join("image-dir");
    let work = b.dir.join("work-dir");
    for d in [&image, &work] {
        std::fs::create_dir_all(d)?;
    }
    let (img, wrk) = (image.display().to_string(), work.display().to_string());
    let port = free_port()?.to_string();

    // The checkpoint, with the status pipe's write end as its fd 3.
    let (status_r, status_w) = pipe()?;
    let status_raw = status_w.as_raw_fd();
    let mut cmd = Command::new(&c.suite.rt.path);
    cmd.arg("--root").arg(&c.suite.rt.root).args([
        "checkpoint",
        "--lazy-pages",
        "--page-server",
        &format!("0.0.0.0:{port}"),
        "--status-fd",
        "3",
        "--work-path",
        &wrk,
        "--image-path",
        &img,
        &id,
    ]);
    // SAFETY: the closure only calls dup2 and fcntl, which are async-signal-safe; the
    // fd it copies is open until spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(status_raw, 3) < 0 || libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut checkpoint = Background::spawn("checkpoint --lazy-pages", cmd, &b.dir.join("cpt.out"))?;
    drop(status_w);
    let ready = read_one_byte(status_r, Duration::from_secs(120));
    ensure!(
        ready == Some(0),
        "no \\0 on the status fd from checkpoint --lazy-pages (got {ready:?}): {}; {}",
        checkpoint.output(),
        log_errors(&work.join("dump.log"))
    );
    ensure!(
        image.join("inventory.img").exists(),
        "no inventory.img in the image directory once the page server is ready"
    );

    // CRIU's lazy-pages daemon, fetching from the checkpoint's page server.
    let mut cmd = Command::new("criu");
    cmd.args([
        "lazy-pages",
        "--page-server",
        "--address",
        "127.0.0.1",
        "--port",
        &port,
        "-D",
        &img,
        "-o",
        "lazy-pages.log",
        "-v4",
    ]);
    let mut lazy = Background::spawn("criu lazy-pages", cmd, &b.dir.join("lazy.out"))?;
    // The daemon listens on lazy-pages.socket in its work directory (the image
    // directory) only once it has read the images: a restore that comes first cannot
    // connect to it (seen once in the VM lane, under emulation).
    let socket = image.join("lazy-pages.socket");
    let t = Instant::now();
    while !socket.exists() && t.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
    }

    // The restore needs its own id: the checkpointed container lives on until the
    // last page has moved. Its work directory is the image directory, where the
    // lazy-pages daemon put its socket (as runc's test passes it).
    let rid = c.new_id();
    // And its own cgroup, as each runc container gets by default: the checkpointed
    // one still holds the bundle's.
    let cg = c.cgroups_path(&rid);
    crate::spec::set(&mut cfg, "linux/cgroupsPath", serde_json::Value::String(cg));
    b.write_config(&cfg)?;
    let out = run_with_stdio(
        c,
        &[
            "restore",
            "-d",
            "--work-path",
            &img,
            "--image-path",
            &img,
            "--lazy-pages",
            "--bundle",
            &bp,
            &rid,
        ],
        &in_r,
        &out_w,
        &err_w,
    )?;
    ensure!(
        out.ok(),
        "restore --lazy-pages with the pipes: {}; {}",
        out.describe(),
        log_errors(&image.join("restore.log"))
    );
    ensure!(
        c.status(&rid)? == "running",
        "not running after restore --lazy-pages"
    );
    let ok = c.must(&["exec", "--cwd", "/bin", &rid, "echo", "ok"])?;
    ensure!(
        ok.stdout == "ok\n",
        "exec after restore --lazy-pages said {:?}",
        ok.stdout
    );
    checkpoint
        .wait_ok(Duration::from_secs(120))
        .map_err(|v| with_log(v, &work.join("dump.log")))?;
    lazy.wait_ok(Duration::from_secs(120))
        .map_err(|v| with_log(v, &image.join("lazy-pages.log")))?;
    ensure!(
        !c.rt(&["state", &id]).ok(),
        "the checkpointed container {id} still exists after the lazy migration finished"
    );
    nix::unistd::write(&in_w, b"Ping\n").map_err(|e| Verdict::Fail(format!("write: {e}")))?;
    drop((in_w, out_w, err_w, in_r));
    let said = read_to_eof(out_r, Duration::from_secs(30));
    let errors = read_to_eof(err_r, Duration::from_secs(1));
    ensure!(
        said.contains("ponG Ping"),
        "the lazily restored process did not answer on its pipes: stdout {said:?}"
    );
    ensure!(
        errors.is_empty(),
        "stderr of the runtime or the process: {errors:?}"
    );
    c.wait_stopped(&rid)?;
    c.must(&["delete", &rid])?;
    Ok(())
}

/// A failure with CRIU's error lines from `log` added.
fn with_log(v: Verdict, log: &Path) -> Verdict {
    match v {
        Verdict::Fail(m) => Verdict::Fail(format!("{m}; {}", log_errors(log))),
        other => other,
    }
}
