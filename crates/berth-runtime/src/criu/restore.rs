//! `restore`: a new container whose init is a process tree CRIU restores from images.
//!
//! The cgroup is made and configured first, and CRIU is put into it (the driver's
//! `apply`, which for systemd starts the scope) before it may exec, so every restored
//! process starts inside, as runc does; `--cgroup-root` tells CRIU the same place. The rootfs is bind-mounted
//! at `<state dir>/criu-root` (CRIU wants a mount point whose parent is not
//! over-mounted). With `--restore-detached --restore-sibling`, the restored init is our
//! child, as a created init is: `berth restore` without `--detach` waits for it.

use super::{
    check, config_file, external_mounts, failed, joined_netns, rootfs_of, CriuOptions, DESCRIPTORS,
    EXT_NETNS,
};
use crate::bundle::Bundle;
use crate::container::{proc_start_time, Container};
use crate::error::{Error, Result};
use crate::runtime::Runtime;
use crate::state::Persisted;
use berth_cgroups::CgroupManager;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::collections::BTreeSet;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Options of `restore` (runc's flags).
#[derive(Debug, Default)]
pub struct RestoreOptions {
    /// What checkpoint shares.
    pub criu: CriuOptions,
    /// `--pid-file`: the restored init's pid.
    pub pid_file: Option<PathBuf>,
    /// `--console-socket`: refused for now (see the error).
    pub console_socket: Option<PathBuf>,
    /// `--lsm-profile TYPE:NAME`.
    pub lsm_profile: Option<String>,
    /// `--lsm-mount-context`.
    pub lsm_mount_context: Option<String>,
    /// The streams the restored process's stdio is reconnected to (CRIU's
    /// `--inherit-fd` for each pipe, and each fifo or file of a mount outside the
    /// container, that the dump recorded in descriptors.json): the caller's own 0, 1
    /// and 2 where a stream is left out (the CLI), the given fds otherwise (a shim's
    /// fifos). Files on the container's own mounts and a terminal are reopened by
    /// CRIU from their paths and do not use these.
    pub stdio: crate::Stdio,
}

/// Undoes a partial restore: the cgroup (with anything in it) and the state directory.
struct Undo<'a> {
    dir: PathBuf,
    cgroup: &'a dyn CgroupManager,
    armed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Ok(pids) = self.cgroup.pids() {
            for p in pids {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        if let Err(e) = self.cgroup.destroy() {
            tracing::warn!("cleanup after failed restore: {e}");
        }
        // The rootfs bound at criu-root must be gone before the directory is removed
        // recursively (CriuRoot is dropped first; a failed unmount leaves it, and then
        // the state directory stays too).
        let criu_root = self.dir.join("criu-root");
        if criu_root.exists() && std::fs::remove_dir(&criu_root).is_err() {
            tracing::warn!(
                "cleanup after failed restore: {} is still there; {} is left",
                criu_root.display(),
                self.dir.display()
            );
            return;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The rootfs bind-mounted for CRIU; unmounted and removed on drop.
struct CriuRoot(PathBuf);

impl CriuRoot {
    fn new(rootfs: &Path, at: PathBuf) -> Result<Self> {
        std::fs::create_dir(&at).map_err(|e| Error::io("create", &at, e))?;
        let root = CriuRoot(at);
        mount(
            Some(rootfs),
            &root.0,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| {
            Error::sys(
                "mount",
                format!("{} on {}", rootfs.display(), root.0.display()),
                e,
            )
        })?;
        Ok(root)
    }
}

impl Drop for CriuRoot {
    fn drop(&mut self) {
        let _ = umount2(&self.0, MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&self.0);
    }
}

impl Runtime {
    /// Restores container `id` from the bundle and `options.criu.image_dir`. On return
    /// the container is `running` and its init is a child of the caller.
    pub fn restore(&self, id: &str, bundle: &Path, options: &RestoreOptions) -> Result<Container> {
        restore(self, id, bundle, options)
    }
}

fn restore(
    runtime: &Runtime,
    id: &str,
    bundle_dir: &Path,
    options: &RestoreOptions,
) -> Result<Container> {
    crate::id::validate_id(id)?;
    let bundle = Bundle::load(bundle_dir)?;
    let mut o = options.criu.clone();
    o.config = config_file(&bundle.spec);
    let o = &o;
    if !o.image_dir.join("inventory.img").is_file() {
        return Err(Error::Criu {
            op: "restore",
            reason: format!(
                "image directory {} holds no checkpoint (inventory.img is missing)",
                o.image_dir.display()
            ),
        });
    }
    let terminal = bundle
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    if terminal && options.console_socket.is_some() {
        return Err(Error::Criu {
            op: "restore",
            reason: "a terminal container cannot be restored onto --console-socket: that \
                     needs CRIU's RPC mode (orphan-pts-master), which berth does not use"
                .into(),
        });
    }
    let cgroup = runtime.cgroup_for(&bundle.spec, id)?;
    Runtime::check_cgroup(cgroup.as_ref())?;
    let dir = runtime.new_container_dir(id)?;
    let mut undo = Undo {
        dir: dir.clone(),
        cgroup: cgroup.as_ref(),
        armed: true,
    };
    Runtime::setup_cgroup(cgroup.as_ref(), &bundle.spec)?;
    let mut persisted = Persisted::new(id, &bundle, cgroup.state());
    persisted.save(&dir)?;

    let rootfs = rootfs_of(&bundle.spec, &bundle.dir);
    crate::rootfs::ensure_mount_points(&rootfs, &bundle.spec)?;
    let root = CriuRoot::new(&rootfs, dir.join("criu-root"))?;
    let pidfile = dir.join("criu.pid");
    let mut cmd = Command::new(&o.criu);
    cmd.arg("restore")
        .arg("--root")
        .arg(&root.0)
        .args([
            "--restore-detached",
            "--restore-sibling",
            "--evasive-devices",
        ])
        .arg("--pidfile")
        .arg(&pidfile);
    o.common_args(&mut cmd, "restore");
    if o.empty_net_ns {
        cmd.arg("--empty-ns=net");
    }
    for (dest, src) in external_mounts(&bundle.spec, Some(&rootfs)) {
        cmd.arg("--ext-mount-map").arg(format!("{dest}:{src}"));
    }
    for root_arg in cgroup_roots(&cgroup.state().paths) {
        cmd.arg("--cgroup-root").arg(root_arg);
    }
    if let Some(p) = &options.lsm_profile {
        cmd.arg("--lsm-profile").arg(p);
    }
    if let Some(c) = &options.lsm_mount_context {
        cmd.arg("--lsm-mount-context").arg(c);
    }
    for (fd, key) in inherited_pipes(&o.image_dir)? {
        cmd.arg("--inherit-fd").arg(format!("fd[{fd}]:{key}"));
    }
    // Kept open until CRIU has run: it inherits the namespace as fd `netns_fd`.
    let netns = match joined_netns(&bundle.spec).filter(|_| !o.empty_net_ns) {
        Some(path) => Some(open_inheritable(&path)?),
        None => None,
    };
    if let Some(fd) = &netns {
        cmd.arg("--inherit-fd")
            .arg(format!("fd[{}]:{EXT_NETNS}", fd.as_raw_fd()));
    }
    let ok = run_in_cgroup(&cmd, cgroup.as_ref(), options.stdio.raw())?;
    drop(netns);
    if !ok {
        // Whether CRIU can work here at all says more than its restore log.
        check(&o.criu)?;
        return Err(failed("restore", id, o, ""));
    }
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| Error::Criu {
            op: "restore",
            reason: format!("criu wrote no pid to {}", pidfile.display()),
        })?;
    let _ = std::fs::remove_file(&pidfile);
    drop(root);
    persisted.pid = pid;
    persisted.pid_start_time = proc_start_time(pid).unwrap_or(0);
    persisted.created_done = true;
    persisted.save(&dir)?;
    if let Some(p) = &options.pid_file {
        crate::spawn::write_pid_file(p, pid)?;
    }
    undo.armed = false;
    Ok(Container::from_state(runtime, persisted))
}

/// `--cgroup-root` values: one path for every controller when they agree (the usual
/// case), else `controller:path` each. A path is the cgroup's directory relative to
/// the root of its hierarchy (the highest ancestor on the same filesystem).
fn cgroup_roots(paths: &std::collections::BTreeMap<String, PathBuf>) -> Vec<String> {
    let rel: Vec<(String, String)> = paths
        .iter()
        .filter(|(c, _)| c.as_str() != "unified")
        .filter_map(|(c, p)| relative_to_hierarchy(p).map(|r| (c.clone(), r)))
        .collect();
    let distinct: BTreeSet<&String> = rel.iter().map(|(_, r)| r).collect();
    if distinct.len() == 1 {
        return distinct.into_iter().cloned().collect();
    }
    rel.into_iter().map(|(c, r)| format!("{c}:{r}")).collect()
}

/// `dir` relative to the root of its hierarchy. `dir` itself may not exist yet (a
/// systemd scope appears with its first process): the walk starts at its nearest
/// existing ancestor.
fn relative_to_hierarchy(dir: &Path) -> Option<String> {
    let mut top = dir.ancestors().find(|a| a.exists())?;
    let dev = std::fs::metadata(top).ok()?.dev();
    while let Some(parent) = top.parent() {
        match std::fs::metadata(parent) {
            Ok(m) if m.dev() == dev => top = parent,
            _ => break,
        }
    }
    let rel = dir.strip_prefix(top).ok()?;
    Some(format!("/{}", rel.display()))
}

/// Forks, puts the child into the container's cgroup with the driver's `apply` (the
/// child waits on a pipe meanwhile), then lets it exec CRIU with `stdio` on its 0, 1
/// and 2 (-1: ours), and waits for CRIU: whether it succeeded. Not bounded in time:
/// killing CRIU in the middle of a restore would leave a half-made process tree (runc
/// does not bound it either).
fn run_in_cgroup(cmd: &Command, cgroup: &dyn CgroupManager, stdio: [i32; 3]) -> Result<bool> {
    use std::os::unix::ffi::OsStrExt;
    // execv(2) in the child does not search PATH: a bare name is resolved here,
    // before the fork (kept as it is when nothing is found: execv then fails, 127).
    let name = cmd.get_program();
    let program = name
        .to_str()
        .and_then(super::find)
        .unwrap_or_else(|| PathBuf::from(name));
    let words: Vec<CString> = std::iter::once(program.as_os_str())
        .chain(cmd.get_args())
        .map(|w| CString::new(w.as_bytes()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::Criu {
            op: "restore",
            reason: "an argument for criu contains a NUL byte".into(),
        })?;
    let mut argv: Vec<*const libc::c_char> = words.iter().map(|w| w.as_ptr()).collect();
    argv.push(std::ptr::null());
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| Error::sys("pipe2", "criu restore", e))?;
    // The child's errno when it cannot install the stdio: 4 bytes, then exit 125.
    let (err_rd, err_wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| Error::sys("pipe2", "criu restore", e))?;
    // SAFETY: the child only calls fcntl(2), dup2(2), close(2), read(2), write(2),
    // execv(2) and _exit(2) on memory prepared above (async-signal-safe, no allocation,
    // no locks).
    let child = match unsafe { nix::unistd::fork() }.map_err(|e| Error::sys("fork", "criu", e))? {
        nix::unistd::ForkResult::Child => {
            let mut go = 0u8;
            if let Err((_, e)) = crate::stdio::install_raw(stdio) {
                let errno = (e as i32).to_ne_bytes();
                // SAFETY: a 4-byte write from a local to our pipe; _exit never returns.
                unsafe {
                    libc::write(err_wr.as_raw_fd(), errno.as_ptr().cast(), errno.len());
                    libc::_exit(125);
                }
            }
            // SAFETY: a one-byte read into a local; execv with a NUL-terminated argv
            // of CStrings that outlive the call; _exit never returns.
            unsafe {
                libc::close(wr.as_raw_fd());
                if libc::read(rd.as_raw_fd(), (&mut go as *mut u8).cast(), 1) == 1 {
                    libc::execv(argv[0], argv.as_ptr());
                    libc::_exit(127);
                }
                libc::_exit(126);
            }
        }
        nix::unistd::ForkResult::Parent { child } => child,
    };
    drop(rd);
    drop(err_wr);
    let reap = |why: Error| {
        let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(child, None);
        why
    };
    if let Err(e) = cgroup.apply(child.as_raw()) {
        return Err(reap(e.into()));
    }
    if let Err(e) = nix::unistd::write(&wr, b"1") {
        return Err(reap(Error::sys("write", "criu start pipe", e)));
    }
    drop(wr);
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, 0)) => return Ok(true),
            Ok(WaitStatus::Exited(_, 125)) => {
                let mut errno = [0u8; 4];
                let why = match nix::unistd::read(&err_rd, &mut errno) {
                    Ok(4) => nix::Error::from_raw(i32::from_ne_bytes(errno)).desc(),
                    _ => "no reason given",
                };
                return Err(Error::Criu {
                    op: "restore",
                    reason: format!(
                        "could not put the given stdio on criu's fds 0, 1 and 2: {why}"
                    ),
                });
            }
            Ok(WaitStatus::Exited(_, 127)) => {
                return Err(Error::Criu {
                    op: "restore",
                    reason: format!("could not execute {:?}", cmd.get_program()),
                })
            }
            Ok(WaitStatus::Exited(..)) | Ok(WaitStatus::Signaled(..)) => return Ok(false),
            Ok(_) | Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(Error::sys("waitpid", "criu", e)),
        }
    }
}

/// The stdio pipes and host files recorded at dump (`descriptors.json`: `pipe:[N]`,
/// `file[MNT_ID:INODE]`), as (CRIU's fd, CRIU key): CRIU reconnects them to its own
/// stdin, stdout and stderr (the restore's `stdio`).
fn inherited_pipes(image: &Path) -> Result<Vec<(usize, String)>> {
    let path = image.join(DESCRIPTORS);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read", &path, e)),
    };
    let fds: Vec<String> = serde_json::from_str(&text).map_err(|e| Error::Criu {
        op: "restore",
        reason: format!("{}: {e}", path.display()),
    })?;
    Ok(fds
        .into_iter()
        .enumerate()
        .filter(|(_, s)| s.starts_with("pipe:") || s.starts_with("file["))
        .collect())
}

/// Opens `path` without close-on-exec, so CRIU inherits it.
fn open_inheritable(path: &Path) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_RDONLY,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| Error::sys("open", path.display(), e))?;
    Ok(fd)
}
