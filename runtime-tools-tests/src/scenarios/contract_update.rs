//! runc's `update` contract for CPU limits (update.bats: cpu limits, period or quota
//! alone, a pod parent's limit, real-time period and runtime, a paused container),
//! judged from the cgroup files (v1 `cpu.cfs_*`, v2 `cpu.max`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use super::contract::{cfg, expect_status, prepare, read_cg, run_detached, unified_host};
use crate::bundle::Bundle;
use crate::ctx::Ctx;
use crate::runtime::Opts;
use crate::spec::set;
use crate::verdict::{Res, Verdict};
use crate::{cgroup, ensure, skip};

/// update.bats's starting limits: memory 32M (24M reserved), cpu shares 100, quota
/// 500000 per 1000000, pids 20; `cpu` replaced when given.
fn update_cfg(cpu: Option<Value>) -> Value {
    let mut config = cfg(&["sleep", "600"]);
    set(
        &mut config,
        "linux/resources/memory",
        json!({"limit": 33554432, "reservation": 25165824}),
    );
    set(
        &mut config,
        "linux/resources/cpu",
        cpu.unwrap_or(json!({"shares": 100, "quota": 500000, "period": 1000000})),
    );
    set(&mut config, "linux/resources/pids", json!({"limit": 20}));
    config
}

/// The cpu controller's directory for the cgroupsPath `rel`.
fn cpu_dir(rel: &str) -> Result<PathBuf, Verdict> {
    super::contract::cgroup_dir("cpu", rel)
}

/// Quota and period as runc's tests compare them: v1 `cpu.cfs_quota_us` and
/// `cpu.cfs_period_us`, v2 `cpu.max` (quota -1 is `max` there).
fn expect_quota(dir: &Path, quota: i64, period: u64) -> Res {
    if unified_host() {
        let q = if quota == -1 {
            "max".to_string()
        } else {
            quota.to_string()
        };
        let got = read_cg(dir, "cpu.max")?;
        ensure!(
            got == format!("{q} {period}"),
            "cpu.max is {got:?} want \"{q} {period}\""
        );
    } else {
        let (q, p) = (
            read_cg(dir, "cpu.cfs_quota_us")?,
            read_cg(dir, "cpu.cfs_period_us")?,
        );
        ensure!(
            q == quota.to_string() && p == period.to_string(),
            "cfs quota/period are {q}/{p} want {quota}/{period}"
        );
    }
    Ok(())
}

/// v1 shares; on v2 the weight runc converts them to.
fn expect_shares(dir: &Path, shares: u64) -> Res {
    if unified_host() {
        let weight = 1 + ((shares - 2) * 9999) / 262142;
        let got = read_cg(dir, "cpu.weight")?;
        ensure!(
            got == weight.to_string(),
            "cpu.weight is {got:?} want {weight} (shares {shares})"
        );
    } else {
        let got = read_cg(dir, "cpu.shares")?;
        ensure!(
            got == shares.to_string(),
            "cpu.shares is {got:?} want {shares}"
        );
    }
    Ok(())
}

/// `update` with `args`, failing the scenario on an error.
fn update(c: &Ctx, id: &str, args: &[&str]) -> Res {
    let mut a = vec!["update"];
    a.extend_from_slice(args);
    a.push(id);
    c.must(&a).map(|_| ())
}

/// A running container with update.bats's limits, and its cpu cgroup directory.
fn start(c: &mut Ctx, cpu: Option<Value>) -> Result<(String, Bundle, PathBuf), Verdict> {
    let (id, b) = prepare(c, update_cfg(cpu))?;
    run_detached(c, &b, &id)?;
    let dir = cpu_dir(&format!("/{}/{id}", c.suite.cg_parent))?;
    Ok((id, b, dir))
}

/// Period, quota (-1 removes it) and shares, one at a time and together, by flags,
/// by `-r -` on stdin and by `-r FILE`.
pub fn contract_cgroup_update_cpu_limits(c: &mut Ctx) -> Res {
    let (id, b, dir) = start(c, None)?;
    expect_quota(&dir, 500000, 1000000)?;
    expect_shares(&dir, 100)?;
    update(c, &id, &["--cpu-period", "900000"])?;
    expect_quota(&dir, 500000, 900000)?;
    update(c, &id, &["--cpu-quota", "600000"])?;
    expect_quota(&dir, 600000, 900000)?;
    update(c, &id, &["--cpu-quota", "-1"])?;
    expect_quota(&dir, -1, 900000)?;
    update(c, &id, &["--cpu-share", "200"])?;
    expect_shares(&dir, 200)?;
    let initial = b.dir.join("initial-cpu.json");
    std::fs::write(
        &initial,
        r#"{"cpu": {"shares": 100, "quota": 500000, "period": 1000000}}"#,
    )?;
    let out = c.suite.rt.run_opts(
        &["update", "-r", "-", &id],
        Opts {
            cwd: None,
            stdin: Some(initial.as_path()),
        },
    );
    ensure!(out.ok(), "update -r - (stdin): {}", out.describe());
    expect_quota(&dir, 500000, 1000000)?;
    update(
        c,
        &id,
        &[
            "--cpu-period",
            "900000",
            "--cpu-quota",
            "600000",
            "--cpu-share",
            "200",
        ],
    )?;
    expect_quota(&dir, 600000, 900000)?;
    expect_shares(&dir, 200)?;
    update(c, &id, &["--cpu-quota", "-1", "--cpu-period", "100000"])?;
    expect_quota(&dir, -1, 100000)?;
    update(c, &id, &["-r", &initial.display().to_string()])?;
    expect_quota(&dir, 500000, 1000000)?;
    expect_shares(&dir, 100)?;
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// At create: a period alone leaves the quota unlimited; a period the kernel refuses
/// (100) fails run with exit 1; a quota alone gets the default period 100000.
pub fn contract_cgroup_cpu_period_or_quota_alone(c: &mut Ctx) -> Res {
    let (id, _b, dir) = start(c, Some(json!({"period": 1000000})))?;
    expect_quota(&dir, -1, 1000000)?;
    c.must(&["delete", "--force", &id])?;
    let (id, b) = prepare(c, update_cfg(Some(json!({"period": 100}))))?;
    let bp = b.path_str();
    let out = c.rt(&["run", "-d", "--bundle", &bp, &id]);
    ensure!(
        out.code == Some(1),
        "run with cpu period 100: want exit 1: {}",
        out.describe()
    );
    let (id, _b, dir) = start(c, Some(json!({"quota": 5000})))?;
    expect_quota(&dir, 5000, 100000)?;
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// With no period or quota set at create, updating the period alone keeps the quota
/// unlimited, and updating the quota alone uses the default period.
pub fn contract_cgroup_update_cpu_without_previous(c: &mut Ctx) -> Res {
    let (id, _b, dir) = start(c, Some(json!({})))?;
    update(c, &id, &["--cpu-period", "50000"])?;
    expect_quota(&dir, -1, 50000)?;
    c.must(&["delete", "--force", &id])?;
    let (id, _b, dir) = start(c, Some(json!({})))?;
    update(c, &id, &["--cpu-quota", "30000"])?;
    expect_quota(&dir, 30000, 100000)?;
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// v1, a pod cgroup made beforehand in every hierarchy (as kubelet makes them) with a
/// 50% CPU quota: the container runs in it; a 60% quota is refused with exit 1; 30%
/// with a shorter period is applied.
pub fn contract_cgroup_update_cpu_in_pod(c: &mut Ctx) -> Res {
    if unified_host() {
        skip!("cgroup v1 only (runc's test requires cgroups_v1)");
    }
    let Some(cpu) = cgroup::v1_controller("cpu") else {
        skip!("no v1 cpu hierarchy");
    };
    let id = c.new_id();
    let pod = format!("/{}/pod-{id}", c.suite.cg_parent);
    c.own_cgroup(&pod);
    for h in cgroup::hierarchies() {
        if !h.starts_with("/sys/fs/cgroup/unified") {
            std::fs::create_dir_all(h.join(pod.trim_start_matches('/')))?;
        }
    }
    let pod_cpu = cpu.join(pod.trim_start_matches('/'));
    std::fs::write(pod_cpu.join("cpu.cfs_quota_us"), "50000")?;
    ensure!(
        read_cg(&pod_cpu, "cpu.cfs_period_us")? == "100000",
        "the pod's default period is not 100000"
    );
    let mut config = update_cfg(None);
    let rel = format!("{pod}/{id}");
    set(&mut config, "linux/cgroupsPath", json!(rel));
    let b = c.bundle(&id, false)?;
    super::contract::full_busybox(&b)?;
    b.write_config(&config)?;
    c.own_cgroup(&rel);
    // The container's own 50% (500000/1000000) does not exceed the pod's 50%.
    run_detached(c, &b, &id)?;
    let dir = cpu.join(rel.trim_start_matches('/'));
    let cur: u64 = read_cg(&dir, "cpu.cfs_period_us")?.parse().unwrap_or(0);
    let over = (cur * 6 / 10).to_string();
    let out = c.rt(&["update", "--cpu-quota", &over, &id]);
    ensure!(
        out.code == Some(1),
        "a 60% quota under a 50% pod: want exit 1: {}",
        out.describe()
    );
    update(c, &id, &["--cpu-period", "10000", "--cpu-quota", "3000"])?;
    expect_quota(&dir, 3000, 10000)?;
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// v1 with real-time group scheduling: the parents given the root's rt period and
/// runtime, `update -r -` sets realtimeRuntime alone, then with realtimePeriod, and
/// the --cpu-rt-* flags set both.
pub fn contract_cgroup_update_rt(c: &mut Ctx) -> Res {
    if unified_host() {
        skip!("cgroup v1 only");
    }
    let Some(cpu) = cgroup::v1_controller("cpu") else {
        skip!("no v1 cpu hierarchy");
    };
    if !cpu.join("cpu.rt_runtime_us").exists() {
        skip!("no cpu.rt_runtime_us (kernel without RT group scheduling)");
    }
    let root_period = read_cg(&cpu, "cpu.rt_period_us")?;
    let root_runtime = read_cg(&cpu, "cpu.rt_runtime_us")?;
    let (id, b) = prepare(c, update_cfg(Some(json!({}))))?;
    let rel = format!("/{}/{id}", c.suite.cg_parent);
    // A new cgroup gets rt_runtime 0, which leaves nothing to give the container.
    let mut dir = cpu.clone();
    for part in rel.trim_start_matches('/').split('/') {
        dir = dir.join(part);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("cpu.rt_period_us"), &root_period)?;
        std::fs::write(dir.join("cpu.rt_runtime_us"), &root_runtime)?;
    }
    run_detached(c, &b, &id)?;
    let expect = |period: &str, runtime: &str| -> Res {
        let (p, r) = (
            read_cg(&dir, "cpu.rt_period_us")?,
            read_cg(&dir, "cpu.rt_runtime_us")?,
        );
        ensure!(
            p == period && r == runtime,
            "rt period/runtime are {p}/{r} want {period}/{runtime}"
        );
        Ok(())
    };
    for (json, period) in [
        (
            r#"{"cpu": {"realtimeRuntime": 500001}}"#,
            root_period.as_str(),
        ),
        (
            r#"{"cpu": {"realtimePeriod": 800001, "realtimeRuntime": 500001}}"#,
            "800001",
        ),
    ] {
        let f = b.dir.join("rt.json");
        std::fs::write(&f, json)?;
        let out = c.suite.rt.run_opts(
            &["update", "-r", "-", &id],
            Opts {
                cwd: None,
                stdin: Some(f.as_path()),
            },
        );
        ensure!(out.ok(), "update -r - {json}: {}", out.describe());
        expect(period, "500001")?;
    }
    update(
        c,
        &id,
        &["--cpu-rt-period", "900001", "--cpu-rt-runtime", "600001"],
    )?;
    expect("900001", "600001")?;
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// An update of a paused container applies and leaves it paused; resume works.
pub fn contract_cgroup_update_paused(c: &mut Ctx) -> Res {
    let (id, _b, _dir) = start(c, None)?;
    c.must(&["pause", &id])?;
    update(c, &id, &["--pids-limit", "30"])?;
    expect_status(c, &id, "paused")?;
    if let Some(pids) = cgroup::controller("pids") {
        let max = read_cg(
            &pids.dir(&format!("/{}/{id}", c.suite.cg_parent)),
            "pids.max",
        )?;
        ensure!(max == "30", "pids.max after the update is {max:?}");
    }
    c.must(&["resume", &id])?;
    expect_status(c, &id, "running")?;
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// `update -r -` with `doc` on stdin, failing the scenario on an error.
fn update_stdin(c: &Ctx, b: &Bundle, id: &str, doc: &str) -> Res {
    let f = b.dir.join("resources-stdin.json");
    std::fs::write(&f, doc)?;
    let out = c.suite.rt.run_opts(
        &["update", "-r", "-", id],
        Opts {
            cwd: None,
            stdin: Some(f.as_path()),
        },
    );
    ensure!(out.ok(), "update -r - {doc}: {}", out.describe());
    Ok(())
}

/// The file `file` of `controller`'s directory for the cgroupsPath `rel` holds `want`.
fn expect_cg(controller: &str, rel: &str, file: &str, want: &str) -> Res {
    let got = read_cg(&super::contract::cgroup_dir(controller, rel)?, file)?;
    ensure!(got == want, "{file} is {got:?} want {want:?}");
    Ok(())
}

/// More than one CPU to move a cpuset between (runc's tests: `requires smp`).
fn smp() -> bool {
    std::thread::available_parallelism().is_ok_and(|n| n.get() > 1)
}

/// update.bats's resources document for reverting to the starting limits, with
/// cpuset.cpus 0.
const INITIAL_LIMITS: &str = r#"{"memory": {"limit": 33554432, "reservation": 25165824},
  "cpu": {"shares": 100, "quota": 500000, "period": 1000000, "cpus": "0"},
  "pids": {"limit": 20}}"#;

/// Memory (limit, reservation, swap; -1 lifting them), pids and cpuset, by flags, by
/// `-r -` and by `-r FILE`, judged from the cgroup files of v1 or v2 as runc's test
/// names them; on v2 swap is memory.swap.max, the swap beyond memory.
pub fn contract_cgroup_update_common_limits(c: &mut Ctx) -> Res {
    for ctl in ["memory", "pids", "cpuset"] {
        if cgroup::controller(ctl).is_none() {
            skip!("no {ctl} controller on this host");
        }
    }
    let v2 = unified_host();
    let (limit, reserve, swap) = if v2 {
        ("memory.max", "memory.low", "memory.swap.max")
    } else {
        (
            "memory.limit_in_bytes",
            "memory.soft_limit_in_bytes",
            "memory.memsw.limit_in_bytes",
        )
    };
    let (id, b, _cpu) = start(c, None)?;
    let rel = format!("/{}/{id}", c.suite.cg_parent);
    let mem_dir = super::contract::cgroup_dir("memory", &rel)?;
    let unlimited = if v2 {
        "max".to_string()
    } else {
        // The root's limit, which -1 restores.
        let root = cgroup::v1_controller("memory").unwrap_or_else(|| mem_dir.clone());
        read_cg(&root, limit)?
    };
    let have_swap = mem_dir.join(swap).exists();
    let mem = |file: &str, want: &str| expect_cg("memory", &rel, file, want);
    let pids = |want: &str| expect_cg("pids", &rel, "pids.max", want);
    let cpus = |want: &str| expect_cg("cpuset", &rel, "cpuset.cpus", want);
    mem(limit, "33554432")?;
    mem(reserve, "25165824")?;
    pids("20")?;
    if smp() {
        update(c, &id, &["--cpuset-cpus", "1"])?;
        cpus("1")?;
    }
    update(c, &id, &["--memory", "67108864"])?;
    mem(limit, "67108864")?;
    update(c, &id, &["--memory", "50M"])?;
    mem(limit, "52428800")?;
    update(c, &id, &["--memory-reservation", "33554432"])?;
    mem(reserve, "33554432")?;
    if have_swap {
        update(c, &id, &["--memory-swap", "-1"])?;
        mem(swap, &unlimited)?;
        if v2 {
            update(
                c,
                &id,
                &["--memory", "52428800", "--memory-swap", "96468992"],
            )?;
            mem(swap, &(96468992 - 52428800).to_string())?;
        } else {
            update(c, &id, &["--memory-swap", "96468992"])?;
            mem(swap, "96468992")?;
        }
    }
    update(c, &id, &["--memory", "-1"])?;
    mem(limit, &unlimited)?;
    if have_swap {
        mem(swap, &unlimited)?;
    }
    update(c, &id, &["--pids-limit", "10"])?;
    pids("10")?;
    update(c, &id, &["--pids-limit", "-1"])?;
    pids("max")?;
    let initial = || -> Res {
        cpus("0")?;
        mem(limit, "33554432")?;
        mem(reserve, "25165824")?;
        pids("20")
    };
    update_stdin(c, &b, &id, INITIAL_LIMITS)?;
    initial()?;
    update(
        c,
        &id,
        &[
            "--cpu-period",
            "900000",
            "--cpu-quota",
            "600000",
            "--cpu-share",
            "200",
            "--memory",
            "67108864",
            "--memory-reservation",
            "33554432",
            "--pids-limit",
            "10",
        ],
    )?;
    mem(limit, "67108864")?;
    mem(reserve, "33554432")?;
    pids("10")?;
    let file = b.dir.join("initial-limits.json");
    std::fs::write(&file, INITIAL_LIMITS)?;
    update(c, &id, &["-r", &file.display().to_string()])?;
    initial()?;
    if have_swap {
        // runc#592: memory and memory+swap together, down and then above the old swap.
        let m = |n: u64| (n << 20).to_string();
        update(c, &id, &["--memory", "30M", "--memory-swap", "50M"])?;
        mem(limit, &m(30))?;
        mem(swap, &if v2 { m(20) } else { m(50) })?;
        update(c, &id, &["--memory", "60M", "--memory-swap", "80M"])?;
        mem(limit, &m(60))?;
        mem(swap, &if v2 { m(20) } else { m(80) })?;
    }
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// update.bats "update cpuset parameters via resources.CPU": config.json has
/// `linux.resources.CPU` = {"Cpus": "0", "Mems": "0"} beside the `cpu` limits, the
/// container runs with its shares, and `update -r -` with {"CPU": {"Cpus": "1"}} (runc's
/// resources document, whose field names match without case) moves it to CPU 1.
/// What `CPU` does at create is left unjudged: runc's Go decoding takes it for `cpu`,
/// the spec calls it an unknown property to ignore (docs/spec-differences.md). Moving
/// mems needs two NUMA nodes, as in runc's test.
pub fn contract_cgroup_update_cpuset_key_case(c: &mut Ctx) -> Res {
    if !smp() {
        skip!("one CPU: no other cpuset to move to (runc's test requires smp)");
    }
    if cgroup::controller("cpuset").is_none() {
        skip!("no cpuset controller on this host");
    }
    let mut config = update_cfg(None);
    if let Some(r) = config
        .pointer_mut("/linux/resources")
        .and_then(Value::as_object_mut)
    {
        r.insert("CPU".into(), json!({"Cpus": "0", "Mems": "0"}));
    }
    let (id, b) = prepare(c, config)?;
    run_detached(c, &b, &id)?;
    let rel = format!("/{}/{id}", c.suite.cg_parent);
    expect_shares(&cpu_dir(&rel)?, 100)?;
    update_stdin(c, &b, &id, r#"{"CPU": {"Cpus": "1"}}"#)?;
    expect_cg("cpuset", &rel, "cpuset.cpus", "1")?;
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// v2: update.bats's two unified-map tests on one container (the VM lane runs it
/// under emulation): started with the starting limits and unified cpuset.cpus and
/// cpuset.mems 0; `update -r -` with unified cpu.max, cpu.weight and pids.max sets
/// them as given, and one with unified cpuset.cpus 1 moves the container.
pub fn contract_cgroups_v2_update_unified(c: &mut Ctx) -> Res {
    if !unified_host() {
        skip!("cgroup v2 only (runc's tests require cgroups_v2): run in the VM lane");
    }
    let mut config = update_cfg(None);
    set(
        &mut config,
        "linux/resources/unified",
        json!({"cpuset.cpus": "0", "cpuset.mems": "0"}),
    );
    let (id, b) = prepare(c, config)?;
    run_detached(c, &b, &id)?;
    let rel = format!("/{}/{id}", c.suite.cg_parent);
    let dir = Path::new("/sys/fs/cgroup").join(rel.trim_start_matches('/'));
    let expect = |file: &str, want: &str| -> Res {
        let got = read_cg(&dir, file)?;
        ensure!(got == want, "{file} is {got:?} want {want:?}");
        Ok(())
    };
    expect("cpu.max", "500000 1000000")?;
    // shares 100 is weight 4.
    expect("cpu.weight", "4")?;
    expect("pids.max", "20")?;
    expect("cpuset.cpus", "0")?;
    expect("cpuset.mems", "0")?;
    update_stdin(
        c,
        &b,
        &id,
        r#"{"unified": {"cpu.max": "max 100000", "cpu.weight": "16", "pids.max": "10"}}"#,
    )?;
    expect("cpu.max", "max 100000")?;
    expect("cpu.weight", "16")?;
    expect("pids.max", "10")?;
    if smp() {
        update_stdin(c, &b, &id, r#"{"unified": {"cpuset.cpus": "1"}}"#)?;
        expect("cpuset.cpus", "1")?;
    }
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// update.bats "update devices [minimal transition rules]": /dev/kmsg is made but
/// denied (deny-all, then a deny rule with runc's `rwa`), and the container reads it
/// in a loop with errors to /dev/null. While 30 updates run, nothing may come out on
/// its terminal: neither kmsg data (the deny lifted for a moment) nor an error about
/// /dev/null (everything denied for a moment).
pub fn contract_cgroup_update_devices_transition(c: &mut Ctx) -> Res {
    if cgroup::controller("devices").is_none() && !unified_host() {
        skip!("no devices controller on this host");
    }
    let (id, _b, master) = super::contract::run_tty_shell(c, |config| {
        set(
            config,
            "process/args",
            json!([
                "sh",
                "-c",
                "while true; do head -c 100 /dev/kmsg 2> /dev/null; done"
            ]),
        );
        set(
            config,
            "linux/resources/devices",
            json!([{"allow": false, "access": "rwm"},
                   {"allow": false, "type": "c", "major": 1, "minor": 11, "access": "rwa"}]),
        );
        set(
            config,
            "linux/devices",
            json!([{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11}]),
        );
        for s in ["bounding", "effective", "inheritable", "permitted"] {
            crate::spec::push(
                config,
                &format!("process/capabilities/{s}"),
                json!("CAP_SYSLOG"),
            );
        }
    })?;
    for _ in 0..30 {
        update(c, &id, &["--pids-limit", "30"])?;
    }
    // Whatever the terminal got meanwhile (the wait ends early only if this is seen).
    let seen = super::terminal::read_master(&master, "\0", Duration::from_millis(500));
    ensure!(
        seen.is_empty(),
        "the container printed while updates ran: {:?}",
        seen.chars().take(300).collect::<String>()
    );
    c.must(&["delete", "--force", &id])?;
    Ok(())
}
