//! Errors of the cgroup layer.

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A cgroup operation that failed, with the path and the reason.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// File I/O on a cgroup file or directory failed.
    #[error("cgroup {op} {path}: {source}")]
    Io { op: &'static str, path: std::path::PathBuf, source: std::io::Error },
    /// The request cannot be met on this host.
    #[error("cgroup: {0}")]
    Unsupported(String),
}
