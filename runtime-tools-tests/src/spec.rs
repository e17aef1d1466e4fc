//! config.json values for scenarios: the default config and small editing helpers.

use serde_json::{json, Value};

/// The 14 common capabilities the default config grants in all five sets.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

pub const DEFAULT_MASKED: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
];

pub const DEFAULT_READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

pub fn caps_all_sets(caps: &[&str]) -> Value {
    json!({
        "bounding": caps, "effective": caps, "inheritable": caps,
        "permitted": caps, "ambient": caps,
    })
}

pub fn default_mounts() -> Value {
    json!([
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]}
    ])
}

pub fn ns(types: &[&str]) -> Value {
    Value::Array(types.iter().map(|t| json!({"type": t})).collect())
}

/// The default config of §3: hostname, env, NOFILE, 14 caps, five namespaces,
/// default mounts, deny-all devices, masked and readonly paths, a cgroup under our parent.
pub fn default_config(args: &[&str], cgroups_path: &str) -> Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": caps_all_sets(DEFAULT_CAPS),
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "mrsdalloway",
        "mounts": default_mounts(),
        "linux": {
            "namespaces": ns(&["pid", "network", "ipc", "uts", "mount"]),
            "cgroupsPath": cgroups_path,
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "maskedPaths": DEFAULT_MASKED,
            "readonlyPaths": DEFAULT_READONLY
        }
    })
}

/// A shell command as process args.
pub fn sh(script: &str) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), script.into()]
}

/// Sets a value at a `/`-separated path of object keys, creating objects on the way.
pub fn set(cfg: &mut Value, path: &str, v: Value) {
    let mut cur = cfg;
    let parts: Vec<&str> = path.split('/').collect();
    for (i, p) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        let Some(obj) = cur.as_object_mut() else {
            return;
        };
        if i == parts.len() - 1 {
            obj.insert((*p).to_string(), v);
            return;
        }
        cur = obj.entry((*p).to_string()).or_insert_with(|| json!({}));
    }
}

/// Removes a value at a `/`-separated path.
pub fn remove(cfg: &mut Value, path: &str) {
    let parts: Vec<&str> = path.split('/').collect();
    let mut cur = cfg;
    for p in &parts[..parts.len() - 1] {
        match cur.get_mut(*p) {
            Some(v) => cur = v,
            None => return,
        }
    }
    if let Some(o) = cur.as_object_mut() {
        o.remove(parts[parts.len() - 1]);
    }
}

/// Appends to an array at a path (creating it and the objects on the way).
pub fn push(cfg: &mut Value, path: &str, v: Value) {
    let parts: Vec<&str> = path.split('/').collect();
    let mut cur = cfg;
    for (i, p) in parts.iter().enumerate() {
        let Some(o) = cur.as_object_mut() else { return };
        let empty = if i + 1 == parts.len() {
            json!([])
        } else {
            json!({})
        };
        cur = o.entry((*p).to_string()).or_insert(empty);
    }
    if let Some(a) = cur.as_array_mut() {
        a.push(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_a_valid_oci_spec() {
        let v = default_config(&["/runtimetest"], "/berth-conf/x");
        let spec: oci_spec::runtime::Spec = serde_json::from_value(v).expect("valid spec");
        assert_eq!(spec.hostname().as_deref(), Some("mrsdalloway"));
    }

    #[test]
    fn set_push_remove_edit_nested_paths() {
        let mut v = json!({"process": {"args": ["a"]}});
        set(&mut v, "linux/sysctl/k", json!("1"));
        push(&mut v, "hooks/poststop", json!({"path": "/bin/true"}));
        push(&mut v, "process/env", json!("A=b"));
        remove(&mut v, "process/args");
        assert_eq!(v["linux"]["sysctl"]["k"], json!("1"));
        assert_eq!(v["hooks"]["poststop"][0]["path"], json!("/bin/true"));
        assert_eq!(v["process"]["env"], json!(["A=b"]));
        assert!(v["process"].get("args").is_none());
    }
}
