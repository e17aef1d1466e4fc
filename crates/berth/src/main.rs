//! berth: an OCI container runtime with runc's command line.

mod cli;
mod commands;
mod json_text;
mod logging;
mod paths;
mod rootless;
mod signals;
mod trace;
mod tty;
mod version;

use clap::error::{ContextKind, ErrorKind};
use clap::Parser;

fn main() {
    let started = berth_runtime::TraceSink::now();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            if e.kind() == ErrorKind::UnknownArgument {
                // runc (urfave/cli over Go's flag package) words it this way; engines
                // show the last log line.
                if let Some(arg) = e.get(ContextKind::InvalidArg) {
                    let name = arg.to_string();
                    let name = name.split('=').next().unwrap_or_default();
                    let msg = format!(
                        "flag provided but not defined: -{}",
                        name.trim_start_matches('-')
                    );
                    eprintln!("Incorrect Usage: {msg}\n");
                    let _ = e.print();
                    logging::fatal(&msg);
                    std::process::exit(1);
                }
            }
            let _ = e.print();
            // runc exits 1 on usage errors; help and version are successes.
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                _ => 1,
            };
            std::process::exit(code);
        }
    };
    std::process::exit(cli::run(cli, started));
}
