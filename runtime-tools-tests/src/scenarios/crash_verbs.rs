//! Crash safety of `exec` and `delete`, and of a runtime killed while hooks run:
//! SIGKILL to the runtime at many points, then `delete --force`, must leave nothing of
//! the container (no cgroup in any hierarchy, no mount, no state entry, no process,
//! no hook).

use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

use super::crash_create::{clean_up, leftovers_of};
use super::hooks::cfg_sh;
use crate::bundle::Bundle;
use crate::ctx::Ctx;
use crate::spec::{push, set};
use crate::verdict::{Res, Verdict};
use crate::{cgroup, ensure};

/// Kill points per verb: 0 to 30 ms after the runtime starts, in 0.75 ms steps.
const STEPS: u32 = 40;

fn delay_of(step: u32) -> Duration {
    Duration::from_micros(750 * u64::from(step))
}

/// A running container (`sleep`), in a cgroup of this run.
fn running(c: &mut Ctx) -> Result<(String, Bundle), Verdict> {
    let (id, b) = c.prepare(cfg_sh("exec sleep 600"), false)?;
    c.must_create(&b, &id)?;
    c.must(&["start", &id])?;
    Ok((id, b))
}

/// Runs `args` in the background and SIGKILLs the runtime process (only it: what it
/// forked is left as a crash leaves it) after `delay`; true if it finished first.
fn kill_at(c: &Ctx, args: &[&str], delay: Duration) -> Result<bool, Verdict> {
    let mut bg = c.suite.rt.spawn(args).map_err(Verdict::Fail)?;
    sleep(delay);
    let _ = kill(Pid::from_raw(bg.pid()), Signal::SIGKILL);
    let code = bg
        .wait_exit(Duration::from_secs(10))
        .map_err(Verdict::Fail)?;
    Ok(code == Some(0))
}

/// `delete --force` after the kill, then what is left, as one line or none.
fn force_delete_and_check(c: &Ctx, id: &str, b: &Bundle, at: Duration) -> Option<String> {
    let del = c.rt(&["delete", "--force", id]);
    let hierarchies = cgroup::hierarchies();
    let mut found = Vec::new();
    if !del.ok() {
        found.push(del.describe());
    }
    // The exec'd process dies with the container's cgroup; give the kernel a moment.
    let t = Instant::now();
    let mut left = leftovers_of(c, &hierarchies, id, &b.rootfs());
    while !left.is_empty() && t.elapsed() < Duration::from_secs(2) {
        sleep(Duration::from_millis(50));
        left = leftovers_of(c, &hierarchies, id, &b.rootfs());
    }
    if !left.is_empty() {
        clean_up(&hierarchies, id);
    }
    found.extend(left);
    (!found.is_empty()).then(|| format!("{at:?}: {}", found.join("; ")))
}

/// `exec` (a long-lived process) killed 0-30 ms after it starts (40 points), then
/// `delete --force` of the container: no exec'd process, intermediate, cgroup, mount
/// or state entry is left.
pub fn crash_exec_kill_then_delete(c: &mut Ctx) -> Res {
    ensure!(
        !cgroup::hierarchies().is_empty(),
        "no cgroup hierarchy mounted: cannot check what a killed exec leaves"
    );
    let mut left = Vec::new();
    let mut finished = 0;
    for step in 0..STEPS {
        let (id, b) = running(c)?;
        let at = delay_of(step);
        if kill_at(c, &["exec", &id, "/bin/sleep", "601"], at)? {
            finished += 1;
        }
        left.extend(force_delete_and_check(c, &id, &b, at));
    }
    ensure!(
        finished < STEPS,
        "every exec finished before its kill: the sweep interrupted nothing"
    );
    ensure!(
        left.is_empty(),
        "{} of {STEPS} killed execs left something after delete --force: {}",
        left.len(),
        left.join(" | ")
    );
    Ok(())
}

/// `delete --force` of a running container killed 0-30 ms after it starts (40
/// points); a second `delete --force` removes whatever the first left.
pub fn crash_delete_kill_then_delete(c: &mut Ctx) -> Res {
    let mut left = Vec::new();
    let mut finished = 0;
    for step in 0..STEPS {
        let (id, b) = running(c)?;
        let at = delay_of(step);
        if kill_at(c, &["delete", "--force", &id], at)? {
            finished += 1;
        }
        left.extend(force_delete_and_check(c, &id, &b, at));
    }
    ensure!(
        finished < STEPS,
        "every delete finished before its kill: the sweep interrupted nothing"
    );
    ensure!(
        left.is_empty(),
        "{} of {STEPS} killed deletes left something after a second delete --force: {}",
        left.len(),
        left.join(" | ")
    );
    Ok(())
}

/// The runtime killed while a hook runs: a createRuntime hook (run by `create`) and a
/// poststart hook (run by `start`) that write a marker and then sleep. Once the marker
/// is there the runtime is SIGKILLed; `delete --force` then leaves nothing, and the
/// hook's process is gone too (a hook dies with the runtime that ran it).
pub fn crash_hooks_kill_then_delete(c: &mut Ctx) -> Res {
    let mut bad = Vec::new();
    for (kind, verb) in [("createRuntime", "create"), ("poststart", "start")] {
        let id = c.new_id();
        let b = c.bundle(&id, false)?;
        let marker = b.dir.join("hook.pid");
        let mut cfg: Value = cfg_sh("exec sleep 600");
        set(&mut cfg, "linux/cgroupsPath", json!(c.cgroups_path(&id)));
        push(
            &mut cfg,
            &format!("hooks/{kind}"),
            json!({"path": "/bin/sh",
                   "args": ["sh", "-c", format!("echo $$ > {}; exec sleep 300", marker.display())]}),
        );
        b.write_config(&cfg)?;
        if verb == "start" {
            c.must_create(&b, &id)?;
        }
        let bp = b.path_str();
        let args: Vec<&str> = if verb == "create" {
            vec!["create", "--bundle", &bp, &id]
        } else {
            vec!["start", &id]
        };
        let mut bg = c.suite.rt.spawn(&args).map_err(Verdict::Fail)?;
        let t = Instant::now();
        let mut hook_pid = None;
        while t.elapsed() < Duration::from_secs(10) {
            let text = std::fs::read_to_string(&marker).unwrap_or_default();
            if let Ok(p) = text.trim().parse::<i32>() {
                hook_pid = Some(p);
                break;
            }
            sleep(Duration::from_millis(10));
        }
        let _ = kill(Pid::from_raw(bg.pid()), Signal::SIGKILL);
        let _ = bg.wait_exit(Duration::from_secs(10));
        drop(bg);
        let Some(hook_pid) = hook_pid else {
            bad.push(format!("{kind}: the hook never ran"));
            let _ = c.rt(&["delete", "--force", &id]);
            continue;
        };
        if let Some(l) = force_delete_and_check(c, &id, &b, Duration::ZERO) {
            bad.push(format!("{kind} hook, {verb} killed: {l}"));
        }
        let t = Instant::now();
        while alive(hook_pid) && t.elapsed() < Duration::from_secs(3) {
            sleep(Duration::from_millis(20));
        }
        if alive(hook_pid) {
            let _ = kill(Pid::from_raw(hook_pid), Signal::SIGKILL);
            bad.push(format!(
                "{kind} hook (pid {hook_pid}) outlived the killed `{verb}` and the delete"
            ));
        }
    }
    ensure!(bad.is_empty(), "{}", bad.join(" | "));
    Ok(())
}

/// Alive and not a zombie (reaping our orphans meanwhile).
fn alive(pid: i32) -> bool {
    crate::reaper::reap_orphans();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(") ")
        .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X'))
}
