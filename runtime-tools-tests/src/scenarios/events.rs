//! `events --stats`: one runc-shaped stats event whose values match the cgroup files.

use super::running::{cgroup_file, start_sleeper};
use crate::ctx::Ctx;
use crate::ensure;
use crate::verdict::{Res, Verdict};

pub fn events_stats(c: &mut Ctx) -> Res {
    let (id, _b) = start_sleeper(c)?;
    c.must(&["update", "--pids-limit", "40", &id])?;
    let out = c.must(&["events", "--stats", &id])?;
    ensure!(
        out.stdout.lines().count() == 1,
        "want one line: {:?}",
        out.stdout
    );
    let ev: serde_json::Value = serde_json::from_str(out.stdout.trim())
        .map_err(|e| Verdict::Fail(format!("event is not JSON ({e}): {}", out.stdout.trim())))?;
    ensure!(
        ev["type"] == "stats" && ev["id"] == id.as_str(),
        "event header: {ev}"
    );
    let data = &ev["data"];
    let current = cgroup_file(c, &id, "pids", "pids.current")?;
    ensure!(
        data["pids"]["current"].as_u64() == current.parse().ok(),
        "pids.current {current} but event says {}",
        data["pids"]["current"]
    );
    ensure!(
        data["pids"]["limit"] == 40,
        "pids limit {} want 40",
        data["pids"]["limit"]
    );
    if crate::cgroup::v1_controller("memory").is_some() {
        let limit = cgroup_file(c, &id, "memory", "memory.limit_in_bytes")?;
        ensure!(
            data["memory"]["usage"]["limit"].as_u64() == limit.parse().ok(),
            "memory limit {limit} but event says {}",
            data["memory"]["usage"]["limit"]
        );
        ensure!(data["memory"]["raw"].is_object(), "no memory.raw: {data}");
    }
    ensure!(
        data["cpu"]["usage"]["total"]
            .as_u64()
            .is_some_and(|t| t > 0),
        "no cpu usage: {}",
        data["cpu"]
    );
    c.must(&["kill", &id, "KILL"])?;
    c.wait_stopped(&id)?;
    c.must_fail(&["events", "--stats", &id], "stopped container")?;
    c.must(&["delete", &id])?;
    Ok(())
}
