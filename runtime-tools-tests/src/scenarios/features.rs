//! `features`: the runtime-spec features document parses and has the fields of the
//! spec's schema with the right types.

use crate::ctx::Ctx;
use crate::ensure;
use crate::verdict::{Res, Verdict};

pub fn features_document(c: &mut Ctx) -> Res {
    let out = c.must(&["features"])?;
    let v: serde_json::Value = serde_json::from_str(&out.stdout)
        .map_err(|e| Verdict::Fail(format!("features is not JSON: {e}")))?;
    ensure!(v["ociVersionMin"].is_string(), "ociVersionMin missing");
    ensure!(v["ociVersionMax"].is_string(), "ociVersionMax missing");
    let strings = |x: &serde_json::Value| {
        x.as_array()
            .is_some_and(|a| a.iter().all(|s| s.is_string()))
    };
    ensure!(strings(&v["hooks"]), "hooks is not a list of strings");
    ensure!(
        strings(&v["mountOptions"]),
        "mountOptions is not a list of strings"
    );
    let l = &v["linux"];
    ensure!(strings(&l["namespaces"]), "linux.namespaces");
    ensure!(strings(&l["capabilities"]), "linux.capabilities");
    for k in ["v1", "v2", "systemd", "systemdUser"] {
        ensure!(
            l["cgroup"][k].is_boolean(),
            "linux.cgroup.{k} is not a boolean"
        );
    }
    ensure!(
        l["seccomp"]["enabled"].is_boolean(),
        "linux.seccomp.enabled"
    );
    for k in [
        "actions",
        "operators",
        "archs",
        "knownFlags",
        "supportedFlags",
    ] {
        ensure!(
            strings(&l["seccomp"][k]),
            "linux.seccomp.{k} is not a list of strings"
        );
    }
    for k in ["apparmor", "selinux", "intelRdt"] {
        ensure!(
            l[k]["enabled"].is_boolean(),
            "linux.{k}.enabled is not a boolean"
        );
    }
    if !l["mountExtensions"].is_null() {
        ensure!(
            l["mountExtensions"]["idmap"]["enabled"].is_boolean(),
            "linux.mountExtensions.idmap.enabled"
        );
    }
    ensure!(
        v["annotations"]
            .as_object()
            .is_some_and(|a| a.values().all(|s| s.is_string())),
        "annotations is not a string map"
    );
    Ok(())
}
