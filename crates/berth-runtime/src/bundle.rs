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
    /// `uidMappings`/`gidMappings` of each entry of `mounts` (runtime-spec 1.1), which
    /// oci-spec 0.8.4's `Mount` lacks: read from the JSON, by index.
    pub mount_id_mappings: Vec<Option<crate::rootfs::MountIdMappings>>,
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
        let parsed = ParsedConfig::parse(&data, &config.display().to_string())?;
        let rootfs = dir.join(parsed.rootfs_path()?);
        let mut bundle = Bundle::checked(dir, &rootfs, parsed.spec)?;
        bundle.seccomp_wait_killable_recv = parsed.seccomp_wait_killable_recv;
        bundle.mount_id_mappings = parsed.mount_id_mappings;
        Ok(bundle)
    }

    /// The rest of what every bundle must satisfy, however it was given (after
    /// [`check_spec`]): a rootfs directory (resolved to its canonical path) and
    /// process args.
    fn checked(dir: PathBuf, rootfs: &Path, spec: Spec) -> Result<Self> {
        let rootfs =
            std::fs::canonicalize(rootfs).map_err(|e| Error::io("resolve rootfs", rootfs, e))?;
        if !rootfs.is_dir() {
            return Err(Error::Config(format!(
                "rootfs {} is not a directory",
                rootfs.display()
            )));
        }
        check_args(&spec)?;
        Ok(Bundle {
            dir,
            rootfs,
            spec,
            seccomp_wait_killable_recv: false,
            mount_id_mappings: Vec::new(),
        })
    }
}

/// A bundle directory read and checked (config.json parsed, the rootfs resolved), for
/// [`crate::Runtime::create_loaded`]: [`crate::Runtime::create`] in two steps, so that
/// the caller can look at the spec in between (e.g. [`crate::sealed_exe::for_create`])
/// without reading the config twice.
#[derive(Debug)]
pub struct LoadedBundle(pub(crate) Bundle);

impl LoadedBundle {
    /// Reads and checks the bundle directory `dir` (`config.json` and the rootfs it
    /// names) as [`crate::Runtime::create`] does first; makes and writes nothing. The
    /// time it takes is recorded in `trace` (phase `parse`) when given.
    pub fn load(dir: &Path, trace: Option<&crate::TraceSink>) -> Result<Self> {
        crate::trace::timed(trace, crate::Phase::Parse, || {
            Bundle::load(dir).map(LoadedBundle)
        })
    }

    /// The spec as config.json gives it.
    pub fn spec(&self) -> &Spec {
        &self.0.spec
    }

    /// The bundle directory (absolute, canonical).
    pub fn dir(&self) -> &Path {
        &self.0.dir
    }
}

/// A bundle held in memory: a spec and the rootfs it runs in, for
/// [`crate::Runtime::create_from_spec`] (no config.json is read).
///
/// `root.path` of the spec is ignored: the rootfs given here is used (and recorded
/// in the spec the container keeps). Relative bind mount sources are resolved
/// against [`SpecBundle::with_bundle_dir`]'s directory, and refused without one.
#[derive(Debug, Clone)]
pub struct SpecBundle {
    spec: Spec,
    rootfs: PathBuf,
    bundle_dir: Option<PathBuf>,
    mount_id_mappings: Vec<Option<crate::rootfs::MountIdMappings>>,
}

impl SpecBundle {
    /// `spec` with `rootfs` (absolute, or relative to the caller's working directory)
    /// as the container's root filesystem.
    pub fn new(spec: Spec, rootfs: impl Into<PathBuf>) -> Self {
        SpecBundle {
            spec,
            rootfs: rootfs.into(),
            bundle_dir: None,
            mount_id_mappings: Vec::new(),
        }
    }

    /// The `uidMappings`/`gidMappings` of each entry of the spec's `mounts`, by index
    /// (`None` for a mount without): oci-spec's `Mount` cannot carry them.
    pub fn with_mount_id_mappings(
        mut self,
        mappings: Vec<Option<crate::rootfs::MountIdMappings>>,
    ) -> Self {
        self.mount_id_mappings = mappings;
        self
    }

    /// The directory to record as the container's bundle (the state's `bundle`,
    /// what hooks are told, and where relative bind sources are found). The library
    /// writes nothing there.
    pub fn with_bundle_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.bundle_dir = Some(dir.into());
        self
    }

    /// The bundle directory set with [`SpecBundle::with_bundle_dir`].
    pub fn bundle_dir(&self) -> Option<&Path> {
        self.bundle_dir.as_deref()
    }

    /// The checked bundle; `state_dir` is the bundle when none was given.
    pub(crate) fn into_bundle(self, state_dir: &Path) -> Result<Bundle> {
        let SpecBundle {
            spec,
            rootfs,
            bundle_dir,
            mount_id_mappings,
        } = self;
        let dir = match bundle_dir {
            Some(d) => std::path::absolute(&d).map_err(|e| Error::Bundle {
                path: d.clone(),
                reason: format!("cannot resolve bundle directory: {e}"),
            })?,
            None => {
                if let Some(m) = spec.mounts().iter().flatten().find(|m| {
                    crate::rootfs::is_bind(m)
                        && m.source().as_ref().is_some_and(|s| s.is_relative())
                }) {
                    return Err(Error::Config(format!(
                        "mount {}: a relative bind source needs a bundle directory",
                        m.destination().display()
                    )));
                }
                state_dir.to_path_buf()
            }
        };
        check_spec(&spec)?;
        let mut bundle = Bundle::checked(dir, &rootfs, spec)?;
        bundle.mount_id_mappings = mount_id_mappings;
        // The spec the container keeps names its real rootfs, so that later steps
        // (checkpoint's root, hooks reading config.json) need no bundle to resolve it.
        let mut root = bundle.spec.root().clone().unwrap_or_default();
        root.set_path(bundle.rootfs.clone());
        bundle.spec.set_root(Some(root));
        Ok(bundle)
    }
}

/// A config.json's text parsed as `create` reads it, before the bundle directory or
/// the rootfs is looked at.
#[derive(Debug)]
pub(crate) struct ParsedConfig {
    pub spec: Spec,
    /// See [`Bundle::seccomp_wait_killable_recv`].
    pub seccomp_wait_killable_recv: bool,
    /// See [`Bundle::mount_id_mappings`].
    pub mount_id_mappings: Vec<Option<crate::rootfs::MountIdMappings>>,
}

impl ParsedConfig {
    /// Parses and checks config.json's text; `name` (the file's path) starts every
    /// parse error.
    pub fn parse(data: &[u8], name: &str) -> Result<Self> {
        let mut value: serde_json::Value =
            serde_json::from_slice(data).map_err(|e| Error::Config(format!("{name}: {e}")))?;
        crate::parse::drop_unknown_capabilities(&mut value, "process.capabilities");
        crate::parse::default_process_user(&mut value);
        let seccomp_wait_killable_recv = take_wait_killable_recv(&mut value);
        let mount_id_mappings = crate::rootfs::mount_id_mappings(&value)
            .map_err(|e| Error::Config(format!("{name}: {e}")))?;
        let spec: Spec =
            crate::parse::from_value(value).map_err(|e| Error::Config(format!("{name}: {e}")))?;
        check_spec(&spec)?;
        Ok(ParsedConfig {
            spec,
            seccomp_wait_killable_recv,
            mount_id_mappings,
        })
    }

    /// `root.path`, which config.json must have.
    pub fn rootfs_path(&self) -> Result<&Path> {
        self.spec
            .root()
            .as_ref()
            .map(|r| r.path().as_path())
            .ok_or_else(|| Error::Config("root is missing".into()))
    }
}

/// `process.args`, when there is a process, must name a program.
pub(crate) fn check_args(spec: &Spec) -> Result<()> {
    if spec
        .process()
        .as_ref()
        .is_some_and(|p| p.args().as_ref().is_none_or(|a| a.is_empty()))
    {
        return Err(Error::Config("process.args must not be empty".into()));
    }
    Ok(())
}

/// The spec's own checks, before its rootfs is looked at: hook timeouts and a
/// supported version.
fn check_spec(spec: &Spec) -> Result<()> {
    crate::parse::check_hook_timeouts(spec.hooks().as_ref())?;
    check_version(spec.version())
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
