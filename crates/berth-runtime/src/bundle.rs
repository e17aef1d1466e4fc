//! A bundle on disk: `config.json` loaded and checked, and the rootfs path resolved.

use crate::error::{Error, Result};
use oci_spec::runtime::Spec;
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
        crate::parse::drop_unknown_capabilities(&mut value, "process.capabilities");
        crate::parse::default_process_user(&mut value);
        let seccomp_wait_killable_recv = take_wait_killable_recv(&mut value);
        let spec: Spec = crate::parse::from_value(value)
            .map_err(|e| Error::Config(format!("{}: {e}", config.display())))?;
        crate::parse::check_hook_timeouts(spec.hooks().as_ref())?;
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
    use super::{check_version, take_wait_killable_recv};

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
    fn versions() {
        for ok in ["1.0.0", "1.2.0", "1.0.2-dev", "1.1.0+x"] {
            assert!(check_version(ok).is_ok(), "{ok}");
        }
        for bad in ["invalid", "", "1.0", "2.0.0", "1.a.0"] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
    }
}
