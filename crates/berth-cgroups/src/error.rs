//! Errors of the cgroup layer.

use std::path::PathBuf;

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A cgroup operation that failed, with the path and the reason.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// File I/O on a cgroup file or directory failed.
    #[error("cgroup {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The request cannot be met on this host.
    #[error("cgroup: {0}")]
    Unsupported(String),
    /// A kernel file (mountinfo, /proc/self/cgroup, a cgroup file) did not parse.
    #[error("cgroup parse {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    /// `linux.cgroupsPath` (or a path derived from it) is not acceptable.
    #[error("cgroup path {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },
    /// A resource value is invalid or was refused by the kernel.
    #[error("cgroup set {path}: {reason}")]
    Resource { path: PathBuf, reason: String },
    /// A resource is set for a controller that this host has not mounted or enabled.
    #[error("cannot set {controller} limit: {reason}")]
    ControllerMissing { controller: String, reason: String },
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn missing(controller: &str) -> Self {
        Error::ControllerMissing {
            controller: controller.to_string(),
            reason: format!("the {controller} controller is not mounted on this host"),
        }
    }
}
