//! What runc refuses before anything is made, for a user namespace and for a caller
//! that is not host root (runc's "rootless EUID" mode), with runc's messages:
//!
//! - a process user (uid or gid) the new user namespace does not map: the setuid in
//!   the init would fail later with a bare EINVAL (runc's setupUser, for any caller);
//! - rootless: no user namespace at all; a mount option `uid=N`/`gid=N` whose id the
//!   namespace does not map (the kernel would refuse the mount, or the files would
//!   belong to the overflow id); `additionalGids` (setgroups(2) is denied to an
//!   unprivileged mapping, and runc refuses it outright).
//!
//! A user namespace joined by path has its mappings in the kernel, not in the config:
//! its ids are left to the kernel.

use crate::error::{Error, Result};
use oci_spec::runtime::{Linux, LinuxIdMapping, LinuxNamespaceType, Spec, User};

/// The checks of a container's config (create).
pub(crate) fn check_spec(spec: &Spec, rootless_euid: bool) -> Result<()> {
    let linux = spec.linux().as_ref();
    if rootless_euid && !has_user_ns(linux) {
        return Err(Error::Config(
            "rootless container requires user namespaces".into(),
        ));
    }
    if let Some(user) = spec.process().as_ref().map(|p| p.user()) {
        check_user(user, linux, rootless_euid)?;
    }
    if rootless_euid {
        let (uids, gids) = mappings(linux);
        for m in spec.mounts().as_deref().unwrap_or_default() {
            for option in m.options().as_deref().unwrap_or_default() {
                for (key, maps) in [("uid", uids), ("gid", gids)] {
                    let Some(id) = option
                        .strip_prefix(key)
                        .and_then(|r| r.strip_prefix('='))
                        .and_then(|v| v.parse::<u32>().ok())
                    else {
                        continue;
                    };
                    if !maps.is_some_and(|maps| mapped(id, maps)) {
                        return Err(Error::Config(format!(
                            "cannot specify {key}={id} mount option for rootless container: \
                             user namespaces enabled, but no mapping found for {key} {id} \
                             (mount on {})",
                            m.destination().display()
                        )));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The checks of a process's user: the container's (create) or an exec'd one's.
pub(crate) fn check_user(user: &User, linux: Option<&Linux>, rootless_euid: bool) -> Result<()> {
    let (uids, gids) = mappings(linux);
    if let Some(uids) = uids.filter(|_| new_user_ns(linux)) {
        if !mapped(user.uid(), uids) {
            return Err(Error::Config(format!(
                "cannot set uid to unmapped user in user namespace (process.user.uid {})",
                user.uid()
            )));
        }
    }
    if let Some(gids) = gids.filter(|_| new_user_ns(linux)) {
        if !mapped(user.gid(), gids) {
            return Err(Error::Config(format!(
                "cannot set gid to unmapped user in user namespace (process.user.gid {})",
                user.gid()
            )));
        }
    }
    if rootless_euid
        && user
            .additional_gids()
            .as_ref()
            .is_some_and(|g| !g.is_empty())
    {
        return Err(Error::Config(
            "cannot set any additional groups in a rootless container (process.user.additionalGids)"
                .into(),
        ));
    }
    Ok(())
}

fn has_user_ns(linux: Option<&Linux>) -> bool {
    linux
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::User))
}

/// A user namespace the config makes (not one joined by path).
fn new_user_ns(linux: Option<&Linux>) -> bool {
    linux
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none())
        })
}

fn mappings(linux: Option<&Linux>) -> (Option<&[LinuxIdMapping]>, Option<&[LinuxIdMapping]>) {
    (
        linux.and_then(|l| l.uid_mappings().as_deref()),
        linux.and_then(|l| l.gid_mappings().as_deref()),
    )
}

/// Whether container id `id` lies in one of `maps`.
fn mapped(id: u32, maps: &[LinuxIdMapping]) -> bool {
    maps.iter().any(|m| {
        id >= m.container_id() && u64::from(id) < u64::from(m.container_id()) + u64::from(m.size())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: serde_json::Value) -> Spec {
        let mut v = serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}},
            "linux": {
                "namespaces": [{"type": "mount"}, {"type": "user"}],
                "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]
            }
        });
        json_merge(&mut v, extra);
        serde_json::from_value(v).unwrap()
    }

    fn json_merge(a: &mut serde_json::Value, b: serde_json::Value) {
        match (a, b) {
            (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                for (k, v) in b {
                    json_merge(a.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
            (a, b) => *a = b,
        }
    }

    fn err(s: &Spec, rootless: bool) -> String {
        check_spec(s, rootless).unwrap_err().to_string()
    }

    #[test]
    fn mapped_config_passes() {
        check_spec(&spec(serde_json::json!({})), true).unwrap();
        check_spec(&spec(serde_json::json!({})), false).unwrap();
    }

    #[test]
    fn unmapped_process_user_refused_for_any_caller() {
        let s = spec(serde_json::json!({"process": {"user": {"uid": 5, "gid": 0}}}));
        assert!(err(&s, false).contains("cannot set uid to unmapped user in user namespace"));
        let s = spec(serde_json::json!({"process": {"user": {"uid": 0, "gid": 7}}}));
        assert!(err(&s, false).contains("cannot set gid to unmapped user in user namespace"));
        // Joined by path: the kernel's mappings, not checked here.
        let s = spec(serde_json::json!({
            "process": {"user": {"uid": 5, "gid": 0}},
            "linux": {"namespaces": [{"type": "user", "path": "/proc/1/ns/user"}],
                      "uidMappings": null, "gidMappings": null}
        }));
        check_spec(&s, false).unwrap();
    }

    #[test]
    fn rootless_refusals() {
        let s = spec(
            serde_json::json!({"linux": {"namespaces": [{"type": "mount"}],
            "uidMappings": null, "gidMappings": null}}),
        );
        assert_eq!(
            err(&s, true),
            "config: rootless container requires user namespaces"
        );
        let s = spec(
            serde_json::json!({"mounts": [{"destination": "/t", "type": "tmpfs",
            "source": "tmpfs", "options": ["uid=5000", "gid=0", "uid=x"]}]}),
        );
        let e = err(&s, true);
        assert!(
            e.contains("cannot specify uid=5000 mount option for rootless container")
                && e.contains("/t"),
            "{e}"
        );
        // Root: the same mount is the kernel's business.
        check_spec(&s, false).unwrap();
        let s = spec(
            serde_json::json!({"process": {"user": {"uid": 0, "gid": 0, "additionalGids": [5]}}}),
        );
        assert!(err(&s, true).contains("cannot set any additional groups in a rootless container"));
        check_spec(&s, false).unwrap();
    }
}
