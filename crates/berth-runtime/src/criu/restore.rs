//! `restore`: a new container whose init is a process tree CRIU restores from images.
//!
//! The cgroup is made and configured first, and CRIU is put into it (the driver's
//! `apply`, which for systemd starts the scope) before it may exec, so every restored
//! process starts inside, as runc does; `--cgroup-root` tells CRIU the same place. The rootfs is bind-mounted
//! at `<state dir>/criu-root` (CRIU wants a mount point whose parent is not
//! over-mounted). With `--restore-detached --restore-sibling`, the restored init is our
//! child, as a created init is: `berth restore` without `--detach` waits for it.
//!
//! Crash safety, as `create`'s: the state file names every cgroup directory (with
//! the parents `mkdir` will add) before any is made, CRIU runs inside the cgroup, and
//! the rootfs bind is always at the same place in the state directory. CRIU runs in
//! a mount namespace of its own (a slave copy of ours) when the container has its own
//! mount namespace (see `mount_ns`): what CRIU mounts for itself (its cgroup yard, a
//! tmpfs with the cgroup hierarchies in the work directory, which it unmounts only
//! when it ends normally) goes with it when it is killed, and never reaches our
//! namespace. Where CRIU runs in ours, the state names its work directory first, for
//! `delete` to detach a yard a killed CRIU left. Once CRIU is done, binds the
//! container shares with the host rejoin their source's peer group (`mount_ns`). So
//! after
//! a SIGKILL of `restore` at any point, even while CRIU goes on restoring the tree on
//! its own, the id is listed and `delete --force` kills whatever is in the cgroup
//! (CRIU and what it restored), detaches the bind ([`release_criu_root`]) and removes
//! the cgroup and the state directory.

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

/// Where restore binds the rootfs for CRIU, in the container's state directory.
const CRIU_ROOT: &str = "criu-root";

/// Undoes a partial restore: the cgroup (with anything in it, unless it is shared with
/// others) and the state directory.
struct Undo<'a> {
    dir: PathBuf,
    cgroup: Option<&'a dyn CgroupManager>,
    /// CRIU's work directory when it ran in our mount namespace (its cgroup yard).
    criu_work_dir: Option<PathBuf>,
    armed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(cgroup) = self.cgroup {
            if let Ok(pids) = cgroup.pids() {
                for p in pids {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(p),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
            if let Err(e) = cgroup.destroy() {
                tracing::warn!("cleanup after failed restore: {e}");
            }
        }
        // CRIU is gone here (run_in_cgroup waited for it).
        if let Some(work) = &self.criu_work_dir {
            super::mount_ns::release_criu_yards(work);
        }
        // The rootfs bound at criu-root must be gone before the directory is removed
        // recursively (CriuRoot is dropped first; a failed unmount leaves it, and then
        // the state directory stays too).
        if !release_criu_root(&self.dir) {
            tracing::warn!(
                "cleanup after failed restore: {} is still mounted; {} is left",
                self.dir.join(CRIU_ROOT).display(),
                self.dir.display()
            );
            return;
        }
        if let Err(e) = crate::state_dir::remove(&self.dir) {
            tracing::warn!(
                "cleanup after failed restore: remove {}: {e}",
                self.dir.display()
            );
        }
    }
}

/// Detaches whatever is mounted at `<dir>/criu-root` (the rootfs bind of a restore,
/// left there when the restore was killed) and removes the directory. False when
/// something is still mounted there: the state directory must then not be removed
/// recursively, which would reach through the bind into the container's rootfs.
pub(crate) fn release_criu_root(dir: &Path) -> bool {
    let at = dir.join(CRIU_ROOT);
    match std::fs::symlink_metadata(&at) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return true,
        // Only a directory can be a mount point here (berth made it); anything else
        // is removed with the state directory as it is.
        Ok(m) if !m.is_dir() => return true,
        _ => {}
    }
    // A bind stacked on another (never made by berth, but cheap to undo): one detach
    // each; EINVAL once nothing is mounted there.
    for _ in 0..8 {
        match umount2(&at, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW) {
            Ok(()) => continue,
            Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => break,
            Err(e) => {
                tracing::warn!("unmount {}: {e}", at.display());
                break;
            }
        }
    }
    match std::fs::remove_dir(&at) {
        Ok(()) => true,
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
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
        let _ = umount2(&self.0, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW);
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
    let shared = Runtime::check_cgroup(cgroup.as_ref())?;
    let dir = runtime.new_container_dir(id)?;
    let mut undo = Undo {
        dir: dir.clone(),
        // A failed restore must not kill the processes of a shared cgroup.
        cgroup: (!shared).then_some(cgroup.as_ref()),
        criu_work_dir: None,
        armed: true,
    };
    // Crash safety (see the module comment): the state names every cgroup directory,
    // with the parents mkdir will add, before any is made.
    let cgroup_state = || {
        let mut s = cgroup.state();
        s.shared = shared;
        s
    };
    let mut persisted = Persisted::new(
        id,
        &bundle,
        crate::spawn::with_missing_parents(cgroup_state()),
    );
    persisted.save(&dir)?;
    Runtime::setup_cgroup(cgroup.as_ref(), &bundle.spec)?;
    persisted.cgroup = Some(cgroup_state());
    persisted.save(&dir)?;

    let rootfs = rootfs_of(&bundle.spec, &bundle.dir);
    crate::rootfs::ensure_mount_points(&rootfs, &bundle.spec)?;
    let root = CriuRoot::new(&rootfs, dir.join(CRIU_ROOT))?;
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
    // CRIU's own namespace where it may have one (see mount_ns); in ours, a CRIU
    // killed midway can leave its cgroup yard in the work directory, which the state
    // names for `delete` (and the undo) to detach.
    let private = super::mount_ns::private_mounts(&bundle.spec);
    if !private {
        let work = o.work_dir();
        let work = std::fs::canonicalize(work)
            .or_else(|_| std::path::absolute(work))
            .unwrap_or_else(|_| work.to_path_buf());
        persisted.criu_work_dir = Some(work);
        persisted.save(&dir)?;
        undo.criu_work_dir = persisted.criu_work_dir.clone();
    }
    let apply = |pid: i32| cgroup.apply(pid).map_err(Error::from);
    let ok = run_in_cgroup(&cmd, &apply, options.stdio.raw(), private)?;
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
    // CRIU gives a bind shared with the host a peer group of its own: put it back.
    super::mount_ns::rejoin_peer_groups(&bundle.spec, &rootfs, pid)?;
    persisted.pid = pid;
    persisted.pid_start_time = proc_start_time(pid).unwrap_or(0);
    persisted.created_done = true;
    // CRIU ended normally, and unmounted its yard itself.
    persisted.criu_work_dir = None;
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

/// What the child of [`run_in_cgroup`] reports on its report pipe before it exits
/// without running CRIU: one tag byte, then the errno (native-endian `i32`).
const REPORT_STDIO: u8 = 1;
const REPORT_EXEC: u8 = 2;
const REPORT_MOUNT_NS: u8 = 3;

/// Forks, puts the child into the container's cgroup with `apply` (the driver's
/// `apply`; the child waits on a socket meanwhile), then lets it exec CRIU with `stdio`
/// on its 0, 1 and 2 (-1: ours), and waits for CRIU: whether it succeeded. Not bounded
/// in time: killing CRIU in the middle of a restore would leave a half-made process
/// tree (runc does not bound it either). With `private_mounts` the child first moves
/// to a mount namespace of its own whose mounts are slaves of ours (see the module
/// comment); where it may not (no CAP_SYS_ADMIN) it stays in ours.
///
/// The child's own failures (putting the stdio in place, the execv) come back on a
/// report pipe that exec closes, so CRIU's own exit status (125, 127, anything) is
/// never taken for one of them. A child that failed its stdio exits before it reads
/// the "go" byte: the byte is sent with `MSG_NOSIGNAL`, so the parent gets EPIPE
/// rather than a SIGPIPE (which would kill an embedder that does not ignore it), and
/// then reads the child's reason.
fn run_in_cgroup(
    cmd: &Command,
    apply: &dyn Fn(i32) -> Result<()>,
    stdio: [i32; 3],
    private_mounts: bool,
) -> Result<bool> {
    use nix::sys::socket::{socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
    use std::os::unix::ffi::OsStrExt;
    // execv(2) in the child does not search PATH: a bare name is resolved here,
    // before the fork (kept as it is when nothing is found: execv then fails).
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
    // The "go" byte: a socket, so that it can be sent without SIGPIPE.
    let (go_parent, go_child) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| Error::sys("socketpair", "criu restore", e))?;
    // The child's report; non-blocking, so that reading it after the child is gone
    // never waits on a copy of the write end held elsewhere.
    let (report_rd, report_wr) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
            .map_err(|e| Error::sys("pipe2", "criu restore", e))?;
    // SAFETY: the child only calls fcntl(2), dup2(2), close(2), unshare(2), mount(2),
    // read(2), write(2), execv(2) and _exit(2) on memory prepared above
    // (async-signal-safe, no allocation, no locks).
    let child = match unsafe { nix::unistd::fork() }.map_err(|e| Error::sys("fork", "criu", e))? {
        nix::unistd::ForkResult::Child => {
            let report = |tag: u8, e: i32| {
                let e = e.to_ne_bytes();
                let msg = [tag, e[0], e[1], e[2], e[3]];
                // SAFETY: a 5-byte write from a local to our pipe (empty: it fits).
                unsafe { libc::write(report_wr.as_raw_fd(), msg.as_ptr().cast(), msg.len()) };
            };
            if let Err((_, e)) = crate::stdio::install_raw(stdio) {
                report(REPORT_STDIO, e as i32);
                // SAFETY: _exit never returns.
                unsafe { libc::_exit(125) };
            }
            // SAFETY: unshare(2) takes a flag only.
            if private_mounts && unsafe { libc::unshare(libc::CLONE_NEWNS) } == 0 {
                // SAFETY: mount(2) with constant NUL-terminated strings and null
                // pointers where the kernel takes none.
                let slave = unsafe {
                    libc::mount(
                        c"none".as_ptr(),
                        c"/".as_ptr(),
                        std::ptr::null(),
                        libc::MS_SLAVE | libc::MS_REC,
                        std::ptr::null(),
                    )
                };
                if slave != 0 {
                    // Mounts made here could reach our namespace: CRIU must not run.
                    report(REPORT_MOUNT_NS, nix::Error::last_raw());
                    // SAFETY: _exit never returns, and runs no destructor or atexit
                    // handler of the parent's copy.
                    unsafe { libc::_exit(125) };
                }
            }
            let mut go = 0u8;
            // SAFETY: a one-byte read into a local; execv with a NUL-terminated argv
            // of CStrings that outlive the call; _exit never returns. Our copy of the
            // parent's end is closed first, so a parent that dies gives end-of-file.
            unsafe {
                libc::close(go_parent.as_raw_fd());
                if libc::read(go_child.as_raw_fd(), (&mut go as *mut u8).cast(), 1) == 1 {
                    libc::execv(argv[0], argv.as_ptr());
                    report(REPORT_EXEC, nix::Error::last_raw());
                    libc::_exit(127);
                }
                libc::_exit(126);
            }
        }
        nix::unistd::ForkResult::Parent { child } => child,
    };
    drop(go_child);
    drop(report_wr);
    let reap = |why: Error| {
        let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(child, None);
        why
    };
    if let Err(e) = apply(child.as_raw()) {
        return Err(reap(e));
    }
    match nix::sys::socket::send(go_parent.as_raw_fd(), b"1", MsgFlags::MSG_NOSIGNAL) {
        Ok(_) => {}
        // The child is gone already: its report says why.
        Err(nix::Error::EPIPE) | Err(nix::Error::ECONNRESET) => {}
        Err(e) => return Err(reap(Error::sys("send", "criu start socket", e))),
    }
    drop(go_parent);
    use nix::sys::wait::{waitpid, WaitStatus};
    let ended = loop {
        match waitpid(child, None) {
            Ok(s @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => break s,
            Ok(_) | Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(Error::sys("waitpid", "criu", e)),
        }
    };
    let mut msg = [0u8; 5];
    let report = match nix::unistd::read(&report_rd, &mut msg) {
        Ok(5) => Some((msg[0], i32::from_ne_bytes([msg[1], msg[2], msg[3], msg[4]]))),
        _ => None,
    };
    match report {
        Some((REPORT_STDIO, errno)) => Err(Error::Criu {
            op: "restore",
            reason: format!(
                "could not put the given stdio on criu's fds 0, 1 and 2: {}",
                nix::Error::from_raw(errno).desc()
            ),
        }),
        Some((REPORT_MOUNT_NS, errno)) => Err(Error::Criu {
            op: "restore",
            reason: format!(
                "could not make criu's mount namespace a slave of ours: {}",
                nix::Error::from_raw(errno).desc()
            ),
        }),
        Some((_, errno)) => Err(Error::Criu {
            op: "restore",
            reason: format!(
                "could not execute {}: {}",
                program.display(),
                nix::Error::from_raw(errno).desc()
            ),
        }),
        // CRIU ran: its own status, whatever it is.
        None => Ok(ended == WaitStatus::Exited(child, 0)),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Set in the re-run of this test binary that runs with SIGPIPE's default action.
    const SIGPIPE_CHILD: &str = "BERTH_TEST_RESTORE_SIGPIPE_CHILD";

    fn no_apply(_: i32) -> Result<()> {
        Ok(())
    }

    /// An fd number that is not open in this process.
    fn closed_fd() -> i32 {
        let f = std::fs::File::open("/dev/null").expect("open /dev/null");
        let n = f.as_raw_fd();
        drop(f);
        // Far above it, where nothing else of the test harness sits.
        n + 900
    }

    /// A stdio fd that cannot be installed is reported as such, with the errno, and
    /// the parent is not killed by SIGPIPE on the "go" byte: `apply` waits here until
    /// the child has exited, so the byte always meets a closed socket. Run in a child
    /// process of its own with SIGPIPE's default action, as in an embedder that does
    /// not ignore it (Rust programs, the test harness too, ignore it).
    #[test]
    fn a_bad_stdio_fd_is_reported_without_sigpipe() {
        if std::env::var_os(SIGPIPE_CHILD).is_some() {
            // SAFETY: SIG_DFL for SIGPIPE, in this re-run process alone.
            unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
            let wait_for_exit = |pid: i32| -> Result<()> {
                // SAFETY: siginfo_t is plain data, valid as all zeroes.
                let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
                // SAFETY: waitid with WNOWAIT only peeks at the child's exit, into a
                // live siginfo_t.
                let r = unsafe {
                    libc::waitid(
                        libc::P_PID,
                        pid as libc::id_t,
                        &mut info,
                        libc::WEXITED | libc::WNOWAIT,
                    )
                };
                assert_eq!(r, 0, "waitid: {}", nix::Error::last());
                Ok(())
            };
            let e = run_in_cgroup(
                &Command::new("/bin/true"),
                &wait_for_exit,
                [closed_fd(), -1, -1],
                false,
            )
            .expect_err("a closed stdio fd must fail");
            let text = e.to_string();
            assert!(
                text.contains("could not put the given stdio")
                    && text.contains(nix::Error::EBADF.desc()),
                "{text}"
            );
            return;
        }
        let exe = std::env::current_exe().expect("current_exe");
        let out = Command::new(exe)
            .args([
                "--exact",
                "criu::restore::tests::a_bad_stdio_fd_is_reported_without_sigpipe",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(SIGPIPE_CHILD, "1")
            .output()
            .expect("re-run the test binary");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            out.status.signal(),
            None,
            "killed by a signal (SIGPIPE is 13): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("1 passed"),
            "the re-run ran no test: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    /// CRIU's own exit status is CRIU's failure, whatever it is: 125 and 127 are not
    /// taken for the child's stdio or exec failures; 0 is success.
    #[test]
    fn criu_exit_statuses_are_criu_s_own() {
        let sh = |code: &str| {
            let mut c = Command::new("/bin/sh");
            c.args(["-c", &format!("exit {code}")]);
            c
        };
        for code in ["125", "127", "126", "1"] {
            let r = run_in_cgroup(&sh(code), &no_apply, [-1, -1, -1], false);
            assert!(matches!(r, Ok(false)), "exit {code}: {r:?}");
        }
        assert!(matches!(
            run_in_cgroup(&sh("0"), &no_apply, [-1, -1, -1], false),
            Ok(true)
        ));
    }

    /// A program that cannot be executed is named, with the errno.
    #[test]
    fn an_unexecutable_criu_is_named() {
        let e = run_in_cgroup(
            &Command::new("/nonexistent/berth-test-criu"),
            &no_apply,
            [-1, -1, -1],
            false,
        )
        .expect_err("no such program");
        let text = e.to_string();
        assert!(
            text.contains("could not execute /nonexistent/berth-test-criu")
                && text.contains(nix::Error::ENOENT.desc()),
            "{text}"
        );
    }

    /// A failing `apply` kills and reaps the waiting child and returns its error.
    #[test]
    fn a_failing_apply_is_returned() {
        let fail = |_: i32| -> Result<()> { Err(Error::Init("apply refused".into())) };
        let e = run_in_cgroup(&Command::new("/bin/true"), &fail, [-1, -1, -1], false)
            .expect_err("apply failed");
        assert!(e.to_string().contains("apply refused"), "{e}");
    }

    /// With `private_mounts`, what the child mounts stays in its own namespace, also
    /// when it is killed before it could unmount (CRIU's cgroup yard): our namespace
    /// never sees it. Needs root (CAP_SYS_ADMIN); skipped without.
    #[test]
    fn a_private_child_s_mounts_never_reach_us() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = std::env::temp_dir().join(format!("berth-criu-ns-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let script = format!(
            "mount -t tmpfs berth-criu-ns-test {0} && mountpoint -q {0} && kill -9 $$",
            dir.display()
        );
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", &script]);
        let r = run_in_cgroup(&cmd, &no_apply, [-1, -1, -1], true);
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        let leaked = mounts.contains("berth-criu-ns-test");
        if leaked {
            let _ = umount2(&dir, MntFlags::MNT_DETACH);
        }
        let _ = std::fs::remove_dir(&dir);
        assert!(matches!(r, Ok(false)), "the child killed itself: {r:?}");
        assert!(!leaked, "the child's tmpfs is in our mount namespace");
    }

    /// The rootfs bind of a restore killed midway: a directory that is not a mount
    /// point is removed; nothing there is fine.
    #[test]
    fn criu_root_without_a_mount_is_removed() {
        let dir = std::env::temp_dir().join(format!("berth-criu-root-{}", std::process::id()));
        std::fs::create_dir_all(dir.join(CRIU_ROOT)).expect("mkdir");
        assert!(release_criu_root(&dir));
        assert!(!dir.join(CRIU_ROOT).exists());
        assert!(release_criu_root(&dir));
        std::fs::remove_dir(&dir).expect("rmdir");
    }
}
