//! The runtime options containerd passes at create (the runc shim's
//! `containerd.runc.v1.Options`, when a client sets them; containerd 1.6's CRI plugin
//! and `ctr` build that type for `io.containerd.runc.*` runtimes only, so under them
//! the shim runs on the defaults: docs/integration.md), and where the shim keeps them
//! for its `delete` action, which runs in a new process after a crash: `options.json`
//! in the bundle, as the runc shim does.

use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::Message;
use containerd_shim::protos::shim::oci::Options;
use std::path::{Path, PathBuf};

/// Where container state goes without a `Root` option: berth's own directory beside
/// the runc shim's /run/containerd/runc, one subdirectory per containerd namespace.
pub const DEFAULT_ROOT: &str = "/run/containerd/berth";

/// Decodes the options of a create request; none (or another runtime's type) gives
/// the defaults.
pub fn from_any(any: Option<&Any>) -> Result<Options, String> {
    match any {
        Some(a) if a.type_url.ends_with("containerd.runc.v1.Options") => {
            Options::parse_from_bytes(&a.value)
                .map_err(|e| format!("runtime options {}: {e}", a.type_url))
        }
        _ => Ok(Options::default()),
    }
}

/// The state root for namespace `ns` under `options`.
pub fn root(options: &Options, ns: &str) -> PathBuf {
    let base = if options.root.is_empty() {
        DEFAULT_ROOT
    } else {
        &options.root
    };
    Path::new(base).join(ns)
}

/// Saves `options` in `bundle` for the `delete` action.
pub fn save(bundle: &Path, options: &Options) -> Result<(), String> {
    let b = bundle.to_str().ok_or("bundle path is not UTF-8")?;
    containerd_shim::synchronous::util::write_options(b, options)
        .map_err(|e| format!("write options.json in {}: {e}", bundle.display()))
}

/// The options saved in `bundle`; the defaults if none were saved.
pub fn load(bundle: &Path) -> Options {
    containerd_shim::synchronous::util::read_options(bundle).unwrap_or_default()
}
