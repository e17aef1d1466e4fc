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
/// invalid argument") and `exec --apparmor` alike; the container being exec'd into
/// keeps running.
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
    ensure!(
        out.stderr.contains("unable to apply apparmor profile")
            && out.stderr.contains("invalid argument"),
        "exec --apparmor: want runc's \"unable to apply apparmor profile ... invalid argument\": {}",
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
