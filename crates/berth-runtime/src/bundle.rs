//! A bundle on disk: `config.json` loaded and checked, and the rootfs path resolved.

use crate::error::{Error, Result};
use oci_spec::runtime::Spec;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A loaded bundle.
#[derive(Debug)]
pub(crate) struct Bundle {
    /// Absolute bundle directory.
    pub dir: PathBuf,
    /// Absolute, canonical rootfs directory.
    pub rootfs: PathBuf,
    pub spec: Spec,
    /// `linux.seccomp.flags` has SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, which oci-spec
    /// 0.8.4 cannot parse: taken out of the JSON and carried here.
    pub seccomp_wait_killable_recv: bool,
}

impl Bundle {
    /// Loads `<dir>/config.json` and resolves `root.path` against the bundle.
    pub fn load(dir: &Path) -> Result<Self> {
        let bad = |reason: String| Error::Bundle {
            path: dir.to_path_buf(),
            reason,
        };
        let dir = std::fs::canonicalize(dir)
            .map_err(|e| bad(format!("cannot resolve bundle directory: {e}")))?;
        let config = dir.join("config.json");
        let data = std::fs::read(&config).map_err(|e| Error::io("read", &config, e))?;
        let mut value: serde_json::Value = serde_json::from_slice(&data)
            .map_err(|e| Error::Config(format!("{}: {e}", config.display())))?;
        drop_unknown_capabilities(&mut value);
        let seccomp_wait_killable_recv = take_wait_killable_recv(&mut value);
        let spec: Spec = serde_json::from_value(value.clone()).map_err(|e| {
            let located = locate_error(&value).unwrap_or_else(|| e.to_string());
            Error::Config(format!("{}: {located}", config.display()))
        })?;
        check_version(spec.version())?;
        let root = spec
            .root()
            .as_ref()
            .ok_or_else(|| Error::Config("root is missing".into()))?;
        let rootfs = dir.join(root.path());
        let rootfs =
            std::fs::canonicalize(&rootfs).map_err(|e| Error::io("resolve rootfs", &rootfs, e))?;
        if !rootfs.is_dir() {
            return Err(Error::Config(format!(
                "rootfs {} is not a directory",
                rootfs.display()
            )));
        }
        if spec
            .process()
            .as_ref()
            .is_some_and(|p| p.args().as_ref().is_none_or(|a| a.is_empty()))
        {
            return Err(Error::Config("process.args must not be empty".into()));
        }
        Ok(Bundle {
            dir,
            rootfs,
            spec,
            seccomp_wait_killable_recv,
        })
    }
}

/// Runtime spec 1.1: an unknown capability name is logged as a warning and skipped,
/// not a reason to fail. oci-spec refuses unknown names while parsing, so they are
/// taken out of the JSON first.
fn drop_unknown_capabilities(config: &mut serde_json::Value) {
    let Some(sets) = config
        .pointer_mut("/process/capabilities")
        .and_then(|c| c.as_object_mut())
    else {
        return;
    };
    for (set, names) in sets.iter_mut() {
        if let Some(list) = names.as_array_mut() {
            list.retain(|name| {
                let known =
                    serde_json::from_value::<oci_spec::runtime::Capability>(name.clone()).is_ok();
                if !known {
                    tracing::warn!(
                        "unknown capability {name} in process.capabilities.{set}: skipped"
                    );
                }
                known
            });
        }
    }
}

/// Removes SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV from `linux.seccomp.flags` (oci-spec
/// does not know the name) and says whether it was there.
fn take_wait_killable_recv(config: &mut Value) -> bool {
    const NAME: &str = "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV";
    let Some(flags) = config
        .pointer_mut("/linux/seccomp/flags")
        .and_then(Value::as_array_mut)
    else {
        return false;
    };
    let before = flags.len();
    flags.retain(|f| f.as_str() != Some(NAME));
    flags.len() != before
}

/// When config.json does not parse as a whole, finds the innermost known field that
/// does not parse on its own, so the one-line error names it
/// (`process.rlimits[1]: unknown variant "RLIMIT_TEST", expected one of ...`).
fn locate_error(config: &Value) -> Option<String> {
    use oci_spec::runtime as oci;
    fn one<T: DeserializeOwned>(config: &Value, pointer: &str) -> Option<String> {
        let v = config.pointer(pointer)?;
        let e = serde_json::from_value::<T>(v.clone()).err()?;
        Some(format!("{}: {e}", field_name(pointer)))
    }
    fn each<T: DeserializeOwned>(config: &Value, pointer: &str) -> Option<String> {
        let items = config.pointer(pointer)?.as_array()?;
        (0..items.len()).find_map(|i| one::<T>(config, &format!("{pointer}/{i}")))
    }
    let syscalls = config
        .pointer("/linux/seccomp/syscalls")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let seccomp_args = (0..syscalls).find_map(|i| {
        each::<oci::LinuxSeccompArg>(config, &format!("/linux/seccomp/syscalls/{i}/args"))
    });
    seccomp_args
        .or_else(|| each::<oci::LinuxSyscall>(config, "/linux/seccomp/syscalls"))
        .or_else(|| each::<oci::Arch>(config, "/linux/seccomp/architectures"))
        .or_else(|| each::<oci::LinuxSeccompFilterFlag>(config, "/linux/seccomp/flags"))
        .or_else(|| one::<oci::LinuxSeccompAction>(config, "/linux/seccomp/defaultAction"))
        .or_else(|| one::<oci::LinuxSeccomp>(config, "/linux/seccomp"))
        .or_else(|| each::<oci::PosixRlimit>(config, "/process/rlimits"))
        .or_else(|| one::<oci::LinuxCapabilities>(config, "/process/capabilities"))
        .or_else(|| one::<oci::User>(config, "/process/user"))
        .or_else(|| one::<oci::Scheduler>(config, "/process/scheduler"))
        .or_else(|| one::<oci::LinuxIOPriority>(config, "/process/ioPriority"))
        .or_else(|| one::<oci::ExecCPUAffinity>(config, "/process/execCPUAffinity"))
        .or_else(|| one::<oci::Process>(config, "/process"))
        .or_else(|| one::<oci::LinuxPersonality>(config, "/linux/personality"))
        .or_else(|| one::<oci::LinuxMemoryPolicy>(config, "/linux/memoryPolicy"))
        .or_else(|| each::<oci::LinuxNamespace>(config, "/linux/namespaces"))
        .or_else(|| one::<oci::LinuxResources>(config, "/linux/resources"))
        .or_else(|| one::<oci::Linux>(config, "/linux"))
        .or_else(|| each::<oci::Mount>(config, "/mounts"))
        .or_else(|| one::<oci::Hooks>(config, "/hooks"))
        .or_else(|| one::<oci::Root>(config, "/root"))
}

/// `/process/rlimits/1` as `process.rlimits[1]`.
fn field_name(pointer: &str) -> String {
    let mut out = String::new();
    for part in pointer.split('/').filter(|p| !p.is_empty()) {
        if part.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

/// `ociVersion` must be a semantic version of major version 1 (runtime spec:
/// "ociVersion (string, REQUIRED) MUST be in SemVer v2.0.0 format").
fn check_version(v: &str) -> Result<()> {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    let numeric = parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !numeric {
        return Err(Error::Config(format!(
            "ociVersion {v:?} is not a semantic version"
        )));
    }
    if parts[0] != "1" {
        return Err(Error::Config(format!(
            "ociVersion {v} is not supported (berth implements 1.x)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{check_version, drop_unknown_capabilities, locate_error, take_wait_killable_recv};

    #[test]
    fn wait_killable_recv_is_taken_out() {
        let mut v = serde_json::json!({"linux": {"seccomp": {"flags": [
            "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}}});
        assert!(take_wait_killable_recv(&mut v));
        assert_eq!(
            v["linux"]["seccomp"]["flags"],
            serde_json::json!(["SECCOMP_FILTER_FLAG_LOG"])
        );
        assert!(!take_wait_killable_recv(&mut v));
    }

    #[test]
    fn parse_errors_name_the_field() {
        for (config, field) in [
            (
                serde_json::json!({"process": {"rlimits": [
                    {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1},
                    {"type": "RLIMIT_TEST", "soft": 1, "hard": 1}]}}),
                "process.rlimits[1]: unknown variant `RLIMIT_TEST`",
            ),
            (
                serde_json::json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_NOPE"}}}),
                "linux.seccomp.defaultAction: unknown variant `SCMP_ACT_NOPE`",
            ),
            (
                serde_json::json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                                  "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_LIKE"}]}]}}}),
                "linux.seccomp.syscalls[0].args[0]: unknown variant `SCMP_CMP_LIKE`",
            ),
            (
                serde_json::json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
                    "architectures": ["SCMP_ARCH_PDP11"]}}}),
                "linux.seccomp.architectures[0]: unknown variant `SCMP_ARCH_PDP11`",
            ),
            (
                serde_json::json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{"names": "kill", "action": "SCMP_ACT_ALLOW"}]}}}),
                "linux.seccomp.syscalls[0]: invalid type",
            ),
        ] {
            let e = locate_error(&config).unwrap_or_default();
            assert!(e.starts_with(field), "{e}");
        }
    }

    #[test]
    fn unknown_capabilities_are_dropped() {
        let mut v = serde_json::json!({"process": {"capabilities": {
            "bounding": ["CAP_KILL", "CAP_TEST"], "ambient": ["CAP_NOPE"]}}});
        drop_unknown_capabilities(&mut v);
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
    fn versions() {
        for ok in ["1.0.0", "1.2.0", "1.0.2-dev", "1.1.0+x"] {
            assert!(check_version(ok).is_ok(), "{ok}");
        }
        for bad in ["invalid", "", "1.0", "2.0.0", "1.a.0"] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
    }
}
