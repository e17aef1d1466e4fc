//! runc's device contract (dev.bats): default devices listed again in linux.devices
//! keep their default owner and mode; the device cgroup denies /dev/kmsg, also after
//! an unrelated update; an allowed char device is written, read and `access`ed; an
//! allowed block device can be made with mknod and read.

use serde_json::{json, Value};

use super::contract::{cfg, full_busybox, run_detached};
use crate::bundle::Bundle;
use crate::ctx::Ctx;
use crate::spec::{push, set};
use crate::verdict::{Res, Verdict};
use crate::{ensure, skip};

/// `ls -lLn PATH` of a run whose linux.devices lists `node` again: a char device of
/// mode crw-rw-rw-, owner 0 0, numbers `major, minor`.
fn redundant_default(c: &mut Ctx, node: Value, major: u32, minor: u32) -> Res {
    let path = node["path"].as_str().unwrap_or_default().to_string();
    let mut config = cfg(&["ls", "-lLn", &path]);
    push(&mut config, "linux/devices", node);
    let (id, b) = c.prepare(config, false)?;
    full_busybox(&b)?;
    let bp = b.path_str();
    let out = c.rt(&["run", "--bundle", &bp, &id]);
    ensure!(
        out.ok(),
        "run with {path} in linux.devices: {}",
        out.describe()
    );
    let f: Vec<&str> = out.stdout.split_whitespace().collect();
    ensure!(
        f.len() >= 6
            && f[0] == "crw-rw-rw-"
            && f[2] == "0"
            && f[3] == "0"
            && f[4] == format!("{major},")
            && f[5] == minor.to_string(),
        "ls -lLn {path}: {:?}, want crw-rw-rw- owned 0 0, {major}, {minor}",
        out.stdout.trim()
    );
    Ok(())
}

/// /dev/tty (5:0) and /dev/ptmx (5:2) given again in linux.devices, without a mode.
pub fn contract_devices_redundant_defaults(c: &mut Ctx) -> Res {
    redundant_default(
        c,
        json!({"path": "/dev/tty", "type": "c", "major": 5, "minor": 0}),
        5,
        0,
    )?;
    redundant_default(
        c,
        json!({"path": "/dev/ptmx", "type": "c", "major": 5, "minor": 2}),
        5,
        2,
    )
}

/// A running shell with /dev/kmsg (1:11) made, CAP_SYSLOG, and these device rules.
fn kmsg_container(
    c: &mut Ctx,
    rules: Value,
    with_checker: bool,
) -> Result<(String, Bundle), Verdict> {
    let mut config = cfg(&["sleep", "600"]);
    set(&mut config, "linux/resources/devices", rules);
    set(
        &mut config,
        "linux/devices",
        json!([{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11}]),
    );
    for s in ["bounding", "effective", "permitted"] {
        push(
            &mut config,
            &format!("process/capabilities/{s}"),
            json!("CAP_SYSLOG"),
        );
    }
    set(&mut config, "hostname", json!("myhostname"));
    let (id, b) = c.prepare(config, with_checker)?;
    full_busybox(&b)?;
    run_detached(c, &b, &id)?;
    Ok((id, b))
}

/// Writing and reading /dev/kmsg both fail with EPERM (exit 1).
fn kmsg_denied(c: &Ctx, id: &str, when: &str) -> Res {
    for (what, script) in [
        ("write", "hostname | tee /dev/kmsg"),
        ("read", "head -n 1 /dev/kmsg"),
    ] {
        let out = c.rt(&["exec", id, "sh", "-c", script]);
        ensure!(
            out.code == Some(1)
                && (out.stdout.contains("Operation not permitted")
                    || out.stderr.contains("Operation not permitted")),
            "{what} of a denied /dev/kmsg {when}: want exit 1 and EPERM: {}; stdout {:?}",
            out.describe(),
            out.stdout
        );
    }
    Ok(())
}

/// Deny-all device rules with /dev/kmsg made: it can be neither written nor read,
/// and an unrelated update (pids limit) does not reopen it.
pub fn contract_cgroup_devices_kmsg_denied(c: &mut Ctx) -> Res {
    let (id, _b) = kmsg_container(c, json!([{"allow": false, "access": "rwm"}]), false)?;
    kmsg_denied(c, &id, "at start")?;
    c.must(&["update", &id, "--pids-limit", "42"])?;
    kmsg_denied(c, &id, "after update --pids-limit")?;
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// /dev/kmsg allowed `rw` after deny-all: the hostname is written to it, a line is
/// read from it, and access(2) with F_OK succeeds.
pub fn contract_cgroup_devices_kmsg_allowed(c: &mut Ctx) -> Res {
    let rules = json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "rw"}
    ]);
    let (id, _b) = kmsg_container(c, rules, true)?;
    let out = c.must(&["exec", &id, "sh", "-c", "hostname | tee /dev/kmsg"])?;
    ensure!(
        out.stdout
            .lines()
            .next()
            .is_some_and(|l| l.contains("myhostname")),
        "write to /dev/kmsg: {:?}",
        out.stdout
    );
    c.must(&["exec", &id, "sh", "-c", "head -n 1 /dev/kmsg"])?;
    let out = c.rt(&["exec", &id, "/runtimetest", "--access=/dev/kmsg"]);
    ensure!(out.ok(), "access(\"/dev/kmsg\", F_OK): {}", out.describe());
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// A loop device over a file (detached when dropped), the block device of
/// runc's test when the host's own disks cannot be read (this host refuses even root).
struct LoopDev {
    dev: String,
}

impl Drop for LoopDev {
    fn drop(&mut self) {
        let _ = std::process::Command::new("timeout")
            .args(["10", "losetup", "-d", &self.dev])
            .status();
    }
}

/// `(major, minor)` of a block device node path, from sysfs.
fn dev_numbers(name: &str) -> Option<(u64, u64)> {
    let t = crate::ctx::read_trim(std::path::Path::new(&format!(
        "/sys/class/block/{name}/dev"
    )));
    let (a, b) = t.split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// A block device the container can read, with the first bytes it must show: a loop
/// device over `img` (whose first sector is "BERTH..."), or else the first host disk
/// root can read (content unknown).
fn readable_block_device(
    img: &std::path::Path,
) -> Option<(u64, u64, Option<&'static str>, Option<LoopDev>)> {
    let mut data = vec![0u8; 4096];
    data[..5].copy_from_slice(b"BERTH");
    if std::fs::write(img, &data).is_ok() {
        let out = std::process::Command::new("timeout")
            .args(["10", "losetup", "--find", "--show"])
            .arg(img)
            .output();
        if let Some(o) = out.ok().filter(|o| o.status.success()) {
            let dev = String::from_utf8_lossy(&o.stdout).trim().to_string();
            let guard = LoopDev { dev: dev.clone() };
            if let Some((maj, min)) = dev_numbers(dev.trim_start_matches("/dev/")) {
                return Some((maj, min, Some("BERTH"), Some(guard)));
            }
        }
    }
    let names = std::fs::read_dir("/sys/block").ok()?;
    for n in names.flatten() {
        let name = n.file_name().to_string_lossy().into_owned();
        let mut buf = [0u8; 512];
        let readable = std::fs::File::open(format!("/dev/{name}"))
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf))
            .is_ok();
        if readable {
            if let Some((maj, min)) = dev_numbers(&name) {
                return Some((maj, min, None, None));
            }
        }
    }
    None
}

/// A readable block device allowed `rwm` after deny-all: CAP_MKNOD makes a second
/// node for it, and its first sector is read through that node.
pub fn contract_cgroup_devices_block_mknod(c: &mut Ctx) -> Res {
    let id = c.new_id();
    let b = c.bundle(&id, false)?;
    full_busybox(&b)?;
    let Some((major, minor, head, _loop)) = readable_block_device(&b.dir.join("disk.img")) else {
        skip!("no loop device and no host disk root can read");
    };
    let mut config = cfg(&["sleep", "600"]);
    set(
        &mut config,
        "linux/resources/devices",
        json!([{"allow": false, "access": "rwm"},
               {"allow": true, "type": "b", "major": major, "minor": minor, "access": "rwm"}]),
    );
    set(
        &mut config,
        "linux/devices",
        json!([{"path": "/dev/berth-disk", "type": "b", "major": major, "minor": minor}]),
    );
    set(&mut config, "linux/cgroupsPath", json!(c.cgroups_path(&id)));
    b.write_config(&config)?;
    run_detached(c, &b, &id)?;
    let out = c.rt(&[
        "exec",
        &id,
        "sh",
        "-c",
        &format!(
            "mknod /dev/fooblock b {major} {minor} && head -c 512 /dev/fooblock > /tmp/sector \
             && wc -c < /tmp/sector && head -c 5 /tmp/sector"
        ),
    ]);
    let lines: Vec<&str> = out.stdout.lines().map(str::trim).collect();
    let want = format!(
        "512 bytes{}",
        head.map(|h| format!(", starting {h}")).unwrap_or_default()
    );
    let ok =
        out.ok() && lines.first() == Some(&"512") && head.is_none_or(|h| lines.get(1) == Some(&h));
    ensure!(
        ok,
        "mknod and read of the allowed block device {major}:{minor}: {}; stdout {:?} want {want:?}",
        out.describe(),
        out.stdout
    );
    c.must(&["delete", "--force", &id])?;
    Ok(())
}
