//! Verbs on one id racing each other: each race gives one result (one winner, or the
//! same outcome twice for the idempotent `delete --force`), every loser fails with a
//! one-line error that says the container is gone or in the wrong state, nothing
//! hangs, and nothing of the container outlives its delete.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::hooks::{append_hook, cfg_sh};
use crate::ctx::Ctx;
use crate::runtime::CmdOut;
use crate::spec::push;
use crate::verdict::Res;
use crate::{cgroup, ensure};

/// How many times each race is run (each on a fresh container).
const ROUNDS: usize = 12;

/// What a loser may say: the container is gone, or not in a state for the verb.
const CLEAN: &[&str] = &[
    "does not exist",
    "stopped",
    "not running",
    "not created",
    "stopped during exec",
];

/// A loser's error: one line, saying why in the words above.
fn clean_loss(o: &CmdOut) -> Result<(), String> {
    if o.timed_out {
        return Err(format!("`{}` timed out", o.argv));
    }
    let lines: Vec<&str> = o.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.len() != 1 || !CLEAN.iter().any(|w| lines[0].contains(w)) {
        return Err(format!(
            "`{}` lost the race without a one-line gone/state error: {}",
            o.argv,
            o.describe()
        ));
    }
    Ok(())
}

/// After the race: the state entry, cgroups and processes of `id` are gone.
fn nothing_left(c: &Ctx, id: &str, rootfs: &std::path::Path) -> Result<(), String> {
    let hierarchies = cgroup::hierarchies();
    let t = std::time::Instant::now();
    loop {
        let left = super::crash_create::leftovers_of(c, &hierarchies, id, rootfs);
        if left.is_empty() {
            return Ok(());
        }
        if t.elapsed() > Duration::from_secs(3) {
            super::crash_create::clean_up(&hierarchies, id);
            return Err(format!("left after the race: {}", left.join("; ")));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A running container (`sleep`) with poststart and poststop hooks logging to
/// `<bundle>/hooks.log`, created (and started unless `start` is false).
fn container(
    c: &mut Ctx,
    start: bool,
) -> Result<(String, crate::bundle::Bundle), crate::verdict::Verdict> {
    let id = c.new_id();
    let b = c.bundle(&id, false)?;
    let log = b.dir.join("hooks.log").display().to_string();
    let mut cfg: Value = cfg_sh("exec sleep 60");
    crate::spec::set(
        &mut cfg,
        "linux/cgroupsPath",
        Value::String(c.cgroups_path(&id)),
    );
    push(&mut cfg, "hooks/poststart", append_hook(&log, "poststart"));
    push(&mut cfg, "hooks/poststop", append_hook(&log, "poststop"));
    b.write_config(&cfg)?;
    c.must_create(&b, &id)?;
    if start {
        c.must(&["start", &id])?;
    }
    Ok((id, b))
}

/// Two plain `delete`s of a stopped container: exactly one succeeds, the other says
/// the container does not exist, the poststop hook runs once. Two `delete --force`s of
/// a running one: both succeed (a missing container is no error for `--force`, as in
/// runc), whichever waited for the other.
pub fn race_delete_delete(c: &mut Ctx) -> Res {
    let mut bad = Vec::new();
    for round in 0..ROUNDS {
        let (id, b) = container(c, true)?;
        let force = round % 2 == 1;
        if !force {
            c.must(&["kill", &id, "KILL"])?;
            c.wait_stopped(&id)?;
        }
        let argv: Vec<&str> = if force {
            vec!["delete", "--force", &id]
        } else {
            vec!["delete", &id]
        };
        let outs = c.suite.rt.run_concurrently(&[argv.clone(), argv]);
        let won = outs.iter().filter(|o| o.ok()).count();
        if force {
            for o in outs.iter().filter(|o| !o.ok()) {
                bad.push(format!("round {round}: {}", o.describe()));
            }
        } else if won != 1 {
            bad.push(format!(
                "round {round}: {won} of 2 deletes succeeded, want 1"
            ));
        } else if let Some(lost) = outs.iter().find(|o| !o.ok()) {
            if let Err(e) = clean_loss(lost) {
                bad.push(format!("round {round}: {e}"));
            }
        }
        let hooks = b.read("hooks.log");
        if hooks != "poststart\npoststop\n" {
            bad.push(format!(
                "round {round}: hooks ran {hooks:?}, want poststart then one poststop"
            ));
        }
        if let Err(e) = nothing_left(c, &id, &b.rootfs()) {
            bad.push(format!("round {round}: {e}"));
        }
    }
    ensure!(bad.is_empty(), "{}", bad.join(" | "));
    Ok(())
}

/// `start` racing `delete --force` on a created container: delete always succeeds
/// and leaves nothing; start either wins (and its poststart hook runs before the
/// poststop hook) or fails cleanly, never running a poststart hook after the delete.
pub fn race_start_delete(c: &mut Ctx) -> Res {
    let mut bad = Vec::new();
    let mut start_won = 0;
    for round in 0..ROUNDS {
        let (id, b) = container(c, false)?;
        let outs = c
            .suite
            .rt
            .run_concurrently(&[vec!["start", &id], vec!["delete", "--force", &id]]);
        let (start, delete) = (&outs[0], &outs[1]);
        if !delete.ok() {
            bad.push(format!("round {round}: {}", delete.describe()));
        }
        let hooks = b.read("hooks.log");
        if start.ok() {
            start_won += 1;
            if hooks != "poststart\npoststop\n" {
                bad.push(format!(
                    "round {round}: start and delete both succeeded but hooks ran {hooks:?}, want poststart then poststop"
                ));
            }
        } else {
            if let Err(e) = clean_loss(start) {
                bad.push(format!("round {round}: {e}"));
            }
            if hooks != "poststop\n" {
                bad.push(format!(
                    "round {round}: start lost but hooks ran {hooks:?}, want only poststop"
                ));
            }
        }
        if let Err(e) = nothing_left(c, &id, &b.rootfs()) {
            bad.push(format!("round {round}: {e}"));
        }
    }
    ensure!(
        bad.is_empty(),
        "{} problems in {ROUNDS} rounds ({start_won} won by start): {}",
        bad.len(),
        bad.join(" | ")
    );
    Ok(())
}

/// `kill` (SIGKILL) racing `delete --force` on a running container: delete always
/// succeeds; kill succeeds or says the container is gone or stopped (never a raw
/// `kill(2)` error about a pid it no longer owns).
pub fn race_kill_delete(c: &mut Ctx) -> Res {
    let mut bad = Vec::new();
    for round in 0..ROUNDS {
        let (id, b) = container(c, true)?;
        let outs = c
            .suite
            .rt
            .run_concurrently(&[vec!["kill", &id, "KILL"], vec!["delete", "--force", &id]]);
        if !outs[1].ok() {
            bad.push(format!("round {round}: {}", outs[1].describe()));
        }
        if !outs[0].ok() {
            if let Err(e) = clean_loss(&outs[0]) {
                bad.push(format!("round {round}: {e}"));
            }
        }
        if let Err(e) = nothing_left(c, &id, &b.rootfs()) {
            bad.push(format!("round {round}: {e}"));
        }
    }
    ensure!(bad.is_empty(), "{}", bad.join(" | "));
    Ok(())
}

/// `exec -d` racing `delete --force` on a running container: delete always succeeds
/// and no exec'd process survives it (it ran in the container's cgroup and was
/// killed with it, or it never started and exec failed cleanly); no cgroup is left.
pub fn race_exec_delete(c: &mut Ctx) -> Res {
    let mut bad = Vec::new();
    for round in 0..ROUNDS {
        let (id, b) = container(c, true)?;
        let outs = c.suite.rt.run_concurrently(&[
            vec!["exec", "-d", &id, "/bin/sleep", "61"],
            vec!["delete", "--force", &id],
        ]);
        if !outs[1].ok() {
            bad.push(format!("round {round}: {}", outs[1].describe()));
        }
        if !outs[0].ok() {
            if let Err(e) = clean_loss(&outs[0]) {
                bad.push(format!("round {round}: {e}"));
            }
        }
        if let Err(e) = nothing_left(c, &id, &b.rootfs()) {
            bad.push(format!("round {round}: {e}"));
        }
    }
    ensure!(bad.is_empty(), "{}", bad.join(" | "));
    Ok(())
}

/// A poststart hook that hangs (a hook with no timeout that never returns): `start`
/// stays in it, but the verbs that do not remove the container do not wait for it
/// (`pause`, `resume`), and `delete --force` ends within its bound (it waits a moment
/// so that poststop hooks follow poststart hooks, then goes on, as runc's delete does)
/// and leaves nothing. When the hook finally fails, `start` gives up without touching
/// a new container of the same id made meanwhile.
pub fn race_delete_hung_poststart(c: &mut Ctx) -> Res {
    let id = c.new_id();
    let b = c.bundle(&id, false)?;
    let marker = b.dir.join("hook.pid");
    let mut cfg: Value = cfg_sh("exec sleep 60");
    crate::spec::set(
        &mut cfg,
        "linux/cgroupsPath",
        Value::String(c.cgroups_path(&id)),
    );
    let hook = format!("echo $$ > {}; exec sleep 300", marker.display());
    push(
        &mut cfg,
        "hooks/poststart",
        serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", hook]}),
    );
    b.write_config(&cfg)?;
    c.must_create(&b, &id)?;
    let mut start = c
        .suite
        .rt
        .spawn(&["start", &id])
        .map_err(crate::verdict::Verdict::Fail)?;
    let t = Instant::now();
    let mut hook_pid = None;
    while hook_pid.is_none() && t.elapsed() < Duration::from_secs(10) {
        let text = std::fs::read_to_string(&marker).unwrap_or_default();
        hook_pid = text.trim().parse::<i32>().ok();
        std::thread::sleep(Duration::from_millis(10));
    }
    let Some(hook_pid) = hook_pid else {
        let _ = c.rt(&["delete", "--force", &id]);
        crate::fail!(
            "the poststart hook never ran: {:?}",
            start.wait_exit(Duration::ZERO)
        );
    };
    let kill_hook = || {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(hook_pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    };
    let mut bad = Vec::new();
    for verb in ["pause", "resume"] {
        let o = c.rt(&[verb, &id]);
        if !o.ok() {
            bad.push(format!("{verb} while the hook hangs: {}", o.describe()));
        }
    }
    let del = c.rt(&["delete", "--force", &id]);
    if !del.ok() {
        bad.push(format!(
            "delete --force while the hook hangs: {}",
            del.describe()
        ));
    }
    // Nothing of the container is left but the `start` still in its hook.
    let hierarchies = cgroup::hierarchies();
    let waiting = format!("process {}", start.pid());
    let t = Instant::now();
    loop {
        let left: Vec<String> =
            super::crash_create::leftovers_of(c, &hierarchies, &id, &b.rootfs())
                .into_iter()
                .filter(|l| *l != waiting)
                .collect();
        if left.is_empty() {
            break;
        }
        if t.elapsed() > Duration::from_secs(3) {
            bad.push(format!("left after delete --force: {}", left.join("; ")));
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // The same id again, with no hook; then the old start's hook fails.
    crate::spec::set(&mut cfg, "hooks", serde_json::json!({}));
    b.write_config(&cfg)?;
    let again = c.create(&b, &id);
    if !again.ok() {
        kill_hook();
        bad.push(format!("create of the same id: {}", again.describe()));
        ensure!(false, "{}", bad.join(" | "));
    }
    kill_hook();
    match start.wait_exit(Duration::from_secs(10)) {
        Ok(Some(0)) => bad.push("start succeeded although its poststart hook was killed".into()),
        Ok(Some(_)) => {}
        other => bad.push(format!(
            "start did not end after its hook was killed: {other:?}"
        )),
    }
    match c.status(&id) {
        Ok(s) if s == "created" => {}
        other => bad.push(format!(
            "the new container of the same id is {other:?} after the old start gave up, want created"
        )),
    }
    let del = c.rt(&["delete", "--force", &id]);
    if !del.ok() {
        bad.push(format!(
            "delete --force of the new container: {}",
            del.describe()
        ));
    }
    if let Err(e) = nothing_left(c, &id, &b.rootfs()) {
        bad.push(e);
    }
    ensure!(bad.is_empty(), "{}", bad.join(" | "));
    Ok(())
}
