//! runc's mount contract (mounts.bats): a bind source relative to the bundle, `ro`
//! on a tmpfs and on /dev, a tmpfs whose destination passes through an absolute
//! symlink in the rootfs, and a read-only /sys/fs/cgroup with and without a cgroup
//! namespace. Each runs in the foreground and is judged from what the container
//! prints about its own mounts.

use serde_json::{json, Value};

use super::contract::{cfg, cgroup_mount, prepare, run_foreground};
use crate::ctx::Ctx;
use crate::ensure;
use crate::runtime::CmdOut;
use crate::spec::push;
use crate::verdict::{Res, Verdict};

/// A foreground run of `config`, which must exit 0; its output.
fn run_ok(c: &mut Ctx, config: Value, what: &str) -> Result<CmdOut, Verdict> {
    let (id, b) = prepare(c, config)?;
    let out = run_foreground(c, &b, &id);
    ensure!(out.ok(), "run with {what}: {}", out.describe());
    Ok(out)
}

/// A bind mount whose source is `.` (the bundle directory, as a relative source is
/// taken): the container lists the bundle's config.json through it.
pub fn contract_mounts_bind_bundle_relative(c: &mut Ctx) -> Res {
    let mut config = cfg(&["ls", "/tmp/bind/config.json"]);
    push(
        &mut config,
        "mounts",
        json!({"source": ".", "destination": "/tmp/bind", "options": ["bind"]}),
    );
    let out = run_ok(c, config, "a bind of \".\" at /tmp/bind")?;
    let first = out.stdout.lines().next().unwrap_or("");
    ensure!(
        first.contains("/tmp/bind/config.json"),
        "ls through the bind of the bundle printed {:?}",
        out.stdout
    );
    Ok(())
}

/// `ro` on a tmpfs (with nodev, nosuid and a mode, runc#2246) and added to the
/// default /dev tmpfs (runc#3248): /proc/mounts shows each read-only, and the run
/// that needs /dev populated before it turns read-only succeeds.
pub fn contract_mounts_ro_tmpfs_and_dev(c: &mut Ctx) -> Res {
    let mut config = cfg(&["grep", "^tmpfs /mnt", "/proc/mounts"]);
    push(
        &mut config,
        "mounts",
        json!({"source": "tmpfs", "destination": "/mnt", "type": "tmpfs",
               "options": ["ro", "nodev", "nosuid", "mode=755"]}),
    );
    let out = run_ok(c, config, "a ro tmpfs at /mnt")?;
    let first = out.stdout.lines().next().unwrap_or("");
    ensure!(
        first.contains("ro,"),
        "the ro tmpfs at /mnt is not read-only: {first:?}"
    );

    let mut config = cfg(&["grep", "^tmpfs /dev", "/proc/mounts"]);
    if let Some(mounts) = config["mounts"].as_array_mut() {
        for m in mounts.iter_mut().filter(|m| m["destination"] == "/dev") {
            if let Some(o) = m["options"].as_array_mut() {
                o.push(json!("ro"));
            }
        }
    }
    let out = run_ok(c, config, "ro added to the /dev tmpfs")?;
    let first = out.stdout.lines().next().unwrap_or("");
    ensure!(
        first.contains("ro,"),
        "/dev mounted with ro is not read-only: {first:?}"
    );
    Ok(())
}

/// runc#2683: /conf is a symlink to /real/conf (absolute, so it must resolve inside
/// the rootfs); a tmpfs at /conf/stack is mounted there and the run succeeds.
pub fn contract_mounts_tmpfs_under_absolute_symlink(c: &mut Ctx) -> Res {
    let mut config = cfg(&["grep", "-c", " /real/conf/stack tmpfs ro,", "/proc/mounts"]);
    push(
        &mut config,
        "mounts",
        json!({"type": "tmpfs", "source": "tmpfs", "destination": "/conf/stack",
               "options": ["ro", "nodev", "nosuid"]}),
    );
    let (id, b) = prepare(c, config)?;
    std::fs::create_dir_all(b.rootfs().join("real/conf"))?;
    std::os::unix::fs::symlink("/real/conf", b.rootfs().join("conf"))?;
    let out = run_foreground(c, &b, &id);
    ensure!(
        out.ok(),
        "run with a tmpfs at /conf/stack, /conf -> /real/conf: {}; stdout {:?}",
        out.describe(),
        out.stdout
    );
    ensure!(
        out.stdout.trim() == "1",
        "the tmpfs is not at /real/conf/stack inside: grep -c printed {:?}",
        out.stdout
    );
    Ok(())
}

/// GHSA-m8cg-xc2p-r3fc: with runc's read-only `cgroup` mount, every mount at or below
/// /sys/fs/cgroup is read-only as the container sees it (the last line of each mount
/// point in /proc/mounts, so a later writable bind over it would show), with a
/// cgroup namespace and without one.
pub fn contract_mounts_cgroup_read_only(c: &mut Ctx) -> Res {
    let script = "for f in $(grep /sys/fs/cgroup /proc/mounts | awk '{print $2}' | uniq); do \
                  grep -w $f /proc/mounts | tail -n1; done";
    for cgroupns in [true, false] {
        let mut config = cfg(&["sh", "-euc", script]);
        push(&mut config, "mounts", cgroup_mount(true));
        if cgroupns {
            push(&mut config, "linux/namespaces", json!({"type": "cgroup"}));
        }
        let what = if cgroupns {
            "a cgroup namespace"
        } else {
            "no cgroup namespace"
        };
        let out = run_ok(c, config, &format!("a ro cgroup mount and {what}"))?;
        let lines: Vec<&str> = out.stdout.lines().collect();
        ensure!(
            !lines.is_empty(),
            "with {what}: no mount at /sys/fs/cgroup inside"
        );
        let writable: Vec<&&str> = lines.iter().filter(|l| !l.contains("ro,")).collect();
        ensure!(
            writable.is_empty(),
            "with {what}: mounts under /sys/fs/cgroup that are not read-only: {writable:?}"
        );
    }
    Ok(())
}
