//! The container side of the create path, from fork to execve. Runs in forked
//! children: reports failures over the sync channel (or to fd 2 once the parent is
//! gone) and leaves with `_exit`, never by returning or unwinding into the caller.

use super::channel::{Channel, Msg};
use super::plan::InitPlan;
use crate::error::{Error, Result};
use crate::hooks;
use crate::process::ProcessPlan;
use crate::trace::{child as stamp, Phase};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;

/// The intermediate process: joins and creates namespaces, then clones the init as a
/// child of our parent (CLONE_PARENT) and tells the parent its pid.
pub(super) fn intermediate(plan: &InitPlan, ch: Channel) -> ! {
    let stamps = plan.stamps.as_ref();
    if let Some(s) = stamps {
        s.begin(Phase::Namespaces);
    }
    let r = (|| -> Result<()> {
        crate::stdio::install(plan.stdio)?;
        close_others(plan.fds(&ch), plan.preserve_fds)?;
        ch.expect(&Msg::Go, "parent")?;
        set_dumpable_off();
        let user_ns = plan.ns.has(nix::sched::CloneFlags::CLONE_NEWUSER);
        let enter = || {
            if let Some(adj) = plan.process.oom_score_adj {
                // Before the user namespace, while still privileged in the host's.
                std::fs::write("/proc/self/oom_score_adj", adj.to_string())
                    .map_err(|e| Error::io("write", "/proc/self/oom_score_adj", e))?;
            }
            plan.ns.enter(|| {
                // A non-dumpable process's /proc files belong to root: an unprivileged
                // parent could not open our uid_map. Dumpable for the mapping only
                // (as runc's nsexec); no container code runs yet.
                if plan.rootless_euid {
                    set_dumpable(true);
                }
                ch.send(&Msg::NeedMaps)?;
                ch.expect(&Msg::MapsDone, "parent")?;
                set_dumpable_off();
                Ok(())
            })?;
            if plan.open_mount_sources {
                receive_mount_sources(plan, &ch)?;
            }
            if let Some(s) = stamps {
                s.end(Phase::Namespaces);
                s.begin(Phase::Clone);
            }
            Ok(())
        };
        // SAFETY: this process is single-threaded (a child of fork).
        let pid = unsafe { join_enter_clone(&plan.cgroup_join, user_ns, enter, "container init")? };
        if pid == 0 {
            if let Some(s) = stamps {
                s.end(Phase::Clone);
                s.begin(Phase::Mounts);
            }
            init(plan, &ch)
        }
        ch.send(&Msg::Pid(pid))
    })();
    match r {
        Ok(()) => exit(0),
        Err(e) => {
            let _ = ch.send(&Msg::Error(e.to_string()));
            exit(1)
        }
    }
}

/// In the intermediate, in the container's namespaces: asks the parent to open the
/// bind mount sources here and keeps the fds in the plan (the init, cloned next,
/// inherits them; each is closed once its mount is made). Allocates, which the
/// intermediate may (see the module doc of `spawn`).
fn receive_mount_sources(plan: &InitPlan, ch: &Channel) -> Result<()> {
    ch.send(&Msg::NeedMountSources)?;
    loop {
        match ch.recv()? {
            Some(Msg::MountSources(list)) => {
                for (index, fd) in list {
                    let fd = std::sync::Arc::try_unwrap(fd).map_err(|_| {
                        Error::Init("sync channel: a mount source fd is shared".into())
                    })?;
                    if !plan.rootfs.set_bind_source(index, fd) {
                        return Err(Error::Init(format!(
                            "sync channel: mount {index} has no bind source"
                        )));
                    }
                }
            }
            Some(Msg::MountSourcesDone) => return Ok(()),
            Some(Msg::Error(e)) => return Err(Error::from_child(e)),
            other => {
                return Err(Error::Init(format!(
                    "sync channel: expected mount sources from the parent, got {other:?}"
                )))
            }
        }
    }
}

/// Right after fork: closes every fd of the caller that the container's processes do
/// not need (all but stdio, the `--preserve-fds` range and `keep`). An embedding
/// program's fds would otherwise live in the init for its whole setup, close-on-exec
/// or not (a write fd held there makes another program's execve of that file fail
/// with ETXTBSY).
pub(crate) fn close_others(mut keep: Vec<i32>, preserve_fds: u32) -> Result<()> {
    let first = 3 + preserve_fds as i32;
    keep.retain(|&fd| fd >= first);
    keep.sort_unstable();
    keep.dedup();
    let mut next = first;
    for fd in keep.into_iter().chain(std::iter::once(i32::MAX)) {
        if fd > next {
            let last = if fd == i32::MAX {
                u32::MAX
            } else {
                (fd - 1) as u32
            };
            // SAFETY: closes a range of descriptor numbers; none of them is used by
            // anything this process still holds (the plan's fds are in `keep`).
            if unsafe { libc::syscall(libc::SYS_close_range, next as u32, last, 0u32) } != 0 {
                return Err(Error::sys(
                    "close_range",
                    "the caller's descriptors",
                    nix::Error::last(),
                ));
            }
        }
        next = fd.saturating_add(1);
    }
    Ok(())
}

/// The intermediate's common part (create and exec): joins the container's cgroups
/// without the global lock (see berth_cgroups::SelfAttach), enters the namespaces
/// with `enter`, and clones the child with CLONE_PARENT, into the cgroup2 directory
/// when there is one. Returns as fork does: the pid, or 0 in the child.
///
/// # Safety
/// The caller must be single-threaded (a child of fork).
pub(crate) unsafe fn join_enter_clone(
    join: &super::plan::CgroupJoin,
    user_ns: bool,
    enter: impl FnOnce() -> Result<()>,
    what: &str,
) -> Result<i32> {
    for tasks in &join.tasks {
        write_file(tasks, b"0")?;
    }
    // CLONE_INTO_CGROUP checks the caller's permission on the cgroup: in a user
    // namespace (new or joined) we may have lost it, so join before entering.
    let mut into = None;
    if let Some(dir) = &join.unified {
        if user_ns {
            join_procs(dir)?;
        } else {
            into = Some(dir);
        }
    }
    enter()?;
    // SAFETY: the caller is single-threaded.
    match unsafe { super::clone::clone_parent(into.map(|d| d.as_raw_fd())) } {
        Ok(pid) => Ok(pid),
        // No clone3 or no CLONE_INTO_CGROUP (kernels before 5.7): join the cgroup2
        // directory the slow way and fork plainly.
        Err(nix::Error::ENOSYS | nix::Error::EINVAL | nix::Error::E2BIG) if into.is_some() => {
            if let Some(dir) = into {
                join_procs(dir)?;
            }
            // SAFETY: as above.
            unsafe { super::clone::clone_parent(None) }.map_err(|e| Error::sys("clone", what, e))
        }
        Err(e) => Err(Error::sys("clone3", what, e)),
    }
}

/// The init: becomes the container and finally its process.
fn init(plan: &InitPlan, ch: &Channel) -> ! {
    if let Err(e) = setup(plan, ch) {
        let _ = ch.send(&Msg::Error(e.to_string()));
        exit(1)
    }
    // The parent has recorded us as created; from here on errors go to our stderr.
    // (The channel fd is close-on-exec.)
    let e = match wait_for_start(plan).and_then(|()| finish(plan)) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let msg = format!("berth init: {e}\n");
    // SAFETY: writing a byte buffer to fd 2.
    unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
    // And for `start`, which reads it once we are gone.
    if let Some(fd) = plan.exec_error.borrow_mut().take() {
        let _ = nix::unistd::write(&fd, e.to_string().as_bytes());
    }
    exit(127)
}

/// Everything up to "ready": the container's environment, as `create` promises it.
fn setup(plan: &InitPlan, ch: &Channel) -> Result<()> {
    plan.ns.enter_cgroup()?;
    plan.process.sched.apply_initial()?;
    nix::unistd::setsid().map_err(|e| Error::sys("setsid", "container init", e))?;
    if plan.new_keyring {
        join_session_keyring(&plan.id)?;
    }
    if let Some(h) = &plan.hostname {
        nix::unistd::sethostname(h.to_str().unwrap_or_default())
            .map_err(|e| Error::sys("sethostname", h.to_string_lossy(), e))?;
    }
    if let Some(d) = &plan.domainname {
        // SAFETY: a valid C string and its length.
        if unsafe { libc::setdomainname(d.as_ptr(), d.as_bytes().len()) } != 0 {
            return Err(Error::sys(
                "setdomainname",
                d.to_string_lossy(),
                nix::Error::last(),
            ));
        }
    }
    let stamps = plan.stamps.as_ref();
    plan.rootfs.prepare_traced(stamps)?;
    stamp(stamps, Phase::Hooks, || run_hooks(plan, ch))?;
    stamp(stamps, Phase::Pivot, || plan.rootfs.pivot())?;
    stamp(stamps, Phase::Finalize, || {
        if let Some(sock) = plan.console.borrow_mut().take() {
            let p = &plan.process;
            let (name, slave) = crate::console::setup(&sock, p.console_size, p.user.uid, false)?;
            plan.rootfs.bind_console(&name, slave.as_fd())?;
        }
        make_cwd(&plan.process)?;
        write_sysctls(&plan.sysctl)?;
        plan.rootfs.finalize()
    })?;
    if let Some(s) = stamps {
        s.begin(Phase::Process);
    }
    for r in &plan.process.rlimits {
        r.apply()?;
    }
    plan.process.apply_attributes()?;
    enter_cwd(&plan.process)?;
    plan.process
        .exec
        .resolve()
        .map(|i| EXEC_INDEX.with(|x| x.set(i)))?;
    prepare_exec(
        &plan.process,
        plan.preserve_fds,
        !plan.start_container_hooks.is_empty(),
    )?;
    drop_privileges(&plan.process, ch, stamps)?;
    if let Some(s) = stamps {
        s.end(Phase::Process);
    }
    // From here on the user's filter may be loaded (without no_new_privs): only
    // write (this message), read (the exec fifo), the startContainer hooks and execve
    // follow, as in runc.
    ch.send(&Msg::Ready)
}

/// The runtime hooks (the parent runs them while we wait) and the createContainer
/// hooks, which we run; keeps the `created` state for the startContainer hooks.
fn run_hooks(plan: &InitPlan, ch: &Channel) -> Result<()> {
    if !plan.hooks_round_trip() {
        return Ok(());
    }
    ch.send(&Msg::RuntimeHooks)?;
    let (creating, created) = match ch.recv()? {
        Some(Msg::HooksDone { creating, created }) => (creating, created),
        Some(Msg::Error(e)) => return Err(Error::from_child(e)),
        other => {
            return Err(Error::Init(format!(
                "expected the runtime hooks to finish, got {other:?}"
            )))
        }
    };
    hooks::run_all(
        "createContainer",
        &plan.create_container_hooks,
        &creating,
        Some(&plan.rootfs_dir),
        hooks::Inherit::Process(&plan.process.exec.env),
    )?;
    STARTING_CREATED.with(|s| *s.borrow_mut() = created);
    Ok(())
}

/// What the process inherits from its runtime besides credentials, set before any
/// seccomp filter is loaded so that the profile need not allow berth's own syscalls
/// (close_range, umask, rt_sigaction, ...): every fd above the preserved ones becomes
/// close-on-exec, the umask is the process's, and signals are reset. With
/// startContainer hooks to run, SIGPIPE stays ignored until they are done (see
/// [`finish`]).
pub(crate) fn prepare_exec(p: &ProcessPlan, preserve_fds: u32, hooks_follow: bool) -> Result<()> {
    close_fds(preserve_fds)?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
        p.user.umask as libc::mode_t,
    ));
    reset_signals(hooks_follow);
    Ok(())
}

/// HOME from the passwd file when needed, LSM labels and the final CPU affinity,
/// then user, capabilities, no_new_privs and
/// seccomp, in runc's order: without no_new_privs, loading a filter needs
/// CAP_SYS_ADMIN, so the filter goes in before the capabilities are dropped, and only
/// what runc also does there runs under it (prctl, capget/capset, setgroups, setgid,
/// setuid, chdir); with no_new_privs, the filter goes in as late as possible (see
/// [`load_seccomp_last`]), unless it has NOTIFY rules: its listener must reach the
/// parent during create, so it goes in here, last.
pub(crate) fn drop_privileges(
    p: &ProcessPlan,
    ch: &Channel,
    stamps: Option<&crate::trace::ChildStamps>,
) -> Result<()> {
    let load_seccomp = || -> Result<()> {
        if let Some(filter) = &p.seccomp {
            if let Some(listener) = stamp(stamps, Phase::Seccomp, || filter.load())? {
                ch.send(&Msg::SeccompListener(Some(std::sync::Arc::new(listener))))?;
            }
        }
        Ok(())
    };
    // As root and before any filter is loaded: the passwd file may be root's only, and
    // reading it is berth's business, not the profile's.
    p.exec.find_home(p.user.uid)?;
    p.lsm.apply()?;
    p.sched.apply_final()?;
    // setgroups is refused in a user namespace whose setgroups file says deny. Read
    // before the filter: the profile need not allow open and read of /proc for it.
    let setgroups_allowed =
        std::fs::read_to_string("/proc/self/setgroups").map_or(true, |s| s.trim() != "deny");
    if !p.no_new_privileges {
        load_seccomp()?;
    }
    if let Some(caps) = &p.caps {
        caps.apply_bounding()?;
    }
    set_keepcaps(true)?;
    p.user.apply(setgroups_allowed)?;
    set_keepcaps(false)?;
    if let Some(caps) = &p.caps {
        caps.apply_sets()?;
    }
    if p.no_new_privileges {
        // SAFETY: prctl with constant arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(Error::sys(
                "prctl",
                "PR_SET_NO_NEW_PRIVS",
                nix::Error::last(),
            ));
        }
    }
    // A cwd that root could not enter (e.g. on a root-squashing mount) is entered as
    // the process's user, as runc does.
    if CWD_DEFERRED.with(|d| d.get()) {
        nix::unistd::chdir(p.cwd.as_c_str())
            .map_err(|e| Error::sys("chdir", p.cwd.to_string_lossy(), e))?;
    }
    if p.no_new_privileges && p.seccomp.as_ref().is_some_and(|f| f.notify) {
        load_seccomp()?;
    }
    Ok(())
}

/// The filter that drop_privileges deferred (no_new_privs set, no NOTIFY rule): for
/// `exec`, the last step before execve; for the init, the first step after `start`,
/// before the startContainer hooks, which run under the filter as runc runs them.
pub(crate) fn load_seccomp_last(p: &ProcessPlan) -> Result<()> {
    match &p.seccomp {
        Some(filter) if p.no_new_privileges && !filter.notify => filter.load().map(drop),
        _ => Ok(()),
    }
}

thread_local! {
    static CWD_DEFERRED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Creates process.cwd (and its parents) inside the new root, mode 0755, as runc does.
fn make_cwd(p: &ProcessPlan) -> Result<()> {
    let cwd = std::path::Path::new(std::ffi::OsStr::from_bytes(p.cwd.as_bytes()));
    std::fs::create_dir_all(cwd).map_err(|e| Error::io("create cwd", cwd, e))
}

/// Enters process.cwd before privileges are dropped and before seccomp, then checks
/// with getcwd that it is inside the root: a cwd reached through a leaked directory fd
/// (CVE-2024-21626) has no path there.
pub(crate) fn enter_cwd(p: &ProcessPlan) -> Result<()> {
    match nix::unistd::chdir(p.cwd.as_c_str()) {
        Ok(()) => {
            nix::unistd::getcwd().map_err(|e| {
                Error::sys("getcwd", "process.cwd is not inside the container root", e)
            })?;
        }
        Err(nix::Error::EACCES | nix::Error::EPERM) => CWD_DEFERRED.with(|d| d.set(true)),
        Err(e) => return Err(Error::sys("chdir", p.cwd.to_string_lossy(), e)),
    }
    Ok(())
}

/// Default dispositions and an empty signal mask: the container process must not
/// inherit what the runtime ignores or blocks (Rust ignores SIGPIPE; `berth run`
/// blocks the signals it forwards). With `keep_sigpipe_ignored`, SIGPIPE is ignored
/// (whatever the caller had) for the startContainer hooks, whose stdin pipe may be
/// closed before the state is written.
fn reset_signals(keep_sigpipe_ignored: bool) {
    for sig in 1..libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        let how = if sig == libc::SIGPIPE && keep_sigpipe_ignored {
            libc::SIG_IGN
        } else {
            libc::SIG_DFL
        };
        // SAFETY: setting a disposition; invalid numbers just fail with EINVAL.
        unsafe { libc::signal(sig, how) };
    }
    let empty = nix::sys::signal::SigSet::empty();
    let _ = nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&empty),
        None,
    );
}

thread_local! {
    static STARTING_CREATED: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    static EXEC_INDEX: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Blocks until `berth start` writes to the exec fifo: one blocking read(2), which
/// may run under the user's filter (runc writes to its fifo there).
fn wait_for_start(plan: &InitPlan) -> Result<()> {
    // Kept open (it is close-on-exec): `start` waits for it to close at execve.
    let guard = plan.fifo.borrow();
    let fifo = guard
        .as_ref()
        .ok_or_else(|| Error::Init("exec fifo is not open".into()))?;
    let mut buf = [0u8; 1];
    loop {
        // We hold a write end too, so this never sees end-of-file.
        match nix::unistd::read(fifo, &mut buf) {
            Ok(1) => return Ok(()),
            Ok(_) | Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(Error::sys("read", "exec fifo", e)),
        }
    }
}

/// After start: the deferred seccomp filter, the startContainer hooks under it (as
/// runc, with the process's credentials), then execve. The process's fds, umask and
/// signals were set up before any filter (prepare_exec); execve makes the process
/// dumpable again by itself.
fn finish(plan: &InitPlan) -> Result<std::convert::Infallible> {
    let p = &plan.process;
    load_seccomp_last(p)?;
    if !plan.start_container_hooks.is_empty() {
        let created = STARTING_CREATED.with(|s| s.take());
        // In the process's cwd, entered during setup (as runc's finalizeNamespace),
        // and a hook without `env` gets the process's, HOME included as runc has set
        // it by then.
        let env = p.exec.envp();
        hooks::run_all(
            "startContainer",
            &plan.start_container_hooks,
            &created,
            None,
            hooks::Inherit::Process(&env),
        )?;
        // Ignored for the hooks (prepare_exec); the process gets the default.
        // SAFETY: setting the default disposition of a valid signal.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    Err(p.exec.exec(EXEC_INDEX.with(|x| x.get())))
}

/// Marks every fd from 3 + preserve_fds up close-on-exec and clears the flag on the
/// preserved ones, so exactly stdio and the preserved fds reach the process.
fn close_fds(preserve: u32) -> Result<()> {
    for fd in 3..3 + preserve as i32 {
        // SAFETY: fcntl on an fd number; an fd that is not open gives EBADF, ignored.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    }
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC changes flags only.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3 + preserve,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r != 0 {
        return Err(Error::sys(
            "close_range",
            "fds of the container process",
            nix::Error::last(),
        ));
    }
    Ok(())
}

fn set_keepcaps(on: bool) -> Result<()> {
    // SAFETY: prctl with constant arguments.
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, on as libc::c_ulong, 0, 0, 0) } != 0 {
        return Err(Error::sys("prctl", "PR_SET_KEEPCAPS", nix::Error::last()));
    }
    Ok(())
}

/// Non-dumpable while berth's own image is in the process: a container process cannot
/// open /proc/<pid>/exe (the berth binary) or the fds of a process in setup
/// (CVE-2019-5736). execve makes the process dumpable again (the kernel decides
/// dumpability afresh for the new image), so nothing undoes this by hand, and no
/// prctl runs under the user's filter.
pub(crate) fn set_dumpable_off() {
    set_dumpable(false);
}

fn set_dumpable(on: bool) {
    // SAFETY: prctl with constant arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, on as libc::c_ulong, 0, 0, 0) };
}

/// A new session keyring, so containers do not share the caller's keys.
fn join_session_keyring(id: &str) -> Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_ulong = 1;
    let name = std::ffi::CString::new(format!("_ses.{id}")).unwrap_or_default();
    // SAFETY: keyctl with a valid C string.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if r < 0 {
        let e = nix::Error::last();
        // Kernels without keyrings, or where seccomp/keyring quotas refuse: runc ignores ENOSYS.
        if e != nix::Error::ENOSYS {
            return Err(Error::sys("keyctl", "join session keyring", e));
        }
    }
    Ok(())
}

/// Writes `linux.sysctl` under the container's /proc/sys, which must be procfs, and
/// each key is resolved beneath it with no symlink and no mount crossing: a bind or a
/// symlink placed there cannot redirect the write to another file (CVE-2025-52881).
fn write_sysctls(sysctl: &[(String, String)]) -> Result<()> {
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
    if sysctl.is_empty() {
        return Ok(());
    }
    let dir = nix::fcntl::open(
        c"/proc/sys",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| Error::sys("open", "/proc/sys", e))?;
    let fs = nix::sys::statfs::fstatfs(&dir).map_err(|e| Error::sys("fstatfs", "/proc/sys", e))?;
    if fs.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC {
        return Err(Error::Init(
            "sysctl: /proc/sys in the container is not procfs".into(),
        ));
    }
    for (path, value) in sysctl {
        let rel = path.trim_start_matches("/proc/sys/");
        let how = OpenHow::new()
            .flags(OFlag::O_WRONLY | OFlag::O_CLOEXEC)
            .resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_SYMLINKS
                    | ResolveFlag::RESOLVE_NO_XDEV,
            );
        let fd = openat2(&dir, rel, how).map_err(|e| Error::sys("open sysctl", path, e))?;
        nix::unistd::write(&fd, value.as_bytes())
            .map_err(|e| Error::sys("write sysctl", path, e))?;
    }
    Ok(())
}

/// Moves us into the cgroup2 directory `dir` (an fd) with the slow cgroup.procs write.
fn join_procs(dir: &std::os::fd::OwnedFd) -> Result<()> {
    let fd = nix::fcntl::openat(
        dir,
        c"cgroup.procs",
        nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| {
        Error::sys(
            "open",
            "cgroup.procs of the container's cgroup2 directory",
            e,
        )
    })?;
    nix::unistd::write(&fd, b"0").map_err(|e| {
        Error::sys(
            "write",
            "cgroup.procs of the container's cgroup2 directory",
            e,
        )
    })?;
    Ok(())
}

/// Writes a small value to a (cgroup) file given as a C path.
fn write_file(path: &std::ffi::CStr, value: &[u8]) -> Result<()> {
    let fd = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| Error::sys("open", path.to_string_lossy(), e))?;
    nix::unistd::write(&fd, value).map_err(|e| Error::sys("write", path.to_string_lossy(), e))?;
    Ok(())
}

pub(crate) fn exit(code: i32) -> ! {
    // SAFETY: _exit ends the process without running the parent's atexit handlers or
    // flushing its stdio buffers, which were copied by fork and are not ours.
    unsafe { libc::_exit(code) }
}
