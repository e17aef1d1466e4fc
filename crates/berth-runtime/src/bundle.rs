//! A bundle on disk: `config.json` loaded and checked, and the rootfs path resolved.

use crate::error::{Error, Result};
use oci_spec::runtime::Spec;
use std::path::{Path, PathBuf};

/// A loaded bundle.
#[derive(Debug)]
pub(crate) struct Bundle {
    /// Absolute bundle directory.
    pub dir: PathBuf,
    /// Absolute, canonical rootfs directory.
    pub rootfs: PathBuf,
    pub spec: Spec,
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
        let spec: Spec = serde_json::from_value(value)
            .map_err(|e| Error::Config(format!("{}: {e}", config.display())))?;
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
        Ok(Bundle { dir, rootfs, spec })
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
    use super::{check_version, drop_unknown_capabilities};

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
