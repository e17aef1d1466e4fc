//! One module per verb: its flags (`Args`) and what it does (`run`).

pub mod checkpoint;
pub mod create;
pub mod delete;
pub mod docs;
pub mod events;
pub mod exec;
pub mod features;
pub mod kill;
pub mod list;
pub mod pause;
pub mod ps;
pub mod run;
pub mod spec;
pub mod start;
pub mod state;
pub mod update;

use crate::cli::Globals;
use berth_runtime::Runtime;

/// The library's entry point for `--root`.
pub(crate) fn runtime(globals: &Globals) -> anyhow::Result<Runtime> {
    Ok(Runtime::new(&globals.root)?
        .with_systemd_cgroup(globals.systemd_cgroup)
        .with_rootless_cgroups(globals.rootless_cgroups))
}
