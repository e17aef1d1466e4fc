//! The `--version` text, in runc's layout.

/// `berth version X\ncommit: SHA\nspec: V\nrustc: V` (runc prints `go:` where berth
/// prints `rustc:`).
pub fn text() -> String {
    format!(
        "berth version {}\ncommit: {}\nspec: {}\nrustc: {}",
        env!("CARGO_PKG_VERSION"),
        env!("BERTH_COMMIT"),
        berth_runtime::OCI_VERSION,
        env!("BERTH_RUSTC_VERSION"),
    )
}
