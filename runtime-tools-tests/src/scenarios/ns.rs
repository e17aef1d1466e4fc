//! Namespace scenarios, judged from the host in the `created` state via /proc/<pid>/ns.

use nix::sched::CloneFlags;
use serde_json::{json, Value};

use crate::ctx::Ctx;
use crate::nshelper::{link, spawn};
use crate::spec::{default_config, ns, set};
use crate::verdict::{Res, Verdict};
use crate::{ensure, skip};

/// Namespace kinds as config type and /proc/<pid>/ns link name.
const KINDS: &[(&str, &str)] = &[
    ("pid", "pid"),
    ("network", "net"),
    ("ipc", "ipc"),
    ("uts", "uts"),
    ("mount", "mnt"),
    ("user", "user"),
    ("cgroup", "cgroup"),
];

/// An "outside" config: no mounts beyond what the kinds need, a long-running process.
fn outside_cfg(kinds: &[&str]) -> Value {
    let mut cfg = default_config(&["/bin/sleep", "30"], "/placeholder");
    set(&mut cfg, "linux/namespaces", ns(kinds));
    cfg
}

/// create only; returns the id and the container's init pid.
fn create_outside(c: &mut Ctx, cfg: Value) -> Result<(String, i32), Verdict> {
    let (id, b) = c.prepare(cfg, false)?;
    c.must_create(&b, &id)?;
    let st = c.state(&id)?;
    ensure!(
        st["status"] == json!("created"),
        "status {} want created",
        st["status"]
    );
    let pid = c.pid(&id)?;
    Ok((id, pid))
}

fn user_maps(cfg: &mut Value) {
    set(
        cfg,
        "linux/uidMappings",
        json!([{"containerID": 0, "hostID": 1000, "size": 1000}]),
    );
    set(
        cfg,
        "linux/gidMappings",
        json!([{"containerID": 0, "hostID": 1000, "size": 1000}]),
    );
}

/// All seven kinds without a path: every link differs from the driver's.
pub fn linux_ns_nopath(c: &mut Ctx) -> Res {
    let kinds: Vec<&str> = KINDS.iter().map(|k| k.0).collect();
    let mut cfg = outside_cfg(&kinds);
    user_maps(&mut cfg);
    let (id, pid) = create_outside(c, cfg)?;
    let me = std::process::id().to_string();
    let mut same = Vec::new();
    for (_, link_name) in KINDS {
        let (mine, theirs) = (link(&me, link_name), link(&pid.to_string(), link_name));
        if mine == theirs || theirs.starts_with('<') {
            same.push(format!("{link_name} ({theirs})"));
        }
    }
    ensure!(same.is_empty(), "namespaces not new: {}", same.join(", "));
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// A time namespace (runtime-spec 1.2) is new when the runtime supports it.
pub fn linux_ns_time(c: &mut Ctx) -> Res {
    if !std::path::Path::new("/proc/self/ns/time").exists() {
        skip!("kernel has no time namespaces");
    }
    let cfg = outside_cfg(&["pid", "network", "ipc", "uts", "mount", "time"]);
    let (id, b) = c.prepare(cfg, false)?;
    let out = c.create(&b, &id);
    if !out.ok() {
        skip!(
            "runtime refuses the time namespace (pre-1.2 runtime-spec support): {}",
            out.describe()
        );
    }
    let pid = c.pid(&id)?;
    let me = std::process::id().to_string();
    // The new time namespace applies to the children of the unsharing process, so the
    // init may show it as time_for_children until it execs.
    let (mine, t, tfc) = (
        link(&me, "time"),
        link(&pid.to_string(), "time"),
        link(&pid.to_string(), "time_for_children"),
    );
    ensure!(
        t != mine || tfc != mine,
        "time namespace not new: {t} / {tfc}"
    );
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// No namespaces at all: every link equals the driver's (no implicit mount, user or
/// cgroup namespace). First without any mount; a runtime that needs /proc for its own
/// setup (runc) gets a second try with only /proc, which without a mount namespace lands
/// in the host's namespace under the bundle (the scenario's cleanup detaches it).
pub fn linux_ns_itype(c: &mut Ctx) -> Res {
    let mut cfg = outside_cfg(&[]);
    set(&mut cfg, "mounts", json!([]));
    crate::spec::remove(&mut cfg, "hostname");
    crate::spec::remove(&mut cfg, "linux/maskedPaths");
    crate::spec::remove(&mut cfg, "linux/readonlyPaths");
    let (id, b) = c.prepare(cfg.clone(), false)?;
    let first = c.create(&b, &id);
    let (id, pid) = if first.ok() {
        let pid = c.pid(&id)?;
        (id, pid)
    } else {
        println!(
            "# linux_ns_itype: create without mounts failed, retrying with /proc: {}",
            first.describe()
        );
        set(
            &mut cfg,
            "mounts",
            json!([{"destination": "/proc", "type": "proc", "source": "proc"}]),
        );
        create_outside(c, cfg)?
    };
    let me = std::process::id().to_string();
    let mut differ = Vec::new();
    for (_, link_name) in KINDS {
        let (mine, theirs) = (link(&me, link_name), link(&pid.to_string(), link_name));
        if mine != theirs {
            differ.push(format!("{link_name} ({theirs} vs {mine})"));
        }
    }
    ensure!(
        differ.is_empty(),
        "namespaces not inherited: {}",
        differ.join(", ")
    );
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// ipc, mnt, net, pid and uts joined by path: the container's link equals the helper's.
pub fn linux_ns_path(c: &mut Ctx) -> Res {
    for (kind, link_name, flag) in [
        ("ipc", "ipc", CloneFlags::CLONE_NEWIPC),
        ("mount", "mnt", CloneFlags::CLONE_NEWNS),
        ("network", "net", CloneFlags::CLONE_NEWNET),
        ("pid", "pid", CloneFlags::CLONE_NEWPID),
        ("uts", "uts", CloneFlags::CLONE_NEWUTS),
    ] {
        let helper = spawn(flag).map_err(|e| Verdict::Fail(format!("{kind} helper: {e}")))?;
        c.own_helper(helper);
        let file = if kind == "pid" {
            "pid_for_children"
        } else {
            link_name
        };
        let path = format!("/proc/{helper}/ns/{file}");
        let want = link(&helper.to_string(), file);
        let mut cfg = outside_cfg(&["pid", "network", "ipc", "uts", "mount"]);
        let nss: Vec<Value> = ["pid", "network", "ipc", "uts", "mount"]
            .iter()
            .map(|k| {
                if *k == kind {
                    json!({"type": k, "path": path})
                } else {
                    json!({"type": k})
                }
            })
            .collect();
        set(&mut cfg, "linux/namespaces", Value::Array(nss));
        let (id, pid) =
            create_outside(c, cfg).map_err(|e| Verdict::Fail(format!("{kind}: {e}")))?;
        let got = link(&pid.to_string(), link_name);
        ensure!(
            got == want,
            "{kind}: container has {got}, the helper's {path} is {want}"
        );
        c.must(&["delete", "--force", &id])?;
    }
    Ok(())
}

/// A namespace path of the wrong type makes create fail. The paths point at a helper's
/// fresh namespaces, so a runtime that joins them anyway cannot disturb the host.
pub fn linux_ns_path_type(c: &mut Ctx) -> Res {
    let helper = spawn(
        CloneFlags::CLONE_NEWIPC
            | CloneFlags::CLONE_NEWNS
            | CloneFlags::CLONE_NEWNET
            | CloneFlags::CLONE_NEWUTS
            | CloneFlags::CLONE_NEWPID,
    )
    .map_err(|e| Verdict::Fail(format!("helper: {e}")))?;
    c.own_helper(helper);
    for (kind, wrong) in [
        ("ipc", "net"),
        ("mount", "uts"),
        ("network", "ipc"),
        ("pid", "mnt"),
        ("uts", "pid_for_children"),
    ] {
        let path = format!("/proc/{helper}/ns/{wrong}");
        let nss: Vec<Value> = ["pid", "network", "ipc", "uts", "mount"]
            .iter()
            .map(|k| {
                if *k == kind {
                    json!({"type": k, "path": path})
                } else {
                    json!({"type": k})
                }
            })
            .collect();
        let mut cfg = outside_cfg(&[]);
        set(&mut cfg, "linux/namespaces", Value::Array(nss));
        let (id, b) = c.prepare(cfg, false)?;
        let out = c.create(&b, &id);
        ensure!(
            !out.ok(),
            "{kind} namespace given {path} (a {wrong} namespace): create succeeded"
        );
        ensure!(
            c.rt(&["state", &id]).code != Some(0),
            "{kind}: state works after the failed create"
        );
    }
    Ok(())
}
