//! The library's error type: each variant names what failed (id, path, syscall) and why.

use std::path::PathBuf;

/// Result with berth's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in berth-runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The container id is not acceptable.
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId {
        /// The id as given.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No container with that id.
    #[error("container {0} does not exist")]
    NotFound(String),
    /// The id is taken.
    #[error("container with id {0} already exists")]
    AlreadyExists(String),
    /// The operation does not fit the container's current status.
    #[error("container {id} is {status}: {reason}")]
    BadStatus {
        /// The container's id.
        id: String,
        /// Its status now (`created`, `running`, ...).
        status: String,
        /// Why the operation needs another.
        reason: String,
    },
    /// The bundle or its config.json is unusable.
    #[error("bundle {path}: {reason}")]
    Bundle {
        /// The bundle directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// config.json asks for something invalid or unsupported.
    #[error("config: {0}")]
    Config(String),
    /// A signal name or number was not understood.
    #[error("invalid signal {0:?}")]
    InvalidSignal(String),
    /// A system call failed.
    #[error("{call} {target}: {errno}")]
    Sys {
        /// The system call (or step) that failed.
        call: &'static str,
        /// What it was applied to (a path, pid or container).
        target: String,
        /// The kernel's error.
        errno: nix::Error,
    },
    /// File I/O failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// The operation (read, write, create ...).
        op: &'static str,
        /// The file it was applied to.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The container init reported a failure during setup.
    #[error("container init: {0}")]
    Init(String),
    /// A hook failed. The words "error running hook" are runc's, which engines and
    /// runc's tests look for.
    #[error("error running hook: {kind} hook {path}: {reason}")]
    Hook {
        /// The hook's kind (prestart, createRuntime, poststart ...).
        kind: &'static str,
        /// The hook's program.
        path: PathBuf,
        /// How it failed (exit status, signal, timeout).
        reason: String,
    },
    /// A cgroup operation failed.
    #[error(transparent)]
    Cgroup(#[from] berth_cgroups::Error),
    /// CRIU (checkpoint, restore) failed or cannot work here.
    #[error("criu {op}: {reason}")]
    Criu {
        /// checkpoint or restore (or the check before them).
        op: &'static str,
        /// What went wrong, with CRIU's own log lines when there are some.
        reason: String,
    },
    /// The container's cgroup exists already in a state it cannot be used in.
    #[error("cgroup {path}: {reason}")]
    CgroupInUse {
        /// The cgroup's path.
        path: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// `exec --cgroup` names a sub-cgroup that cannot be joined.
    #[error("{0}")]
    SubCgroup(String),
    /// A process's exit status was asked for by a process that is not its parent
    /// (only the caller of `create` or `exec` can collect it).
    #[error(
        "{what} (pid {pid}) is not a child of this process: its exit status cannot be collected"
    )]
    NotChild {
        /// The process's host pid.
        pid: i32,
        /// Which process (e.g. "init of container x").
        what: String,
    },
    /// The state file is unreadable.
    #[error("state of container {id}: {reason}")]
    State {
        /// The container's id.
        id: String,
        /// Why the state cannot be read.
        reason: String,
    },
    /// The runtime could not run from a protected image of its binary (a read-only
    /// bind or a sealed copy), which the container needs (CVE-2019-5736, see
    /// [`crate::sealed_exe`]).
    #[error("run from a protected image of the runtime binary: {step}: {errno}")]
    SealedExe {
        /// The step that failed (`open /proc/self/exe`, `memfd_create`, ...).
        step: &'static str,
        /// The kernel's error.
        errno: nix::Error,
    },
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
