//! berth-runtime: an OCI runtime as a library.
//!
//! [`Runtime`] holds the state directory (runc's `--root`) and hands out
//! [`Container`]s by id. Operations map one to one onto the OCI lifecycle:
//! [`Runtime::create`], [`Container::start`], [`Container::state`],
//! [`Container::kill`], [`Container::delete`]. Inputs are `oci-spec` types; every
//! failure is an [`Error`] naming the id, path or syscall and why. The library never
//! prints and never exits the process: the caller decides how to report.
//!
//! # Embedding
//!
//! A program links the library to run containers without the CLI: a spec held in
//! memory and a rootfs ([`SpecBundle`], [`Runtime::create_from_spec`]) or a bundle
//! directory ([`Runtime::create`]); the process's stdin, stdout and stderr as fds
//! ([`Stdio`]), or its pty master handed back ([`Console::InProcess`]); the exit
//! through a pidfd ([`WaitHandle`]: blocking, or readiness in an event loop) with the
//! OOM-kill fact ([`Exit`]). A [`Runtime`] is a value holding its state root and
//! nothing else: several, with different roots, can live in one process.
//!
//! ```no_run
//! use berth_runtime::{CreateOptions, Runtime, SpecBundle, Stdio};
//! use std::io::Read;
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let runtime = Runtime::new("/run/my-embedder")?;
//!     let mut spec = berth_runtime::default_spec();
//!     let mut process = spec.process().clone().unwrap_or_default();
//!     process.set_terminal(Some(false));
//!     process.set_args(Some(vec!["echo".into(), "hello".into()]));
//!     spec.set_process(Some(process));
//!
//!     // The container's stdout is a pipe; the library keeps no copy of our fds.
//!     let (mut out, out_w) = std::io::pipe()?;
//!     let options = CreateOptions {
//!         stdio: Stdio { stdout: Some(out_w.into()), ..Stdio::null()? },
//!         ..Default::default()
//!     };
//!     let mut c = runtime.create_from_spec(
//!         "hello",
//!         SpecBundle::new(spec, "/srv/busybox-rootfs"),
//!         &options,
//!     )?;
//!     drop(options);
//!     let exit = c.wait_handle()?;
//!     c.start()?;
//!     let mut text = String::new();
//!     out.read_to_string(&mut text)?;
//!     let exit = exit.wait()?;
//!     println!("{text:?} {:?} oom-killed: {}", exit.status, exit.oom_killed);
//!     c.delete(false)?;
//!     Ok(())
//! }
//! ```

// Every public item says what it is: the crate is read through its rustdoc.
#![warn(missing_docs)]

mod bundle;
mod check;
mod console;
mod container;
pub mod criu;
mod error;
mod exec;
mod features;
mod hooks;
mod id;
mod lock;
mod namespaces;
mod parse;
mod process;
mod resources_json;
pub mod rootfs;
mod runtime;
pub mod sealed_exe;
mod signal;
mod spawn;
mod spec;
mod state;
mod state_dir;
mod stats;
mod stdio;
mod sysctl;
pub mod trace;
mod update;
mod userns_checks;
mod wait;

/// The host uid whose systemd user manager a rootless `--systemd-cgroup` caller asks
/// (runc's `DetectUID`), when a session bus is there.
pub use berth_cgroups::user_manager_uid as systemd_user_manager_uid;
pub use bundle::{LoadedBundle, SpecBundle};
pub use check::{
    check_config, check_exec_process, check_mount, check_state_file, check_update, compile_seccomp,
};
pub use console::Console;
pub use container::{Container, ExitStatus};
pub use error::{Error, Result};
pub use exec::{ExecOptions, ExecProcess};
pub use features::features;
pub use id::validate_id;
pub use parse::process_from_json;
pub use resources_json::resources_from_json;
pub use runtime::{CreateOptions, Runtime, DEFAULT_ROOT};
pub use signal::{parse_signal, KillSignal};
pub use spec::default_spec;
pub use state::{State, Status};
pub use stats::Stats;
pub use stdio::Stdio;
pub use trace::{Phase, Role, Span, TraceSink};
pub use wait::{Exit, WaitHandle};

/// Is SELinux enabled on this host (selinuxfs mounted)? A process label can be
/// applied only then; runc's `exec` refuses a label without it.
pub fn selinux_enabled() -> bool {
    process::selinux_enabled()
}

/// The OCI runtime spec version berth implements.
pub const OCI_VERSION: &str = "1.2.0";
