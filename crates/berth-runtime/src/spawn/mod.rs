//! The create path: prepare everything in the parent, fork the intermediate process
//! that enters the namespaces, let it clone the init as our sibling-turned-child
//! (CLONE_PARENT), answer the init's requests (uid/gid maps, runtime hooks) and
//! record the container once the init reports it is ready.
//!
//! Process layout (no re-exec of the berth binary):
//! ```text
//! parent (berth create) --fork--> intermediate: joins namespaces, unshares new ones
//!        ^                              |  clone(CLONE_PARENT)
//!        +------ child of parent ---- init: rootfs, hooks, pivot, console, sysctl,
//!                                          masked/readonly paths, fds, user,
//!                                          capabilities (seccomp on the way), waits
//!                                          for start, startContainer hooks, execve
//! ```
//! The intermediate is made with glibc's fork(), which resets the allocator's locks in
//! the child, so the child may allocate even when the embedding program is threaded.
//! In a user namespace the intermediate also asks the parent to open the bind mount
//! sources inside its new mount namespace (rootfs/sources.rs) and receives them as
//! fds; the init inherits them and binds each through /proc/self/fd, allocating
//! nothing for it.
//! The child never touches std's global locks (stdout, stderr, env): it reports over
//! the sync channel or writes to fd 2 directly.

pub(crate) mod channel;
mod clone;
mod id_maps;
pub(crate) mod inbox;
pub(crate) mod init;
pub(crate) mod plan;

use crate::bundle::Bundle;
use crate::container::Container;
use crate::error::{Error, Result};
use crate::hooks;
use crate::runtime::{CreateOptions, Runtime};
use crate::state::{Persisted, Status, EXEC_FIFO};
use crate::wait::WaitHandle;
use berth_cgroups::CgroupManager;
use channel::Msg;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult, Pid};
use std::path::{Path, PathBuf};

pub(crate) use plan::InitPlan;

/// Undoes a partial create: kills the init, detaches what it mounted in the runtime's
/// mount namespace, removes the cgroup and the state directory.
struct Undo<'a> {
    dir: PathBuf,
    cgroup: Option<&'a dyn CgroupManager>,
    pids: Vec<Pid>,
    shared_ns_mount: Option<crate::rootfs::SharedNsMount>,
    armed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        for pid in &self.pids {
            let _ = kill(*pid, Signal::SIGKILL);
            let _ = waitpid(*pid, None);
        }
        if let Some(m) = &self.shared_ns_mount {
            if let Err(e) = crate::rootfs::release_shared_ns(m) {
                tracing::warn!("cleanup after failed create: {e}");
            }
        }
        if let Some(cg) = self.cgroup {
            if let Err(e) = cg.destroy() {
                tracing::warn!("cleanup after failed create: {e}");
            }
        }
        let _ = crate::state_dir::remove(&self.dir);
    }
}

/// Creates container `id` from a checked bundle. With `write_config`, the bundle
/// directory is the container's state directory and gets a config.json of the spec
/// (an in-memory create: see [`Runtime::create_from_spec`]).
pub(crate) fn create(
    runtime: &Runtime,
    id: &str,
    bundle: Bundle,
    write_config: bool,
    options: &CreateOptions,
) -> Result<Container> {
    use crate::trace::{Mark, Phase};
    let t = options.trace.as_ref();
    crate::id::validate_id(id)?;
    let m = Mark::start(t);
    let cgroup = runtime.cgroup_for(&bundle.spec, id)?;
    let shared = Runtime::check_cgroup(cgroup.as_ref())?;
    m.end(Phase::Cgroup);
    let m = Mark::start(t);
    let dir = runtime.new_container_dir(id)?;
    let mut undo = Undo {
        dir: dir.clone(),
        cgroup: None,
        pids: Vec::new(),
        shared_ns_mount: None,
        armed: true,
    };

    // Crash safety: the state names every cgroup directory (with the parents mkdir
    // will add) before any is made, so that `delete --force` after a SIGKILL of this
    // process at any later point finds and removes them. The processes are found
    // through the cgroup: the intermediate joins it before it clones the init.
    if write_config {
        write_config_json(&dir, &bundle.spec)?;
    }
    m.end(Phase::StateWrite);
    let m = Mark::start(t);
    let fifo_path = dir.join(EXEC_FIFO);
    let mut plan = InitPlan::new(id, &bundle, options, &fifo_path, &cgroup.state().paths)?;
    let mut cgroup_state = cgroup.state();
    cgroup_state.shared = shared;
    let mut persisted = Persisted::new(id, &bundle, with_missing_parents(cgroup_state.clone()));
    // Without a mount namespace: what the rootfs is on before the bind below, so that
    // a bind made but not yet recorded is found on top of it.
    persisted.shared_ns_under = plan.rootfs.shared_ns_under()?;
    m.end(Phase::Plan);
    let m = Mark::start(t);
    persisted.save(&dir)?;
    m.end(Phase::StateWrite);
    let m = Mark::start(t);
    // A failed create must not kill the processes of a shared cgroup.
    if !shared {
        undo.cgroup = Some(cgroup.as_ref());
    }
    Runtime::setup_cgroup(cgroup.as_ref(), &bundle.spec)?;
    plan.cgroup_join = plan::CgroupJoin::new(cgroup.self_attach())?;

    let mut cgroup_state = cgroup.state();
    cgroup_state.shared = shared;
    let oom_before = berth_cgroups::oom_kills(&cgroup_state);
    persisted.cgroup = Some(cgroup_state);
    m.end(Phase::Cgroup);
    let m = Mark::start(t);
    // Recorded before anything is mounted under it, so that a delete after a crash
    // of this process finds it too.
    persisted.shared_ns_mount = plan.rootfs.bind_in_shared_ns()?;
    undo.shared_ns_mount = persisted.shared_ns_mount.clone();
    persisted.save(&dir)?;
    m.end(Phase::StateWrite);

    let m = Mark::start(t);
    let (parent_ch, child_ch) = channel::pair()?;
    // SAFETY: the child only runs `init::intermediate`, which never returns, and uses
    // only what `plan` prepared; glibc's fork keeps malloc usable in the child.
    let intermediate = match unsafe { fork() }.map_err(|e| Error::sys("fork", id, e))? {
        ForkResult::Child => {
            drop(parent_ch);
            init::intermediate(&plan, child_ch)
        }
        ForkResult::Parent { child } => child,
    };
    drop(child_ch);
    m.end(Phase::Fork);
    plan.close_parent_copies();
    undo.pids.push(intermediate);

    // The intermediate joins the cgroups itself (see berth_cgroups::SelfAttach); only a
    // driver that cannot say how is applied from here, with the slow cgroup.procs write.
    if plan.cgroup_join.is_empty() {
        cgroup.apply(intermediate.as_raw())?;
    }
    if let Some(uid) = cgroup_owner(&bundle.spec) {
        cgroup.delegate(uid)?;
    }
    parent_ch.send(&Msg::Go)?;

    let hooks = bundle.spec.hooks().clone().unwrap_or_default();
    let mut init_pid = None;
    let mut init_handle = None;
    let mut inbox = inbox::Inbox::new(&parent_ch, Some(intermediate), id);
    loop {
        let msg = inbox.recv();
        if inbox.intermediate_reaped() {
            undo.pids.retain(|p| *p != intermediate);
        }
        match msg? {
            Some(Msg::NeedMaps) => {
                plan.write_id_maps(intermediate)?;
                parent_ch.send(&Msg::MapsDone)?;
            }
            Some(Msg::NeedMountSources) => {
                let fds = plan
                    .rootfs
                    .open_bind_sources(intermediate.as_raw(), plan.plain_mount_sources)?;
                let mut fds = fds.into_iter().peekable();
                while fds.peek().is_some() {
                    let chunk = fds
                        .by_ref()
                        .take(channel::MOUNT_SOURCES_PER_MSG)
                        .map(|(i, fd)| (i, std::sync::Arc::new(fd)))
                        .collect();
                    parent_ch.send(&Msg::MountSources(chunk))?;
                }
                parent_ch.send(&Msg::MountSourcesDone)?;
            }
            Some(Msg::Pid(p)) => {
                let pid = Pid::from_raw(p);
                undo.pids.insert(0, pid);
                inbox.reap_intermediate();
                undo.pids.retain(|p| *p != intermediate);
                persisted.pid = p;
                persisted.pid_start_time = crate::container::proc_start_time(p).unwrap_or(0);
                init_pid = Some(pid);
                // Now, while the init (our child since CLONE_PARENT) cannot have been
                // reaped: the pidfd is then surely the init's. A kernel without
                // pidfd_open (before 5.3) leaves the container without a handle.
                init_handle = WaitHandle::open(
                    p,
                    format!("init of container {id}"),
                    persisted.cgroup.clone(),
                    oom_before,
                )
                .ok();
            }
            Some(Msg::RuntimeHooks) => {
                let creating = state_json(&persisted, Status::Creating);
                hooks::run_all(
                    "prestart",
                    hooks.prestart().as_deref().unwrap_or_default(),
                    &creating,
                    Some(&bundle.dir),
                    hooks::Inherit::Runtime,
                )?;
                hooks::run_all(
                    "createRuntime",
                    hooks.create_runtime().as_deref().unwrap_or_default(),
                    &creating,
                    Some(&bundle.dir),
                    hooks::Inherit::Runtime,
                )?;
                let created = state_json(&persisted, Status::Created);
                parent_ch.send(&Msg::HooksDone { creating, created })?;
            }
            Some(Msg::SeccompListener(Some(fd))) => {
                let state = bundle
                    .spec
                    .linux()
                    .as_ref()
                    .and_then(|l| l.seccomp().as_ref());
                let path = state.and_then(|s| s.listener_path().clone());
                let metadata = state
                    .and_then(|s| s.listener_metadata().clone())
                    .unwrap_or_default();
                match path {
                    Some(path) => send_seccomp_listener(
                        &path,
                        &fd,
                        persisted.pid,
                        &persisted,
                        &metadata,
                        Status::Creating,
                    )?,
                    None => {
                        return Err(Error::Config(
                            "seccomp: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath".into(),
                        ))
                    }
                }
            }
            Some(Msg::Ready) => break,
            Some(Msg::Error(e)) => return Err(Error::from_child(e)),
            Some(other) => {
                return Err(Error::Init(format!(
                    "unexpected message {other:?} during create"
                )))
            }
            None => {
                return Err(Error::Init(match init_pid {
                    None => "the intermediate process exited before starting the init".into(),
                    Some(_) => "the init exited during setup without reporting an error".into(),
                }))
            }
        }
    }
    drop(inbox);
    drop(parent_ch);
    // The init sent the master before it reported ready: it is queued by now.
    let pty_master = match &plan.console_receiver {
        Some(ours) => Some(crate::console::recv_master(ours)?),
        None => None,
    };

    if let (Some(sink), Some(stamps)) = (t, &plan.stamps) {
        stamps.collect(sink);
    }
    let m = Mark::start(t);
    persisted.created_done = true;
    persisted.save(&dir)?;
    if let Some(pid_file) = &options.pid_file {
        write_pid_file(pid_file, persisted.pid)?;
    }
    m.end(Phase::StateWrite);
    undo.armed = false;
    let mut container = Container::from_state(runtime, persisted);
    container.init = init_handle;
    container.pty_master = pty_master;
    Ok(container)
}

/// `state` with the directories that making its cgroups will add: every missing
/// ancestor of each cgroup directory, outermost first (the order mkdir makes them;
/// `destroy` removes them in reverse, and only when empty). Recorded before the
/// cgroups are made, so that a create killed midway leaves no parent behind.
pub(crate) fn with_missing_parents(
    mut state: berth_cgroups::CgroupState,
) -> berth_cgroups::CgroupState {
    let mut missing = Vec::new();
    for leaf in state.paths.values() {
        let mut chain = Vec::new();
        let mut cur = Some(leaf.as_path());
        while let Some(dir) = cur.filter(|d| !d.exists()) {
            chain.push(dir.to_path_buf());
            cur = dir.parent();
        }
        // The leaves themselves are always removed by `destroy`.
        chain.retain(|d| d != leaf);
        for dir in chain.into_iter().rev() {
            if !missing.contains(&dir) && !state.created.contains(&dir) {
                missing.push(dir);
            }
        }
    }
    state.created.extend(missing);
    state
}

/// The spec as `<state dir>/config.json`, for hooks that read `<bundle>/config.json`
/// when the bundle is the state directory.
fn write_config_json(dir: &Path, spec: &oci_spec::runtime::Spec) -> Result<()> {
    let path = dir.join("config.json");
    let data =
        serde_json::to_vec(spec).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    std::fs::write(&path, data).map_err(|e| Error::io("write", &path, e))
}

/// Sends the seccomp notify fd to the listener with the container process state, as the
/// runtime spec describes: one message, the JSON as payload and the fd as SCM_RIGHTS.
/// `pid` is the process whose filter it is; the state is the container's. A
/// listenerPath starting with `@` names an abstract socket, as runc (Go) dials it.
pub(crate) fn send_seccomp_listener(
    path: &Path,
    fd: &std::os::fd::OwnedFd,
    pid: i32,
    p: &Persisted,
    metadata: &str,
    status: Status,
) -> Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    use std::os::fd::AsRawFd;
    let doc = serde_json::json!({
        "ociVersion": crate::OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": metadata,
        "state": p.to_state(status),
    });
    let payload = doc.to_string();
    // runc's words first: engines and runc's tests look for them.
    let sock = connect_listener(path).map_err(|e| {
        Error::io(
            "failed to connect with seccomp agent at linux.seccomp.listenerPath",
            path,
            e,
        )
    })?;
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [std::io::IoSlice::new(payload.as_bytes())];
    sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None)
        .map_err(|e| Error::sys("sendmsg", path.display(), e))?;
    Ok(())
}

/// Connects to the listener: `@name` is the abstract socket `name`, anything else a
/// socket file.
fn connect_listener(path: &Path) -> std::io::Result<std::os::unix::net::UnixStream> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::{SocketAddr, UnixStream};
    match path.as_os_str().as_bytes().strip_prefix(b"@") {
        Some(name) => UnixStream::connect_addr(&SocketAddr::from_abstract_name(name)?),
        None => UnixStream::connect(path),
    }
}

/// runc's rule for handing a container its cgroup: with a new cgroup namespace and a
/// writable `cgroup` mount at /sys/fs/cgroup, the cgroup belongs to the process's
/// user as the host sees it (through the uid mappings in a user namespace; a user
/// without a mapping gets nothing).
pub(crate) fn cgroup_owner(spec: &oci_spec::runtime::Spec) -> Option<u32> {
    use oci_spec::runtime::LinuxNamespaceType;
    let linux = spec.linux().as_ref()?;
    let namespaces = linux.namespaces().clone().unwrap_or_default();
    let own_cgroupns = namespaces
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::Cgroup && n.path().is_none());
    if !own_cgroupns {
        return None;
    }
    let writable_cgroupfs = spec
        .mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|m| {
            let dest = std::path::Path::new(m.destination())
                .components()
                .collect::<std::path::PathBuf>();
            let read_only =
                m.options()
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .fold(false, |ro, o| match o.as_str() {
                        "ro" => true,
                        "rw" => false,
                        _ => ro,
                    });
            m.source().as_deref() == Some(std::path::Path::new("cgroup"))
                && dest == std::path::Path::new("/sys/fs/cgroup")
                && !read_only
        });
    if !writable_cgroupfs {
        return None;
    }
    let uid = spec.process().as_ref().map_or(0, |p| p.user().uid());
    if !namespaces
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::User)
    {
        return Some(uid);
    }
    linux.uid_mappings().as_deref()?.iter().find_map(|m| {
        let off = uid.checked_sub(m.container_id())?;
        (off < m.size()).then(|| m.host_id() + off)
    })
}

fn state_json(p: &Persisted, status: Status) -> String {
    serde_json::to_string(&p.to_state(status)).unwrap_or_default()
}

/// The decimal pid, no newline, written atomically (temporary file and rename) as runc does.
pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    std::fs::write(&tmp, pid.to_string()).map_err(|e| Error::io("write pid file", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("rename pid file", path, e))
}

#[cfg(test)]
mod tests {
    use super::connect_listener;
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixListener};
    use std::path::Path;

    #[test]
    fn missing_cgroup_parents_are_recorded_outermost_first() {
        let base =
            std::env::temp_dir().join(format!("berth-unit-cgparents-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("memory/existing")).expect("mkdir");
        let state = berth_cgroups::CgroupState {
            driver: "v1".into(),
            paths: [
                ("memory".to_string(), base.join("memory/existing/a/b/leaf")),
                ("pids".to_string(), base.join("pids/a/leaf")),
                ("cpu".to_string(), base.join("memory/existing")),
            ]
            .into_iter()
            .collect(),
            created: Vec::new(),
            unit: None,
            shared: false,
            rootless: false,
            user_manager_uid: None,
        };
        let got = super::with_missing_parents(state).created;
        let _ = std::fs::remove_dir_all(&base);
        assert_eq!(
            got,
            vec![
                base.join("memory/existing/a"),
                base.join("memory/existing/a/b"),
                base.join("pids"),
                base.join("pids/a"),
            ]
        );
    }

    #[test]
    fn cgroup_owner_follows_runc() {
        let spec = |ns: serde_json::Value, opts: &[&str], uid: u32| -> oci_spec::runtime::Spec {
            serde_json::from_value(serde_json::json!({
                "ociVersion": "1.2.0",
                "process": {"user": {"uid": uid, "gid": 0}, "args": ["sh"], "cwd": "/"},
                "mounts": [{"destination": "/sys/fs/cgroup/", "type": "cgroup",
                            "source": "cgroup", "options": opts}],
                "linux": {"namespaces": ns,
                          "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}
            }))
            .expect("spec")
        };
        let userns_cg = serde_json::json!([{"type": "user"}, {"type": "cgroup"}]);
        assert_eq!(
            super::cgroup_owner(&spec(userns_cg.clone(), &["rw"], 0)),
            Some(100000)
        );
        assert_eq!(
            super::cgroup_owner(&spec(userns_cg.clone(), &["nosuid"], 7)),
            Some(100007)
        );
        assert_eq!(
            super::cgroup_owner(&spec(userns_cg.clone(), &["ro"], 0)),
            None
        );
        assert_eq!(
            super::cgroup_owner(&spec(userns_cg, &["ro", "rw"], 0)),
            Some(100000)
        );
        let userns_only = serde_json::json!([{"type": "user"}]);
        assert_eq!(super::cgroup_owner(&spec(userns_only, &["rw"], 0)), None);
        let joined =
            serde_json::json!([{"type": "user"}, {"type": "cgroup", "path": "/proc/1/ns/cgroup"}]);
        assert_eq!(super::cgroup_owner(&spec(joined, &["rw"], 0)), None);
        let cg_only = serde_json::json!([{"type": "cgroup"}]);
        assert_eq!(
            super::cgroup_owner(&spec(cg_only, &["rw"], 1000)),
            Some(1000)
        );
    }

    #[test]
    fn listener_paths_reach_abstract_and_file_sockets() {
        let name = format!("berth-unit-listener-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract address");
        let abstract_listener = UnixListener::bind_addr(&addr).expect("bind abstract");
        connect_listener(Path::new(&format!("@{name}"))).expect("connect @name");
        drop(abstract_listener);
        let dir = std::env::temp_dir().join(format!("berth-unit-listener-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let sock = dir.join("l.sock");
        let file_listener = UnixListener::bind(&sock).expect("bind file");
        connect_listener(&sock).expect("connect to the file");
        drop(file_listener);
        // The file name `@...` is not looked up as a file: nothing listens there.
        assert!(connect_listener(Path::new(&format!("@{name}-none"))).is_err());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
