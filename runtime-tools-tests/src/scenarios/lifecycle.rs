//! Lifecycle scenarios: create, start, state, kill, delete, pid file, cgroup cleanup.

use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::ctx::{read_trim, Ctx};
use crate::spec::{default_config, sh};
use crate::verdict::Res;
use crate::{cgroup, ensure, fail, skip};

fn cfg_args(args: &[&str]) -> serde_json::Value {
    default_config(args, "/placeholder")
}

fn cfg_sh(script: &str) -> serde_json::Value {
    let a = sh(script);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    cfg_args(&a)
}

fn alive(pid: i32) -> bool {
    crate::reaper::reap_orphans();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // A zombie (state Z) is dead for our purposes.
    match stat.rsplit_once(") ") {
        Some((_, rest)) => !rest.starts_with('Z') && !rest.starts_with('X'),
        None => false,
    }
}

fn wait_dead(pid: i32, limit: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if !alive(pid) {
            return true;
        }
        sleep(Duration::from_millis(20));
    }
    !alive(pid)
}

fn wait_file(p: &Path, limit: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if p.exists() {
            return true;
        }
        sleep(Duration::from_millis(20));
    }
    p.exists()
}

/// create without an id fails; a new id is created and queryable; a duplicate id fails.
pub fn create(c: &mut Ctx) -> Res {
    let (id, b) = c.prepare(cfg_args(&["/bin/ls"]), false)?;
    let bp = b.path_str();
    c.must_fail(&["create", "--bundle", &bp], "no container id")?;
    c.must_create(&b, &id)?;
    let st = c.state(&id)?;
    ensure!(st["id"] == json!(id), "state id is {} want {id}", st["id"]);
    ensure!(
        st["status"] == json!("created"),
        "status after create is {} want created",
        st["status"]
    );
    ensure!(
        st["bundle"] == json!(bp),
        "state bundle is {} want {bp}",
        st["bundle"]
    );
    ensure!(
        st["ociVersion"].is_string(),
        "state has no ociVersion: {st}"
    );
    let pid = c.pid(&id)?;
    ensure!(alive(pid), "state pid {pid} is not alive after create");
    let dup = c.create(&b, &id);
    ensure!(!dup.ok(), "create of duplicate id {id} succeeded");
    ensure!(
        c.status(&id)? == "created",
        "the original container changed after a duplicate create"
    );
    ensure!(alive(pid), "duplicate create killed the original container");
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// start without or with an unknown id fails; start runs the process once; a second start
/// fails; a config without a process is refused at create or start.
pub fn start(c: &mut Ctx) -> Res {
    let (id, b) = c.prepare(cfg_sh("echo started >> /out"), false)?;
    c.must_fail(&["start"], "no container id")?;
    c.must_fail(&["start", "no-such-container-xyz"], "unknown id")?;
    c.must_create(&b, &id)?;
    let out = b.rootfs().join("out");
    ensure!(!out.exists(), "the process ran before start");
    c.must(&["start", &id])?;
    c.wait_stopped(&id)?;
    ensure!(
        b.read("rootfs/out") == "started\n",
        "after start /out is {:?}",
        b.read("rootfs/out")
    );
    c.must_fail(&["start", &id], "second start of a stopped container")?;
    sleep(Duration::from_millis(200));
    ensure!(
        b.read("rootfs/out") == "started\n",
        "second start reran the process: {:?}",
        b.read("rootfs/out")
    );
    c.must(&["delete", &id])?;

    let mut cfg = cfg_args(&["/bin/true"]);
    crate::spec::remove(&mut cfg, "process");
    let (id2, b2) = c.prepare(cfg, false)?;
    let cr = c.create(&b2, &id2);
    if cr.ok() {
        let st = c.rt(&["start", &id2]);
        ensure!(
            !st.ok(),
            "create and start succeeded for a config without a process"
        );
    }
    Ok(())
}

/// state without or with an unknown id fails; a created container's state is complete;
/// it can be killed while created and deleted, after which state fails.
pub fn state(c: &mut Ctx) -> Res {
    c.must_fail(&["state"], "no container id")?;
    c.must_fail(&["state", "no-such-container-xyz"], "unknown id")?;
    let (id, b) = c.prepare(cfg_args(&["/bin/true"]), false)?;
    c.must_create(&b, &id)?;
    let st = c.state(&id)?;
    for k in ["ociVersion", "id", "status", "pid", "bundle"] {
        ensure!(!st[k].is_null(), "state lacks `{k}`: {st}");
    }
    ensure!(
        st["status"] == json!("created"),
        "status {} want created",
        st["status"]
    );
    c.must(&["kill", &id, "KILL"])?;
    c.wait_stopped(&id)?;
    c.must(&["delete", &id])?;
    c.must_fail(&["state", &id], "deleted container")?;
    Ok(())
}

/// kill fails without an id, for an unknown id and for an exited container; it works on
/// a created and on a running container, which then stop and can be deleted. One id is
/// reused throughout, so delete must free it.
pub fn kill(c: &mut Ctx) -> Res {
    c.must_fail(&["kill"], "no container id")?;
    c.must_fail(&["kill", "no-such-container-xyz", "KILL"], "unknown id")?;
    let (id, b) = c.prepare(cfg_args(&["/bin/true"]), false)?;
    // (c) created only.
    c.must_create(&b, &id)?;
    c.must(&["kill", &id, "KILL"])?;
    c.wait_stopped(&id)?;
    c.must(&["delete", &id])?;
    // (d) exited.
    c.must_create(&b, &id)?;
    c.must(&["start", &id])?;
    c.wait_stopped(&id)?;
    c.must_fail(&["kill", &id, "KILL"], "container already stopped")?;
    c.must(&["delete", &id])?;
    // (e) running.
    let mut cfg = cfg_args(&["/bin/sleep", "30"]);
    crate::spec::set(&mut cfg, "linux/cgroupsPath", json!(c.cgroups_path(&id)));
    b.write_config(&cfg)?;
    c.must_create(&b, &id)?;
    c.must(&["start", &id])?;
    ensure!(
        c.status(&id)? == "running",
        "sleep 30 is not running after start"
    );
    c.must(&["kill", &id, "KILL"])?;
    c.wait_stopped(&id)?;
    c.must(&["delete", &id])?;
    Ok(())
}

/// Runs a shell trapping `sig` as PID 1, sends `form` with `kill`, and expects the trap's
/// marker file.
fn trap_and_kill(c: &mut Ctx, sig: &str, form: &str) -> Res {
    let script =
        format!("trap 'touch /{sig}; exit 0' {sig}; touch /ready; while true; do sleep 0.05; done");
    let (id, b) = c.prepare(cfg_sh(&script), false)?;
    c.must_create(&b, &id)?;
    c.must(&["start", &id])?;
    ensure!(
        wait_file(&b.rootfs().join("ready"), Duration::from_secs(5)),
        "{sig}: the shell never became ready"
    );
    c.must(&["kill", &id, form])?;
    c.wait_stopped(&id)?;
    ensure!(
        b.rootfs().join(sig).exists(),
        "kill {form}: SIG{sig} did not reach the container's PID 1"
    );
    c.must(&["delete", &id])?;
    Ok(())
}

/// TERM, USR1 and USR2 (bare names) reach the container's PID 1 (a shell that traps them).
pub fn killsig(c: &mut Ctx) -> Res {
    for sig in ["TERM", "USR1", "USR2"] {
        trap_and_kill(c, sig, sig)?;
    }
    Ok(())
}

/// The other forms engines use: `SIGUSR1` and a number (containerd passes numbers).
pub fn kill_signal_forms(c: &mut Ctx) -> Res {
    trap_and_kill(c, "USR1", "SIGUSR1")?;
    trap_and_kill(c, "USR2", &libc::SIGUSR2.to_string())
}

/// kill on a stopped container changes nothing in its state.
pub fn kill_no_effect(c: &mut Ctx) -> Res {
    let (id, b) = c.prepare(cfg_args(&["/bin/true"]), false)?;
    c.must_create(&b, &id)?;
    c.must(&["start", &id])?;
    let before = c.wait_stopped(&id)?;
    let _ = c.rt(&["kill", &id, "KILL"]);
    let after = c.state(&id)?;
    ensure!(
        before == after,
        "state changed after kill: before {before} after {after}"
    );
    c.must(&["delete", &id])?;
    Ok(())
}

/// delete: no id fails; a created container is deleted without --force (runc's behaviour,
/// containerd relies on it); a running one refuses plain delete and keeps running, and
/// `delete --force` removes it.
pub fn delete(c: &mut Ctx) -> Res {
    c.must_fail(&["delete"], "no container id")?;
    let (id, b) = c.prepare(cfg_args(&["/bin/true"]), false)?;
    c.must_create(&b, &id)?;
    let pid = c.pid(&id)?;
    c.must(&["delete", &id])?;
    c.must_fail(&["state", &id], "container deleted while created")?;
    ensure!(
        wait_dead(pid, Duration::from_secs(5)),
        "init {pid} of the deleted created container lives on"
    );

    let (id2, b2) = c.prepare(cfg_args(&["/bin/sleep", "30"]), false)?;
    c.must_create(&b2, &id2)?;
    c.must(&["start", &id2])?;
    let pid2 = c.pid(&id2)?;
    c.must_fail(&["delete", &id2], "running container without --force")?;
    ensure!(
        c.status(&id2)? == "running",
        "container stopped after a refused delete"
    );
    ensure!(alive(pid2), "process {pid2} died after a refused delete");
    c.must(&["delete", "--force", &id2])?;
    c.must_fail(&["state", &id2], "container deleted with --force")?;
    ensure!(
        wait_dead(pid2, Duration::from_secs(5)),
        "process {pid2} survives delete --force"
    );
    Ok(())
}

/// An absolute cgroupsPath with a pids limit: pids.max is 1000 when created and the
/// cgroup is gone after delete.
pub fn delete_resources(c: &mut Ctx) -> Res {
    let Some(pids) = cgroup::controller("pids") else {
        skip!("no pids controller on this host");
    };
    let id = c.new_id();
    let path = format!("/berth-conf-{id}");
    c.own_cgroup(&path);
    let mut cfg = cfg_args(&["/bin/true"]);
    crate::spec::set(&mut cfg, "linux/cgroupsPath", json!(path));
    crate::spec::set(&mut cfg, "linux/resources/pids", json!({"limit": 1000}));
    let b = c.bundle(&id, false)?;
    b.write_config(&cfg)?;
    c.must_create(&b, &id)?;
    let dir = pids.dir(&path);
    let max = read_trim(&dir.join("pids.max"));
    ensure!(
        max == "1000",
        "{}/pids.max is {max:?} want 1000",
        dir.display()
    );
    let pid = c.pid(&id)?;
    let procs = read_trim(&dir.join("cgroup.procs"));
    ensure!(
        procs.lines().any(|l| l == pid.to_string()),
        "init {pid} is not in {}/cgroup.procs ({procs:?})",
        dir.display()
    );
    c.must(&["delete", "--force", &id])?;
    let left = cgroup::existing(&path);
    ensure!(left.is_empty(), "cgroup left after delete: {left:?}");
    Ok(())
}

/// A cgroup the harness made and moved the init into survives delete.
pub fn delete_only_create_resources(c: &mut Ctx) -> Res {
    let Some(pids) = cgroup::v1_controller("pids") else {
        skip!("no cgroup v1 pids hierarchy on this host");
    };
    let (id, b) = c.prepare(cfg_args(&["/bin/true"]), false)?;
    let rel = format!("{}/harness-{id}", c.suite.cg_parent);
    c.own_cgroup(&rel);
    let mine = pids.join(&rel);
    std::fs::create_dir_all(&mine)?;
    c.must_create(&b, &id)?;
    let pid = c.pid(&id)?;
    if let Err(e) = std::fs::write(mine.join("cgroup.procs"), pid.to_string()) {
        fail!("move {pid} into {}: {e}", mine.display());
    }
    c.must(&["delete", "--force", &id])?;
    ensure!(
        mine.is_dir(),
        "delete removed the harness's cgroup {}",
        mine.display()
    );
    Ok(())
}

/// --pid-file holds exactly the decimal pid (no newline) and equals state's pid.
pub fn pidfile(c: &mut Ctx) -> Res {
    let (id, b) = c.prepare(cfg_args(&["/bin/sleep", "30"]), false)?;
    let pf = c.suite.bundles.join(format!("{id}.pid"));
    let pfs = pf.display().to_string();
    let out = c.create_with(&b, &id, &["--pid-file", &pfs]);
    let text = std::fs::read(&pf).unwrap_or_default();
    let _ = std::fs::remove_file(&pf);
    ensure!(out.ok(), "create --pid-file failed: {}", out.describe());
    let pid = c.pid(&id)?;
    ensure!(
        text == pid.to_string().as_bytes(),
        "pid file holds {:?} want exactly {:?}",
        String::from_utf8_lossy(&text),
        pid.to_string()
    );
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// An exited init that nobody has reaped yet (a zombie child of this subreaper) is
/// reported as `stopped` (engines whose reaper is late depend on it), and the container
/// can be deleted before the zombie is reaped.
pub fn state_zombie_is_stopped(c: &mut Ctx) -> Res {
    // The driver must not reap the init while `start` runs.
    c.suite.rt.set_reaping(false);
    let res = zombie_is_stopped(c);
    c.suite.rt.set_reaping(true);
    res
}

fn zombie_is_stopped(c: &mut Ctx) -> Res {
    let (id, b) = c.prepare(cfg_args(&["/bin/true"]), false)?;
    c.must_create(&b, &id)?;
    let pid = c.pid(&id)?;
    c.must(&["start", &id])?;
    let t = Instant::now();
    let zombie = loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(") ")
            .map(|(_, r)| r.chars().next().unwrap_or('?'));
        if state == Some('Z') {
            break true;
        }
        if t.elapsed() > Duration::from_secs(5) {
            break false;
        }
        sleep(Duration::from_millis(10));
    };
    if !zombie {
        skip!("init {pid} never showed as a zombie of this driver (someone else reaped it)");
    }
    c.poll_status(&id, "stopped", Duration::from_secs(5), false)?;
    c.must(&["delete", &id])?;
    crate::reaper::reap_orphans();
    Ok(())
}
