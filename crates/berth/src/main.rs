//! berth: an OCI container runtime with runc's command line.

mod cli;
mod commands;
mod json_text;
mod logging;
mod paths;
mod signals;
mod tty;
mod version;

use clap::error::ErrorKind;
use clap::Parser;

fn main() {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // runc exits 1 on usage errors; help and version are successes.
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                _ => 1,
            };
            std::process::exit(code);
        }
    };
    std::process::exit(cli::run(cli));
}
