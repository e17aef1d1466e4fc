//! The `--version` text, in runc's layout.

/// `berth version X\ncommit: SHA\nspec: V\nrustc: V\nlibseccomp: V` (runc prints `go:`
/// where berth prints `rustc:`).
pub fn text() -> String {
    let mut text = format!(
        "berth version {}\ncommit: {}\nspec: {}\nrustc: {}",
        env!("CARGO_PKG_VERSION"),
        env!("BERTH_COMMIT"),
        berth_runtime::OCI_VERSION,
        env!("BERTH_RUSTC_VERSION"),
    );
    if let Some(v) = libseccomp_version() {
        text.push_str(&format!("\nlibseccomp: {v}"));
    }
    text
}

/// The libseccomp version berth runs with, as the features document reports it.
fn libseccomp_version() -> Option<String> {
    berth_runtime::features()
        .annotations()
        .as_ref()?
        .get("io.github.seccomp.libseccomp.version")
        .cloned()
}
