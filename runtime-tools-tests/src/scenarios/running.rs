//! Shared by the verb scenarios (exec, pause, update, events, checkpoint): a started
//! container running a long sleep, under the run's parent cgroup.

use serde_json::Value;

use crate::bundle::Bundle;
use crate::ctx::Ctx;
use crate::spec::default_config;
use crate::verdict::Verdict;
use std::time::Duration;

/// A config running `args`, edited by `edit`, created and started; waits for `running`.
pub fn start_with(
    c: &mut Ctx,
    args: &[&str],
    edit: impl FnOnce(&mut Value),
) -> Result<(String, Bundle), Verdict> {
    let mut cfg = default_config(args, "/placeholder");
    edit(&mut cfg);
    let (id, b) = c.prepare(cfg, false)?;
    c.must_create(&b, &id)?;
    c.must(&["start", &id])?;
    c.wait_status(&id, "running", Duration::from_secs(10))?;
    Ok((id, b))
}

/// A started container sleeping for a minute.
pub fn start_sleeper(c: &mut Ctx) -> Result<(String, Bundle), Verdict> {
    start_with(c, &["/bin/sleep", "60"], |_| {})
}

/// The v1 (or v2) directory of `controller` for the container's cgroup.
pub fn cgroup_file(c: &Ctx, id: &str, controller: &str, file: &str) -> Result<String, Verdict> {
    let ctl = crate::cgroup::controller(controller)
        .ok_or_else(|| Verdict::Skip(format!("no {controller} controller on this host")))?;
    let path = ctl.dir(&format!("/{}/{id}", c.suite.cg_parent)).join(file);
    std::fs::read_to_string(&path)
        .map(|s| s.trim().to_string())
        .map_err(|e| Verdict::Fail(format!("read {}: {e}", path.display())))
}

/// Kills a started container, waits until it has stopped, and deletes it (runc 1.1.5
/// refuses `delete --force` while a detached exec'd process is still around).
pub fn stop_and_delete(c: &Ctx, id: &str) -> Result<(), Verdict> {
    c.must(&["kill", id, "KILL"])?;
    c.wait_stopped(id)?;
    c.must(&["delete", id])?;
    Ok(())
}
