//! Checkpoint and restore through CRIU's command line (`criu dump`, `criu restore`).
//! When CRIU fails, `criu check` tells whether it can work on this kernel at all:
//! where it cannot, the error carries CRIU's own reason in one line. (Not checked
//! first: a check costs as much as a small dump, on every call.)
//!
//! What CRIU must be told about a container, at dump and again at restore:
//! - bind mounts from the host are external mounts (`--ext-mount-map`): keyed by their
//!   destination, mapped back to the config's source at restore;
//! - device nodes, which may be bind mounts of the host's (user namespaces), likewise;
//! - a network namespace joined by path is external (`--external net[inode]:KEY` at
//!   dump, `--inherit-fd fd[N]:KEY` with the namespace opened at restore);
//! - stdio pipes (`descriptors.json`, written at dump as runc does) are inherited.

mod dump;
mod mount_ns;
mod restore;

pub use dump::CheckpointOptions;
pub(crate) use mount_ns::release_criu_yards;
pub(crate) use restore::release_criu_root;
pub use restore::RestoreOptions;

use crate::error::{Error, Result};
use oci_spec::runtime::Spec;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The key of a joined network namespace in CRIU's images (runc's and crun's name).
const EXT_NETNS: &str = "extRootNetNS";
/// The default device nodes of every container (runtime spec, "Default Devices").
const DEFAULT_DEVICES: [&str; 6] = [
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
];
/// Where the stdio of the init pointed at dump time, for restore.
const DESCRIPTORS: &str = "descriptors.json";
/// How long `criu check` may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// How CRIU treats cgroups (`--manage-cgroups-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CgroupsMode {
    /// Restore cgroup properties only where CRIU creates the cgroup (the default).
    #[default]
    Soft,
    /// Restore every property.
    Full,
    /// Fail when a cgroup does not match the image.
    Strict,
}

impl std::str::FromStr for CgroupsMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "soft" => Ok(CgroupsMode::Soft),
            "full" => Ok(CgroupsMode::Full),
            "strict" => Ok(CgroupsMode::Strict),
            _ => Err(Error::Criu {
                op: "options",
                reason: format!("invalid manage cgroups mode {s:?}: want soft, full or strict"),
            }),
        }
    }
}

impl CgroupsMode {
    fn as_str(self) -> &'static str {
        match self {
            CgroupsMode::Soft => "soft",
            CgroupsMode::Full => "full",
            CgroupsMode::Strict => "strict",
        }
    }
}

/// What checkpoint and restore share (runc's flags of both verbs).
#[derive(Debug, Clone, Default)]
pub struct CriuOptions {
    /// The criu binary.
    pub criu: PathBuf,
    /// `--image-path`: absolute.
    pub image_dir: PathBuf,
    /// `--work-path` (logs); the image directory when `None`.
    pub work_dir: Option<PathBuf>,
    /// `--tcp-established`.
    pub tcp_established: bool,
    /// `--ext-unix-sk`.
    pub ext_unix_sk: bool,
    /// `--shell-job`.
    pub shell_job: bool,
    /// `--file-locks`.
    pub file_locks: bool,
    /// `--manage-cgroups-mode`.
    pub cgroups_mode: CgroupsMode,
    /// `--empty-ns network`: a new, empty network namespace at restore.
    pub empty_net_ns: bool,
    /// `--auto-dedup`.
    pub auto_dedup: bool,
    /// `--lazy-pages`.
    pub lazy_pages: bool,
    /// The CRIU configuration file for this container, by runc's rule (the file the
    /// `org.criu.config` annotation names, else /etc/criu/runc.conf when it exists);
    /// set by dump and restore from the container's config.
    pub config: Option<PathBuf>,
}

impl CriuOptions {
    fn work_dir(&self) -> &Path {
        self.work_dir.as_deref().unwrap_or(&self.image_dir)
    }

    /// The flags both verbs pass on. With a configuration file, what the file sets
    /// of berth's own choices (log file, verbosity, cgroups mode) is left to it: in
    /// runc's RPC mode the file overrides runc's settings, while on CRIU's command
    /// line the arguments would override the file.
    fn common_args(&self, cmd: &mut Command, verb: &str) {
        let keys = self.config.as_deref().map(config_keys).unwrap_or_default();
        let file_sets = |names: &[&str]| keys.iter().any(|k| names.contains(&k.as_str()));
        if let Some(c) = &self.config {
            cmd.arg("--config").arg(c);
        }
        cmd.arg("-D")
            .arg(&self.image_dir)
            .arg("-W")
            .arg(self.work_dir());
        if !file_sets(&["log-file", "o"]) {
            cmd.args(["-o", &format!("{verb}.log")]);
        }
        if !file_sets(&["verbosity", "v"]) {
            cmd.arg("-v4");
        }
        if !file_sets(&["manage-cgroups"]) {
            cmd.arg(format!("--manage-cgroups={}", self.cgroups_mode.as_str()));
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
                cmd.arg(flag);
            }
        }
    }
}

/// The annotation naming a container's own CRIU configuration file (runc's).
const CONFIG_ANNOTATION: &str = "org.criu.config";
/// The configuration file used when the annotation is absent (runc's).
const DEFAULT_CONFIG: &str = "/etc/criu/runc.conf";

/// The CRIU configuration file for a container, by runc's rule: the file the
/// `org.criu.config` annotation names (none when it is empty), else
/// /etc/criu/runc.conf. A file that does not exist is not used (CRIU ignores it in
/// runc's RPC mode; its command line would refuse it).
pub(crate) fn config_file(spec: &Spec) -> Option<PathBuf> {
    let named = spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get(CONFIG_ANNOTATION));
    let path = match named {
        Some(p) if p.is_empty() => return None,
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(DEFAULT_CONFIG),
    };
    path.is_file().then_some(path)
}

/// The option names a CRIU configuration file sets: one option per line, as
/// `name`, `name value` or `name=value`, with `#` comments.
fn config_keys(path: &Path) -> Vec<String> {
    parse_config_keys(&std::fs::read_to_string(path).unwrap_or_default())
}

fn parse_config_keys(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split(['=', ' ', '\t']).next())
        .map(|k| k.trim_start_matches('-').to_string())
        .collect()
}

/// Where CRIU writes the log of `verb`: the configuration file's `log-file` when it
/// sets one (relative to the work directory), else `<verb>.log` there.
fn log_path(opts: &CriuOptions, verb: &str) -> PathBuf {
    let text = opts
        .config
        .as_deref()
        .and_then(|c| std::fs::read_to_string(c).ok())
        .unwrap_or_default();
    let from_file = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .find_map(|l| {
            let l = l.trim_start_matches('-');
            l.strip_prefix("log-file")
                .map(|v| v.trim_start_matches(['=', ' ', '\t']).trim().to_string())
        })
        .filter(|v| !v.is_empty());
    match from_file {
        Some(f) => opts.work_dir().join(f),
        None => opts.work_dir().join(format!("{verb}.log")),
    }
}

/// The criu binary named `name`: a name with a slash is taken as a path (it must be
/// a file); a bare name is looked up in PATH, then /usr/sbin and /sbin (where Debian
/// puts criu, often missing from a service's PATH). `None` when nothing is found.
pub fn find(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return p.is_file().then_some(p);
    }
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .filter(|d| !d.is_empty())
        .chain(["/usr/sbin", "/sbin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    found
}

/// Runs `criu check`; the error carries CRIU's reason (its first telling `Error` line).
pub fn check(criu: &Path) -> Result<()> {
    // Without the machine's default configuration files: one that names a log file
    // would send CRIU's reason there (into the caller's directory) instead of to us.
    let (ok, text) = run_captured(
        Command::new(criu)
            .args(["check", "--no-default-config"])
            .stdin(Stdio::null()),
        Some(CHECK_TIMEOUT),
        "check",
    )?;
    if ok {
        return Ok(());
    }
    let reason = text
        .lines()
        .filter(|l| l.starts_with("Error"))
        .find(|l| !l.contains("kerndat") && !l.contains("crtools"))
        .or_else(|| text.lines().rev().find(|l| !l.trim().is_empty()))
        .unwrap_or("no reason given")
        .trim()
        .to_string();
    Err(Error::Criu {
        op: "check",
        reason: format!("{} cannot work on this host: {reason}", criu.display()),
    })
}

/// Runs `cmd` with stdout and stderr captured in a temporary file: (success, output).
/// With a `timeout` it is killed after it (`criu check` only: killing CRIU in the
/// middle of a dump could leave the container's tasks frozen, so dumps are not bounded;
/// runc does not bound them either).
fn run_captured(
    cmd: &mut Command,
    timeout: Option<Duration>,
    op: &'static str,
) -> Result<(bool, String)> {
    let (log, file) = create_tempfile(op)?;
    let out = file.try_clone().map_err(|e| Error::io("dup", &log, e))?;
    let spawned = cmd.stdout(out).stderr(file).spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_file(&log);
            return Err(Error::Criu {
                op,
                reason: format!("run {:?}: {e}", cmd.get_program()),
            });
        }
    };
    let status = wait_child(&mut child, timeout);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    match status {
        Some(s) => Ok((s.success(), text)),
        None => Err(Error::Criu {
            op,
            reason: format!("timed out after {timeout:?}"),
        }),
    }
}

/// Waits for `child`; with a `timeout`, kills it after that (`None`).
fn wait_child(
    child: &mut std::process::Child,
    timeout: Option<Duration>,
) -> Option<std::process::ExitStatus> {
    let Some(timeout) = timeout else {
        return child.wait().ok();
    };
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// A new file for CRIU's output in the temporary directory: a unique name, created
/// exclusively (never through a symlink someone planted), mode 0600.
fn create_tempfile(op: &str) -> Result<(PathBuf, std::fs::File)> {
    use std::os::unix::fs::OpenOptionsExt;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let path = std::env::temp_dir().join(format!(
        "berth-criu-{op}-{}-{nanos}.out",
        std::process::id()
    ));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| Error::io("create", &path, e))?;
    Ok((path, file))
}

/// An error for a failed dump, pre-dump or restore of container `id`: CRIU's last error
/// line and where its log (`<op>.log`) is.
fn failed(op: &'static str, id: &str, opts: &CriuOptions, output: &str) -> Error {
    let log = log_path(opts, op);
    let from_log = std::fs::read_to_string(&log).unwrap_or_default();
    // CRIU's first error is the cause; its last is usually "Dumping FAILED".
    let errors: Vec<&str> = from_log
        .lines()
        .chain(output.lines())
        .filter(|l| l.contains("Error"))
        .map(str::trim)
        .collect();
    let reason = match errors.as_slice() {
        [] => output
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no reason given")
            .trim()
            .to_string(),
        [one] => one.to_string(),
        [first, .., last] => format!("{first} ... {last}"),
    };
    Error::Criu {
        op,
        reason: format!("container {id}: {reason} (log: {})", log.display()),
    }
}

/// `(destination, source)` of every bind mount and device node of the config: the
/// mounts CRIU must treat as external. A destination reached through a symlink in
/// `rootfs` is named where the mount really is (runc resolves it the same way).
fn external_mounts(spec: &Spec, rootfs: Option<&Path>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for m in spec.mounts().as_deref().unwrap_or_default() {
        let bind = crate::rootfs::is_bind(m);
        if let (true, Some(src)) = (bind, m.source()) {
            let dest = rootfs
                .and_then(|r| crate::rootfs::resolve_destination(r, m.destination()))
                .unwrap_or_else(|| m.destination().clone());
            out.push((dest.display().to_string(), src.display().to_string()));
        }
    }
    // The devices every container gets and the config's: in a user namespace they are
    // binds of the host's nodes (runc lists them all the same way).
    let devices = spec.linux().as_ref().and_then(|l| l.devices().clone());
    let configured = devices
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.path().display().to_string());
    for p in DEFAULT_DEVICES
        .iter()
        .map(|p| p.to_string())
        .chain(configured)
    {
        if !out.iter().any(|(d, _)| *d == p) {
            out.push((p.clone(), p));
        }
    }
    out
}

/// The path of a network namespace the config joins, if any.
fn joined_netns(spec: &Spec) -> Option<PathBuf> {
    let namespaces = spec.linux().as_ref()?.namespaces().clone()?;
    namespaces
        .iter()
        .find(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Network)
        .and_then(|n| n.path().clone())
}

/// The container's root filesystem as the host sees it.
fn rootfs_of(spec: &Spec, bundle: &Path) -> PathBuf {
    let root = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .unwrap_or_else(|| PathBuf::from("rootfs"));
    if root.is_absolute() {
        root
    } else {
        bundle.join(root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_looks_in_path_and_keeps_paths() {
        let sh = find("sh").expect("sh in PATH");
        assert!(sh.is_absolute(), "{}", sh.display());
        assert_eq!(find("/bin/sh"), Some(PathBuf::from("/bin/sh")));
        assert_eq!(find("./no-such-criu"), None);
        assert_eq!(find("no-such-program-berth"), None);
    }

    #[test]
    fn cgroups_mode_parses_runc_names() {
        assert_eq!("soft".parse::<CgroupsMode>().unwrap(), CgroupsMode::Soft);
        assert_eq!("full".parse::<CgroupsMode>().unwrap(), CgroupsMode::Full);
        assert_eq!(
            "strict".parse::<CgroupsMode>().unwrap(),
            CgroupsMode::Strict
        );
        let e = "bogus".parse::<CgroupsMode>().unwrap_err().to_string();
        assert!(e.contains("bogus"), "{e}");
    }

    #[test]
    fn config_file_keys_and_log_path() {
        let keys = parse_config_keys(
            "# comment\nlog-file=x.log\n  tcp-established\n--manage-cgroups full # why\nv 2\n",
        );
        assert_eq!(keys, ["log-file", "tcp-established", "manage-cgroups", "v"]);
        let dir = std::env::temp_dir().join(format!("berth-criu-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("c.conf");
        std::fs::write(&conf, "log-file=mine.log\n").unwrap();
        let mut o = CriuOptions {
            image_dir: dir.clone(),
            ..Default::default()
        };
        assert_eq!(log_path(&o, "dump"), dir.join("dump.log"));
        o.config = Some(conf.clone());
        assert_eq!(log_path(&o, "dump"), dir.join("mine.log"));
        let mut cmd = Command::new("criu");
        o.common_args(&mut cmd, "dump");
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(args.contains(&"--config".to_string()), "{args:?}");
        assert!(!args.contains(&"-o".to_string()), "{args:?}");
        assert!(args.contains(&"-v4".to_string()), "{args:?}");
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.2.0",
            "annotations": {"org.criu.config": conf.display().to_string()}
        }))
        .unwrap();
        assert_eq!(config_file(&spec), Some(conf.clone()));
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.2.0", "annotations": {"org.criu.config": ""}
        }))
        .unwrap();
        assert_eq!(config_file(&spec), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn external_mounts_are_binds_and_devices() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/etc/hosts", "type": "bind", "source": "/tmp/hosts", "options": ["rbind", "ro"]},
                {"destination": "/data", "source": "/srv/data", "options": ["bind"]}
            ],
            "linux": {"devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]}
        }))
        .unwrap();
        assert_eq!(
            external_mounts(&spec, None),
            vec![
                ("/etc/hosts".into(), "/tmp/hosts".into()),
                ("/data".into(), "/srv/data".into()),
                ("/dev/null".into(), "/dev/null".into()),
                ("/dev/zero".into(), "/dev/zero".into()),
                ("/dev/full".into(), "/dev/full".into()),
                ("/dev/random".into(), "/dev/random".into()),
                ("/dev/urandom".into(), "/dev/urandom".into()),
                ("/dev/tty".into(), "/dev/tty".into()),
                ("/dev/fuse".into(), "/dev/fuse".into()),
            ]
        );
        assert_eq!(rootfs_of(&spec, Path::new("/b")), Path::new("/b/rootfs"));
    }
}
