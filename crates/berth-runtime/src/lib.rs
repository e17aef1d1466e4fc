//! berth-runtime: an OCI runtime as a library.
//!
//! [`Runtime`] holds the state directory (runc's `--root`) and hands out
//! [`Container`]s by id. Operations map one to one onto the OCI lifecycle:
//! [`Runtime::create`], [`Container::start`], [`Container::state`],
//! [`Container::kill`], [`Container::delete`]. Inputs are `oci-spec` types; every
//! failure is an [`Error`] naming the id, path or syscall and why. The library never
//! prints and never exits the process: the caller decides how to report.

mod bundle;
mod console;
mod container;
pub mod criu;
mod error;
mod exec;
mod features;
mod hooks;
mod id;
mod namespaces;
mod parse;
mod process;
pub mod rootfs;
mod runtime;
mod signal;
mod spawn;
mod spec;
mod state;
mod stats;
mod sysctl;
mod update;

pub use container::{Container, ExitStatus};
pub use error::{Error, Result};
pub use exec::{ExecOptions, ExecProcess};
pub use features::features;
pub use id::validate_id;
pub use parse::process_from_json;
pub use runtime::{CreateOptions, Runtime, DEFAULT_ROOT};
pub use signal::{parse_signal, KillSignal};
pub use spec::default_spec;
pub use state::{State, Status};
pub use stats::Stats;

/// The OCI runtime spec version berth implements.
pub const OCI_VERSION: &str = "1.2.0";
