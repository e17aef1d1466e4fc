//! `berth checkpoint` and `berth restore` through CRIU's command line (`criu dump` /
//! `criu restore`). Before anything is changed, `criu check` must pass: where CRIU
//! cannot work on this kernel, berth says why in one line, with CRIU's own reason.

use crate::cli::Globals;
use crate::paths;
use anyhow::{anyhow, bail, Context};
use berth_runtime::Status;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

/// How long `criu check` may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// The criu binary: `--criu` as a path, or looked up in PATH (and /usr/sbin, /sbin).
pub fn find_criu(criu: &str) -> Option<PathBuf> {
    if criu.contains('/') {
        let p = PathBuf::from(criu);
        return p.is_file().then_some(p);
    }
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
        .map(|d| Path::new(d).join(criu))
        .find(|p| p.is_file());
    found
}

impl CriuFlags {
    /// Criu arguments shared by dump and restore, after validating every flag.
    fn criu_args(&self) -> anyhow::Result<Vec<String>> {
        let mut a = Vec::new();
        match self.manage_cgroups_mode.as_deref() {
            None | Some("") => {}
            Some(m @ ("soft" | "full" | "strict")) => a.push(format!("--manage-cgroups={m}")),
            Some(m) => bail!("Invalid manage cgroups mode {m:?}: want 'soft', 'full' or 'strict'"),
        }
        for ns in &self.empty_ns {
            if ns != "network" {
                bail!("namespace {ns:?} is not supported by --empty-ns (only \"network\")");
            }
            a.push("--empty-ns=net".into());
        }
        for (on, flag) in [
            (self.tcp_established, "--tcp-established"),
            (self.ext_unix_sk, "--ext-unix-sk"),
            (self.shell_job, "--shell-job"),
            (self.file_locks, "--file-locks"),
            (self.auto_dedup, "--auto-dedup"),
            (self.lazy_pages, "--lazy-pages"),
        ] {
            if on {
                a.push(flag.into());
            }
        }
        Ok(a)
    }

    /// (image dir, work dir): absolute; the image dir defaults to ./checkpoint.
    fn dirs(&self) -> anyhow::Result<(PathBuf, PathBuf)> {
        let image = match &self.image_path {
            Some(p) => paths::absolute(p).context("can't convert --image-path to absolute path")?,
            None => std::env::current_dir()
                .context("current directory")?
                .join("checkpoint"),
        };
        let work = match &self.work_path {
            Some(p) => paths::absolute(p).context("can't convert --work-path to absolute path")?,
            None => image.clone(),
        };
        Ok((image, work))
    }
}

/// Runs `criu check`; an error carries CRIU's reason (its last `Error` line).
pub fn criu_check(criu: &Path) -> anyhow::Result<()> {
    let out = bounded(Command::new(criu).arg("check"), CHECK_TIMEOUT)
        .with_context(|| format!("run {} check", criu.display()))?;
    if out.0 {
        return Ok(());
    }
    let reason = out
        .1
        .lines()
        .filter(|l| l.starts_with("Error"))
        .find(|l| !l.contains("kerndat") && !l.contains("crtools"))
        .or_else(|| out.1.lines().rev().find(|l| !l.trim().is_empty()))
        .unwrap_or("no reason given")
        .trim()
        .to_string();
    bail!(
        "criu cannot work on this host ({} check failed): {reason}",
        criu.display()
    )
}

/// Runs `cmd` with stdout and stderr captured, killed after `timeout`: (success, output).
fn bounded(cmd: &mut Command, timeout: Duration) -> anyhow::Result<(bool, String)> {
    let dir = std::env::temp_dir().join(format!("berth-criu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
    let log = dir.join("output");
    let file = std::fs::File::create(&log).with_context(|| format!("create {}", log.display()))?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(file.try_clone().context("dup output file")?)
        .stderr(file)
        .spawn()?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    match status {
        Some(s) => Ok((s.success(), text)),
        None => bail!("timed out after {timeout:?}"),
    }
}

/// Dumps the container's processes into the image directory.
pub fn checkpoint(globals: &Globals, args: CheckpointArgs) -> anyhow::Result<()> {
    berth_runtime::validate_id(&args.id)?;
    let container = super::runtime(globals)?.load(&args.id)?;
    let status = container.status();
    if matches!(status, Status::Created | Status::Stopped | Status::Creating) {
        bail!("Container cannot be checkpointed in {status} state");
    }
    let mut criu_args = args.criu.criu_args()?;
    if args
        .page_server
        .as_deref()
        .is_some_and(|p| !p.contains(':'))
    {
        bail!("Please provide the page server address as ADDRESS:PORT");
    }
    let (image, work) = args.criu.dirs()?;
    let criu = find_criu(&globals.criu)
        .ok_or_else(|| anyhow!("criu binary {:?} not found", globals.criu))?;
    criu_check(&criu)?;
    for d in [&image, &work] {
        create_dir(d)?;
    }
    let pid = container.pid();
    write_descriptors(&image, pid)?;
    let rootfs = container_rootfs(&container);
    let verb = if args.pre_dump { "pre-dump" } else { "dump" };
    let mut cmd = Command::new(&criu);
    cmd.args([verb, "-t", &pid.to_string()])
        .arg("-D")
        .arg(&image)
        .arg("-W")
        .arg(&work)
        .args(["-o", &format!("{verb}.log"), "-v4"])
        .arg("--root")
        .arg(&rootfs);
    if let Some(parent) = &args.parent_path {
        cmd.arg("--prev-images-dir").arg(parent);
    }
    if args.leave_running || args.pre_dump {
        cmd.arg("--leave-running");
    }
    if args.pre_dump {
        cmd.arg("--track-mem");
    }
    if let Some(ps) = &args.page_server {
        let (addr, port) = ps.rsplit_once(':').unwrap_or((ps, ""));
        cmd.args(["--page-server", "--address", addr, "--port", port]);
    }
    if args.status_fd >= 0 {
        criu_args.push(format!("--status-fd={}", args.status_fd));
    }
    cmd.args(&criu_args);
    let (ok, text) = bounded(&mut cmd, Duration::from_secs(120)).context("run criu dump")?;
    if !ok {
        bail!(
            "criu {verb} failed: {} (log: {})",
            text.lines().last().unwrap_or("see the log").trim(),
            work.join(format!("{verb}.log")).display()
        );
    }
    if !args.leave_running && !args.pre_dump {
        container.delete(true)?;
    }
    Ok(())
}

/// Restores a container from an image directory (argument handling and CRIU's check;
/// see docs/cli.md for what is missing).
pub fn restore(globals: &Globals, args: RestoreArgs) -> anyhow::Result<i32> {
    berth_runtime::validate_id(&args.id)?;
    let runtime = super::runtime(globals)?;
    if runtime.load(&args.id).is_ok() {
        bail!("container with id {} already exists", args.id);
    }
    let _criu_args = args.criu.criu_args()?;
    if let Some(p) = &args.lsm_profile {
        if !p.contains(':') {
            bail!("--lsm-profile {p:?}: want TYPE:NAME");
        }
    }
    let bundle = paths::bundle(args.bundle.as_deref())?;
    if !bundle.join("config.json").is_file() {
        bail!("bundle {}: config.json not found", bundle.display());
    }
    let (image, _work) = args.criu.dirs()?;
    if !image.join("inventory.img").is_file() {
        bail!(
            "image directory {} holds no checkpoint (inventory.img is missing)",
            image.display()
        );
    }
    let criu = find_criu(&globals.criu)
        .ok_or_else(|| anyhow!("criu binary {:?} not found", globals.criu))?;
    criu_check(&criu)?;
    bail!(
        "restore of container {}: criu works here, but berth cannot yet adopt a restored process tree",
        args.id
    )
}

fn create_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("mkdir {}", dir.display()))
}

/// runc's descriptors.json: where the init's stdio pointed, for restore.
fn write_descriptors(image: &Path, pid: i32) -> anyhow::Result<()> {
    let fds: Vec<String> = (0..3)
        .map(|fd| {
            std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "/dev/null".into())
        })
        .collect();
    let path = image.join("descriptors.json");
    std::fs::write(&path, serde_json::to_string(&fds)?)
        .with_context(|| format!("write {}", path.display()))
}

/// The container's root filesystem as the host sees it.
fn container_rootfs(container: &berth_runtime::Container) -> PathBuf {
    let root = container
        .config()
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .unwrap_or_else(|| PathBuf::from("rootfs"));
    if root.is_absolute() {
        root
    } else {
        container.bundle().join(root)
    }
}
