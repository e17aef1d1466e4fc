//! `berth state`: the OCI state document of one container.

use crate::cli::Globals;
use anyhow::Context;
use std::io::Write;

/// `state <container-id>`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(value_name = "container-id")]
    pub id: String,
}

/// Prints the state as runc does: indented by two spaces, no final newline.
pub fn run(globals: &Globals, args: Args) -> anyhow::Result<()> {
    berth_runtime::validate_id(&args.id)?;
    let container = super::runtime(globals)?.load(&args.id)?;
    let state = container.state()?;
    let text = serde_json::to_string_pretty(&state).context("serialize state")?;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("write state to stdout")?;
    Ok(())
}
