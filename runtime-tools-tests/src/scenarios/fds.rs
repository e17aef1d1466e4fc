//! File descriptors and races seen through the CLI: `--preserve-fds` hands on exactly
//! the extra fds, no fd of the runtime reaches a container or exec'd process, racing
//! `start`s and `delete --force`s act once, and a fake /dev/null is never bound over
//! maskedPaths (CVE-2025-31133).

use std::fs::{self, File, OpenOptions};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use serde_json::{json, Value};

use super::hooks::{append_hook, cfg_sh};
use crate::bundle::Bundle;
use crate::ctx::Ctx;
use crate::runtime::CmdOut;
use crate::spec::{push, set};
use crate::verdict::Res;
use crate::{ensure, fail};

/// How many copies of a verb race each other.
const RACERS: usize = 4;

/// The numeric lines of `ls /proc/$$/fd` output (the shell's fds, not those of ls).
fn fd_list(out: &str) -> Vec<u32> {
    let mut v: Vec<u32> = out.lines().filter_map(|l| l.trim().parse().ok()).collect();
    v.sort_unstable();
    v
}

/// `create --bundle B [extra] id` with `fds` open in the runtime as 3, 4, ...
fn create_with_fds(c: &Ctx, b: &Bundle, id: &str, extra: &[&str], fds: &[BorrowedFd]) -> CmdOut {
    let bp = b.path_str();
    let mut args = vec!["create", "--bundle", bp.as_str()];
    args.extend_from_slice(extra);
    args.push(id);
    c.suite
        .rt
        .run_to_with_fds(&args, &b.stdout_path(), &b.stderr_path(), fds)
}

/// `create --preserve-fds 2` with a readable fd 3 and a writable fd 4: the process has
/// exactly fds 0-4, reads the driver's text from 3 and writes to 4; without the flag
/// the same open fds do not reach the container.
pub fn preserve_fds(c: &mut Ctx) -> Res {
    let probe = "ls /proc/$$/fd; cat <&3; echo from-container >&4";
    for preserve in [true, false] {
        let (id, b) = c.prepare(cfg_sh(probe), false)?;
        let (input, output) = (b.dir.join("fd3.in"), b.dir.join("fd4.out"));
        fs::write(&input, "from-driver\n")?;
        let r = File::open(&input)?;
        let w = OpenOptions::new().create(true).append(true).open(&output)?;
        let extra: &[&str] = if preserve {
            &["--preserve-fds", "2"]
        } else {
            &[]
        };
        let out = create_with_fds(c, &b, &id, extra, &[r.as_fd(), w.as_fd()]);
        drop((r, w));
        ensure!(out.ok(), "create failed: {}", out.describe());
        c.must(&["start", &id])?;
        c.wait_stopped(&id)?;
        let seen = b.read("container.out");
        let written = b.read("fd4.out");
        c.must(&["delete", &id])?;
        if preserve {
            ensure!(
                fd_list(&seen) == [0, 1, 2, 3, 4],
                "--preserve-fds 2: want fds 0-4, the shell has {:?}: {seen:?}",
                fd_list(&seen)
            );
            ensure!(
                seen.contains("from-driver") && written == "from-container\n",
                "--preserve-fds 2: fd 3 read {seen:?}, fd 4 got {written:?}"
            );
        } else {
            ensure!(
                fd_list(&seen) == [0, 1, 2] && !seen.contains("from-driver") && written.is_empty(),
                "without --preserve-fds the extra fds reached the container: {seen:?}, fd 4 got {written:?}"
            );
        }
    }
    Ok(())
}

/// The container's init and a process started by `exec` hold only fds 0, 1 and 2:
/// nothing of the runtime (state dir, sync sockets, exec fifo) leaks in.
pub fn no_runtime_fds_leak(c: &mut Ctx) -> Res {
    let (id, b) = c.prepare(cfg_sh("ls /proc/$$/fd; exec sleep 30"), false)?;
    c.must_create(&b, &id)?;
    c.must(&["start", &id])?;
    let exec = c.must(&["exec", &id, "/bin/sh", "-c", "ls /proc/$$/fd; true"])?;
    c.must(&["kill", &id, "KILL"])?;
    c.wait_stopped(&id)?;
    let init = b.read("container.out");
    c.must(&["delete", &id])?;
    ensure!(
        fd_list(&init) == [0, 1, 2],
        "the container's init has fds {:?} want 0 1 2: {init:?}",
        fd_list(&init)
    );
    ensure!(
        fd_list(&exec.stdout) == [0, 1, 2],
        "the exec'd process has fds {:?} want 0 1 2: {:?}",
        fd_list(&exec.stdout),
        exec.stdout
    );
    Ok(())
}

/// Racing commands: none may hang, and each that fails must say why.
fn all_returned(outs: &[CmdOut]) -> Res {
    for o in outs {
        ensure!(!o.timed_out, "`{}` timed out", o.argv);
        ensure!(
            o.ok() || !o.stderr.trim().is_empty(),
            "`{}` failed without an error message: {}",
            o.argv,
            o.describe()
        );
    }
    Ok(())
}

/// Several `start`s of one created container at once: exactly one succeeds and the
/// process runs once. Several `delete --force`s of a running container at once: all
/// return, the state is gone, the process is dead and the poststop hook ran once.
pub fn concurrent_start_and_delete(c: &mut Ctx) -> Res {
    let (id, b) = c.prepare(cfg_sh("echo started >> /out"), false)?;
    c.must_create(&b, &id)?;
    let starts = c
        .suite
        .rt
        .run_concurrently(&vec![vec!["start", &id]; RACERS]);
    all_returned(&starts)?;
    let won = starts.iter().filter(|o| o.ok()).count();
    ensure!(
        won == 1,
        "{won} of {RACERS} concurrent starts succeeded, want exactly 1"
    );
    c.wait_stopped(&id)?;
    ensure!(
        b.read("rootfs/out") == "started\n",
        "the process ran more than once or not at all: /out is {:?}",
        b.read("rootfs/out")
    );
    c.must(&["delete", &id])?;

    let id = c.new_id();
    let b = c.bundle(&id, false)?;
    let mut cfg = cfg_sh("exec sleep 30");
    set(&mut cfg, "linux/cgroupsPath", json!(c.cgroups_path(&id)));
    let log = b.dir.join("poststop.log").display().to_string();
    push(&mut cfg, "hooks/poststop", append_hook(&log, "poststop"));
    b.write_config(&cfg)?;
    c.must_create(&b, &id)?;
    c.must(&["start", &id])?;
    let pid = c.pid(&id)?;
    let deletes = c
        .suite
        .rt
        .run_concurrently(&vec![vec!["delete", "--force", &id]; RACERS]);
    all_returned(&deletes)?;
    ensure!(
        deletes.iter().any(CmdOut::ok),
        "no concurrent delete --force succeeded: {}",
        deletes[0].describe()
    );
    c.must_fail(&["state", &id], "deleted by delete --force")?;
    ensure!(
        !c.state_entry_exists(&id),
        "the state entry of {id} is left behind"
    );
    ensure!(
        wait_gone(pid, Duration::from_secs(5)),
        "the container process {pid} is still alive after delete --force"
    );
    let hook = b.read("poststop.log");
    ensure!(
        hook == "poststop\n",
        "the poststop hook must run exactly once: its log is {hook:?}"
    );
    Ok(())
}

/// True once `pid` is gone or a zombie (reaping orphans meanwhile).
fn wait_gone(pid: i32, limit: Duration) -> bool {
    let t = std::time::Instant::now();
    loop {
        crate::reaper::reap_orphans();
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let dead = stat
            .rsplit_once(") ")
            .is_none_or(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X'));
        if dead {
            return true;
        }
        if t.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A config whose /dev is the rootfs's own directory (no /dev mounts) and whose only
/// masked path is /etc/secret, a file of the rootfs.
fn fake_null_cfg() -> Value {
    let mut cfg = cfg_sh("cat /etc/secret");
    let mounts: Vec<Value> = cfg["mounts"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter(|m| !m["destination"].as_str().unwrap_or("").starts_with("/dev"))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    set(&mut cfg, "mounts", Value::Array(mounts));
    set(&mut cfg, "linux/maskedPaths", json!(["/etc/secret"]));
    cfg
}

/// What /etc/secret is bound from in the container of `pid` (mountinfo's root field).
fn secret_source(pid: i32) -> String {
    let info = fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default();
    info.lines()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .filter(|f| f.len() > 4 && f[4].ends_with("/etc/secret"))
        .map(|f| crate::bundle::unescape(f[3]))
        .next_back()
        .unwrap_or_else(|| "nothing".into())
}

/// CVE-2025-31133: with maskedPaths set and a rootfs /dev/null that is not the 1:3
/// character device (a regular file; a symlink to another file), create fails naming
/// /dev/null and nothing is left mounted, so the fake is never bound over a masked
/// path. This is berth's behaviour: runc 1.1.5 predates the fix, accepts both and
/// binds the fake over the masked path, so it is expected to fail here.
pub fn masked_fake_dev_null_refused(c: &mut Ctx) -> Res {
    let mut accepted = Vec::new();
    for symlink in [false, true] {
        let (id, b) = c.prepare(fake_null_cfg(), false)?;
        let root = b.rootfs();
        fs::write(root.join("etc/secret"), "secret\n")?;
        // The symlink's target is relative, so it stays in the rootfs however resolved.
        let fake = if symlink {
            std::os::unix::fs::symlink("../fake-null", root.join("dev/null"))?;
            root.join("fake-null")
        } else {
            root.join("dev/null")
        };
        fs::write(&fake, "FAKE\n")?;
        let kind = if symlink {
            "a symlink"
        } else {
            "a regular file"
        };
        let out = c.create(&b, &id);
        if out.ok() {
            let from = secret_source(c.pid(&id)?);
            accepted.push(format!(
                "create accepted a /dev/null that is {kind} (masked /etc/secret bound from {from})"
            ));
            c.must(&["delete", "--force", &id])?;
            continue;
        }
        ensure!(!out.timed_out, "`{}` timed out", out.argv);
        ensure!(
            out.stderr.contains("/dev/null"),
            "/dev/null as {kind}: the error does not name /dev/null: {}",
            out.describe()
        );
        let mounts = crate::bundle::mounts_under(&b.dir);
        ensure!(mounts.is_empty(), "mounts left behind: {mounts:?}");
        ensure!(
            !c.state_entry_exists(&id),
            "the state entry of {id} is left behind"
        );
        ensure!(
            b.read("rootfs/dev/null") == "FAKE\n",
            "the rootfs /dev/null ({kind}) was changed"
        );
    }
    if !accepted.is_empty() {
        fail!("{}", accepted.join("; "));
    }
    Ok(())
}
