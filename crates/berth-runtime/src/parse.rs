//! JSON text into oci-spec types, as runc reads it: an error names the JSON path of the
//! field that does not parse and why (`linux.devices[0].type: invalid type: ...`), and
//! what runc tolerates is accepted (unknown capability names are skipped with a
//! warning; a process without `user` runs as 0:0).

use crate::error::{Error, Result};
use oci_spec::runtime::{Capability, Hooks, Process};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Deserializes `value`; the error is one line, `<json path>: <reason>` (just the
/// reason when the document itself is wrong).
pub(crate) fn from_value<T: DeserializeOwned>(value: Value) -> std::result::Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let reason = e.inner().to_string();
        if path == "." || path == "?" {
            reason
        } else {
            format!("{path}: {reason}")
        }
    })
}

/// A process.json (`exec --process`): parsed with runc's defaults for what it leaves
/// out (runc decodes into a Go struct, so an absent field is its zero value): no
/// `user` is uid 0 and gid 0, no `cwd` is empty (which `exec` then refuses as runc
/// does). Unknown capability names are skipped with a warning.
pub fn process_from_json(data: &[u8]) -> Result<Process> {
    let mut value: Value =
        serde_json::from_slice(data).map_err(|e| Error::Config(format!("process.json: {e}")))?;
    let Some(object) = value.as_object_mut() else {
        return Err(Error::Config(
            "process.json: invalid type: want a JSON object".into(),
        ));
    };
    fill_absent(object, "user", || Value::Object(Default::default()));
    fill_absent(object, "cwd", || Value::String(String::new()));
    drop_unknown_capabilities(&mut value, "capabilities");
    from_value(value).map_err(|e| Error::Config(format!("process.json: {e}")))
}

/// config.json's `process` gets runc's default user, as process.json does.
pub(crate) fn default_process_user(config: &mut Value) {
    if let Some(process) = config.get_mut("process").and_then(Value::as_object_mut) {
        fill_absent(process, "user", || Value::Object(Default::default()));
    }
}

fn fill_absent(
    object: &mut serde_json::Map<String, Value>,
    key: &str,
    default: impl FnOnce() -> Value,
) {
    match object.get(key) {
        None | Some(Value::Null) => {
            object.insert(key.to_string(), default());
        }
        Some(_) => {}
    }
}

/// Runtime spec 1.1: an unknown capability name is logged as a warning and skipped,
/// not a reason to fail (runc: "ignoring unknown or unavailable capabilities").
/// oci-spec refuses unknown names while parsing, so they are taken out of the JSON
/// first. `at` is the JSON path of the capabilities object, for the warning.
pub(crate) fn drop_unknown_capabilities(process: &mut Value, at: &str) {
    let pointer = format!("/{}", at.replace('.', "/"));
    let Some(sets) = process
        .pointer_mut(&pointer)
        .and_then(|c| c.as_object_mut())
    else {
        return;
    };
    for (set, names) in sets.iter_mut() {
        if let Some(list) = names.as_array_mut() {
            list.retain(|name| {
                let known = serde_json::from_value::<Capability>(name.clone()).is_ok();
                if !known {
                    tracing::warn!("unknown capability {name} in {at}.{set}: skipped");
                }
                known
            });
        }
    }
}

/// Runtime spec: a hook's `timeout`, if set, must be greater than zero.
pub(crate) fn check_hook_timeouts(hooks: Option<&Hooks>) -> Result<()> {
    let Some(h) = hooks else { return Ok(()) };
    #[allow(deprecated)]
    let kinds = [
        ("prestart", h.prestart()),
        ("createRuntime", h.create_runtime()),
        ("createContainer", h.create_container()),
        ("startContainer", h.start_container()),
        ("poststart", h.poststart()),
        ("poststop", h.poststop()),
    ];
    for (kind, list) in kinds {
        for (i, hook) in list.iter().flatten().enumerate() {
            if let Some(t) = hook.timeout().filter(|&t| t <= 0) {
                return Err(Error::Config(format!(
                    "hooks.{kind}[{i}].timeout: {t} is not a positive number of seconds"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::Spec;
    use serde_json::json;

    fn spec_error(mut config: Value) -> String {
        let base = json!({"ociVersion": "1.0.2", "root": {"path": "rootfs"}});
        let (Some(c), Some(b)) = (config.as_object_mut(), base.as_object()) else {
            panic!("objects");
        };
        for (k, v) in b {
            c.entry(k.clone()).or_insert(v.clone());
        }
        from_value::<Spec>(config).unwrap_err()
    }

    #[test]
    fn errors_name_the_json_path() {
        let process = |p: Value| {
            let mut base = json!({"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}});
            for (k, v) in p.as_object().unwrap() {
                base[k] = v.clone();
            }
            json!({ "process": base })
        };
        for (config, want) in [
            (process(json!({"args": "sh"})), "process.args: invalid type"),
            (process(json!({"env": "A=1"})), "process.env: invalid type"),
            (json!({"mounts": {}}), "mounts: invalid type"),
            (
                json!({"linux": {"devices": [{"path": "/dev/x", "type": 5, "major": 1, "minor": 2}]}}),
                "linux.devices[0].type: invalid type",
            ),
            (
                json!({"linux": {"resources": {"cpu": {"quota": "x"}}}}),
                "linux.resources.cpu.quota: invalid type",
            ),
            (
                process(json!({"rlimits": [
                    {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1},
                    {"type": "RLIMIT_TEST", "soft": 1, "hard": 1}]})),
                "process.rlimits[1].type: unknown variant `RLIMIT_TEST`",
            ),
            (
                json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_NOPE"}}}),
                "linux.seccomp.defaultAction: unknown variant `SCMP_ACT_NOPE`",
            ),
            (
                json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                                  "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_LIKE"}]}]}}}),
                "linux.seccomp.syscalls[0].args[0].op: unknown variant `SCMP_CMP_LIKE`",
            ),
            (
                json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{"names": "kill", "action": "SCMP_ACT_ALLOW"}]}}}),
                "linux.seccomp.syscalls[0].names: invalid type",
            ),
            (
                json!({"hooks": {"prestart": [{"path": "/bin/true", "timeout": "5"}]}}),
                "hooks.prestart[0].timeout: invalid type",
            ),
            (json!({"ociVersion": 1}), "ociVersion: invalid type"),
        ] {
            let e = spec_error(config);
            assert!(e.starts_with(want), "{e:?} should start with {want:?}");
            assert!(!e.contains('\n'), "{e:?}");
        }
    }

    #[test]
    fn process_json_defaults() {
        let p = process_from_json(br#"{"args": ["sh"]}"#).unwrap();
        assert_eq!((p.user().uid(), p.user().gid()), (0, 0));
        assert!(p.cwd().as_os_str().is_empty());
        assert!(p.env().is_none() && p.capabilities().is_none());
        let p = process_from_json(
            br#"{"args": ["sh"], "cwd": "/", "user": null,
                 "capabilities": {"bounding": ["CAP_KILL", "CAP_NOPE"]}}"#,
        )
        .unwrap();
        let bounding = p
            .capabilities()
            .as_ref()
            .unwrap()
            .bounding()
            .clone()
            .unwrap();
        assert_eq!(bounding.len(), 1);
        let e = process_from_json(br#"{"args": "sh", "cwd": "/"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("process.json: args: invalid type"), "{e}");
        assert!(process_from_json(b"[]").is_err());
    }

    #[test]
    fn unknown_capabilities_are_dropped() {
        let mut v = json!({"process": {"capabilities": {
            "bounding": ["CAP_KILL", "CAP_TEST"], "ambient": ["CAP_NOPE"]}}});
        drop_unknown_capabilities(&mut v, "process.capabilities");
        assert_eq!(
            v["process"]["capabilities"]["bounding"],
            serde_json::json!(["CAP_KILL"])
        );
        assert_eq!(
            v["process"]["capabilities"]["ambient"],
            serde_json::json!([])
        );
    }

    #[test]
    fn hook_timeouts_must_be_positive() {
        let hooks = |t: i64| {
            from_value::<Hooks>(json!({"poststart": [
                {"path": "/bin/true", "timeout": 5},
                {"path": "/bin/true", "timeout": t}]}))
            .unwrap()
        };
        assert!(check_hook_timeouts(Some(&hooks(1))).is_ok());
        for t in [0, -3] {
            let e = check_hook_timeouts(Some(&hooks(t)))
                .unwrap_err()
                .to_string();
            assert!(e.contains("hooks.poststart[1].timeout"), "{e}");
        }
    }
}
