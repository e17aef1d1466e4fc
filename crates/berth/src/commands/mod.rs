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

/// CVE-2019-5736: when the container needs it (`why`: a container process could
/// write the binary), berth re-executes itself from a protected image of its binary
/// (a read-only detached bind, or a sealed memfd copy: the library's `sealed_exe`),
/// before the verb has made, locked or written anything; the new program makes the
/// same decision, finds itself protected, and goes on. An image that cannot be made
/// fails the verb: the container is never run unprotected.
pub(crate) fn protect_binary(
    why: Option<berth_runtime::sealed_exe::Exposure>,
) -> anyhow::Result<()> {
    match why {
        None => Ok(()),
        Some(why) => Ok(berth_runtime::sealed_exe::run_protected(why)?),
    }
}
