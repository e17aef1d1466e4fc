//! `pause` / `resume` (state shows `paused`, exec refused while paused) and `ps`.

use super::running::start_sleeper;
use crate::ctx::Ctx;
use crate::ensure;
use crate::verdict::Res;

pub fn pause_resume(c: &mut Ctx) -> Res {
    let (id, _b) = start_sleeper(c)?;
    c.must_fail(&["resume", &id], "not paused")?;
    c.must(&["pause", &id])?;
    let st = c.status(&id)?;
    ensure!(st == "paused", "state after pause is {st:?}");
    let out = c.must_fail(&["exec", &id, "/bin/true"], "paused container")?;
    ensure!(
        out.stderr.contains("paused"),
        "the refusal does not say the container is paused: {}",
        out.stderr.trim()
    );
    c.must_fail(&["pause", &id], "already paused")?;
    c.must(&["resume", &id])?;
    let st = c.status(&id)?;
    ensure!(st == "running", "state after resume is {st:?}");
    c.must(&["exec", &id, "/bin/true"])?;
    c.must_fail(&["pause", "no-such-container-x"], "unknown id")?;
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

pub fn ps_formats(c: &mut Ctx) -> Res {
    let (id, _b) = start_sleeper(c)?;
    let pid = c.pid(&id)?;
    let out = c.must(&["ps", "--format", "json", &id])?;
    let pids: Vec<i32> = serde_json::from_str(out.stdout.trim())
        .map_err(|e| crate::verdict::Verdict::Fail(format!("ps json {:?}: {e}", out.stdout)))?;
    ensure!(pids == vec![pid], "ps json {pids:?} want [{pid}]");
    let out = c.must(&["ps", &id])?;
    let lines: Vec<&str> = out.stdout.lines().collect();
    ensure!(
        lines
            .first()
            .is_some_and(|h| h.split_whitespace().any(|f| f == "PID")),
        "no ps header: {:?}",
        out.stdout
    );
    ensure!(
        lines.len() == 2,
        "ps table wants header + 1 line: {:?}",
        out.stdout
    );
    ensure!(
        lines[1].split_whitespace().nth(1) == Some(pid.to_string().as_str()),
        "ps line is not the init: {:?}",
        lines[1]
    );
    let out = c.must(&["ps", &id, "-o", "pid,comm"])?;
    ensure!(
        out.stdout.contains("sleep"),
        "ps -o pid,comm: {:?}",
        out.stdout
    );
    c.must_fail(&["ps", "--format", "xml", &id], "bad format")?;
    c.must(&["delete", "--force", &id])?;
    Ok(())
}
