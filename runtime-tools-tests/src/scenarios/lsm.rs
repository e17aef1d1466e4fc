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

/// `linux.mountLabel` is applied as runc applies it, `context="<label>"` in the data
/// of the tmpfs (and devpts...) mounts; without SELinux the kernel refuses that
/// option, so `create` fails at the first such mount (runc: "error mounting "tmpfs"
/// to rootfs at "/dev": ... invalid argument"). An empty label is ignored.
pub fn lsm_mount_label_without_selinux(c: &mut Ctx) -> Res {
    if std::path::Path::new("/sys/fs/selinux/enforce").exists() {
        skip!("SELinux is enabled here");
    }
    let mut cfg = script_cfg("true");
    set(&mut cfg, "linux/mountLabel", json!(""));
    super::security::run_script(c, cfg, &[])?;
    let mut cfg = script_cfg("true");
    set(
        &mut cfg,
        "linux/mountLabel",
        json!("system_u:object_r:container_file_t:s0:c1,c2"),
    );
    refused_all(c, cfg, &["/dev", "nvalid argument"])
}
