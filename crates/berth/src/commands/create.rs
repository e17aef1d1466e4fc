//! `berth create`: set up a container and leave its init waiting for `start`.

use crate::cli::Globals;
use crate::paths;
use anyhow::Context;
use berth_runtime::{Console, CreateOptions, LoadedBundle, Stdio};
use std::path::{Path, PathBuf};

/// Flags shared by `create` and `run`.
#[derive(Debug, clap::Args)]
pub struct CreateFlags {
    /// path to the root of the bundle directory, defaults to the current directory
    #[arg(short, long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// path to an AF_UNIX socket which will receive a file descriptor referencing the
    /// master end of the console's pseudoterminal
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// specify the file to write the process id to
    #[arg(long, value_name = "PATH")]
    pub pid_file: Option<PathBuf>,
    /// do not use pivot root to jail process inside rootfs.  This should be used
    /// whenever the rootfs is on top of a ramdisk
    #[arg(long)]
    pub no_pivot: bool,
    /// do not create a new session keyring for the container.  This will cause the
    /// container to inherit the calling processes session key
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass N additional file descriptors to the container (stdio + N in total)
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,
}

impl CreateFlags {
    /// The bundle directory and the library options, every path made absolute against
    /// the working directory (runc's `revisePidFile`/`setupSpec`).
    pub fn resolve(&self) -> anyhow::Result<(PathBuf, CreateOptions)> {
        let bundle = paths::bundle(self.bundle.as_deref())?;
        let abs = |p: &Option<PathBuf>, flag: &str| -> anyhow::Result<Option<PathBuf>> {
            p.as_deref()
                .map(|p| {
                    paths::absolute(p).with_context(|| {
                        format!("can't convert --{flag} argument to absolute path")
                    })
                })
                .transpose()
        };
        let options = CreateOptions {
            pid_file: abs(&self.pid_file, "pid-file")?,
            console: abs(&self.console_socket, "console-socket")?.map(Console::Socket),
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds,
            stdio: Stdio::inherit(),
            trace: None,
        };
        Ok((bundle, options))
    }
}

/// `create [flags] <container-id>`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub flags: CreateFlags,
    /// your name for the instance of the container; unique on this host
    #[arg(value_name = "container-id")]
    pub id: String,
}

/// Creates the container; prints nothing on success.
pub fn run(globals: &Globals, args: Args) -> anyhow::Result<()> {
    create(globals, &args.id, &args.flags).context("berth create failed")?;
    Ok(())
}

fn create(globals: &Globals, id: &str, flags: &CreateFlags) -> anyhow::Result<()> {
    berth_runtime::validate_id(id)?;
    let (bundle, options) = flags.resolve()?;
    let options = CreateOptions {
        trace: globals.trace.as_ref().map(|(sink, _)| sink.clone()),
        ..options
    };
    let bundle = LoadedBundle::load(Path::new(&bundle), options.trace.as_ref())?;
    super::protect_binary(berth_runtime::sealed_exe::for_create(bundle.spec()))?;
    let runtime = super::runtime(globals)?;
    runtime.create_loaded(id, bundle, &options)?;
    crate::trace::report("create", &globals.trace);
    Ok(())
}
