//! `berth exec`: run a new process in a running container, from a process.json or from
//! inline arguments on top of the container's own process (runc's `getProcess`).

use crate::cli::Globals;
use crate::paths;
use anyhow::{anyhow, bail, Context};
use berth_runtime::{Console, Container, ExecOptions, Status};
use oci_spec::runtime::{Capability, LinuxCapabilities, Process};
use std::collections::HashSet;
use std::path::PathBuf;

/// The exit status of a failed `exec` (runc's `fatalWithCode(err, 255)`).
pub const EXEC_FAILED: i32 = 255;

/// `exec [flags] <container-id> <command> [args...]`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// path to an AF_UNIX socket which will receive a file descriptor referencing the
    /// master end of the console's pseudoterminal
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// current working directory in the container
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<String>,
    /// set environment variables
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// the pseudo-TTY's size as WIDTHxHEIGHT, e.g. 80x24 (sets process.consoleSize)
    #[arg(long, value_name = "WxH", value_parser = parse_console_size)]
    pub console_size: Option<(u64, u64)>,
    /// UID (format: <uid>[:<gid>])
    #[arg(short, long, value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// additional gids
    #[arg(short = 'g', long, value_name = "GID")]
    pub additional_gids: Vec<i64>,
    /// path to the process.json
    #[arg(short, long, value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// detach from the container's process
    #[arg(short, long)]
    pub detach: bool,
    /// specify the file to write the process id to
    #[arg(long, value_name = "PATH")]
    pub pid_file: Option<PathBuf>,
    /// set the asm process label for the process commonly used with selinux
    #[arg(long, value_name = "LABEL")]
    pub process_label: Option<String>,
    /// set the apparmor profile for the process
    #[arg(long, value_name = "PROFILE")]
    pub apparmor: Option<String>,
    /// set the no new privileges value for the process
    #[arg(long)]
    pub no_new_privs: bool,
    /// add a capability to the bounding set for the process
    #[arg(short, long, value_name = "CAP")]
    pub cap: Vec<String>,
    /// Pass N additional file descriptors to the container (stdio + N in total)
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,
    /// run the process in an (existing) sub-cgroup(s). Format is [<controller>:]<cgroup>.
    #[arg(long, value_name = "CGROUP")]
    pub cgroup: Vec<String>,
    /// allow exec in a paused container
    #[arg(long)]
    pub ignore_paused: bool,
    #[arg(value_name = "container-id")]
    pub id: String,
    /// the command and its arguments (unless --process is given)
    #[arg(
        value_name = "command",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

/// Returns the process's exit status (0 when detached); errors exit 255 as in runc.
pub fn run(globals: &Globals, args: Args) -> anyhow::Result<i32> {
    execute(globals, &args).context("exec failed")
}

fn execute(globals: &Globals, args: &Args) -> anyhow::Result<i32> {
    berth_runtime::validate_id(&args.id)?;
    let container = super::runtime(globals)?.load(&args.id)?;
    match container.status() {
        Status::Stopped => bail!("cannot exec in a stopped container"),
        Status::Paused if !args.ignore_paused => {
            bail!("cannot exec in a paused container (use --ignore-paused to override)")
        }
        _ => {}
    }
    if args.process.is_none() && args.command.is_empty() {
        bail!("process args cannot be empty");
    }
    // Before --process is read: the re-executed program reads it (from a pipe too).
    super::protect_binary(container.sealed_exe_for_exec())?;
    let mut process = process_of(&container, args)?;
    let terminal = process.terminal().unwrap_or(false);
    if let Some((width, height)) = args.console_size {
        if !terminal {
            bail!("--console-size needs a terminal (--tty, or terminal in the process)");
        }
        let size = oci_spec::runtime::BoxBuilder::default()
            .width(width)
            .height(height)
            .build()
            .map_err(|e| anyhow!("--console-size: {e}"))?;
        process.set_console_size(Some(size));
    }
    let abs = |p: &Option<PathBuf>, flag: &str| -> anyhow::Result<Option<PathBuf>> {
        p.as_deref()
            .map(|p| {
                paths::absolute(p)
                    .with_context(|| format!("can't convert --{flag} argument to absolute path"))
            })
            .transpose()
    };
    let mut options = ExecOptions {
        console: abs(&args.console_socket, "console-socket")?.map(Console::Socket),
        pid_file: abs(&args.pid_file, "pid-file")?,
        preserve_fds: args.preserve_fds + listen_fds(),
        ignore_paused: args.ignore_paused,
        sub_cgroups: args.cgroup.clone(),
        terminal_as_written: false,
        ..Default::default()
    };
    // runc's checkTerminal.
    if args.detach && terminal && options.console.is_none() {
        bail!("cannot allocate tty if runc will detach without setting console socket");
    }
    if (!args.detach || !terminal) && options.console.is_some() {
        bail!("cannot use console socket if runc will not detach or allocate tty");
    }
    let mut console = None;
    if terminal && !args.detach {
        // The process runs as soon as exec returns, before the bridge could touch its
        // terminal: the caller's size and untranslated output are set on the pty
        // before its master leaves (what runc's foreground exec -t gives the process).
        if process.console_size().is_none() {
            if let Some((rows, cols)) = crate::tty::host_size().filter(|&(r, c)| r > 0 && c > 0) {
                let size = oci_spec::runtime::BoxBuilder::default()
                    .width(u64::from(cols))
                    .height(u64::from(rows))
                    .build()
                    .map_err(|e| anyhow!("terminal size: {e}"))?;
                process.set_console_size(Some(size));
            }
        }
        options.terminal_as_written = true;
        let listener = crate::tty::Listener::new(&format!("exec-{}", args.id), true)?;
        options.console = Some(Console::Socket(listener.path().to_path_buf()));
        console = Some(listener);
    }
    let child = container.exec(&process, &options)?;
    if args.detach {
        return Ok(0);
    }
    crate::signals::forward_to(child.pid())?;
    let bridge = match console.as_mut() {
        Some(l) => Some(crate::tty::Bridge::start(l.master()?)?),
        None => None,
    };
    let status = child.wait()?;
    if let Some(b) = bridge {
        b.finish();
    }
    Ok(status.code())
}

/// `--console-size WxH`: (width, height), both positive.
fn parse_console_size(v: &str) -> Result<(u64, u64), String> {
    let bad = || format!("{v:?} is not WIDTHxHEIGHT (e.g. 80x24)");
    let (w, h) = v.split_once(['x', 'X']).ok_or_else(bad)?;
    let n = |s: &str| s.parse::<u16>().ok().filter(|&n| n > 0).ok_or_else(bad);
    Ok((u64::from(n(w)?), u64::from(n(h)?)))
}

/// `$LISTEN_FDS` counts toward the preserved fds as in runc.
fn listen_fds() -> u32 {
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The process to start: `--process FILE`, or the container's process with the
/// inline arguments and flags on top (runc's `getProcess`).
pub fn process_of(container: &Container, args: &Args) -> anyhow::Result<Process> {
    let own = container.config().process().as_ref();
    if let Some(path) = &args.process {
        let data = std::fs::read(path).with_context(|| format!("open {}", path.display()))?;
        let mut process = berth_runtime::process_from_json(&data)
            .with_context(|| format!("parse process {}", path.display()))?;
        if let Some(own) = own {
            inherit_container_defaults(&mut process, own);
        }
        validate(&process)?;
        return Ok(process);
    }
    let mut p = own
        .cloned()
        .ok_or_else(|| anyhow!("process property must not be empty"))?;
    p.set_args(Some(args.command.clone()));
    if let Some(cwd) = &args.cwd {
        p.set_cwd(PathBuf::from(cwd));
    }
    if let Some(profile) = &args.apparmor {
        p.set_apparmor_profile(Some(profile.clone()));
    }
    if let Some(label) = &args.process_label {
        p.set_selinux_label(Some(label.clone()));
    }
    if !args.cap.is_empty() {
        p.set_capabilities(Some(add_caps(p.capabilities().clone(), &args.cap)));
    }
    p.set_env(Some(merge_env(
        p.env().clone().unwrap_or_default(),
        &args.env,
    )));
    p.set_terminal(Some(args.tty));
    if args.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    let mut user = p.user().clone();
    if let Some(spec) = &args.user {
        let (uid, gid) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec.as_str(), None),
        };
        if let Some(g) = gid {
            let gid: u32 = g
                .parse()
                .map_err(|e| anyhow!("parsing {g} as int for gid failed: {e}"))?;
            user.set_gid(gid);
        }
        let uid: u32 = uid
            .parse()
            .map_err(|e| anyhow!("parsing {uid} as int for uid failed: {e}"))?;
        user.set_uid(uid);
    }
    if !args.additional_gids.is_empty() {
        let mut gids = user.additional_gids().clone().unwrap_or_default();
        for &g in &args.additional_gids {
            let g = u32::try_from(g)
                .map_err(|_| anyhow!("additional-gids must be a positive number {g}"))?;
            gids.push(g);
        }
        user.set_additional_gids(Some(gids));
    }
    p.set_user(user);
    validate(&p)?;
    Ok(p)
}

/// What a process.json leaves out that runc 1.1.5 takes from the container's own
/// process: the capabilities and the SELinux label (its newInitConfig falls back to
/// the container's config for these). Rlimits and the AppArmor profile are not
/// inherited: runc's container config does not hold them, so a process.json without
/// them gets none.
fn inherit_container_defaults(p: &mut Process, own: &Process) {
    if p.capabilities().is_none() {
        p.set_capabilities(own.capabilities().clone());
    }
    if p.selinux_label().as_ref().is_none_or(|l| l.is_empty()) {
        p.set_selinux_label(own.selinux_label().clone());
    }
}

/// runc's `validateProcessSpec`.
fn validate(p: &Process) -> anyhow::Result<()> {
    let cwd = p.cwd();
    if cwd.as_os_str().is_empty() {
        bail!("Cwd property must not be empty");
    }
    if !cwd.is_absolute() {
        bail!("Cwd must be an absolute path");
    }
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        bail!("args must not be empty");
    }
    if p.selinux_label().as_ref().is_some_and(|l| !l.is_empty())
        && !berth_runtime::selinux_enabled()
    {
        bail!("selinux label is specified in config, but selinux is disabled or not supported");
    }
    Ok(())
}

/// `--env` entries appended to the container's; a later entry for the same name wins
/// (as the environment runc's init builds with setenv).
fn merge_env(mut env: Vec<String>, extra: &[String]) -> Vec<String> {
    env.extend(extra.iter().cloned());
    let mut seen = HashSet::new();
    let mut out: Vec<String> = env
        .into_iter()
        .rev()
        .filter(|e| seen.insert(e.split_once('=').map_or(e.as_str(), |(k, _)| k).to_string()))
        .collect();
    out.reverse();
    out
}

/// `--cap`: added to the bounding, effective, permitted and ambient sets (runc 1.1.5
/// leaves the inheritable set alone). A name that is not a capability is skipped with
/// a warning, as runc ignores it ("ignoring unknown or unavailable capabilities").
fn add_caps(caps: Option<LinuxCapabilities>, extra: &[String]) -> LinuxCapabilities {
    let mut caps = caps.unwrap_or_else(|| {
        let empty = HashSet::new();
        let mut c = LinuxCapabilities::default();
        c.set_bounding(Some(empty.clone()))
            .set_effective(Some(empty.clone()))
            .set_permitted(Some(empty.clone()))
            .set_inheritable(Some(empty.clone()))
            .set_ambient(Some(empty));
        c
    });
    for name in extra {
        let full = if name.to_ascii_uppercase().starts_with("CAP_") {
            name.to_ascii_uppercase()
        } else {
            format!("CAP_{}", name.to_ascii_uppercase())
        };
        let Ok(cap) = serde_json::from_value::<Capability>(full.into()) else {
            tracing::warn!("exec --cap {name}: unknown capability, ignored");
            continue;
        };
        let add = |set: Option<HashSet<Capability>>| {
            let mut s = set.unwrap_or_default();
            s.insert(cap);
            Some(s)
        };
        caps.set_bounding(add(caps.bounding().clone()));
        caps.set_effective(add(caps.effective().clone()));
        caps.set_permitted(add(caps.permitted().clone()));
        caps.set_ambient(add(caps.ambient().clone()));
    }
    caps
}

#[cfg(test)]
mod tests {
    use super::{add_caps, inherit_container_defaults, merge_env, parse_console_size};
    use oci_spec::runtime::Capability;

    #[test]
    fn console_size_is_width_by_height() {
        assert_eq!(parse_console_size("110x10"), Ok((110, 10)));
        assert_eq!(parse_console_size("80X24"), Ok((80, 24)));
        for bad in ["", "80", "0x24", "80x", "x24", "80x24x1", "-1x5", "70000x5"] {
            assert!(parse_console_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn later_env_entries_win() {
        let env = merge_env(
            vec!["PATH=/bin".into(), "TERM=xterm".into()],
            &["A=1".into(), "PATH=/x".into()],
        );
        assert_eq!(env, ["TERM=xterm", "A=1", "PATH=/x"]);
    }

    #[test]
    fn unknown_caps_are_skipped() {
        let caps = add_caps(None, &["CAP_NOPE".into(), "net_admin".into()]);
        let bounding = caps.bounding().clone().unwrap_or_default();
        assert_eq!(bounding.len(), 1);
        assert!(bounding.contains(&Capability::NetAdmin));
    }

    #[test]
    fn process_json_takes_what_it_leaves_out_from_the_container() {
        let own: oci_spec::runtime::Process = serde_json::from_value(serde_json::json!({
            "user": {"uid": 0, "gid": 0}, "cwd": "/", "args": ["sh"],
            "capabilities": {"bounding": ["CAP_KILL"]},
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 10}],
            "apparmorProfile": "p"
        }))
        .unwrap();
        let mut p = berth_runtime::process_from_json(br#"{"args": ["true"], "cwd": "/"}"#).unwrap();
        inherit_container_defaults(&mut p, &own);
        assert_eq!(p.capabilities(), own.capabilities());
        assert_eq!(p.rlimits(), &None);
        assert_eq!(p.apparmor_profile(), &None);
        assert_eq!(p.no_new_privileges(), None);
    }
}
