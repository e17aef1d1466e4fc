//! `berth features`: what this build of berth supports on this host, in the runtime
//! spec's features.json shape (oci-spec's [`Features`]). Kernel-dependent parts
//! (capabilities, seccomp actions and flags, AppArmor, SELinux, resctrl) are probed.

use crate::OCI_VERSION;
use oci_spec::runtime::{
    Apparmor, Arch, Cgroup, Features, IDMap, IntelRdt, LinuxFeature, LinuxNamespaceType,
    LinuxSeccompAction, MemoryPolicy, MountExtensions, Seccomp, Selinux,
};
use std::collections::HashMap;

/// The hooks berth runs, in lifecycle order.
pub(crate) const HOOKS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// The mount options berth understands (rootfs/options.rs): flags, propagation, and
/// runc's `tmpcopyup`, plus the recursive ones (`rro` ..., listed in rootfs/options.rs);
/// anything else is passed to the filesystem as data.
pub(crate) const MOUNT_OPTIONS: [&str; 44] = [
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "idmap",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "rbind",
    "relatime",
    "remount",
    "ridmap",
    "ro",
    "rprivate",
    "rshared",
    "rslave",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "tmpcopyup",
    "unbindable",
];

/// Seccomp filter flags berth can pass to seccomp(2), with their kernel values.
pub(crate) const SECCOMP_FLAGS: [(&str, u32); 4] = [
    ("SECCOMP_FILTER_FLAG_TSYNC", 1),
    ("SECCOMP_FILTER_FLAG_LOG", 2),
    ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", 4),
    ("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", 32),
];

/// (spec action, kernel SECCOMP_RET_* value) for the SECCOMP_GET_ACTION_AVAIL probe.
const ACTIONS: [(LinuxSeccompAction, u32); 9] = [
    (LinuxSeccompAction::ScmpActAllow, 0x7fff_0000),
    (LinuxSeccompAction::ScmpActErrno, 0x0005_0000),
    (LinuxSeccompAction::ScmpActKill, 0),
    (LinuxSeccompAction::ScmpActKillProcess, 0x8000_0000),
    (LinuxSeccompAction::ScmpActKillThread, 0),
    (LinuxSeccompAction::ScmpActLog, 0x7ffc_0000),
    (LinuxSeccompAction::ScmpActNotify, 0x7fc0_0000),
    (LinuxSeccompAction::ScmpActTrace, 0x7ff0_0000),
    (LinuxSeccompAction::ScmpActTrap, 0x0003_0000),
];

const OPERATORS: [&str; 7] = [
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];

const ARCHS: [Arch; 18] = [
    Arch::ScmpArchAarch64,
    Arch::ScmpArchArm,
    Arch::ScmpArchMips,
    Arch::ScmpArchMips64,
    Arch::ScmpArchMips64n32,
    Arch::ScmpArchMipsel,
    Arch::ScmpArchMipsel64,
    Arch::ScmpArchMipsel64n32,
    Arch::ScmpArchPpc,
    Arch::ScmpArchPpc64,
    Arch::ScmpArchPpc64le,
    Arch::ScmpArchRiscv64,
    Arch::ScmpArchS390,
    Arch::ScmpArchS390x,
    Arch::ScmpArchX32,
    Arch::ScmpArchX86,
    Arch::ScmpArchX86_64,
    Arch::ScmpArchNative,
];

/// What berth supports here, for `berth features`.
pub fn features() -> Features {
    let mut f = Features::default();
    f.set_oci_version_min("1.0.0".to_string());
    f.set_oci_version_max(OCI_VERSION.to_string());
    f.set_hooks(Some(HOOKS.iter().map(|s| s.to_string()).collect()));
    let mut options: Vec<String> = MOUNT_OPTIONS
        .iter()
        .chain(crate::rootfs::RECURSIVE_OPTIONS.iter())
        .map(|s| s.to_string())
        .collect();
    options.sort();
    f.set_mount_options(Some(options));

    let mut linux = LinuxFeature::default();
    linux.set_namespaces(Some(vec![
        LinuxNamespaceType::Cgroup,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::User,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Time,
    ]));
    linux.set_capabilities(Some(capabilities()));
    let mut cg = Cgroup::default();
    cg.set_v1(Some(true));
    cg.set_v2(Some(true));
    cg.set_systemd(Some(false));
    cg.set_systemd_user(Some(false));
    cg.set_rdma(Some(false));
    linux.set_cgroup(Some(cg));
    linux.set_seccomp(Some(seccomp()));
    let mut aa = Apparmor::default();
    aa.set_enabled(Some(crate::process::apparmor_enabled()));
    linux.set_apparmor(Some(aa));
    let mut se = Selinux::default();
    se.set_enabled(Some(crate::process::selinux_enabled()));
    linux.set_selinux(Some(se));
    let mut rdt = IntelRdt::default();
    rdt.set_enabled(Some(false));
    linux.set_intel_rdt(Some(rdt));
    let mut mp = MemoryPolicy::default();
    mp.set_modes(Some(
        crate::process::MEMORY_POLICY_MODES
            .iter()
            .map(|(n, _)| n.to_string())
            .collect(),
    ));
    mp.set_flags(Some(
        crate::process::MEMORY_POLICY_FLAGS
            .iter()
            .map(|(n, _)| n.to_string())
            .collect(),
    ));
    linux.set_memory_policy(Some(mp));
    // Idmapped bind mounts: only where this kernel can make one (probed).
    let mut idmap = IDMap::default();
    idmap.set_enabled(Some(crate::rootfs::idmap_supported()));
    let mut ext = MountExtensions::default();
    ext.set_idmap(Some(idmap));
    linux.set_mount_extensions(Some(ext));
    f.set_linux(Some(linux));

    let mut annotations = HashMap::new();
    if let Ok(v) = libseccomp::ScmpVersion::current() {
        annotations.insert(
            "io.github.seccomp.libseccomp.version".to_string(),
            format!("{}.{}.{}", v.major, v.minor, v.micro),
        );
    }
    f.set_annotations(Some(annotations));
    f
}

/// Every capability the running kernel has (0..=cap_last_cap), by name; a number
/// beyond what berth names appears as `CAP_<n>`.
fn capabilities() -> Vec<String> {
    let last = crate::process::cap_last_cap();
    (0..=last)
        .map(|n| crate::process::cap_name(n).unwrap_or_else(|| format!("CAP_{n}")))
        .collect()
}

fn seccomp() -> Seccomp {
    let mut s = Seccomp::default();
    s.set_enabled(Some(true));
    s.set_actions(Some(
        ACTIONS
            .iter()
            .filter(|(_, ret)| action_available(*ret))
            .map(|(a, _)| *a)
            .collect(),
    ));
    s.set_operators(Some(OPERATORS.iter().map(|s| s.to_string()).collect()));
    s.set_archs(Some(ARCHS.to_vec()));
    s.set_known_flags(Some(
        SECCOMP_FLAGS.iter().map(|(n, _)| n.to_string()).collect(),
    ));
    s.set_supported_flags(Some(
        SECCOMP_FLAGS
            .iter()
            .filter(|(_, v)| flag_supported(*v))
            .map(|(n, _)| n.to_string())
            .collect(),
    ));
    s
}

/// seccomp(SECCOMP_GET_ACTION_AVAIL): does the kernel know this return action?
fn action_available(ret: u32) -> bool {
    const SECCOMP_GET_ACTION_AVAIL: libc::c_ulong = 2;
    // SAFETY: the kernel reads one u32 from a valid pointer.
    let r = unsafe { libc::syscall(libc::SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &ret) };
    r == 0
}

/// As libseccomp probes it: SET_MODE_FILTER with the flag and a NULL program fails
/// with EFAULT when the flag is known and EINVAL when it is not; nothing is installed.
fn flag_supported(flag: u32) -> bool {
    const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
    // WAIT_KILLABLE_RECV is valid only together with NEW_LISTENER.
    let flag = if flag == 32 { flag | 8 } else { flag };
    // SAFETY: a NULL program pointer is never dereferenced by user space; the kernel
    // rejects it with EFAULT before anything is installed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flag as libc::c_ulong,
            std::ptr::null::<libc::c_void>(),
        )
    };
    r < 0 && nix::Error::last() == nix::Error::EFAULT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_cover_this_host() {
        let f = features();
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(v["ociVersionMax"], OCI_VERSION);
        let caps = v["linux"]["capabilities"].as_array().unwrap();
        assert!(caps.contains(&serde_json::json!("CAP_SYS_ADMIN")));
        assert_eq!(caps.len() as u32, crate::process::cap_last_cap() + 1);
        let seccomp = &v["linux"]["seccomp"];
        assert_eq!(seccomp["enabled"], true);
        for a in ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_NOTIFY"] {
            assert!(seccomp["actions"].as_array().unwrap().contains(&a.into()));
        }
        assert!(seccomp["archs"]
            .as_array()
            .unwrap()
            .contains(&"SCMP_ARCH_X86_64".into()));
        assert!(seccomp["supportedFlags"]
            .as_array()
            .unwrap()
            .contains(&"SECCOMP_FILTER_FLAG_TSYNC".into()));
        assert!(seccomp["knownFlags"]
            .as_array()
            .unwrap()
            .contains(&"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV".into()));
        for o in ["rbind", "rro", "rnosymfollow"] {
            assert!(v["mountOptions"].as_array().unwrap().contains(&o.into()));
        }
    }

    #[test]
    fn archs_parse_in_libseccomp() {
        for a in ARCHS {
            let name = serde_json::to_value(a).unwrap();
            let name = name.as_str().unwrap();
            assert!(name.parse::<libseccomp::ScmpArch>().is_ok(), "{name}");
        }
    }
}
