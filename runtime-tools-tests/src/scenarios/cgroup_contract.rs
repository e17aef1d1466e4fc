//! runc's cgroup contract as engines and runc's own tests see it (cgroups.bats,
//! update.bats, exec.bats, kill.bats): pre-existing cgroups (frozen, shared, with
//! empty cpuset parents), the cgroupsPath shapes containerd's CRI sends, update's
//! memory/swap order and key case, device rules during update, `exec --cgroup`
//! refusals, and `kill` with signal 0 and `--all` on a stopped container.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use super::running::{cgroup_file, start_sleeper, start_with};
use crate::bundle::Bundle;
use crate::cgroup::{self, v1_controller};
use crate::ctx::{read_trim, Ctx};
use crate::spec::{default_config, set};
use crate::verdict::{Res, Verdict};
use crate::{ensure, skip};

fn v1(name: &str) -> Result<PathBuf, Verdict> {
    v1_controller(name)
        .ok_or_else(|| Verdict::Skip(format!("no cgroup v1 {name} hierarchy on this host")))
}

/// A second bundle (new id) whose config is `cfg` as it is (cgroupsPath kept).
fn bundle_as_is(c: &mut Ctx, cfg: &Value) -> Result<(String, Bundle), Verdict> {
    let id = c.new_id();
    let b = c.bundle(&id, false)?;
    b.write_config(cfg)?;
    Ok((id, b))
}

/// Thaws a cgroup the scenario froze (v1 `freezer.state`, v2 `cgroup.freeze`),
/// whatever happened in between (a task stuck in it could not be killed otherwise).
struct Thaw(PathBuf, &'static str, &'static str);

impl Drop for Thaw {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0.join(self.1), self.2);
    }
}

/// cgroups.bats "runc run/create should refuse pre-existing frozen cgroup": with the
/// container's cgroup made and frozen beforehand (v1 freezer.state FROZEN, v2
/// cgroup.freeze 1), `run -d` and then `create` each exit 1 at once with runc's
/// words instead of hanging, and leave no container; the cgroup is left alone.
pub fn cgroup_preexisting_frozen_refused(c: &mut Ctx) -> Res {
    let unified = super::contract::unified_host();
    let (base, file, frozen, thawed) = if unified {
        (PathBuf::from("/sys/fs/cgroup"), "cgroup.freeze", "1", "0")
    } else {
        (v1("freezer")?, "freezer.state", "FROZEN", "THAWED")
    };
    let cfg = default_config(&["/bin/true"], "/placeholder");
    let (id, b) = c.prepare(cfg.clone(), false)?;
    let path = format!("/{}/{id}", c.suite.cg_parent);
    let dir = base.join(path.trim_start_matches('/'));
    std::fs::create_dir_all(&dir)?;
    let _thaw = Thaw(dir.clone(), file, thawed);
    std::fs::write(dir.join(file), frozen)?;
    let mut cfg = cfg;
    set(&mut cfg, "linux/cgroupsPath", json!(path));
    let (id2, b2) = bundle_as_is(c, &cfg)?;
    let bp = b.path_str();
    let run = c.rt(&["run", "-d", "--bundle", &bp, &id]);
    for (verb, out, id) in [("run -d", run, &id), ("create", c.create(&b2, &id2), &id2)] {
        ensure!(
            !out.timed_out,
            "{verb} into a frozen cgroup hung: {}",
            out.describe()
        );
        ensure!(
            out.code == Some(1),
            "{verb} into a frozen cgroup: want exit 1: {}",
            out.describe()
        );
        ensure!(
            out.stderr
                .contains("container's cgroup unexpectedly frozen"),
            "{verb}: the error does not say the cgroup is frozen: {}",
            out.describe()
        );
        ensure!(
            !c.state_entry_exists(id),
            "a refused {verb} left state for {id}"
        );
    }
    ensure!(
        dir.is_dir(),
        "the pre-existing cgroup {} was removed",
        dir.display()
    );
    Ok(())
}

/// cgroups.bats "runc run/create should warn about a non-empty cgroup": a second
/// container (`run -d`) and a third (`create`) in the first one's cgroup succeed with
/// runc's warning; deleting them leaves the first one running.
pub fn cgroup_shared_warns_and_is_kept(c: &mut Ctx) -> Res {
    let mut cfg = default_config(&["/bin/sleep", "60"], "/placeholder");
    let (first, b1) = c.prepare(cfg.clone(), false)?;
    let bp = b1.path_str();
    let out = c.suite.rt.run_to(
        &["run", "-d", "--bundle", &bp, &first],
        &b1.stdout_path(),
        &b1.stderr_path(),
    );
    ensure!(
        out.ok(),
        "run -d of the first container: {}",
        out.describe()
    );
    c.wait_status(&first, "running", Duration::from_secs(10))?;
    let path = format!("/{}/{first}", c.suite.cg_parent);
    set(&mut cfg, "linux/cgroupsPath", json!(path));
    let (second, b2) = bundle_as_is(c, &cfg)?;
    let bp = b2.path_str();
    let run = c.suite.rt.run_to(
        &["run", "-d", "--bundle", &bp, &second],
        &b2.stdout_path(),
        &b2.stderr_path(),
    );
    let (third, b3) = bundle_as_is(c, &cfg)?;
    let create = c.create(&b3, &third);
    for (verb, out) in [("run -d", run), ("create", create)] {
        ensure!(
            out.ok(),
            "{verb} in a shared cgroup failed: {}",
            out.describe()
        );
        ensure!(
            out.stderr.contains("container's cgroup is not empty"),
            "{verb}: no warning about the non-empty cgroup: {}",
            out.describe()
        );
    }
    c.must(&["delete", "--force", &third])?;
    c.must(&["delete", "--force", &second])?;
    ensure!(
        c.status(&first)? == "running",
        "deleting the other containers stopped the first (shared cgroup killed)"
    );
    c.must(&["delete", "--force", &first])?;
    Ok(())
}

/// runc's ensureParent: a parent cpuset cgroup that someone made without cpus/mems
/// (a plain mkdir, as a pod manager may leave it) is filled from its own parent, so
/// the container can join below it.
pub fn cgroup_cpuset_empty_parent_filled(c: &mut Ctx) -> Res {
    let cpuset = v1("cpuset")?;
    let cfg = default_config(&["/bin/true"], "/placeholder");
    let id = c.new_id();
    // A top level of its own (not the run's parent, which later scenarios share):
    // both levels made here by mkdir, so both start empty.
    let top = format!("{}-cpuset-{id}", c.suite.cg_parent);
    let pod = format!("{top}/pod");
    let pod_dir = cpuset.join(&pod);
    std::fs::create_dir_all(&pod_dir)?;
    c.own_cgroup(&format!("/{top}"));
    if read_trim(&cpuset.join(&top).join("cgroup.clone_children")) == "1" {
        skip!("cpuset clone_children is on: new cpusets are never empty here");
    }
    ensure!(
        read_trim(&pod_dir.join("cpuset.cpus")).is_empty(),
        "mkdir did not leave cpuset.cpus empty"
    );
    let mut cfg = cfg;
    set(&mut cfg, "linux/cgroupsPath", json!(format!("/{pod}/{id}")));
    let b = c.bundle(&id, false)?;
    b.write_config(&cfg)?;
    c.must_create(&b, &id)?;
    for d in [cpuset.join(&top), pod_dir.clone(), pod_dir.join(&id)] {
        for f in ["cpuset.cpus", "cpuset.mems"] {
            ensure!(
                !read_trim(&d.join(f)).is_empty(),
                "{} is still empty",
                d.join(f).display()
            );
        }
    }
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// The cgroupsPath containerd's CRI sends with the cgroupfs driver under a kubelet:
/// `/kubepods/besteffort/pod<uid>/<id>`, every level new. The container is in it and
/// delete removes every level that create made. (Run in the v1-only view too, where
/// such pods once failed in `mkdir /sys/fs/cgroup/unified/...`.)
pub fn cgroup_cri_paths(c: &mut Ctx) -> Res {
    if crate::cgroup::controller("pids").is_none() {
        skip!("no pids controller on this host");
    }
    let id = c.new_id();
    let top = format!("/{}/kubepods", c.suite.cg_parent);
    let path = format!("{top}/besteffort/pod{id}/{id}");
    c.own_cgroup(&top);
    let mut cfg = default_config(&["/bin/sh", "-c", "cat /proc/self/cgroup"], "/x");
    set(&mut cfg, "linux/cgroupsPath", json!(path));
    let (cid, b) = bundle_as_is(c, &cfg)?;
    c.must_create(&b, &cid)?;
    c.must(&["start", &cid])?;
    c.wait_stopped(&cid)?;
    let seen = std::fs::read_to_string(b.stdout_path()).unwrap_or_default();
    ensure!(
        seen.lines()
            .any(|l| (l.contains(":pids:") || l.starts_with("0::")) && l.ends_with(&path)),
        "the container is not in {path}: {seen:?}"
    );
    c.must(&["delete", &cid])?;
    let left = crate::cgroup::existing(&top);
    ensure!(left.is_empty(), "left after delete: {left:?}");
    Ok(())
}

/// exec.bats "runc exec --cgroup sub-cgroups [v1]", step by step: refusals in runc's
/// words (which runc's tests and scripts match on) for `..`, a sub-cgroup that does
/// not exist (in all hierarchies or in one) and an unknown controller; `exec` with no
/// `--cgroup` and with `/` joins the container's cgroup in every hierarchy; sub-cgroups
/// the container made through its writable cgroup mount are joined per controller.
pub fn exec_sub_cgroup_errors(c: &mut Ctx) -> Res {
    if super::contract::unified_host() {
        skip!("cgroup v1 only (runc's test requires cgroups_v1)");
    }
    for h in ["memory", "cpu", "cpuacct"] {
        v1(h)?;
    }
    let (id, _b) = start_with(c, &["/bin/sleep", "60"], |cfg| {
        crate::spec::push(cfg, "mounts", super::contract::cgroup_mount(false));
    })?;
    let rel = format!("/{}/{id}", c.suite.cg_parent);
    for (arg, want) in [
        ("..", " .. is not a sub cgroup path"),
        ("nonexistent", "/nonexistent/cgroup.procs: no such file "),
        (
            "cpu:nonexistent",
            "/nonexistent/cgroup.procs: no such file ",
        ),
        ("whaaat:/", "unknown controller "),
    ] {
        let out = c.rt(&["exec", "--cgroup", arg, &id, "cat", "/proc/self/cgroup"]);
        ensure!(
            !out.ok() && !out.timed_out,
            "exec --cgroup {arg} did not fail: {}",
            out.describe()
        );
        ensure!(
            out.stderr.contains(want),
            "exec --cgroup {arg}: error lacks {want:?}: {}",
            out.describe()
        );
        if arg.contains("nonexistent") {
            ensure!(
                out.stderr.contains(" adding pid "),
                "exec --cgroup {arg}: error lacks \" adding pid \": {}",
                out.describe()
            );
        }
    }
    for extra in [&[][..], &["--cgroup", "/"][..]] {
        let mut args = vec!["exec"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[&id, "cat", "/proc/self/cgroup"]);
        let out = c.must(&args)?;
        let elsewhere: Vec<&str> = cgroup::managed_lines(&out.stdout)
            .into_iter()
            .filter(|l| !l.ends_with(&format!(":{rel}")))
            .collect();
        ensure!(
            !out.stdout.trim().is_empty() && elsewhere.is_empty(),
            "exec {extra:?}: cgroups other than {rel}: {elsewhere:?}"
        );
    }
    c.must(&[
        "exec",
        &id,
        "sh",
        "-euc",
        "mkdir -p /sys/fs/cgroup/memory/submem /sys/fs/cgroup/cpu/subcpu /sys/fs/cgroup/cpuacct/subcpu",
    ])?;
    let out = c.must(&[
        "exec",
        "--cgroup",
        "memory:submem",
        "--cgroup",
        "cpu,cpuacct:subcpu",
        &id,
        "cat",
        "/proc/self/cgroup",
    ])?;
    let has = |ctl: &str, sub: &str| {
        out.stdout
            .lines()
            .any(|l| l.contains(&format!(":{ctl}:")) && l.ends_with(&format!(":{rel}/{sub}")))
    };
    ensure!(
        has("memory", "submem") && has("cpu", "subcpu") && has("cpuacct", "subcpu"),
        "exec --cgroup memory:submem --cgroup cpu,cpuacct:subcpu is not in those \
         sub-cgroups: {:?}",
        out.stdout
    );
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// update.bats "update cgroup v1/v2 common limits" (v1 memory part): `--memory -1`
/// lifts memory and memory+swap, and memory/memory+swap pairs go through whether
/// they rise above or fall below the current limits.
pub fn update_memory_swap_order(c: &mut Ctx) -> Res {
    let mem = v1("memory")?;
    if !mem.join("memory.memsw.limit_in_bytes").exists() {
        skip!("no memory.memsw files (swap accounting off)");
    }
    let unlimited = read_trim(&mem.join("memory.limit_in_bytes"));
    let (id, _b) = start_with(c, &["/bin/sleep", "60"], |cfg| {
        set(
            cfg,
            "linux/resources/memory",
            json!({"limit": 33554432, "reservation": 25165824}),
        );
    })?;
    let get = |c: &Ctx, f: &str| cgroup_file(c, &id, "memory", f);
    let m = |n: u64| (n << 20).to_string();
    let steps: &[(&[&str], &str, String, Option<String>)] = &[
        (&["--memory", "50M"], "limit", m(50), None),
        (&["--memory-swap", "-1"], "swap", unlimited.clone(), None),
        (
            &["--memory-swap", "96468992"],
            "swap",
            "96468992".into(),
            None,
        ),
        (
            &["--memory", "-1"],
            "both",
            unlimited.clone(),
            Some(unlimited.clone()),
        ),
        (
            &["--memory", "30M", "--memory-swap", "50M"],
            "both",
            m(30),
            Some(m(50)),
        ),
        (
            &["--memory", "60M", "--memory-swap", "80M"],
            "both",
            m(60),
            Some(m(80)),
        ),
        (
            &["--memory", "20M", "--memory-swap", "30M"],
            "both",
            m(20),
            Some(m(30)),
        ),
    ];
    for (args, what, want, want_swap) in steps {
        let mut a = vec!["update"];
        a.extend_from_slice(args);
        a.push(&id);
        c.must(&a)?;
        let (file, other) = match *what {
            "swap" => ("memory.memsw.limit_in_bytes", None),
            _ => ("memory.limit_in_bytes", want_swap.as_ref()),
        };
        let got = get(c, file)?;
        ensure!(
            got == *want,
            "after update {args:?}: {file} is {got} want {want}"
        );
        if let Some(sw) = other {
            let got = get(c, "memory.memsw.limit_in_bytes")?;
            ensure!(
                got == *sw,
                "after update {args:?}: memory.memsw.limit_in_bytes is {got} want {sw}"
            );
        }
    }
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// runc decodes `update -r` with Go's case-blind field matching; its own test sends
/// `{"CPU": {"Cpus": ...}}`. Here `{"CPU": {"Shares": 300}, "Pids": {"Limit": 9}}`.
pub fn update_resources_key_case(c: &mut Ctx) -> Res {
    let (id, b) = start_sleeper(c)?;
    let file = b.dir.join("resources.json");
    std::fs::write(&file, r#"{"CPU": {"Shares": 300}, "Pids": {"Limit": 9}}"#)?;
    c.must(&["update", "-r", file.to_str().unwrap_or_default(), &id])?;
    let got = cgroup_file(c, &id, "pids", "pids.max")?;
    ensure!(
        got == "9",
        "pids.max is {got:?} want 9 (key \"Pids\"/\"Limit\")"
    );
    if v1_controller("cpu").is_some() {
        let got = cgroup_file(c, &id, "cpu", "cpu.shares")?;
        ensure!(
            got == "300",
            "cpu.shares is {got:?} want 300 (key \"CPU\"/\"Shares\")"
        );
    }
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// update.bats "update devices [minimal transition rules]": while updates run, a
/// process that keeps writing to /dev/null never sees it refused (runc's update
/// leaves the device rules alone; replaying them passes through deny-all).
pub fn update_keeps_devices_usable(c: &mut Ctx) -> Res {
    v1("devices")?;
    // Two writers, and enough updates that a deny-all moment is met (a replay of the
    // rules is hit in about one update of thirty here).
    let script = "w() { i=0; while [ $i -lt 2000000 ]; do echo x > /dev/null || echo DENIED; \
                  i=$((i+1)); done; }; w & w; wait";
    let (id, b) = start_with(c, &["/bin/sh", "-c", script], |_| {})?;
    for n in 0..150 {
        let limit = (40 + n).to_string();
        c.must(&["update", "--pids-limit", &limit, &id])?;
    }
    let _ = c.rt(&["kill", &id, "KILL"]);
    let _ = c.wait_stopped(&id);
    let out = std::fs::read_to_string(b.stdout_path()).unwrap_or_default();
    let err = std::fs::read_to_string(b.stderr_path()).unwrap_or_default();
    ensure!(
        !out.contains("DENIED") && !err.contains("/dev/null"),
        "/dev/null was refused during update: stdout {:?} stderr {:?}",
        out.lines().next().unwrap_or(""),
        err.lines().next().unwrap_or("")
    );
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// kill.bats / engines: signal 0 probes a running container; a stopped one refuses
/// a signal to its init (0 too), but `kill --all` on it exits 0 (runc 1.1.5;
/// containerd's shim sends it after every container of a shared-PID pod exits).
pub fn kill_probe_and_all_on_stopped(c: &mut Ctx) -> Res {
    let (id, _b) = start_sleeper(c)?;
    c.must(&["kill", &id, "0"])?;
    ensure!(
        c.status(&id)? == "running",
        "kill 0 changed the container's status"
    );
    c.must(&["kill", &id, "KILL"])?;
    c.wait_stopped(&id)?;
    c.must_fail(
        &["kill", &id, "0"],
        "signal 0 to a stopped container's init",
    )?;
    c.must(&["kill", "--all", &id, "KILL"])?;
    c.must(&["kill", "--all", &id, "TERM"])?;
    c.must(&["delete", &id])?;
    Ok(())
}
