//! `berth checkpoint` and `berth restore`: runc's flags mapped onto the library's
//! CRIU options (`berth_runtime::criu`). `restore` without `--detach` waits for the
//! restored init and deletes the container when it exits, as `run` does.

use crate::cli::Globals;
use crate::paths;
use anyhow::{anyhow, bail, Context};
use berth_runtime::criu::{CgroupsMode, CheckpointOptions, CriuOptions, RestoreOptions};
use std::path::{Path, PathBuf};

/// Flags shared by checkpoint and restore.
#[derive(Debug, clap::Args)]
pub struct CriuFlags {
    /// path for the criu image files (default: ./checkpoint)
    #[arg(long, value_name = "DIR")]
    pub image_path: Option<PathBuf>,
    /// path for saving work files and logs (default: the image path)
    #[arg(long, value_name = "DIR")]
    pub work_path: Option<PathBuf>,
    /// allow open tcp connections
    #[arg(long)]
    pub tcp_established: bool,
    /// allow external unix sockets
    #[arg(long)]
    pub ext_unix_sk: bool,
    /// allow shell jobs
    #[arg(long)]
    pub shell_job: bool,
    /// handle file locks, for safety
    #[arg(long)]
    pub file_locks: bool,
    /// cgroups mode: 'soft' (default), 'full' and 'strict'
    #[arg(long, value_name = "MODE")]
    pub manage_cgroups_mode: Option<String>,
    /// create a namespace, but don't restore its properties
    #[arg(long, value_name = "NS")]
    pub empty_ns: Vec<String>,
    /// enable auto deduplication of memory images
    #[arg(long)]
    pub auto_dedup: bool,
    /// use userfaultfd to lazily restore memory pages
    #[arg(long)]
    pub lazy_pages: bool,
}

/// `checkpoint [flags] <container-id>`.
#[derive(Debug, clap::Args)]
pub struct CheckpointArgs {
    #[command(flatten)]
    pub criu: CriuFlags,
    /// path for previous criu image files in pre-dump
    #[arg(long, value_name = "DIR")]
    pub parent_path: Option<PathBuf>,
    /// leave the process running after checkpointing
    #[arg(long)]
    pub leave_running: bool,
    /// criu writes \0 to this FD once lazy-pages is ready
    #[arg(long, default_value_t = -1, value_name = "FD", allow_hyphen_values = true)]
    pub status_fd: i32,
    /// ADDRESS:PORT of the page server
    #[arg(long, value_name = "ADDRESS:PORT")]
    pub page_server: Option<String>,
    /// dump container's memory information only, leave the container running after this
    #[arg(long)]
    pub pre_dump: bool,
    #[arg(value_name = "container-id")]
    pub id: String,
}

/// `restore [flags] <container-id>`.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub criu: CriuFlags,
    /// path to an AF_UNIX socket which will receive a file descriptor referencing the
    /// master end of the console's pseudoterminal
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// path to the root of the bundle directory
    #[arg(short, long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// detach from the container's process
    #[arg(short, long)]
    pub detach: bool,
    /// specify the file to write the process id to
    #[arg(long, value_name = "PATH")]
    pub pid_file: Option<PathBuf>,
    /// disable the use of the subreaper used to reap reparented processes
    #[arg(long)]
    pub no_subreaper: bool,
    /// do not use pivot root to jail process inside rootfs
    #[arg(long)]
    pub no_pivot: bool,
    /// Specify an LSM profile to be used during restore in the form of TYPE:NAME
    #[arg(long, value_name = "TYPE:NAME")]
    pub lsm_profile: Option<String>,
    /// Specify an LSM mount context to be used during restore
    #[arg(long, value_name = "CONTEXT")]
    pub lsm_mount_context: Option<String>,
    #[arg(value_name = "container-id")]
    pub id: String,
}

impl CriuFlags {
    /// The library's options, after validating every flag.
    fn options(&self, globals: &Globals) -> anyhow::Result<CriuOptions> {
        let cgroups_mode = match self.manage_cgroups_mode.as_deref() {
            None | Some("") => CgroupsMode::default(),
            Some(m) => m.parse::<CgroupsMode>().map_err(|_| {
                anyhow!("Invalid manage cgroups mode {m:?}: want 'soft', 'full' or 'strict'")
            })?,
        };
        let mut empty_net_ns = false;
        for ns in &self.empty_ns {
            if ns != "network" {
                bail!("namespace {ns:?} is not supported by --empty-ns (only \"network\")");
            }
            empty_net_ns = true;
        }
        let image_dir = match &self.image_path {
            Some(p) => paths::absolute(p).context("can't convert --image-path to absolute path")?,
            None => std::env::current_dir()
                .context("current directory")?
                .join("checkpoint"),
        };
        let work_dir = match &self.work_path {
            Some(p) => {
                Some(paths::absolute(p).context("can't convert --work-path to absolute path")?)
            }
            None => None,
        };
        Ok(CriuOptions {
            criu: PathBuf::new(),
            image_dir,
            work_dir,
            tcp_established: self.tcp_established,
            ext_unix_sk: self.ext_unix_sk,
            shell_job: self.shell_job,
            file_locks: self.file_locks,
            cgroups_mode,
            empty_net_ns,
            auto_dedup: self.auto_dedup,
            lazy_pages: self.lazy_pages,
            config: None,
        })
        .and_then(|o| with_binary(o, globals))
    }
}

/// Fills in the criu binary, or says it is missing.
fn with_binary(mut o: CriuOptions, globals: &Globals) -> anyhow::Result<CriuOptions> {
    o.criu = berth_runtime::criu::find(&globals.criu)
        .ok_or_else(|| anyhow!("criu binary {:?} not found", globals.criu))?;
    Ok(o)
}

/// Dumps the container's processes into the image directory.
pub fn checkpoint(globals: &Globals, args: CheckpointArgs) -> anyhow::Result<()> {
    berth_runtime::validate_id(&args.id)?;
    let container = super::runtime(globals)?.load(&args.id)?;
    let page_server = match args.page_server.as_deref() {
        None => None,
        Some(p) => {
            let (addr, port) = p
                .rsplit_once(':')
                .ok_or_else(|| anyhow!("Please provide the page server address as ADDRESS:PORT"))?;
            let port = port
                .parse::<u16>()
                .map_err(|_| anyhow!("page server port {port:?} is not a port number"))?;
            Some((addr.to_string(), port))
        }
    };
    let criu = args.criu.options(globals)?;
    if let Some(parent) = &args.parent_path {
        check_parent_path(&criu.image_dir, parent)?;
    }
    let options = CheckpointOptions {
        criu,
        parent_path: args.parent_path,
        leave_running: args.leave_running,
        pre_dump: args.pre_dump,
        page_server,
        status_fd: (args.status_fd >= 0).then_some(args.status_fd),
    };
    container.checkpoint(&options)?;
    Ok(())
}

/// runc's rule for `--parent-path`: relative (to the image directory, as CRIU takes
/// it), naming an existing directory there; checked before CRIU is asked anything.
fn check_parent_path(image_dir: &Path, parent: &Path) -> anyhow::Result<()> {
    if parent.is_absolute() {
        bail!("--parent-path must be relative");
    }
    // Lexically, as Go's filepath.Join: `../pre` next to an image directory that
    // does not exist yet is fine.
    let mut real = PathBuf::new();
    for part in image_dir.join(parent).components() {
        match part {
            std::path::Component::ParentDir => {
                real.pop();
            }
            std::path::Component::CurDir => {}
            other => real.push(other),
        }
    }
    match std::fs::metadata(&real) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => bail!(
            "invalid --parent-path: stat {}: not a directory",
            real.display()
        ),
        Err(e) => bail!("invalid --parent-path: stat {}: {e}", real.display()),
    }
}

/// Restores a container from an image directory; without `--detach`, waits for it and
/// returns its exit status.
pub fn restore(globals: &Globals, args: RestoreArgs) -> anyhow::Result<i32> {
    berth_runtime::validate_id(&args.id)?;
    let runtime = super::runtime(globals)?;
    if runtime.load(&args.id).is_ok() {
        bail!("container with id {} already exists", args.id);
    }
    if let Some(p) = &args.lsm_profile {
        if !p.contains(':') {
            bail!("--lsm-profile {p:?}: want TYPE:NAME");
        }
    }
    let criu = args.criu.options(globals)?;
    let bundle = paths::bundle(args.bundle.as_deref())?;
    if !bundle.join("config.json").is_file() {
        bail!("bundle {}: config.json not found", bundle.display());
    }
    if !criu.image_dir.join("inventory.img").is_file() {
        bail!(
            "image directory {} holds no checkpoint (inventory.img is missing)",
            criu.image_dir.display()
        );
    }
    if !args.detach && !args.no_subreaper {
        nix::sys::prctl::set_child_subreaper(true)
            .map_err(|e| anyhow!("prctl PR_SET_CHILD_SUBREAPER: {e}"))?;
    }
    let options = RestoreOptions {
        criu,
        pid_file: args.pid_file,
        console_socket: args.console_socket,
        lsm_profile: args.lsm_profile,
        lsm_mount_context: args.lsm_mount_context,
        stdio: berth_runtime::Stdio::inherit(),
    };
    let container = runtime.restore(&args.id, &bundle, &options)?;
    if args.detach {
        return Ok(0);
    }
    if let Err(e) = crate::signals::forward_to(container.pid()) {
        let _ = container.delete(true);
        return Err(e);
    }
    let status = container.wait()?;
    container.delete(true)?;
    Ok(status.code())
}

#[cfg(test)]
mod tests {
    use super::check_parent_path;

    #[test]
    fn parent_path_is_relative_and_resolved_lexically() {
        let dir = std::env::temp_dir().join(format!("berth-parent-path-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("pre")).expect("mkdir");
        std::fs::write(dir.join("file"), "").expect("write");
        let image = dir.join("image");
        let abs = dir.join("pre");
        let e = check_parent_path(&image, &abs).unwrap_err().to_string();
        assert_eq!(e, "--parent-path must be relative");
        // The image directory need not exist: ../pre is beside it.
        check_parent_path(&image, std::path::Path::new("../pre")).expect("../pre");
        for bad in ["./pre", "../missing", "../file"] {
            let e = check_parent_path(&image, std::path::Path::new(bad))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("invalid --parent-path: stat "), "{bad}: {e}");
        }
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
