//! Everything the container's processes need, prepared in the parent before fork so
//! the children only make system calls: namespaces opened and checked, rootfs mounts
//! parsed, argv/env/PATH candidates built, the console socket connected and the exec
//! fifo opened.

use crate::bundle::Bundle;
use crate::error::{Error, Result};
use crate::namespaces::NamespacePlan;
use crate::process::{cstring, ProcessPlan};
use crate::rootfs::{RootfsOptions, RootfsPlan};
use crate::runtime::CreateOptions;
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use oci_spec::runtime::Hook;
use std::cell::RefCell;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

#[derive(Debug)]
pub(crate) struct InitPlan {
    pub id: String,
    pub ns: NamespacePlan,
    pub rootfs: RootfsPlan,
    pub process: ProcessPlan,
    pub hostname: Option<CString>,
    pub domainname: Option<CString>,
    /// (`/proc/sys/...` path, value).
    pub sysctl: Vec<(String, String)>,
    pub create_container_hooks: Vec<Hook>,
    pub start_container_hooks: Vec<Hook>,
    /// prestart or createRuntime hooks, which the parent runs when the init asks.
    pub runtime_hooks: bool,
    /// The rootfs as the host sees it: createContainer hooks run there, as runc's do.
    pub rootfs_dir: std::path::PathBuf,
    /// The exec fifo, opened read-write: the init is a reader and a writer of it, so
    /// its plain blocking read(2) waits until `start` writes a byte (never an early
    /// end-of-file), and it is the only reader `start` sees. The wait may run under the
    /// user's seccomp filter, where read is the one syscall it can count on.
    pub fifo: RefCell<Option<OwnedFd>>,
    pub console: RefCell<Option<OwnedFd>>,
    /// The caller's end of an in-process console hand-off (parent only: the children
    /// close it with the caller's other fds).
    pub console_receiver: Option<OwnedFd>,
    /// The caller's fds for the init's 0, 1, 2 (-1: inherit), put in place first thing
    /// in the intermediate.
    pub stdio: [std::os::fd::RawFd; 3],
    /// `exec.err` in the state directory, for a failure after `start`.
    pub exec_error: RefCell<Option<OwnedFd>>,
    pub new_keyring: bool,
    pub preserve_fds: u32,
    pub cgroup_join: CgroupJoin,
    /// The init will be in a user namespace and a mount namespace and has bind
    /// mounts: the parent opens their sources (see rootfs/sources.rs).
    pub open_mount_sources: bool,
    /// Of those, the parent opens the plain (not idmapped) bind sources too.
    pub plain_mount_sources: bool,
    /// Shared with the children for their phase stamps when create is traced.
    pub stamps: Option<crate::trace::ChildStamps>,
    /// The caller is not host root (runc's `RootlessEUID`): the intermediate makes
    /// itself dumpable while the parent writes its id maps (see `init::intermediate`).
    pub rootless_euid: bool,
}

/// How the intermediate joins the container's cgroups by itself, prepared here.
#[derive(Debug, Default)]
pub(crate) struct CgroupJoin {
    /// v1 `tasks` files: writing "0" moves the (single-threaded) writer only.
    pub tasks: Vec<CString>,
    /// The cgroup2 directory, for clone3(CLONE_INTO_CGROUP) and the fallback write
    /// to its cgroup.procs (through the fd: the path may not resolve once the
    /// namespaces are entered).
    pub unified: Option<OwnedFd>,
}

impl CgroupJoin {
    /// Prepared once the cgroup directories exist.
    pub fn new(attach: berth_cgroups::SelfAttach) -> Result<Self> {
        let c = |p: &Path| cstring(p.as_os_str().as_encoded_bytes(), "cgroup path");
        let tasks = attach.tasks.iter().map(|t| c(t)).collect::<Result<_>>()?;
        let unified = match attach.unified {
            Some(dir) => {
                let fd = nix::fcntl::open(
                    &dir,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| Error::sys("open", dir.display(), e))?;
                Some(fd)
            }
            None => None,
        };
        Ok(CgroupJoin { tasks, unified })
    }

    /// Nothing to join by ourselves: the parent applies the cgroup.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty() && self.unified.is_none()
    }
}

impl InitPlan {
    pub fn new(
        id: &str,
        bundle: &Bundle,
        options: &CreateOptions,
        fifo_path: &Path,
        cgroup_paths: &std::collections::BTreeMap<String, std::path::PathBuf>,
    ) -> Result<Self> {
        let spec = &bundle.spec;
        let rootless_euid = !nix::unistd::geteuid().is_root();
        crate::userns_checks::check_spec(spec, rootless_euid)?;
        let ns = NamespacePlan::from_spec(spec)?;
        let mut process = ProcessPlan::new(spec)?;
        if bundle.seccomp_wait_killable_recv {
            if let Some(filter) = process.seccomp.as_mut() {
                filter.set_wait_killable_recv();
            }
        }
        let absolute;
        let spec_for_rootfs = match with_absolute_sources(spec, &bundle.dir) {
            Some(s) => {
                absolute = s;
                &absolute
            }
            None => spec,
        };
        let rootfs = RootfsPlan::with_id_mappings(
            spec_for_rootfs,
            &bundle.rootfs,
            RootfsOptions {
                no_pivot: options.no_pivot,
                new_user_ns: ns.new.contains(CloneFlags::CLONE_NEWUSER),
                mount_ns: ns.has(CloneFlags::CLONE_NEWNS),
                cgroup_dirs: crate::rootfs::cgroup_v1::from_paths(cgroup_paths),
            },
            &bundle.mount_id_mappings,
        )?;
        let plain_mount_sources = ns.has(CloneFlags::CLONE_NEWUSER)
            && ns.has(CloneFlags::CLONE_NEWNS)
            && rootfs.has_bind_sources();
        let open_mount_sources = plain_mount_sources || rootfs.has_idmapped();
        let (hostname, domainname) = uts_names(spec, &ns)?;
        let sysctl =
            crate::sysctl::plan(spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()), &ns)?;
        let hooks = spec.hooks().clone().unwrap_or_default();
        let (console, console_receiver) =
            crate::console::plan(options.console.as_ref(), process.terminal)?;
        nix::unistd::mkfifo(fifo_path, Mode::from_bits_truncate(0o622))
            .map_err(|e| Error::sys("mkfifo", fifo_path.display(), e))?;
        let fifo = nix::fcntl::open(
            fifo_path,
            // Opening a fifo read-write never blocks (Linux).
            OFlag::O_RDWR | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::sys("open", fifo_path.display(), e))?;
        let error_path = fifo_path.with_file_name(crate::state::EXEC_ERROR);
        let exec_error = nix::fcntl::open(
            &error_path,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| Error::sys("open", error_path.display(), e))?;
        Ok(InitPlan {
            id: id.to_string(),
            ns,
            rootfs,
            process,
            hostname,
            domainname,
            sysctl,
            create_container_hooks: hooks.create_container().clone().unwrap_or_default(),
            start_container_hooks: hooks.start_container().clone().unwrap_or_default(),
            runtime_hooks: [hooks.prestart(), hooks.create_runtime()]
                .iter()
                .any(|h| h.as_ref().is_some_and(|h| !h.is_empty())),
            rootfs_dir: bundle.rootfs.clone(),
            fifo: RefCell::new(Some(fifo)),
            exec_error: RefCell::new(Some(exec_error)),
            console: RefCell::new(console),
            console_receiver,
            stdio: options.stdio.raw(),
            new_keyring: !options.no_new_keyring,
            preserve_fds: options.preserve_fds,
            cgroup_join: CgroupJoin::default(),
            open_mount_sources,
            plain_mount_sources,
            stamps: options
                .trace
                .as_ref()
                .and_then(|_| crate::trace::ChildStamps::new()),
            rootless_euid,
        })
    }

    /// Whether the init must stop after its mounts for the parent: to let it run the
    /// prestart/createRuntime hooks, or for the state documents its own hooks get.
    /// With no hook at all the round trip (two context switches) is left out.
    pub fn hooks_round_trip(&self) -> bool {
        self.runtime_hooks
            || !self.create_container_hooks.is_empty()
            || !self.start_container_hooks.is_empty()
    }

    /// Every fd the intermediate and the init use (for [`super::init::close_others`]).
    pub fn fds(&self, channel: &super::channel::Channel) -> Vec<i32> {
        let mut fds = vec![channel.as_raw_fd()];
        fds.extend(self.ns.join.iter().map(|j| j.fd.as_raw_fd()));
        for cell in [&self.fifo, &self.console, &self.exec_error] {
            fds.extend(cell.borrow().as_ref().map(|f| f.as_raw_fd()));
        }
        fds.extend(self.cgroup_join.unified.as_ref().map(|f| f.as_raw_fd()));
        fds
    }

    /// After fork, the parent lets go of what belongs to the init.
    pub fn close_parent_copies(&self) {
        self.fifo.borrow_mut().take();
        self.console.borrow_mut().take();
        self.exec_error.borrow_mut().take();
    }

    /// Writes the maps of the user namespace the intermediate created.
    pub fn write_id_maps(&self, pid: Pid) -> Result<()> {
        super::id_maps::write(pid, &self.ns.uid_map, &self.ns.gid_map)
    }
}

/// Relative mount sources are relative to the bundle directory (runc changes into the
/// bundle before it reads them). Returns a copy of the spec with absolute sources, or
/// None when every source is already absolute (the common case, no copy).
/// `hostname` and `domainname`, which need a UTS namespace of the container's own.
pub(crate) fn uts_names(
    spec: &oci_spec::runtime::Spec,
    ns: &NamespacePlan,
) -> Result<(Option<CString>, Option<CString>)> {
    let uts = ns.has(CloneFlags::CLONE_NEWUTS);
    let name = |v: &Option<String>, what: &str| -> Result<Option<CString>> {
        match v.as_deref() {
            None => Ok(None),
            Some(_) if !uts => Err(Error::Config(format!(
                "{what} needs a UTS namespace of the container's own"
            ))),
            Some(s) => cstring(s.as_bytes(), what).map(Some),
        }
    };
    Ok((
        name(spec.hostname(), "hostname")?,
        name(spec.domainname(), "domainname")?,
    ))
}

pub(crate) fn with_absolute_sources(
    spec: &oci_spec::runtime::Spec,
    bundle: &Path,
) -> Option<oci_spec::runtime::Spec> {
    let relative = |m: &oci_spec::runtime::Mount| {
        m.source()
            .as_ref()
            .is_some_and(|s| s.is_relative() && !s.as_os_str().is_empty())
    };
    let mounts = spec.mounts().as_ref()?;
    if !mounts
        .iter()
        .any(|m| relative(m) && crate::rootfs::is_bind(m))
    {
        return None;
    }
    let mut copy = spec.clone();
    let fixed = mounts
        .iter()
        .map(|m| {
            let mut m = m.clone();
            if relative(&m) && crate::rootfs::is_bind(&m) {
                let src = bundle.join(m.source().as_ref().expect("checked above"));
                m.set_source(Some(src));
            }
            m
        })
        .collect();
    copy.set_mounts(Some(fixed));
    Some(copy)
}
