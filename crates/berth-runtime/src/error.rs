//! The library's error type: each variant names what failed (id, path, syscall) and why.

use std::path::PathBuf;

/// Result with berth's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in berth-runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The container id is not acceptable.
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId { id: String, reason: &'static str },
    /// No container with that id.
    #[error("container {0} does not exist")]
    NotFound(String),
    /// The id is taken.
    #[error("container with id {0} already exists")]
    AlreadyExists(String),
    /// The operation does not fit the container's current status.
    #[error("container {id} is {status}: {reason}")]
    BadStatus {
        id: String,
        status: String,
        reason: String,
    },
    /// The bundle or its config.json is unusable.
    #[error("bundle {path}: {reason}")]
    Bundle { path: PathBuf, reason: String },
    /// config.json asks for something invalid or unsupported.
    #[error("config: {0}")]
    Config(String),
    /// A signal name or number was not understood.
    #[error("invalid signal {0:?}")]
    InvalidSignal(String),
    /// A system call failed.
    #[error("{call} {target}: {errno}")]
    Sys {
        call: &'static str,
        target: String,
        errno: nix::Error,
    },
    /// File I/O failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The container init reported a failure during setup.
    #[error("container init: {0}")]
    Init(String),
    /// A hook failed. The words "error running hook" are runc's, which engines and
    /// runc's tests look for.
    #[error("error running hook: {kind} hook {path}: {reason}")]
    Hook {
        kind: &'static str,
        path: PathBuf,
        reason: String,
    },
    /// A cgroup operation failed.
    #[error(transparent)]
    Cgroup(#[from] berth_cgroups::Error),
    /// CRIU (checkpoint, restore) failed or cannot work here.
    #[error("criu {op}: {reason}")]
    Criu { op: &'static str, reason: String },
    /// The container's cgroup exists already in a state it cannot be used in.
    #[error("cgroup {path}: {reason}")]
    CgroupInUse { path: String, reason: String },
    /// `exec --cgroup` names a sub-cgroup that cannot be joined.
    #[error("{0}")]
    SubCgroup(String),
    /// The state file is unreadable.
    #[error("state of container {id}: {reason}")]
    State { id: String, reason: String },
}

/// An I/O error's reason as runc prints it: the C library's words in lower case,
/// without Rust's "(os error N)" suffix (scripts match on `no such file`).
pub(crate) fn os_reason(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => {
            let d = nix::errno::Errno::from_raw(n).desc();
            let mut c = d.chars();
            match c.next() {
                Some(f) => f.to_lowercase().chain(c).collect(),
                None => e.to_string(),
            }
        }
        None => e.to_string(),
    }
}

impl Error {
    /// Shorthand for a failed syscall on a target (path, pid, fd description).
    pub(crate) fn sys(
        call: &'static str,
        target: impl std::fmt::Display,
        errno: nix::Error,
    ) -> Self {
        Error::Sys {
            call,
            target: target.to_string(),
            errno,
        }
    }

    /// An error a child (intermediate, init, exec'd process) sent as text: its own
    /// "container init: " prefix is not repeated.
    pub(crate) fn from_child(text: String) -> Self {
        match text.strip_prefix("container init: ") {
            Some(rest) => Error::Init(rest.to_string()),
            None => Error::Init(text),
        }
    }

    /// Shorthand for failed file I/O.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
