//! `berth pause` and `berth resume`: freeze and thaw every process of a container.

use crate::cli::Globals;
use berth_runtime::Status;

/// `pause <container-id>` / `resume <container-id>`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(value_name = "container-id")]
    pub id: String,
}

/// Freezes a running (or created) container; runc's "container not running" otherwise.
pub fn pause(globals: &Globals, args: Args) -> anyhow::Result<()> {
    berth_runtime::validate_id(&args.id)?;
    let container = super::runtime(globals)?.load(&args.id)?;
    if !matches!(container.status(), Status::Running | Status::Created) {
        anyhow::bail!("container not running");
    }
    container.pause()?;
    Ok(())
}

/// Thaws a paused container; runc's "container not paused" otherwise.
pub fn resume(globals: &Globals, args: Args) -> anyhow::Result<()> {
    berth_runtime::validate_id(&args.id)?;
    let container = super::runtime(globals)?.load(&args.id)?;
    if container.status() != Status::Paused {
        anyhow::bail!("container not paused");
    }
    container.resume()?;
    Ok(())
}
