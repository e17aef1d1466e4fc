//! `berth delete`: remove a stopped (or, forced, any) container's resources.

use crate::cli::Globals;
use berth_runtime::Error;

/// `delete [--force] <container-id>`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Forcibly deletes the container if it is still running (uses SIGKILL)
    #[arg(short, long)]
    pub force: bool,
    #[arg(value_name = "container-id")]
    pub id: String,
}

/// Deletes the container. Like runc, a missing container's leftover directory (a
/// create that died before writing its state) is removed, and with `--force` a
/// missing container is not an error; neither is one whose state file is corrupt (its
/// directory is removed).
pub fn run(globals: &Globals, args: Args) -> anyhow::Result<()> {
    berth_runtime::validate_id(&args.id)?;
    let runtime = super::runtime(globals)?;
    match runtime.load(&args.id) {
        Ok(container) => match container.delete(args.force) {
            // A concurrent delete removed it while we waited for its lock: gone, as
            // `--force` asks.
            Err(Error::NotFound(_)) if args.force => Ok(()),
            r => Ok(r?),
        },
        Err(Error::NotFound(id)) => {
            // Never a recursive removal by path: a mount below (a restore's rootfs
            // bind) would be reached through.
            if let Err(e) = runtime.remove_leftover(&args.id) {
                eprintln!("{e}");
            }
            if args.force {
                Ok(())
            } else {
                Err(Error::NotFound(id).into())
            }
        }
        // A state file that cannot be read (truncated, corrupt) names nothing we can
        // trust: `--force` still removes the container's directory, so the id can be
        // used again, and says what it could not clean up.
        Err(e @ Error::State { .. }) if args.force => {
            let dir = runtime.root().join(&args.id);
            tracing::warn!("{e}; removing {} only", dir.display());
            Ok(runtime.remove_leftover(&args.id)?)
        }
        Err(e) => Err(e.into()),
    }
}
