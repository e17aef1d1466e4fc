//! Failing hooks: timeouts, and what a failing prestart, poststart or poststop hook does
//! to the lifecycle.

use std::time::{Duration, Instant};

use serde_json::json;

use super::hooks::{append_hook, cfg_sh};
use crate::ctx::Ctx;
use crate::spec::push;
use crate::verdict::Res;
use crate::{ensure, fail};

/// A hook that outlives its timeout fails create, quickly, and leaves nothing behind.
pub fn hooks_timeout(c: &mut Ctx) -> Res {
    let mut cfg = cfg_sh("true");
    push(
        &mut cfg,
        "hooks/createRuntime",
        json!({"path": "/bin/sleep", "args": ["sleep", "10"], "timeout": 1}),
    );
    let (id, b) = c.prepare(cfg, false)?;
    let t = Instant::now();
    let out = c.create(&b, &id);
    let took = t.elapsed();
    ensure!(
        !out.ok(),
        "create succeeded although a hook exceeded its 1 s timeout"
    );
    ensure!(
        took < Duration::from_secs(8),
        "create took {took:?}: the hook timeout was not enforced"
    );
    ensure!(
        c.rt(&["state", &id]).code != Some(0),
        "state works after the failed create"
    );
    Ok(())
}

/// A failing prestart hook fails create; the process never runs; the container is gone.
pub fn prestart_fail(c: &mut Ctx) -> Res {
    let mut cfg = cfg_sh("touch /marker");
    push(
        &mut cfg,
        "hooks/prestart",
        json!({"path": "/bin/false", "args": ["false"]}),
    );
    let (id, b) = c.prepare(cfg, false)?;
    let out = c.create(&b, &id);
    if out.ok() {
        let st = c.rt(&["start", &id]);
        ensure!(
            !st.ok(),
            "create and start succeeded despite a failing prestart hook"
        );
    }
    std::thread::sleep(Duration::from_millis(200));
    ensure!(
        !b.rootfs().join("marker").exists(),
        "the process ran despite the failing prestart hook"
    );
    ensure!(
        c.rt(&["state", &id]).code != Some(0),
        "state works: the container was left behind"
    );
    let cg = crate::cgroup::existing(&format!("/{}/{id}", c.suite.cg_parent));
    ensure!(
        cg.is_empty(),
        "cgroups left after the failed create: {cg:?}"
    );
    Ok(())
}

/// runtime-spec 1.3: a failing poststart hook fails the operation that runs it (start;
/// runc 1.1 runs poststart during create, issue runc#4347, so create failing is accepted
/// too; the `hooks` scenario judges the timing) and the container is stopped and
/// destroyed or at least stopped and deletable; its process must not survive.
pub fn poststart_fail(c: &mut Ctx) -> Res {
    let id = c.new_id();
    let b = c.bundle(&id, false)?;
    let mut cfg = cfg_sh("touch /marker; sleep 30");
    push(
        &mut cfg,
        "hooks/poststart",
        json!({"path": "/bin/false", "args": ["false"]}),
    );
    let cg = c.cgroups_path(&id);
    crate::spec::set(&mut cfg, "linux/cgroupsPath", json!(cg));
    b.write_config(&cfg)?;
    let cr = c.create(&b, &id);
    let mut pid = None;
    if cr.ok() {
        pid = Some(c.pid(&id)?);
        let st = c.rt(&["start", &id]);
        ensure!(
            !st.ok(),
            "start succeeded despite a failing poststart hook (runtime-spec 1.3: start must fail)"
        );
    } else {
        ensure!(!cr.timed_out, "create timed out");
    }
    if c.rt(&["state", &id]).ok() {
        c.wait_stopped(&id)?;
        c.must(&["delete", &id])?;
    }
    if let Some(pid) = pid {
        let t = Instant::now();
        while std::path::Path::new(&format!("/proc/{pid}")).exists()
            && t.elapsed() < Duration::from_secs(5)
        {
            crate::reaper::reap_orphans();
            std::thread::sleep(Duration::from_millis(20));
        }
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            fail!("the container process {pid} still runs after the failed poststart");
        }
    }
    let left = crate::cgroup::existing(&cg);
    ensure!(left.is_empty(), "cgroups left behind: {left:?}");
    Ok(())
}

/// runtime-spec: a failing poststop hook is only a warning; the remaining hooks still
/// run and delete succeeds.
pub fn poststop_fail(c: &mut Ctx) -> Res {
    let id = c.new_id();
    let b = c.bundle(&id, false)?;
    let log = b.rootfs().join("poststop.log").display().to_string();
    let mut cfg = cfg_sh("true");
    push(
        &mut cfg,
        "hooks/poststop",
        json!({"path": "/bin/false", "args": ["false"]}),
    );
    push(&mut cfg, "hooks/poststop", append_hook(&log, "second"));
    let cg = c.cgroups_path(&id);
    crate::spec::set(&mut cfg, "linux/cgroupsPath", json!(cg));
    b.write_config(&cfg)?;
    c.must_create(&b, &id)?;
    c.must(&["start", &id])?;
    c.wait_stopped(&id)?;
    c.must(&["delete", &id])?;
    ensure!(
        c.rt(&["state", &id]).code != Some(0),
        "state works after delete"
    );
    let ran = b.read("rootfs/poststop.log");
    ensure!(
        ran == "second\n",
        "the poststop hook after the failing one did not run (log {ran:?})"
    );
    Ok(())
}
