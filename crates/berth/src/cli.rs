//! The command line: runc's global flags, its verbs, and the dispatch that turns a
//! result into runc's exit status and error report.

use crate::commands;
use crate::logging::{self, LogFormat};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Global flags. As with runc they go before the verb (`berth --root R state ID`).
#[derive(Debug, Parser)]
#[command(
    name = "berth",
    about = "Open Container Initiative runtime",
    long_about = "berth is a command line client for running applications packaged \
according to the Open Container Initiative (OCI) format and is a compliant \
implementation of the Open Container Initiative specification, with runc's \
command line.",
    disable_version_flag = true
)]
pub struct Cli {
    /// enable debug logging
    #[arg(long)]
    pub debug: bool,
    /// set the log file to write berth logs to (default is '/dev/stderr')
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// set the log format ('text' (default), or 'json')
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
    pub log_format: LogFormat,
    /// root directory for storage of container state (this should be located in tmpfs)
    /// [default: /run/berth, or $XDG_RUNTIME_DIR/berth when rootless]
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// path to the criu binary used for checkpoint and restore
    #[arg(long, default_value = "criu", value_name = "PATH")]
    pub criu: String,
    /// enable systemd cgroup support, expects cgroupsPath to be of form
    /// "slice:prefix:name" for e.g. "system.slice:berth:434234"
    #[arg(long)]
    pub systemd_cgroup: bool,
    /// ignore cgroup permission errors ('true', 'false', or 'auto')
    #[arg(long, default_value = "auto", value_name = "VALUE", value_parser = parse_rootless)]
    pub rootless: Rootless,
    /// print the version
    #[arg(short = 'v', long)]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// runc's verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// checkpoint a running container
    Checkpoint(commands::checkpoint::CheckpointArgs),
    /// create a container
    Create(commands::create::Args),
    /// delete any resources held by the container often used with detached container
    Delete(commands::delete::Args),
    /// display container events such as OOM notifications, cpu, memory, and IO usage
    /// statistics
    Events(commands::events::Args),
    /// execute new process inside the container
    Exec(commands::exec::Args),
    /// show the enabled features
    Features(commands::features::Args),
    /// kill sends the specified signal (default: SIGTERM) to the container's init process
    Kill(commands::kill::Args),
    /// lists containers started by berth with the given root
    List(commands::list::Args),
    /// pause suspends all processes inside the container
    Pause(commands::pause::Args),
    /// ps displays the processes running inside a container
    Ps(commands::ps::Args),
    /// restore a container from a previous checkpoint
    Restore(commands::checkpoint::RestoreArgs),
    /// resumes all processes that have been previously paused
    Resume(commands::pause::Args),
    /// create and run a container
    Run(commands::run::Args),
    /// create a new specification file
    Spec(commands::spec::Args),
    /// executes the user defined process in a created container
    Start(commands::start::Args),
    /// output the state of a container
    State(commands::state::Args),
    /// update container resource constraints
    Update(commands::update::Args),
    /// write man pages and shell completions into a directory
    #[command(hide = true)]
    GenerateDocs(commands::docs::Args),
}

/// Global settings every command sees.
#[derive(Debug, Clone)]
pub struct Globals {
    /// `--root`, absolute.
    pub root: PathBuf,
    /// `--systemd-cgroup`: the systemd cgroup driver (cgroup v2 hosts).
    pub systemd_cgroup: bool,
    /// `--rootless` resolved (runc's auto rule): new containers get the rootless
    /// cgroup manager.
    pub rootless_cgroups: bool,
    /// `--criu`: the binary for checkpoint and restore.
    pub criu: String,
    /// `BERTH_TRACE` / `--debug`: the per-phase timing sink of create and start.
    pub trace: Option<(berth_runtime::TraceSink, crate::trace::Output)>,
}

/// `--rootless`: whether to ignore cgroup permission errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rootless {
    /// Decide from the environment (runc's default).
    Auto,
    /// Yes.
    True,
    /// No.
    False,
}

/// `--rootless` as runc reads it: `auto` (or empty), else Go's `strconv.ParseBool`.
fn parse_rootless(value: &str) -> Result<Rootless, String> {
    match value {
        "" => Ok(Rootless::Auto),
        v if v.eq_ignore_ascii_case("auto") => Ok(Rootless::Auto),
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(Rootless::True),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(Rootless::False),
        _ => Err("want 'true', 'false' or 'auto'".to_string()),
    }
}

/// Runs the parsed command line and returns the process exit status: 0, 1 on any
/// error, or the container's status for `run`.
pub fn run(cli: Cli, started: std::time::Duration) -> i32 {
    if cli.version {
        println!("{}", crate::version::text());
        return 0;
    }
    if let Err(e) = logging::init(cli.log.as_deref(), cli.log_format, cli.debug) {
        logging::fatal(&error_text(&e));
        return 1;
    }
    let Some(command) = cli.command else {
        use clap::CommandFactory;
        let _ = Cli::command().print_help();
        return 0;
    };
    let root = match cli
        .root
        .as_deref()
        .map_or_else(crate::rootless::default_root, crate::paths::absolute)
    {
        Ok(r) => r,
        Err(e) => {
            logging::fatal(&error_text(&e));
            return 1;
        }
    };
    let globals = Globals {
        root,
        systemd_cgroup: cli.systemd_cgroup,
        rootless_cgroups: crate::rootless::use_rootless_cgroups(cli.rootless, cli.systemd_cgroup),
        criu: cli.criu,
        trace: crate::trace::sink(cli.debug, started),
    };
    let result = match command {
        Command::Create(args) => commands::create::run(&globals, args).map(|()| 0),
        Command::Delete(args) => commands::delete::run(&globals, args).map(|()| 0),
        Command::Kill(args) => commands::kill::run(&globals, args).map(|()| 0),
        Command::List(args) => commands::list::run(&globals, args).map(|()| 0),
        Command::Run(args) => commands::run::run(&globals, args),
        Command::Spec(args) => commands::spec::run(args).map(|()| 0),
        Command::Start(args) => commands::start::run(&globals, args).map(|()| 0),
        Command::State(args) => commands::state::run(&globals, args).map(|()| 0),
        Command::Checkpoint(args) => commands::checkpoint::checkpoint(&globals, args).map(|()| 0),
        Command::Events(args) => commands::events::run(&globals, args).map(|()| 0),
        Command::Exec(args) => {
            return match commands::exec::run(&globals, args) {
                Ok(code) => code,
                Err(e) => {
                    logging::fatal(&error_text(&e));
                    commands::exec::EXEC_FAILED
                }
            }
        }
        Command::Features(args) => commands::features::run(&globals, args).map(|()| 0),
        Command::Pause(args) => commands::pause::pause(&globals, args).map(|()| 0),
        Command::Ps(args) => commands::ps::run(&globals, args).map(|()| 0),
        Command::Restore(args) => commands::checkpoint::restore(&globals, args),
        Command::Resume(args) => commands::pause::resume(&globals, args).map(|()| 0),
        Command::Update(args) => commands::update::run(&globals, args).map(|()| 0),
        Command::GenerateDocs(args) => commands::docs::run(args).map(|()| 0),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            logging::fatal(&error_text(&e));
            1
        }
    }
}

/// The error and its causes joined with ": " (Go's `%w` wrapping), leaving out a cause
/// whose text its parent already shows (the library's errors print their source).
pub fn error_text(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if text.ends_with(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::error_text;

    #[test]
    fn causes_are_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let err = anyhow::Error::new(io)
            .context("read /x: gone")
            .context("berth create failed");
        assert_eq!(error_text(&err), "berth create failed: read /x: gone");
    }
}
