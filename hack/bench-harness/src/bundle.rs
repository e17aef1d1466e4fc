//! The benchmark's bundles: one shared busybox rootfs and one config.json per runtime.
//!
//! Every runtime gets the same config (runc's `spec` defaults, `/bin/true` as the
//! process), written by the harness itself so that no runtime's `spec` output tilts
//! the comparison. Only `cgroupsPath` differs, so each runtime works under its own
//! cgroup below the harness's parent cgroup.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// The busybox binary copied into the rootfs (Debian's busybox-static).
pub const BUSYBOX: &str = "/bin/busybox";

/// Create `<work>/rootfs` with busybox and the two applets the benchmark needs.
pub fn make_rootfs(work: &Path) -> Result<PathBuf, String> {
    let rootfs = work.join("rootfs");
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "bench"] {
        let p = rootfs.join(d);
        fs::create_dir_all(&p).map_err(|e| format!("mkdir {}: {e}", p.display()))?;
    }
    let bb = rootfs.join("bin/busybox");
    fs::copy(BUSYBOX, &bb).map_err(|e| {
        format!(
            "copy {BUSYBOX} to {}: {e} (install busybox-static)",
            bb.display()
        )
    })?;
    for applet in ["true", "sh"] {
        let link = rootfs.join("bin").join(applet);
        symlink("busybox", &link).map_err(|e| format!("symlink {}: {e}", link.display()))?;
    }
    let passwd = rootfs.join("etc/passwd");
    fs::write(&passwd, "root:x:0:0:root:/root:/bin/sh\n")
        .map_err(|e| format!("write {}: {e}", passwd.display()))?;
    let group = rootfs.join("etc/group");
    fs::write(&group, "root:x:0:\n").map_err(|e| format!("write {}: {e}", group.display()))?;
    Ok(rootfs)
}

/// Write `<work>/bundle-<name>/config.json` for one runtime and return the bundle dir.
/// Extra mounts and devices in the config (`--mounts`, `--devices`).
#[derive(Clone, Copy, Default)]
pub struct Extra {
    pub mounts: usize,
    pub devices: usize,
}

/// Makes the mount points of `extra` in the shared rootfs.
pub fn make_mount_points(rootfs: &Path, extra: Extra) -> Result<(), String> {
    for i in 0..extra.mounts {
        let p = rootfs.join(format!("bench/m{i}"));
        fs::create_dir_all(&p).map_err(|e| format!("mkdir {}: {e}", p.display()))?;
    }
    Ok(())
}

pub fn make_bundle(
    work: &Path,
    rootfs: &Path,
    name: &str,
    cgroups_path: &str,
    extra: Extra,
) -> Result<PathBuf, String> {
    let dir = work.join(format!("bundle-{name}"));
    fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    let mut config = config_json(rootfs, cgroups_path);
    // n small tmpfs mounts and n character devices (copies of /dev/null's numbers),
    // the same for every runtime.
    if let Some(mounts) = config["mounts"].as_array_mut() {
        for i in 0..extra.mounts {
            mounts.push(json!({
                "destination": format!("/bench/m{i}"), "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "nodev", "noexec", "size=64k"]
            }));
        }
    }
    if extra.devices > 0 {
        let devices: Vec<Value> = (0..extra.devices)
            .map(|i| {
                json!({"path": format!("/dev/bench{i}"), "type": "c", "major": 1, "minor": 3,
                       "fileMode": 438, "uid": 0, "gid": 0})
            })
            .collect();
        config["linux"]["devices"] = Value::Array(devices);
    }
    let path = dir.join("config.json");
    let text = serde_json::to_string_pretty(&config)
        .map_err(|e| format!("serialize {}: {e}", path.display()))?;
    fs::write(&path, text).map_err(|e| format!("write {}: {e}", path.display()))?;
    Ok(dir)
}

/// runc 1.1's `spec` defaults with `/bin/true` as the process.
fn config_json(rootfs: &Path, cgroups_path: &str) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": ["/bin/true"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps, "ambient": caps
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true
        },
        "root": { "path": rootfs.to_string_lossy(), "readonly": true },
        "hostname": "bench",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
              "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
        ],
        "linux": {
            "cgroupsPath": cgroups_path,
            "resources": { "devices": [{ "allow": false, "access": "rwm" }] },
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
                { "type": "uts" }, { "type": "mount" }
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// Remove `/sys/fs/cgroup/<hierarchy>/<parent>` (and anything left below it) in every
/// mounted hierarchy. Only the harness's own parent is touched.
pub fn remove_cgroup_parent(parent: &str) {
    let Ok(hierarchies) = fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for h in hierarchies.flatten() {
        let dir = h.path().join(parent.trim_start_matches('/'));
        if dir.is_dir() {
            remove_cgroup_tree(&dir);
        }
    }
}

/// rmdir a cgroup directory depth first (cgroup files cannot be unlinked, only dirs).
fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_cgroup_tree(&p);
            }
        }
    }
    if let Err(e) = fs::remove_dir(dir) {
        eprintln!("berth-bench: warning: rmdir {}: {e}", dir.display());
    }
}
