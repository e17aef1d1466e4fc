//! The default config.json of `berth spec`, matching `runc spec`.

use oci_spec::runtime::Spec;

/// runc 1.1's `runc spec` output, field for field; only `ociVersion` is replaced by
/// [`crate::OCI_VERSION`].
const DEFAULT_SPEC_JSON: &str = r#"{
	"ociVersion": "",
	"process": {
		"terminal": true,
		"user": {
			"uid": 0,
			"gid": 0
		},
		"args": [
			"sh"
		],
		"env": [
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"TERM=xterm"
		],
		"cwd": "/",
		"capabilities": {
			"bounding": [
				"CAP_AUDIT_WRITE",
				"CAP_KILL",
				"CAP_NET_BIND_SERVICE"
			],
			"effective": [
				"CAP_AUDIT_WRITE",
				"CAP_KILL",
				"CAP_NET_BIND_SERVICE"
			],
			"permitted": [
				"CAP_AUDIT_WRITE",
				"CAP_KILL",
				"CAP_NET_BIND_SERVICE"
			],
			"ambient": [
				"CAP_AUDIT_WRITE",
				"CAP_KILL",
				"CAP_NET_BIND_SERVICE"
			]
		},
		"rlimits": [
			{
				"type": "RLIMIT_NOFILE",
				"hard": 1024,
				"soft": 1024
			}
		],
		"noNewPrivileges": true
	},
	"root": {
		"path": "rootfs",
		"readonly": true
	},
	"hostname": "runc",
	"mounts": [
		{
			"destination": "/proc",
			"type": "proc",
			"source": "proc"
		},
		{
			"destination": "/dev",
			"type": "tmpfs",
			"source": "tmpfs",
			"options": [
				"nosuid",
				"strictatime",
				"mode=755",
				"size=65536k"
			]
		},
		{
			"destination": "/dev/pts",
			"type": "devpts",
			"source": "devpts",
			"options": [
				"nosuid",
				"noexec",
				"newinstance",
				"ptmxmode=0666",
				"mode=0620",
				"gid=5"
			]
		},
		{
			"destination": "/dev/shm",
			"type": "tmpfs",
			"source": "shm",
			"options": [
				"nosuid",
				"noexec",
				"nodev",
				"mode=1777",
				"size=65536k"
			]
		},
		{
			"destination": "/dev/mqueue",
			"type": "mqueue",
			"source": "mqueue",
			"options": [
				"nosuid",
				"noexec",
				"nodev"
			]
		},
		{
			"destination": "/sys",
			"type": "sysfs",
			"source": "sysfs",
			"options": [
				"nosuid",
				"noexec",
				"nodev",
				"ro"
			]
		},
		{
			"destination": "/sys/fs/cgroup",
			"type": "cgroup",
			"source": "cgroup",
			"options": [
				"nosuid",
				"noexec",
				"nodev",
				"relatime",
				"ro"
			]
		}
	],
	"linux": {
		"resources": {
			"devices": [
				{
					"allow": false,
					"access": "rwm"
				}
			]
		},
		"namespaces": [
			{
				"type": "pid"
			},
			{
				"type": "network"
			},
			{
				"type": "ipc"
			},
			{
				"type": "uts"
			},
			{
				"type": "mount"
			}
		],
		"maskedPaths": [
			"/proc/acpi",
			"/proc/asound",
			"/proc/kcore",
			"/proc/keys",
			"/proc/latency_stats",
			"/proc/timer_list",
			"/proc/timer_stats",
			"/proc/sched_debug",
			"/sys/firmware",
			"/proc/scsi"
		],
		"readonlyPaths": [
			"/proc/bus",
			"/proc/fs",
			"/proc/irq",
			"/proc/sys",
			"/proc/sysrq-trigger"
		]
	}
}"#;

/// runc's default spec: busybox-friendly `sh`, terminal on, the usual namespaces,
/// mounts, masked and readonly paths, and the default capability set.
pub fn default_spec() -> Spec {
    // The text is a constant checked by the tests below, so this cannot fail at run time.
    let mut spec: Spec =
        serde_json::from_str(DEFAULT_SPEC_JSON).expect("embedded default spec is valid");
    spec.set_version(crate::OCI_VERSION.to_string());
    spec
}

#[cfg(test)]
mod tests {
    use super::default_spec;
    use oci_spec::runtime::{Capability, LinuxNamespaceType, PosixRlimitType};

    #[test]
    fn default_spec_has_runc_defaults() {
        let spec = default_spec();
        assert_eq!(spec.version(), crate::OCI_VERSION);
        assert_eq!(spec.hostname().as_deref(), Some("runc"));

        let root = spec.root().as_ref().expect("root");
        assert_eq!(root.path().to_str(), Some("rootfs"));
        assert_eq!(root.readonly(), Some(true));

        let process = spec.process().as_ref().expect("process");
        assert_eq!(process.terminal(), Some(true));
        assert_eq!(process.args().as_deref(), Some(&["sh".to_string()][..]));
        assert_eq!(process.cwd().to_str(), Some("/"));
        assert_eq!(process.no_new_privileges(), Some(true));
        assert_eq!(process.user().uid(), 0);
        let caps = process.capabilities().as_ref().expect("capabilities");
        let bounding = caps.bounding().as_ref().expect("bounding");
        assert_eq!(bounding.len(), 3);
        assert!(bounding.contains(&Capability::AuditWrite));
        assert!(bounding.contains(&Capability::Kill));
        assert!(bounding.contains(&Capability::NetBindService));
        assert!(caps.inheritable().is_none());
        let rlimits = process.rlimits().as_ref().expect("rlimits");
        assert_eq!(rlimits.len(), 1);
        assert_eq!(rlimits[0].typ(), PosixRlimitType::RlimitNofile);
        assert_eq!((rlimits[0].soft(), rlimits[0].hard()), (1024, 1024));

        let mounts = spec.mounts().as_ref().expect("mounts");
        let destinations: Vec<_> = mounts
            .iter()
            .map(|m| m.destination().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            destinations,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/sys",
                "/sys/fs/cgroup"
            ]
        );

        let linux = spec.linux().as_ref().expect("linux");
        let namespaces: Vec<_> = linux
            .namespaces()
            .as_ref()
            .expect("namespaces")
            .iter()
            .map(|n| n.typ())
            .collect();
        assert_eq!(
            namespaces,
            [
                LinuxNamespaceType::Pid,
                LinuxNamespaceType::Network,
                LinuxNamespaceType::Ipc,
                LinuxNamespaceType::Uts,
                LinuxNamespaceType::Mount
            ]
        );
        assert_eq!(linux.masked_paths().as_ref().map(Vec::len), Some(10));
        assert_eq!(linux.readonly_paths().as_ref().map(Vec::len), Some(5));
        let devices = linux
            .resources()
            .as_ref()
            .and_then(|r| r.devices().as_ref())
            .expect("device rules");
        assert_eq!(devices.len(), 1);
        assert!(!devices[0].allow());
        assert_eq!(devices[0].access().as_deref(), Some("rwm"));
        assert!(linux.uid_mappings().is_none());
    }

    #[test]
    fn default_spec_round_trips_through_json() {
        let spec = default_spec();
        let text = serde_json::to_string(&spec).expect("serialize");
        let back: oci_spec::runtime::Spec = serde_json::from_str(&text).expect("deserialize");
        assert_eq!(back, spec);
    }
}
