//! `update`: new limits reach the cgroup files, the process feels them (a pids limit
//! stops forks), they are kept for later commands, and bad values change nothing.

use super::running::{cgroup_file, start_sleeper};
use crate::ctx::Ctx;
use crate::ensure;
use crate::verdict::Res;

pub fn update_resources(c: &mut Ctx) -> Res {
    let (id, _b) = start_sleeper(c)?;
    c.must(&[
        "update",
        "--pids-limit",
        "3",
        "--memory",
        "64M",
        "--cpu-share",
        "512",
        &id,
    ])?;
    let got = cgroup_file(c, &id, "pids", "pids.max")?;
    ensure!(got == "3", "pids.max is {got:?} want 3");
    if crate::cgroup::v1_controller("memory").is_some() {
        let got = cgroup_file(c, &id, "memory", "memory.limit_in_bytes")?;
        ensure!(
            got == (64u64 << 20).to_string(),
            "memory limit {got:?} want 64M"
        );
        let got = cgroup_file(c, &id, "cpu", "cpu.shares")?;
        ensure!(got == "512", "cpu.shares {got:?} want 512");
    }
    // The process feels it: sleep + sh + one child = 3, so further forks fail.
    let out = c.rt(&[
        "exec",
        &id,
        "/bin/sh",
        "-c",
        "sleep 5 & sleep 5 & sleep 5 & wait",
    ]);
    ensure!(
        out.stderr.contains("can't fork") || out.stderr.contains("Resource temporarily"),
        "forks beyond the pids limit did not fail: {}",
        out.describe()
    );
    // The stored resources are updated: a later update of another field keeps them.
    c.must(&["update", "--cpu-share", "256", &id])?;
    let got = cgroup_file(c, &id, "pids", "pids.max")?;
    ensure!(
        got == "3",
        "pids.max changed to {got:?} by an unrelated update"
    );
    // Bad values: refused with a message, nothing changed.
    for args in [
        ["update", "--memory", "12Q"],
        ["update", "--pids-limit", "x"],
        ["update", "--cpuset-cpus", "z"],
        ["update", "--resources", "/nonexistent-resources.json"],
    ] {
        let mut a = args.to_vec();
        a.push(&id);
        c.must_fail(&a, "invalid value")?;
    }
    let got = cgroup_file(c, &id, "pids", "pids.max")?;
    ensure!(got == "3", "a refused update changed pids.max to {got:?}");
    c.must_fail(
        &["update", "--pids-limit", "5", "no-such-container-x"],
        "unknown id",
    )?;
    c.must(&["delete", "--force", &id])?;
    Ok(())
}
