//! `berth kill`: send a signal to the container's init (or all its processes).

use crate::cli::Globals;

/// `kill [--all] <container-id> [signal]`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// send the specified signal to all processes inside the container
    #[arg(short, long)]
    pub all: bool,
    #[arg(value_name = "container-id")]
    pub id: String,
    /// signal name (`KILL`, `SIGKILL`) or number; default SIGTERM
    #[arg(value_name = "signal")]
    pub signal: Option<String>,
}

/// Loads the container first, then parses the signal (runc's order: a missing
/// container is reported before a bad signal).
pub fn run(globals: &Globals, args: Args) -> anyhow::Result<()> {
    berth_runtime::validate_id(&args.id)?;
    let container = super::runtime(globals)?.load(&args.id)?;
    let signal = berth_runtime::parse_signal(args.signal.as_deref().unwrap_or("SIGTERM"))?;
    container.kill(signal, args.all)?;
    Ok(())
}
