//! `berth features`: the runtime-spec features document and its fields.

mod support;

use support::{berth_root, stderr, stdout, TempDir};

#[test]
fn features_document_has_the_spec_fields() {
    let root = TempDir::new("features-root");
    let out = berth_root(&root, &["features"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("features json");
    assert_eq!(v["ociVersionMin"], "1.0.0");
    assert!(v["ociVersionMax"]
        .as_str()
        .is_some_and(|s| s.starts_with("1.")));
    for hook in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        assert!(
            v["hooks"]
                .as_array()
                .expect("hooks")
                .iter()
                .any(|h| h == hook),
            "{hook}"
        );
    }
    assert!(v["mountOptions"]
        .as_array()
        .expect("mountOptions")
        .iter()
        .any(|o| o == "rbind"));
    let linux = &v["linux"];
    for ns in ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"] {
        assert!(
            linux["namespaces"]
                .as_array()
                .expect("namespaces")
                .iter()
                .any(|n| n == ns),
            "{ns}"
        );
    }
    let caps = linux["capabilities"].as_array().expect("capabilities");
    assert!(caps.iter().any(|c| c == "CAP_SYS_ADMIN"));
    assert!(caps
        .iter()
        .all(|c| c.as_str().is_some_and(|s| s.starts_with("CAP_"))));
    for k in ["v1", "v2", "systemd", "systemdUser"] {
        assert!(linux["cgroup"][k].is_boolean(), "cgroup.{k}");
    }
    let seccomp = &linux["seccomp"];
    assert_eq!(seccomp["enabled"], true);
    for k in [
        "actions",
        "operators",
        "archs",
        "knownFlags",
        "supportedFlags",
    ] {
        assert!(seccomp[k].is_array(), "seccomp.{k}: {seccomp}");
    }
    assert!(seccomp["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .any(|a| a == "SCMP_ACT_ERRNO"));
    for k in ["apparmor", "selinux", "intelRdt"] {
        assert!(linux[k]["enabled"].is_boolean(), "{k}");
    }
    // Whether the kernel can idmap is probed (conformance idmap_features_enabled
    // checks the answer against the host); here only its shape.
    assert!(linux["mountExtensions"]["idmap"]["enabled"].is_boolean());
    let a = &v["annotations"];
    assert_eq!(a["org.berth.version"], env!("CARGO_PKG_VERSION"));
    assert!(a["org.berth.commit"].is_string());
    assert!(a["org.berth.checkpoint.enabled"].is_string());
}
