//! The default config.json of `berth spec`, matching `runc spec`.

use oci_spec::runtime::Spec;

/// runc's default spec: busybox-friendly `sh`, terminal on, the usual namespaces,
/// mounts, masked and readonly paths, and the default capability set.
pub fn default_spec() -> Spec {
    todo!("filled in by the CLI work")
}
