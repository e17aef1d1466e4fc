//! runc's `ps` and `events` contract (ps.bats, events.bats): the ps tables and JSON
//! engines parse, ps of a stopped container, one stats event, a stream of them at
//! each interval that ends when the container is deleted, and the OOM event.

use std::time::Duration;

use serde_json::json;

use super::contract::{cfg, prepare, run_detached, unified_host, wait_until};
use crate::ctx::Ctx;
use crate::spec::set;
use crate::verdict::{Res, Verdict};
use crate::{ensure, skip};

/// The whitespace-separated words of the first line.
fn header(text: &str) -> Vec<&str> {
    text.lines()
        .next()
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default()
}

/// `ps ID`: runc's `ps -ef` columns and a row of root's; `ps -f json`: the pids;
/// `ps ID -e -x`: ps's own options after the id; `ps` of a stopped container exits 0.
pub fn contract_ps(c: &mut Ctx) -> Res {
    let (id, b) = prepare(c, cfg(&["sleep", "60"]))?;
    run_detached(c, &b, &id)?;
    let out = c.must(&["ps", &id])?;
    ensure!(
        header(&out.stdout) == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
        "ps header: {:?}",
        out.stdout.lines().next()
    );
    let row = out.stdout.lines().nth(1).unwrap_or("");
    ensure!(
        row.split_whitespace().next() == Some("root")
            && row
                .split_whitespace()
                .nth(1)
                .is_some_and(|p| p.parse::<u32>().is_ok()),
        "ps row: {row:?}, want root and a pid"
    );
    let out = c.must(&["ps", "-f", "json", &id])?;
    let pids: Vec<u32> = serde_json::from_str(out.stdout.trim())
        .map_err(|e| Verdict::Fail(format!("ps -f json ({e}): {:?}", out.stdout)))?;
    ensure!(!pids.is_empty(), "ps -f json lists no pid");
    let out = c.must(&["ps", &id, "-e", "-x"])?;
    ensure!(
        header(&out.stdout) == ["PID", "TTY", "STAT", "TIME", "COMMAND"],
        "ps -e -x header: {:?}",
        out.stdout.lines().next()
    );
    ensure!(
        out.stdout
            .lines()
            .nth(1)
            .and_then(|l| l.split_whitespace().next())
            .is_some_and(|p| p.parse::<u32>().is_ok()),
        "ps -e -x row: {:?}",
        out.stdout
    );
    c.must(&["kill", &id, "KILL"])?;
    c.wait_stopped(&id)?;
    let out = c.rt(&["ps", &id]);
    ensure!(out.ok(), "ps of a stopped container: {}", out.describe());
    c.must(&["delete", &id])?;
    Ok(())
}

/// A stats event line as runc's tests match it.
fn stats_line(line: &str, id: &str) -> bool {
    line.starts_with(&format!("{{\"type\":\"stats\",\"id\":\"{id}\",")) && line.contains("\"data\"")
}

/// `events --stats` prints one stats event; `events` with the default, 1s and 100ms
/// intervals streams them until the container is deleted, then exits.
pub fn contract_events(c: &mut Ctx) -> Res {
    let (id, b) = prepare(c, cfg(&["sleep", "60"]))?;
    run_detached(c, &b, &id)?;
    let out = c.must(&["events", "--stats", &id])?;
    ensure!(
        out.stdout.lines().count() == 1 && stats_line(&out.stdout, &id),
        "events --stats: {:?}",
        out.stdout
    );
    c.must(&["delete", "--force", &id])?;
    for (interval, first) in [(None, 12), (Some("1s"), 5), (Some("100ms"), 3)] {
        let (id, b) = prepare(c, cfg(&["sleep", "60"]))?;
        run_detached(c, &b, &id)?;
        let mut args = vec!["events"];
        if let Some(i) = interval {
            args.extend_from_slice(&["--interval", i]);
        }
        args.push(&id);
        let mut ev = c.suite.rt.spawn(&args).map_err(Verdict::Fail)?;
        let what = interval.unwrap_or("the default");
        let got = wait_until(Duration::from_secs(first), || ev.stdout().contains(&id));
        ensure!(got, "events at {what} interval printed nothing in {first}s");
        c.must(&["delete", "--force", &id])?;
        let exit = ev.wait_exit(Duration::from_secs(first + 5));
        ensure!(
            exit.is_ok(),
            "events at {what} interval did not end after the container was deleted: {exit:?}"
        );
        let text = ev.stdout();
        ensure!(
            stats_line(text.lines().next().unwrap_or(""), &id),
            "events at {what} interval, first line: {:?}",
            text.lines().next()
        );
    }
    Ok(())
}

/// A memory hog under a 32M limit (swap 32M, so no swapping): `events` reports
/// `{"type":"oom","id":ID}`.
pub fn contract_events_oom(c: &mut Ctx) -> Res {
    let swap = if unified_host() {
        true
    } else {
        crate::cgroup::v1_controller("memory")
            .is_some_and(|m| m.join("memory.memsw.limit_in_bytes").exists())
    };
    if !swap {
        skip!("no swap accounting (memory.memsw files): runc's test requires cgroups_swap");
    }
    let mut config = cfg(&["sleep", "60"]);
    set(
        &mut config,
        "linux/resources/memory",
        json!({"limit": 33554432, "swap": 33554432}),
    );
    let (id, b) = prepare(c, config)?;
    run_detached(c, &b, &id)?;
    let mut ev = c
        .suite
        .rt
        .spawn(&["events", "--interval", "1s", &id])
        .map_err(Verdict::Fail)?;
    ensure!(
        wait_until(Duration::from_secs(5), || ev.stdout().contains(&id)),
        "events printed nothing before the hog started"
    );
    c.must(&[
        "exec",
        "-d",
        &id,
        "sh",
        "-c",
        "test=$(dd if=/dev/urandom ibs=5120k)",
    ])?;
    let want = format!("{{\"type\":\"oom\",\"id\":\"{id}\"}}");
    let seen = wait_until(Duration::from_secs(15), || ev.stdout().contains(&want));
    c.must(&["delete", "--force", &id])?;
    let _ = ev.wait_exit(Duration::from_secs(5));
    ensure!(
        seen,
        "no {want} event; events printed {:?}",
        ev.stdout()
            .lines()
            .filter(|l| !l.contains("\"stats\""))
            .collect::<Vec<_>>()
    );
    Ok(())
}
