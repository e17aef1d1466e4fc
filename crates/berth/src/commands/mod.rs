//! One module per verb: its flags (`Args`) and what it does (`run`).

pub mod create;
pub mod delete;
pub mod kill;
pub mod list;
pub mod run;
pub mod spec;
pub mod start;
pub mod state;

use crate::cli::Globals;
use berth_runtime::Runtime;

/// The library's entry point for `--root`.
pub(crate) fn runtime(globals: &Globals) -> anyhow::Result<Runtime> {
    Ok(Runtime::new(&globals.root)?)
}
