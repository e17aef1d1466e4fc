//! runc's cgroup contract (cgroups.bats but for the non-empty and frozen cgroup
//! tests, and delete.bats's sub-cgroup tests): limits with and without a cgroupsPath,
//! v1 refusing unified keys, exec joining the init's cgroups, sub-cgroups the
//! container made removed by delete --force, and the cgroup v2 behaviour that only a
//! cgroup2 host (the VM lane) can show.

use serde_json::{json, Value};

use super::contract::{
    cfg, expect_gone, full_busybox, prepare, read_cg, run_detached, unified_host,
};
use crate::ctx::Ctx;
use crate::spec::{push, set};
use crate::verdict::{Res, Verdict};
use crate::{cgroup, ensure, fail, skip};

/// A writable `cgroup` mount at /sys/fs/cgroup in a cgroup namespace (runc's spec
/// has the mount; its tests make it writable and add the namespace).
fn cgroup_mount_rw(cfg: &mut Value) {
    push(
        cfg,
        "mounts",
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
               "options": ["nosuid", "noexec", "nodev", "relatime"]}),
    );
    push(cfg, "linux/namespaces", json!({"type": "cgroup"}));
}

fn v2_only() -> Res {
    if !unified_host() {
        skip!("cgroup v2 only (runc's test requires cgroups_v2): run in the VM lane");
    }
    Ok(())
}

/// Without a cgroupsPath and limits the container runs; with a cgroupsPath and a pids
/// limit it runs with the limit (on v2 its cgroup has every controller the root has),
/// and exec works in it.
pub fn contract_cgroup_limits_and_exec(c: &mut Ctx) -> Res {
    let mut config = cfg(&["sleep", "60"]);
    crate::spec::remove(&mut config, "linux/cgroupsPath");
    let (id, b) = prepare(c, config)?;
    // Where a runtime puts a container without a cgroupsPath is its own choice.
    c.own_cgroup(&format!("/{id}"));
    run_detached(c, &b, &id)?;
    c.must(&["delete", "--force", &id])?;

    let mut config = cfg(&["sleep", "60"]);
    set(&mut config, "linux/resources/pids", json!({"limit": 100}));
    let (id, b) = prepare(c, config)?;
    run_detached(c, &b, &id)?;
    let rel = format!("/{}/{id}", c.suite.cg_parent);
    if let Some(pids) = cgroup::controller("pids") {
        let max = read_cg(&pids.dir(&rel), "pids.max")?;
        ensure!(max == "100", "pids.max is {max:?} want 100");
    }
    if unified_host() {
        let root = read_cg(std::path::Path::new("/sys/fs/cgroup"), "cgroup.controllers")?;
        let dir = std::path::Path::new("/sys/fs/cgroup").join(rel.trim_start_matches('/'));
        let mine = read_cg(&dir, "cgroup.controllers")?;
        ensure!(
            mine == root,
            "the container's cgroup.controllers {mine:?} differ from the root's {root:?}"
        );
    }
    let out = c.must(&["exec", &id, "echo", "cgroups_exec"])?;
    ensure!(
        out.stdout.lines().next() == Some("cgroups_exec"),
        "exec output {:?}",
        out.stdout
    );
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// On cgroup v1, linux.resources.unified is refused as an invalid configuration and
/// nothing is left behind.
pub fn contract_cgroup_v1_unified_refused(c: &mut Ctx) -> Res {
    if unified_host() {
        skip!("cgroup v1 only");
    }
    let mut config = cfg(&["sleep", "60"]);
    set(&mut config, "linux/resources/pids", json!({"limit": 100}));
    set(
        &mut config,
        "linux/resources/unified",
        json!({"memory.min": "131072"}),
    );
    let (id, b) = prepare(c, config)?;
    let bp = b.path_str();
    let out = c.rt(&["run", "-d", "--bundle", &bp, &id]);
    ensure!(!out.ok(), "run -d with unified keys on cgroup v1 succeeded");
    ensure!(
        out.stderr.contains("invalid configuration"),
        "the refusal does not say \"invalid configuration\": {}",
        out.stderr.trim()
    );
    expect_gone(c, &id, "after the refused run")?;
    let left = cgroup::existing(&format!("/{}/{id}", c.suite.cg_parent));
    ensure!(
        left.is_empty(),
        "cgroups left after the refused run: {left:?}"
    );
    Ok(())
}

/// An exec'd process is in the same cgroups as the init, in every hierarchy (on a
/// hybrid host the cgroup2 line too), and the init's are the container's cgroupsPath.
pub fn contract_cgroup_exec_joins_init_cgroup(c: &mut Ctx) -> Res {
    let (id, b) = prepare(c, cfg(&["sleep", "60"]))?;
    run_detached(c, &b, &id)?;
    let pid = c.pid(&id)?;
    let rel = format!("/{}/{id}", c.suite.cg_parent);
    let init = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let managed = cgroup::managed_lines(&init);
    let last = managed.last().copied().unwrap_or("");
    ensure!(
        last.ends_with(&rel),
        "the init's last cgroup line {last:?} is not {rel}"
    );
    let out = c.must(&["exec", &id, "cat", "/proc/self/cgroup"])?;
    ensure!(
        out.stdout.trim() == init.trim(),
        "exec'd process cgroups:\n{}\ninit's:\n{}",
        out.stdout.trim(),
        init.trim()
    );
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// Sub-cgroups the container made (v1: in memory and freezer; v2: a threaded one with
/// pids), holding an exec'd process, go with `delete --force`.
pub fn contract_cgroups_delete_force_with_sub_cgroups(c: &mut Ctx) -> Res {
    if !std::path::Path::new("/proc/self/ns/cgroup").exists() {
        skip!("no cgroup namespaces on this kernel");
    }
    let mut config = cfg(&["sleep", "600"]);
    cgroup_mount_rw(&mut config);
    let (id, b) = prepare(c, config)?;
    run_detached(c, &b, &id)?;
    let pf = b.dir.join("sleeper.pid");
    let pfs = pf.display().to_string();
    c.must(&["exec", "-d", "--pid-file", &pfs, &id, "sleep", "1d"])?;
    let host_pid = std::fs::read_to_string(&pf).unwrap_or_default();
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", host_pid.trim())).unwrap_or_default();
    // The pid as the container sees it: the last NSpid field.
    let Some(pid) = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .and_then(|l| l.split_whitespace().last())
    else {
        fail!("no NSpid for the exec'd sleep (pid file {host_pid:?})");
    };
    let rel = format!("/{}/{id}", c.suite.cg_parent);
    let (script, dirs) = if unified_host() {
        (
            format!(
                "set -e; cd /sys/fs/cgroup; echo +pids > cgroup.subtree_control; mkdir foo; \
                 cd foo; echo threaded > cgroup.type; echo {pid} > cgroup.threads; cat cgroup.threads"
            ),
            vec![std::path::Path::new("/sys/fs/cgroup").join(rel.trim_start_matches('/')).join("foo")],
        )
    } else {
        let mut dirs = Vec::new();
        for s in ["memory", "freezer"] {
            match cgroup::v1_controller(s) {
                Some(p) => dirs.push(p.join(rel.trim_start_matches('/')).join("foo")),
                None => skip!("no v1 {s} hierarchy"),
            }
        }
        (
            format!(
                "set -e; for s in memory freezer; do cd /sys/fs/cgroup/$s; mkdir foo; cd foo; \
                 echo {pid} > tasks; cat tasks; done"
            ),
            dirs,
        )
    };
    let out = c.rt(&["exec", &id, "sh", "-c", &script]);
    ensure!(
        out.ok() && out.stdout.lines().any(|l| l.trim() == pid),
        "making sub-cgroups inside the container: {}; stdout {:?}",
        out.describe(),
        out.stdout
    );
    for d in &dirs {
        ensure!(d.is_dir(), "the sub-cgroup {} was not made", d.display());
    }
    c.must(&["delete", "--force", &id])?;
    expect_gone(c, &id, "after delete --force")?;
    let left = cgroup::existing(&rel);
    ensure!(
        left.is_empty(),
        "delete --force left cgroups behind: {left:?}"
    );
    Ok(())
}

/// The container of the v2 scenarios: a cgroup namespace and a writable cgroup2
/// mount, as runc's spec makes on a cgroup2 host and its tests edit it.
fn v2_container(c: &mut Ctx, edit: impl FnOnce(&mut Value)) -> Result<String, Verdict> {
    let mut config = cfg(&["sleep", "600"]);
    cgroup_mount_rw(&mut config);
    edit(&mut config);
    let (id, b) = prepare(c, config)?;
    run_detached(c, &b, &id)?;
    Ok(id)
}

/// v2: in its own cgroup namespace the container sees its cgroup as `/` with the
/// root's controllers; after the init moved to /foo an exec still joins `/`, until a
/// domain controller is enabled there, then it falls back to the init's /foo.
pub fn contract_cgroups_v2_exec_in_non_root_cgroup(c: &mut Ctx) -> Res {
    v2_only()?;
    let id = v2_container(c, |_| {})?;
    let run = |c: &Ctx, script: &str| c.must(&["exec", &id, "sh", "-c", script]);
    let out = run(c, "cat /sys/fs/cgroup/cgroup.controllers")?;
    ensure!(
        out.stdout.split_whitespace().any(|w| w == "memory"),
        "cgroup.controllers inside: {:?}",
        out.stdout
    );
    let me = "cat /proc/self/cgroup";
    ensure!(run(c, me)?.stdout.trim() == "0::/", "exec is not in 0::/");
    run(
        c,
        "mkdir /sys/fs/cgroup/foo && echo 1 > /sys/fs/cgroup/foo/cgroup.procs",
    )?;
    let out = run(c, me)?;
    ensure!(
        out.stdout.trim() == "0::/",
        "with the init in /foo and no domain controller, exec is in {:?} not 0::/",
        out.stdout.trim()
    );
    run(
        c,
        "echo $$ > /sys/fs/cgroup/foo/cgroup.procs; echo +memory > /sys/fs/cgroup/cgroup.subtree_control",
    )?;
    let out = run(c, me)?;
    ensure!(
        out.stdout.trim() == "0::/foo",
        "with memory enabled at /, exec is in {:?} not the init's 0::/foo",
        out.stdout.trim()
    );
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// v2: blockIO.weight 750 is io.bfq.weight "default 750", or io.weight "default 7475"
/// where BFQ is absent.
pub fn contract_cgroups_v2_blkio_weight(c: &mut Ctx) -> Res {
    v2_only()?;
    let id = v2_container(c, |cfg| {
        set(cfg, "linux/resources/blockIO", json!({"weight": 750}));
    })?;
    let bfq = c.rt(&["exec", &id, "cat", "/sys/fs/cgroup/io.bfq.weight"]);
    if bfq.ok() {
        ensure!(
            bfq.stdout.trim() == "default 750",
            "io.bfq.weight is {:?}",
            bfq.stdout
        );
    } else {
        let out = c.must(&["exec", &id, "cat", "/sys/fs/cgroup/io.weight"])?;
        ensure!(
            out.stdout.trim() == "default 7475",
            "io.weight is {:?} want \"default 7475\"",
            out.stdout
        );
    }
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// True if a v2 container cgroup here gets memory.swap.max (swap accounting).
fn v2_has_swap(c: &mut Ctx) -> Result<bool, Verdict> {
    let id = v2_container(c, |_| {})?;
    let out = c.rt(&["exec", &id, "test", "-e", "/sys/fs/cgroup/memory.swap.max"]);
    c.must(&["delete", "--force", &id])?;
    Ok(out.ok())
}

/// v2: linux.resources.unified alone sets memory.min/low/high/max(/swap.max),
/// pids.max, cpu.max and cpu.weight, as seen from inside.
pub fn contract_cgroups_v2_unified_only(c: &mut Ctx) -> Res {
    v2_only()?;
    let swap = v2_has_swap(c)?;
    let mut unified = json!({
        "memory.min": "131072", "memory.low": "524288", "memory.high": "5242880",
        "memory.max": "10485760", "pids.max": "99", "cpu.max": "10000 100000",
        "cpu.weight": "42"
    });
    if swap {
        set(&mut unified, "memory.swap.max", json!("20971520"));
    }
    let id = v2_container(c, |cfg| {
        set(cfg, "linux/resources/unified", unified.clone())
    })?;
    let out = c.must(&[
        "exec",
        &id,
        "sh",
        "-c",
        "cd /sys/fs/cgroup && grep . *.min *.max *.low *.high cpu.weight",
    ])?;
    let mut problems = Vec::new();
    for (k, v) in unified.as_object().into_iter().flatten() {
        let want = format!("{k}:{}", v.as_str().unwrap_or(""));
        if !out.stdout.lines().any(|l| l == want) {
            problems.push(want);
        }
    }
    ensure!(
        problems.is_empty(),
        "missing inside: {problems:?}; got {:?}",
        out.stdout
    );
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// v2: unified keys override the same limits given as OCI fields (memory, cpu
/// shares/quota/period).
pub fn contract_cgroups_v2_unified_override(c: &mut Ctx) -> Res {
    v2_only()?;
    let id = v2_container(c, |cfg| {
        set(cfg, "linux/resources/memory", json!({"limit": 33554432}));
        set(
            cfg,
            "linux/resources/cpu",
            json!({"shares": 3333, "quota": 40000, "period": 100000}),
        );
        set(
            cfg,
            "linux/resources/unified",
            json!({"memory.min": "131072", "memory.max": "10485760", "pids.max": "42",
                   "cpu.max": "5000 50000", "cpu.weight": "42"}),
        );
    })?;
    for (file, want) in [
        ("memory.min", "131072"),
        ("memory.max", "10485760"),
        ("pids.max", "42"),
        ("cpu.max", "5000 50000"),
        ("cpu.weight", "42"),
    ] {
        let out = c.must(&["exec", &id, "cat", &format!("/sys/fs/cgroup/{file}")])?;
        ensure!(
            out.stdout.trim() == want,
            "{file} is {:?} want {want:?}",
            out.stdout.trim()
        );
    }
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// v2: the cgroup2 mount inside shows the container's cgroup alone, with no
/// directory below it.
pub fn contract_cgroups_v2_mount_has_no_extra_cgroups(c: &mut Ctx) -> Res {
    v2_only()?;
    let id = v2_container(c, |_| {})?;
    let out = c.must(&["exec", &id, "find", "/sys/fs/cgroup/", "-type", "d"])?;
    ensure!(
        out.stdout.lines().count() == 1,
        "directories under /sys/fs/cgroup inside: {:?}",
        out.stdout
    );
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// A loop device under BFQ: blockIO weight 333 and a per-device weight 444 show in
/// io.bfq.weight (v2) or blkio.bfq.weight_device (v1). Skipped without losetup or BFQ.
pub fn contract_cgroup_bfq_device_weight(c: &mut Ctx) -> Res {
    let id = c.new_id();
    let b = c.bundle(&id, false)?;
    full_busybox(&b)?;
    let img = b.dir.join("backing.img");
    std::fs::write(&img, vec![0u8; 4096])?;
    let losetup = std::process::Command::new("timeout")
        .args(["10", "losetup", "--find", "--show"])
        .arg(&img)
        .output();
    let dev = match losetup {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => skip!("unable to create a loop device"),
    };
    let detach = |d: &str| {
        let _ = std::process::Command::new("timeout")
            .args(["10", "losetup", "-d", d])
            .status();
    };
    let name = dev.trim_start_matches("/dev/");
    let sched = format!("/sys/block/{name}/queue/scheduler");
    let has_bfq = std::fs::read_to_string(&sched)
        .unwrap_or_default()
        .split_whitespace()
        .any(|s| s.trim_matches(|ch| ch == '[' || ch == ']') == "bfq")
        && std::fs::write(&sched, "bfq").is_ok();
    if !has_bfq {
        detach(&dev);
        skip!("BFQ scheduler not available for {dev}");
    }
    let majmin = crate::ctx::read_trim(std::path::Path::new(&format!("/sys/block/{name}/dev")));
    let (maj, min) = majmin.split_once(':').unwrap_or(("0", "0"));
    let (maj, min): (u64, u64) = (maj.parse().unwrap_or(0), min.parse().unwrap_or(0));
    let mut config = cfg(&["sleep", "60"]);
    push(
        &mut config,
        "linux/devices",
        json!({"path": dev, "type": "b", "major": maj, "minor": min}),
    );
    set(
        &mut config,
        "linux/resources/blockIO",
        json!({"weight": 333, "weightDevice": [{"major": maj, "minor": min, "weight": 444}]}),
    );
    set(&mut config, "linux/cgroupsPath", json!(c.cgroups_path(&id)));
    b.write_config(&config)?;
    let run = run_detached(c, &b, &id);
    detach(&dev);
    run?;
    let rel = format!("/{}/{id}", c.suite.cg_parent);
    let (dir, file) = if unified_host() {
        (
            std::path::Path::new("/sys/fs/cgroup").join(rel.trim_start_matches('/')),
            "io.bfq.weight",
        )
    } else {
        let blkio = cgroup::v1_controller("blkio")
            .ok_or_else(|| Verdict::Skip("no v1 blkio hierarchy".into()))?;
        (
            blkio.join(rel.trim_start_matches('/')),
            "blkio.bfq.weight_device",
        )
    };
    let weights = read_cg(&dir, file)?;
    ensure!(
        weights.contains("default 333") && weights.contains(&format!("{maj}:{min} 444")),
        "{file} is {weights:?}: want default 333 and {maj}:{min} 444"
    );
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// exec.bats "runc exec --cgroup subcgroup [v2]", step by step: `..` and a missing
/// sub-cgroup are refused in runc's words; exec joins `/` (the container's cgroup, in
/// its namespace) with or without `--cgroup /`, also after the init moved to /foobar,
/// until a domain controller is enabled at `/`: then an exec falls back to the init's
/// cgroup, `--cgroup /` fails with EBUSY, and `--cgroup foobar` or a second sub-cgroup
/// are joined as asked.
pub fn contract_cgroups_v2_exec_sub_cgroup(c: &mut Ctx) -> Res {
    v2_only()?;
    let id = v2_container(c, |_| {})?;
    let exec = |c: &Ctx, cg: Option<&str>, args: &[&str]| {
        let mut a = vec!["exec"];
        if let Some(cg) = cg {
            a.extend_from_slice(&["--cgroup", cg]);
        }
        a.push(&id);
        a.extend_from_slice(args);
        c.rt(&a)
    };
    let refused = |c: &Ctx, cg: &str, args: &[&str], want: &[&str]| -> Res {
        let out = exec(c, Some(cg), args);
        ensure!(
            !out.ok() && !out.timed_out,
            "exec --cgroup {cg} did not fail: {}",
            out.describe()
        );
        // The pieces in order, as runc's test globs them.
        let mut rest = out.stderr.as_str();
        for w in want {
            match rest.find(w) {
                Some(i) => rest = &rest[i + w.len()..],
                None => fail!(
                    "exec --cgroup {cg}: the error lacks {want:?} in that order: {}",
                    out.describe()
                ),
            }
        }
        Ok(())
    };
    let works = |c: &Ctx, cg: Option<&str>, args: &[&str]| -> Res {
        let out = exec(c, cg, args);
        ensure!(out.ok(), "{}; stdout {:?}", out.describe(), out.stdout);
        Ok(())
    };
    let cat = ["cat", "/proc/self/cgroup"];
    refused(c, "..", &cat, &[" .. is not a sub cgroup path"])?;
    refused(
        c,
        "nonexistent",
        &cat,
        &[" adding pid ", "/nonexistent/cgroup.procs: no such file "],
    )?;
    let at_root = ["grep", "^0::/$", "/proc/self/cgroup"];
    works(c, None, &at_root)?;
    works(c, Some("/"), &at_root)?;
    works(
        c,
        None,
        &[
            "sh",
            "-euc",
            "mkdir /sys/fs/cgroup/foobar && echo 1 > /sys/fs/cgroup/foobar/cgroup.procs \
             && grep -w foobar /proc/1/cgroup",
        ],
    )?;
    works(c, None, &at_root)?;
    works(
        c,
        None,
        &[
            "sh",
            "-euc",
            "echo $$ > /sys/fs/cgroup/foobar/cgroup.procs; \
             echo +memory > /sys/fs/cgroup/cgroup.subtree_control",
        ],
    )?;
    let in_foobar = ["grep", "^0::/foobar$", "/proc/self/cgroup"];
    works(c, None, &in_foobar)?;
    refused(
        c,
        "/",
        &["true"],
        &[
            " adding pid ",
            " to cgroups",
            "/cgroup.procs: device or resource busy",
        ],
    )?;
    works(c, Some("foobar"), &in_foobar)?;
    works(
        c,
        Some("foobar"),
        &["sh", "-euc", "! grep -vwH foobar /proc/*/cgroup"],
    )?;
    works(c, Some("foobar"), &["mkdir", "/sys/fs/cgroup/second"])?;
    works(
        c,
        Some("second"),
        &["grep", "-w", "second", "/proc/self/cgroup"],
    )?;
    c.must(&["delete", "--force", &id])?;
    Ok(())
}
