//! `containerd-shim-berth-v2`: the shim containerd starts for a runtime named
//! `io.containerd.berth.v2`. It serves containerd's task API (v2, over ttrpc) and runs
//! every OCI operation in-process through berth-runtime: no runtime binary is exec'd,
//! the container's init and exec'd processes are this shim's own children, and their
//! exits come through pidfds.
//!
//! The command line, the `start` / `delete` actions and the ttrpc server come from
//! containerd's Rust shim crate (`containerd-shim`); this crate holds the task service.
//! One shim serves every container of a Kubernetes pod (the sandbox annotation), as
//! containerd-shim-runc-v2 does.

mod errors;
mod events;
mod io;
mod metrics;
mod mounts;
mod options;
mod process;
mod reaper;
mod runtime_options;
mod service;
mod shim;
mod task;

/// The name containerd knows this runtime by.
const RUNTIME_ID: &str = "io.containerd.berth.v2";

fn main() {
    // The crate's own reaper waits for any child (waitpid(-1)) on SIGCHLD, which
    // would take the init's and exec'd processes' exit statuses from their pidfd
    // waiters: this shim reaps only the orphans it does not track (reaper.rs).
    let config = containerd_shim::Config {
        no_reaper: true,
        ..Default::default()
    };
    containerd_shim::run::<shim::BerthShim>(RUNTIME_ID, Some(config));
}
