//! `berth start`: let a created container run its process.

use crate::cli::Globals;

/// `start <container-id>`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(value_name = "container-id")]
    pub id: String,
}

/// Starts the user process of a `created` container.
pub fn run(globals: &Globals, args: Args) -> anyhow::Result<()> {
    berth_runtime::validate_id(&args.id)?;
    let mut container = super::runtime(globals)?.load(&args.id)?;
    container.start_traced(globals.trace.as_ref().map(|(sink, _)| sink))?;
    crate::trace::report("start", &globals.trace);
    Ok(())
}
