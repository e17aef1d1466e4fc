//! `exec`: a new process in a running (or created) container. It joins every
//! namespace of the container's init (user first) and its cgroup, then gets the
//! process's own user, capabilities, no_new_privs, rlimits and the container's seccomp
//! filter, exactly as the init did, and execs.
//!
//! Same shape as create: the parent forks an intermediate that enters the namespaces
//! (pid and time apply to children) and clones the process with CLONE_PARENT, so the
//! caller can wait for it. The process reports setup errors over the sync channel;
//! the channel closing on execve (it is close-on-exec) means success.

use crate::console::Console;
use crate::container::{Container, ExitStatus};
use crate::error::{Error, Result};
use crate::process::ProcessPlan;
use crate::spawn::channel::{self, Channel, Msg};
use crate::spawn::init;
use crate::state::Status;
use crate::stdio::Stdio;
use crate::wait::WaitHandle;
use nix::sched::CloneFlags;
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult, Pid};
use oci_spec::runtime::Process;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

/// Options of `exec` (runc's flags beyond the process itself, and the embedder's
/// stdio).
#[derive(Debug, Default)]
pub struct ExecOptions {
    /// Where the pty master goes for `process.terminal` (runc's `--console-socket`,
    /// or back to the caller).
    pub console: Option<Console>,
    /// `--pid-file`.
    pub pid_file: Option<PathBuf>,
    /// `--preserve-fds N`.
    pub preserve_fds: u32,
    /// `--ignore-paused`.
    pub ignore_paused: bool,
    /// `--cgroup [controller[,controller]:]path` (repeatable): existing sub-cgroups of
    /// the container's cgroup to run the process in; without a controller the path is
    /// used in every hierarchy.
    pub sub_cgroups: Vec<String>,
    /// The process's stdin, stdout and stderr (inherited from the caller by default).
    pub stdio: Stdio,
    /// With a terminal: its output is passed on untranslated (ONLCR off before the
    /// master leaves), for a caller that relays it, as runc's foreground `exec -t`.
    pub terminal_as_written: bool,
}

/// A process started by `exec`: a child of the process that called `exec`.
#[derive(Debug)]
pub struct ExecProcess {
    pid: i32,
    handle: Option<WaitHandle>,
    pty_master: Option<OwnedFd>,
}

impl ExecProcess {
    /// Its host pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Waits for it (the caller of `exec` is its parent).
    pub fn wait(&self) -> Result<ExitStatus> {
        match &self.handle {
            Some(h) => h.wait().map(|e| e.status),
            None => crate::container::wait_pid(self.pid, "exec process"),
        }
    }

    /// A handle to wait for its exit without polling (see [`WaitHandle`]); its OOM
    /// baseline is the container's count when the process was started. `None` on a
    /// kernel without pidfd_open (before 5.3).
    pub fn wait_handle(&self) -> Result<WaitHandle> {
        match &self.handle {
            Some(h) => h.try_clone(),
            None => Err(Error::sys(
                "pidfd_open",
                format!("exec process {}", self.pid),
                nix::Error::ENOSYS,
            )),
        }
    }

    /// The pty master of a `process.terminal` process started with
    /// [`Console::InProcess`]; `None` otherwise, or once taken.
    pub fn take_pty_master(&mut self) -> Option<OwnedFd> {
        self.pty_master.take()
    }
}

/// The namespace files of the init to join, user first, in /proc/<pid>/ns names.
const KINDS: [(&str, CloneFlags); 8] = [
    ("user", CloneFlags::CLONE_NEWUSER),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("time", CloneFlags::from_bits_retain(libc::CLONE_NEWTIME)),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

struct ExecPlan {
    process: ProcessPlan,
    /// (fd, flag, path) of each namespace that differs from ours.
    join: Vec<(OwnedFd, CloneFlags, String)>,
    console: Option<OwnedFd>,
    /// The caller's fds for the process's 0, 1, 2 (-1: inherit).
    stdio: [std::os::fd::RawFd; 3],
    /// ExecOptions::terminal_as_written.
    console_as_written: bool,
    preserve_fds: u32,
    /// The container's `process.oomScoreAdj`: runc gives it to every exec'd process,
    /// whatever the process.json says.
    oom_score_adj: Option<i32>,
    /// How the intermediate joins the container's cgroups itself (empty with
    /// `--cgroup` sub-cgroups: then the parent places it).
    cgroup_join: crate::spawn::plan::CgroupJoin,
    /// The init's root, for a container that shares our mount namespace: joining
    /// its namespaces does not enter its root, so the process chroots there itself.
    root: Option<OwnedFd>,
}

impl Container {
    /// Starts `process` inside the container.
    pub fn exec(&self, process: &Process, options: &ExecOptions) -> Result<ExecProcess> {
        // Shared until the process is in the container's cgroup: a `delete` waits for
        // that, then kills it with the rest, so it never outlives the container.
        let mut lock = Some(self.lock(false)?);
        let status = self.status();
        if status == Status::Paused {
            // Its process would wait in the frozen cgroup until a resume: not with
            // the lock held, or a `delete --force` would wait as long.
            lock = None;
        }
        match status {
            Status::Created | Status::Running => {}
            Status::Paused if options.ignore_paused => {}
            _ => {
                return Err(
                    self.bad_status(status, "cannot exec in a container that is not running")
                )
            }
        }
        let seccomp = self
            .state
            .config
            .linux()
            .as_ref()
            .and_then(|l| l.seccomp().as_ref());
        crate::userns_checks::check_user(
            process.user(),
            self.state.config.linux().as_ref(),
            !nix::unistd::geteuid().is_root(),
        )?;
        let mut process_plan = ProcessPlan::from_process(process, seccomp)?
            .with_container_linux(self.state.config.linux().as_ref())?;
        if self.state.seccomp_wait_killable_recv {
            if let Some(filter) = process_plan.seccomp.as_mut() {
                filter.set_wait_killable_recv();
            }
        }
        // runc ignores a console socket given for a process without a terminal.
        let terminal = process.terminal().unwrap_or(false);
        let (console, console_receiver) =
            crate::console::plan(options.console.as_ref().filter(|_| terminal), terminal)?;
        let mut plan = ExecPlan {
            process: process_plan,
            join: namespaces_of(self.state.pid)?,
            console,
            stdio: options.stdio.raw(),
            console_as_written: options.terminal_as_written,
            preserve_fds: options.preserve_fds,
            oom_score_adj: self
                .state
                .config
                .process()
                .as_ref()
                .and_then(|p| p.oom_score_adj()),
            cgroup_join: Default::default(),
            root: None,
        };
        if !plan
            .join
            .iter()
            .any(|(_, f, _)| *f == CloneFlags::CLONE_NEWNS)
            && !self.has_mount_namespace()
        {
            let path = format!("/proc/{}/root", self.state.pid);
            let fd = nix::fcntl::open(
                path.as_str(),
                nix::fcntl::OFlag::O_PATH
                    | nix::fcntl::OFlag::O_DIRECTORY
                    | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|e| Error::sys("open", &path, e))?;
            plan.root = Some(fd);
        }
        let cgroup = self.cgroup()?;
        if let (Some(cg), true) = (&cgroup, options.sub_cgroups.is_empty()) {
            let attach = cg.self_attach().for_exec(self.state.pid);
            plan.cgroup_join = crate::spawn::plan::CgroupJoin::new(attach)?;
        }
        let (parent_ch, child_ch) = channel::pair()?;
        // SAFETY: the child runs only `intermediate`, which never returns.
        let middle = match unsafe { fork() }.map_err(|e| Error::sys("fork", "exec", e))? {
            ForkResult::Child => {
                drop(parent_ch);
                intermediate(&plan, child_ch)
            }
            ForkResult::Parent { child } => child,
        };
        drop(child_ch);
        drop(plan);
        let kill_middle = |e: Error| {
            let _ = nix::sys::signal::kill(middle, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(middle, None);
            e
        };
        if let Some(cg) = cgroup.as_ref().filter(|_| !options.sub_cgroups.is_empty()) {
            join_sub_cgroups(&cg.state(), &options.sub_cgroups, middle.as_raw())
                .map_err(kill_middle)?;
        } else if !options.sub_cgroups.is_empty() {
            return Err(kill_middle(Error::Config(
                "--cgroup: the container has no cgroup".into(),
            )));
        }
        parent_ch.send(&Msg::Go).map_err(kill_middle)?;
        let mut inbox = crate::spawn::inbox::Inbox::new(&parent_ch, Some(middle), &self.state.id);
        let first = inbox.recv();
        // Once the inbox has collected the intermediate (an early message of the
        // process made it do so), its pid may already belong to another process:
        // only an intermediate not yet collected is ours to kill and wait for.
        let reaped = inbox.intermediate_reaped();
        let fail = |e: Error| if reaped { e } else { kill_middle(e) };
        let pid = match first {
            Ok(Some(Msg::Pid(p))) => p,
            Err(e) => return Err(fail(e)),
            // A pid namespace whose init has died refuses new members with ENOMEM.
            Ok(Some(Msg::Error(_))) if !self.init_alive() => {
                return Err(fail(
                    self.bad_status(Status::Stopped, "the container stopped during exec"),
                ))
            }
            Ok(Some(Msg::Error(e))) => return Err(fail(Error::from_child(e))),
            Ok(other) => {
                return Err(fail(Error::Init(format!(
                    "exec: unexpected {other:?} from the intermediate"
                ))))
            }
        };
        inbox.reap_intermediate();
        drop(lock.take());
        // As for the init: opened while the process, our child, cannot have been
        // reaped. The OOM baseline is the container's count now.
        let handle = WaitHandle::open(
            pid,
            format!("exec process of container {}", self.state.id),
            self.state.cgroup.clone(),
            self.state
                .cgroup
                .as_ref()
                .and_then(berth_cgroups::oom_kills),
        )
        .ok();
        // The process closes the channel by execve; an error message means setup
        // failed; a seccomp listener fd (SCMP_ACT_NOTIFY) goes to the listener.
        loop {
            match inbox.recv()? {
                None => break,
                Some(Msg::Error(e)) => {
                    let _ = waitpid(Pid::from_raw(pid), None);
                    return Err(Error::from_child(e));
                }
                Some(Msg::SeccompListener(Some(fd))) => {
                    let sc = seccomp.ok_or_else(|| {
                        Error::Init("exec: a seccomp listener fd without a filter".into())
                    })?;
                    let path = sc.listener_path().clone().ok_or_else(|| {
                        Error::Config(
                            "seccomp: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath".into(),
                        )
                    })?;
                    let metadata = sc.listener_metadata().clone().unwrap_or_default();
                    // The state is the container's (its pid the init's, as runc
                    // sends it); the message's own pid is the exec'd process.
                    crate::spawn::send_seccomp_listener(
                        &path,
                        &fd,
                        pid,
                        &self.state,
                        &metadata,
                        Status::Running,
                    )?;
                }
                Some(other) => {
                    return Err(Error::Init(format!(
                        "exec: unexpected {other:?} from the process"
                    )))
                }
            }
        }
        // Sent before execve, so queued by now (or the process is gone: an error).
        let pty_master = match &console_receiver {
            Some(ours) => Some(crate::console::recv_master(ours)?),
            None => None,
        };
        if let Some(f) = &options.pid_file {
            crate::spawn::write_pid_file(f, pid)?;
        }
        Ok(ExecProcess {
            pid,
            handle,
            pty_master,
        })
    }
}

/// Resolves `--cgroup` values against the container's cgroup directories: (directory
/// key, sub-path) pairs, the key `None` standing for every directory. As runc, the
/// path is cleaned lexically (`a/../b` is `b`, `/` and `` the container's own cgroup)
/// and may not climb above the container's cgroup.
fn parse_sub_cgroups(specs: &[String]) -> Result<Vec<(Option<Vec<String>>, String)>> {
    let mut out = Vec::new();
    for spec in specs {
        let (ctrls, path) = match spec.split_once(':') {
            Some((c, p)) => (
                Some(c.split(',').map(str::to_string).collect::<Vec<_>>()),
                p,
            ),
            None => (None, spec.as_str()),
        };
        let mut parts: Vec<&str> = Vec::new();
        for c in path.split('/') {
            match c {
                "" | "." => {}
                ".." => {
                    if parts.pop().is_none() {
                        return Err(Error::SubCgroup(format!(
                            "--cgroup: {path} is not a sub cgroup path"
                        )));
                    }
                }
                c => parts.push(c),
            }
        }
        if ctrls.is_none() && specs.len() > 1 {
            return Err(Error::Config(format!(
                "--cgroup {spec:?}: a path without a controller must be the only --cgroup"
            )));
        }
        out.push((ctrls, parts.join("/")));
    }
    Ok(out)
}

/// Moves `pid` into the cgroups `--cgroup` names: in each of the container's
/// hierarchies the sub-cgroup given for it, else the container's own cgroup. As in
/// runc, nothing is joined first (on cgroup v2 the container's own cgroup may take no
/// processes once a domain controller is on, and `--cgroup /` then fails with EBUSY
/// instead of falling back to the init's cgroup). Each sub-cgroup must exist. Errors
/// use runc's words (`unknown controller X`, `error adding pid N to cgroups: ...`),
/// which runc's own tests and scripts match on.
fn join_sub_cgroups(state: &berth_cgroups::CgroupState, specs: &[String], pid: i32) -> Result<()> {
    // cgroup v2 (either driver): one directory, which every controller names.
    let unified = state.paths.len() == 1 && state.paths.contains_key("");
    let mut targets = state.paths.clone();
    for (ctrls, sub) in parse_sub_cgroups(specs)? {
        if let Some(names) = &ctrls {
            for n in names {
                let key = if unified { "" } else { n.as_str() };
                if !state.paths.contains_key(key) {
                    return Err(Error::SubCgroup(format!(
                        "--cgroup: unknown controller {n} (the container has no {n} cgroup)"
                    )));
                }
            }
        }
        for (key, dir) in &state.paths {
            // Co-mounted controllers (cpu,cpuacct) share a directory: naming one
            // moves the process in that hierarchy, so every key of it follows.
            let wanted = match &ctrls {
                None => true,
                Some(_) if unified => true,
                Some(names) => names
                    .iter()
                    .any(|n| state.paths.get(n.as_str()) == Some(dir)),
            };
            if wanted && !sub.is_empty() {
                targets.insert(key.clone(), dir.join(&sub));
            } else if wanted {
                targets.insert(key.clone(), dir.clone());
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for target in targets.values() {
        if !seen.insert(target) {
            continue;
        }
        let procs = target.join("cgroup.procs");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&procs)
            .and_then(|mut f| std::io::Write::write_all(&mut f, pid.to_string().as_bytes()))
            .map_err(|e| {
                Error::SubCgroup(format!(
                    "error adding pid {pid} to cgroups: write {}: {}",
                    procs.display(),
                    crate::error::os_reason(&e)
                ))
            })?;
    }
    Ok(())
}

impl Container {
    /// Whether the config gives the container a mount namespace (new or joined).
    fn has_mount_namespace(&self) -> bool {
        self.state
            .config
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .is_some_and(|ns| {
                ns.iter()
                    .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Mount)
            })
    }
}

/// Opens the init's namespaces that differ from ours.
fn namespaces_of(pid: i32) -> Result<Vec<(OwnedFd, CloneFlags, String)>> {
    let mut out = Vec::new();
    for (kind, flag) in KINDS {
        let theirs = format!("/proc/{pid}/ns/{kind}");
        let Ok(their_link) = std::fs::read_link(&theirs) else {
            continue;
        };
        if std::fs::read_link(format!("/proc/self/ns/{kind}")).is_ok_and(|ours| ours == their_link)
        {
            continue;
        }
        let fd = nix::fcntl::open(
            theirs.as_str(),
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| Error::sys("open", &theirs, e))?;
        out.push((fd, flag, theirs));
    }
    Ok(out)
}

fn intermediate(plan: &ExecPlan, ch: Channel) -> ! {
    let r = (|| -> Result<()> {
        crate::stdio::install(plan.stdio)?;
        let mut keep = vec![ch.as_raw_fd()];
        keep.extend(plan.join.iter().map(|(fd, _, _)| fd.as_raw_fd()));
        keep.extend(plan.console.iter().map(|fd| fd.as_raw_fd()));
        keep.extend(plan.cgroup_join.unified.iter().map(|fd| fd.as_raw_fd()));
        keep.extend(plan.root.iter().map(|fd| fd.as_raw_fd()));
        init::close_others(keep, plan.preserve_fds)?;
        ch.expect(&Msg::Go, "parent")?;
        init::set_dumpable_off();
        if let Some(adj) = plan.oom_score_adj {
            // Before a user namespace is joined, while still privileged in the host's.
            std::fs::write("/proc/self/oom_score_adj", adj.to_string())
                .map_err(|e| Error::io("write", "/proc/self/oom_score_adj", e))?;
        }
        let user_ns = plan
            .join
            .iter()
            .any(|(_, flag, _)| *flag == CloneFlags::CLONE_NEWUSER);
        // The cgroup namespace is entered by the process itself, after the clone
        // (clone3(CLONE_INTO_CGROUP) refuses a caller outside its cgroup namespace).
        let enter = || {
            for (fd, flag, path) in plan
                .join
                .iter()
                .filter(|(_, f, _)| *f != CloneFlags::CLONE_NEWCGROUP)
            {
                nix::sched::setns(fd, *flag).map_err(|e| Error::sys("setns", path, e))?;
            }
            Ok(())
        };
        // SAFETY: this process is single-threaded (a child of fork).
        let pid =
            unsafe { init::join_enter_clone(&plan.cgroup_join, user_ns, enter, "exec process")? };
        if pid == 0 {
            process(plan, &ch)
        }
        ch.send(&Msg::Pid(pid))
    })();
    match r {
        Ok(()) => init::exit(0),
        Err(e) => {
            let _ = ch.send(&Msg::Error(e.to_string()));
            init::exit(1)
        }
    }
}

fn process(plan: &ExecPlan, ch: &Channel) -> ! {
    let r = (|| -> Result<std::convert::Infallible> {
        for (fd, flag, path) in plan
            .join
            .iter()
            .filter(|(_, f, _)| *f == CloneFlags::CLONE_NEWCGROUP)
        {
            nix::sched::setns(fd, *flag).map_err(|e| Error::sys("setns", path, e))?;
        }
        if let Some(root) = &plan.root {
            nix::unistd::fchdir(root).map_err(|e| Error::sys("fchdir", "the init's root", e))?;
            nix::unistd::chroot(".").map_err(|e| Error::sys("chroot", "the init's root", e))?;
            nix::unistd::chdir("/").map_err(|e| Error::sys("chdir", "/", e))?;
        }
        // The namespace, root and cgroup fds have served: closed now, not at execve,
        // so that no fd of the host is open while the process sits in the container's
        // pid namespace (a container granted CAP_SYS_PTRACE could follow
        // /proc/<pid>/fd of it; conformance cve_2016_9962_exec_not_ptraceable).
        let mut keep = vec![ch.as_raw_fd()];
        keep.extend(plan.console.iter().map(|fd| fd.as_raw_fd()));
        init::close_others(keep, plan.preserve_fds)?;
        let p = &plan.process;
        p.sched.apply_initial()?;
        nix::unistd::setsid().map_err(|e| Error::sys("setsid", "exec process", e))?;
        if let Some(sock) = &plan.console {
            crate::console::setup(sock, p.console_size, p.user.uid, plan.console_as_written)?;
        }
        for r in &p.rlimits {
            r.apply()?;
        }
        p.apply_attributes()?;
        let index = p.exec.resolve()?;
        init::enter_cwd(p)?;
        // fds, umask and signals before any filter: under it only what runc's setns
        // init also does there (the privilege drop without no_new_privs) and execve.
        init::prepare_exec(p, plan.preserve_fds, false)?;
        init::drop_privileges(p, ch, None)?;
        init::load_seccomp_last(p)?;
        Err(p.exec.exec(index))
    })();
    let e = match r {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = ch.send(&Msg::Error(e.to_string()));
    init::exit(127)
}

#[cfg(test)]
mod tests {
    use super::parse_sub_cgroups;

    fn specs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn sub_cgroup_specs() {
        let p = parse_sub_cgroups(&specs(&["cpu,memory:a/b", "pids:/c"])).unwrap();
        assert_eq!(
            p[0].0.as_deref(),
            Some(&["cpu".to_string(), "memory".to_string()][..])
        );
        assert_eq!(p[0].1, "a/b");
        assert_eq!(p[1].1, "c");
        assert_eq!(parse_sub_cgroups(&specs(&["x"])).unwrap()[0].0, None);
        assert_eq!(parse_sub_cgroups(&specs(&["/"])).unwrap()[0].1, "");
        assert_eq!(parse_sub_cgroups(&specs(&["a/../b"])).unwrap()[0].1, "b");
        for bad in [
            &["../x"][..],
            &[".."],
            &["a", "pids:b"],
            &["pids:a/../../b"],
        ] {
            assert!(parse_sub_cgroups(&specs(bad)).is_err(), "{bad:?}");
        }
    }
}
