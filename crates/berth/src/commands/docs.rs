//! `berth generate-docs DIR` (hidden): man pages (`berth.8`, `berth-<verb>.8`) and shell
//! completions (bash, zsh, fish) generated from the clap definitions.

use anyhow::Context;
use clap::CommandFactory;
use std::path::{Path, PathBuf};

/// `generate-docs <dir>`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// output directory (man pages go to DIR/man, completions to DIR/completions)
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// Writes every page and completion file.
pub fn run(args: Args) -> anyhow::Result<()> {
    let man = args.dir.join("man");
    let completions = args.dir.join("completions");
    for d in [&man, &completions] {
        std::fs::create_dir_all(d).with_context(|| format!("mkdir {}", d.display()))?;
    }
    let cmd = crate::cli::Cli::command().version(env!("CARGO_PKG_VERSION"));
    write_man(&man, "berth", cmd.clone())?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("berth-{}", sub.get_name());
        write_man(
            &man,
            &name,
            sub.clone()
                .name(clap::builder::Str::from(name.clone().leak() as &'static str)),
        )?;
    }
    for shell in [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
    ] {
        clap_complete::generate_to(shell, &mut cmd.clone(), "berth", &completions)
            .with_context(|| format!("write {shell} completion to {}", completions.display()))?;
    }
    Ok(())
}

fn write_man(dir: &Path, name: &str, cmd: clap::Command) -> anyhow::Result<()> {
    let path = dir.join(format!("{name}.8"));
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd)
        .section("8")
        .render(&mut buf)
        .with_context(|| format!("render {name}"))?;
    std::fs::write(&path, buf).with_context(|| format!("write {}", path.display()))
}
