//! The config that the OCI runtime-tools generator writes by default, built here.
//!
//! runtime-tools' validation suite starts every test from `generate.New("linux")`
//! (its `validation/util.GetDefaultGenerator`), sets the root path to `.` (the bundle
//! directory is the rootfs, config.json sits inside it) and the args to
//! `/runtimetest --path=/`, then changes a field or two. This module builds the same
//! config field for field, as runtime-tools 0.9.0+git20220423.g0105384 writes it (the
//! snapshot Debian 12 ships as golang-github-opencontainers-runtime-tools-dev, with
//! runtime-spec 1.0.2-dev): checked against that generator's JSON output. Fields that
//! Go leaves out when empty are left out here too: no `terminal`, no
//! `noNewPrivileges` (so false), no `root.readonly`, no cgroupsPath, no masked or
//! read-only paths.

use serde_json::{json, Value};

use super::runtime_tools_seccomp as sc;

/// Which form of the generator's default seccomp profile.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Profile {
    /// The 2022-04 snapshot: personality allowed by one rule with three `==` args on
    /// argument 0 (runtimes must add them as separate rules: a filter rule ANDs its
    /// args); the clone rule masks six CLONE_NEW* flags.
    Snapshot2022,
    /// Later upstream source (after runtime-tools PR #694): personality as three
    /// one-argument rules, CLONE_NEWCGROUP added to the clone mask.
    Later,
}

/// The generator's capability set, in all five sets.
pub const CAPS: &[&str] = &[
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

/// `GetDefaultGenerator()`'s config: `generate.New("linux")`, root `.`, args
/// `/runtimetest --path=/`.
pub fn default_config(profile: Profile) -> Value {
    let mut cfg = json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "user": {"uid": 0, "gid": 0},
            "args": ["/runtimetest", "--path=/"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": CAPS, "effective": CAPS, "inheritable": CAPS,
                "permitted": CAPS, "ambient": CAPS
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
        },
        "root": {"path": "."},
        "hostname": "mrsdalloway",
        "mounts": mounts(),
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}
            ]
        }
    });
    let seccomp = seccomp_profile(CAPS, profile);
    cfg["linux"]["seccomp"] = seccomp;
    cfg
}

/// The generator's mounts: unlike `runc spec`, /proc and /dev carry nosuid/noexec.
fn mounts() -> Value {
    let nne = ["nosuid", "noexec", "nodev"];
    json!([
        {"destination": "/proc", "type": "proc", "source": "proc", "options": nne},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "noexec", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": nne},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]}
    ])
}

fn allow(names: &[&str]) -> Value {
    json!({"names": names, "action": "SCMP_ACT_ALLOW"})
}

fn eq0(value: u64) -> Value {
    json!({"index": 0, "value": value, "op": "SCMP_CMP_EQ"})
}

/// The generator's default profile (`generate/seccomp.DefaultProfile`) for a process
/// with `caps` in any set, on amd64: deny by default with EPERM (SCMP_ACT_ERRNO, no
/// errnoRet), the allow list, personality for three personas, one rule per granted
/// capability that unlocks syscalls, clone without namespace flags unless
/// CAP_SYS_ADMIN, and x86's arch_prctl and modify_ldt.
pub fn seccomp_profile(caps: &[&str], profile: Profile) -> Value {
    let mut rules = vec![allow(&sc::ALLOWED.split_whitespace().collect::<Vec<_>>())];
    match profile {
        Profile::Snapshot2022 => rules.push(json!({
            "names": ["personality"], "action": "SCMP_ACT_ALLOW",
            "args": sc::PERSONAS.iter().map(|&p| eq0(p)).collect::<Vec<_>>()
        })),
        Profile::Later => {
            for &p in sc::PERSONAS {
                rules.push(json!({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                                  "args": [eq0(p)]}));
            }
        }
    }
    // The generator walks a Go map here, so with several such capabilities the
    // order of these rules varies from run to run; the default set has only one.
    for (cap, names) in sc::BY_CAPABILITY {
        if caps.contains(cap) {
            rules.push(allow(names));
        }
    }
    if !caps.contains(&"CAP_SYS_ADMIN") {
        let mask = match profile {
            Profile::Snapshot2022 => sc::CLONE_NEW_MASK,
            Profile::Later => sc::CLONE_NEW_MASK | sc::CLONE_NEWCGROUP,
        };
        rules.push(json!({
            "names": ["clone"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": mask, "op": "SCMP_CMP_MASKED_EQ"}]
        }));
    }
    rules.push(allow(&["arch_prctl"]));
    rules.push(allow(&["modify_ldt"]));
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": rules
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_a_valid_spec_with_the_generator_s_shape() {
        let v = default_config(Profile::Snapshot2022);
        let spec: oci_spec::runtime::Spec = serde_json::from_value(v.clone()).expect("valid spec");
        assert_eq!(spec.hostname().as_deref(), Some("mrsdalloway"));
        assert!(v["process"].get("noNewPrivileges").is_none());
        assert!(v["process"].get("terminal").is_none());
        assert_eq!(v["root"], json!({"path": "."}));
        let rules = v["linux"]["seccomp"]["syscalls"].as_array().expect("rules");
        let names: Vec<&Value> = rules.iter().map(|r| &r["names"]).collect();
        assert_eq!(
            rules.len(),
            6,
            "allow list, personality, chroot, clone, arch_prctl, modify_ldt"
        );
        assert_eq!(rules[0]["names"].as_array().map(Vec::len), Some(305));
        assert_eq!(names[2], &json!(["chroot"]));
        assert_eq!(rules[3]["args"][0]["value"], json!(2080505856u64));
        assert_eq!(rules[1]["args"].as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn later_form_splits_personality_and_masks_cgroup_namespaces() {
        let v = default_config(Profile::Later);
        let rules = v["linux"]["seccomp"]["syscalls"].as_array().expect("rules");
        assert_eq!(rules.len(), 8);
        assert!(rules[1..4]
            .iter()
            .all(|r| r["args"].as_array().map(Vec::len) == Some(1)));
        assert_eq!(rules[5]["args"][0]["value"], json!(2114060288u64));
    }

    #[test]
    fn capabilities_unlock_their_syscalls() {
        let p = seccomp_profile(&["CAP_SYS_ADMIN", "CAP_SYS_PTRACE"], Profile::Snapshot2022);
        let text = p.to_string();
        assert!(text.contains("\"ptrace\"") && text.contains("\"unshare\""));
        assert!(
            !text.contains("SCMP_CMP_MASKED_EQ"),
            "no clone mask with CAP_SYS_ADMIN"
        );
    }
}
