//! `berth run`: create and start a container; unless detached, wait for it, forward
//! signals to it, delete it, and exit with its status.

use super::create::CreateFlags;
use crate::cli::Globals;
use anyhow::Context;

/// `run [flags] <container-id>`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub flags: CreateFlags,
    /// detach from the container's process
    #[arg(short, long)]
    pub detach: bool,
    /// do not delete the container after it exits
    #[arg(long)]
    pub keep: bool,
    /// disable the use of the subreaper used to reap reparented processes
    #[arg(long)]
    pub no_subreaper: bool,
    #[arg(value_name = "container-id")]
    pub id: String,
}

/// Returns the exit status for berth: 0 when detached, otherwise the container's
/// (its exit code, or 128 + the signal that killed it).
pub fn run(globals: &Globals, args: Args) -> anyhow::Result<i32> {
    run_container(globals, &args).context("berth run failed")
}

fn run_container(globals: &Globals, args: &Args) -> anyhow::Result<i32> {
    berth_runtime::validate_id(&args.id)?;
    let (bundle, mut options) = args.flags.resolve()?;
    options.trace = globals.trace.as_ref().map(|(sink, _)| sink.clone());
    let loaded = berth_runtime::LoadedBundle::load(&bundle, options.trace.as_ref())?;
    super::protect_binary(berth_runtime::sealed_exe::for_create(loaded.spec()))?;
    // As runc's `run`, work in the bundle (every path argument is absolute by now): the
    // poststop hooks this process runs when the container exits then start there, as
    // they do under runc.
    std::env::set_current_dir(&bundle).with_context(|| format!("chdir {}", bundle.display()))?;
    // A terminal in the foreground without a console socket: berth bridges it.
    let mut console = None;
    if !args.detach && options.console.is_none() && crate::tty::wants_terminal(&bundle) {
        let keep_size = crate::tty::has_console_size(&bundle);
        let listener = crate::tty::Listener::new(&args.id, keep_size)?;
        options.console = Some(berth_runtime::Console::Socket(
            listener.path().to_path_buf(),
        ));
        console = Some(listener);
    }
    if !args.detach && !args.no_subreaper {
        // Processes the container leaves behind are reparented to berth, not to a
        // PID 1 that may reap late.
        nix::sys::prctl::set_child_subreaper(true)
            .map_err(|e| anyhow::anyhow!("prctl PR_SET_CHILD_SUBREAPER: {e}"))?;
    }
    let runtime = super::runtime(globals)?;
    let mut container = runtime.create_loaded(&args.id, loaded, &options)?;
    if !args.detach {
        // After create: the init must not inherit the blocked signal mask.
        if let Err(e) = crate::signals::forward_to(container.pid()) {
            return Err(destroy_after(container, e));
        }
    }
    let bridge = match console
        .as_mut()
        .map(|l| l.master().and_then(crate::tty::Bridge::start))
    {
        Some(Err(e)) => return Err(destroy_after(container, e)),
        Some(Ok(b)) => Some(b),
        None => None,
    };
    if let Err(e) = container.start_traced(globals.trace.as_ref().map(|(sink, _)| sink)) {
        return Err(destroy_after(container, e.into()));
    }
    crate::trace::report("run", &globals.trace);
    if args.detach {
        return Ok(0);
    }
    let status = container.wait()?;
    if let Some(b) = bridge {
        b.finish();
    }
    if !args.keep {
        container.delete(true)?;
    }
    Ok(status.code())
}

/// Removes a container that could not be started, keeping the first error.
fn destroy_after(container: berth_runtime::Container, err: anyhow::Error) -> anyhow::Error {
    let id = container.id().to_string();
    match container.delete(true) {
        // A failure after start (a startContainer hook, the exec) already removed it.
        Ok(()) | Err(berth_runtime::Error::NotFound(_)) => {}
        Err(e) => tracing::warn!("delete container {id} after failed run: {e}"),
    }
    err
}
