//! AppArmor and SELinux settings on a host where the module is off, judged against
//! runc 1.1.5 (the VM lane checks them enforced, in a guest with AppArmor on:
//! hack/vm-lane/apparmor-tests.sh).

use serde_json::json;

use super::running::start_with;
use super::security::{refused_all, script_cfg};
use crate::ctx::Ctx;
use crate::spec::set;
use crate::verdict::Res;
use crate::{ensure, skip};

fn apparmor_enabled() -> bool {
    crate::ctx::read_trim(std::path::Path::new(
        "/sys/module/apparmor/parameters/enabled",
    )) == "Y"
}

/// runc has no up-front AppArmor check: its init writes `exec <profile>` to
/// /proc/self/attr/apparmor/exec (or attr/exec), which fails with EINVAL where
/// AppArmor is off, and that fails `create` ("unable to apply apparmor profile: ...:
/// invalid argument") and `exec --apparmor` alike ("apparmor failed to apply profile:
/// ...: invalid argument"); the container being exec'd into keeps running.
pub fn lsm_apparmor_off_fails_in_init(c: &mut Ctx) -> Res {
    if apparmor_enabled() {
        skip!("AppArmor is enabled here (the VM lane checks it enforced)");
    }
    let mut cfg = script_cfg("true");
    set(
        &mut cfg,
        "process/apparmorProfile",
        json!("berth-conformance"),
    );
    refused_all(
        c,
        cfg,
        &["unable to apply apparmor profile", "invalid argument"],
    )?;
    let (id, _b) = start_with(c, &["/bin/sleep", "60"], |_| {})?;
    let out = c.rt(&["exec", "--apparmor", "berth-conformance", &id, "true"]);
    ensure!(
        !out.ok() && !out.timed_out,
        "exec --apparmor did not fail: {}",
        out.describe()
    );
    // runc's exec says "apparmor failed to apply profile: write ...: invalid argument".
    ensure!(
        out.stderr.contains("apparmor") && out.stderr.contains("invalid argument"),
        "exec --apparmor: want an apparmor error ending in EINVAL's \"invalid argument\": {}",
        out.describe()
    );
    ensure!(
        c.status(&id)? == "running",
        "the container is {} after the failed exec",
        c.status(&id)?
    );
    c.must(&["kill", &id, "KILL"])?;
    c.wait_stopped(&id)?;
    c.must(&["delete", &id])?;
    Ok(())
}

/// `linux.mountLabel` is ignored without SELinux (the runtime-tools validation's
/// `linux_mount_label` expects the container to run; runc 1.1.5 instead fails at the
/// first tmpfs, see docs/spec-differences.md), whether empty or named: the
/// container runs and its /dev tmpfs carries no `context=`.
pub fn lsm_mount_label_without_selinux(c: &mut Ctx) -> Res {
    if std::path::Path::new("/sys/fs/selinux/enforce").exists() {
        skip!("SELinux is enabled here");
    }
    for label in ["", "system_u:object_r:container_file_t:s0:c1,c2"] {
        let mut cfg = script_cfg("grep ' /dev ' /proc/self/mounts");
        set(&mut cfg, "linux/mountLabel", json!(label));
        let out = super::security::run_script(c, cfg, &["grep"])?;
        ensure!(
            out.contains(" /dev tmpfs ") && !out.contains("context="),
            "mountLabel {label:?}: /dev in the container is {out:?}, wanted a tmpfs without context="
        );
    }
    Ok(())
}
