//! Namespaces from `linux.namespaces`: which to create and which to join by path, the
//! type check of joined namespaces, and the uid/gid maps of a new user namespace.
//!
//! Order (as runc's nsexec): join every namespace given by path, the user namespace
//! first, so that new namespaces are owned by the joined user namespace; then unshare
//! the new ones (the kernel creates a new user namespace before the others in the same
//! call); pid and time namespaces take effect for the init, which is forked after.

use crate::error::{Error, Result};
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};
use std::os::fd::{AsRawFd, OwnedFd};

/// A namespace to join, opened in the parent.
#[derive(Debug)]
pub(crate) struct Join {
    pub flag: CloneFlags,
    pub fd: OwnedFd,
    pub path: String,
}

/// What the init's namespaces will be.
#[derive(Debug)]
pub(crate) struct NamespacePlan {
    /// New namespaces, for unshare.
    pub new: CloneFlags,
    /// Joined namespaces, user first.
    pub join: Vec<Join>,
    /// `linux.uidMappings` / `gidMappings` as map file contents.
    pub uid_map: String,
    pub gid_map: String,
    /// `/proc/<pid>/timens_offsets` content for a new time namespace.
    pub time_offsets: String,
    /// Namespaces given by path but not opened ([`NamespacePlan::unopened`], a check
    /// without side effects): never entered.
    pub unopened: CloneFlags,
}

const CLONE_NEWTIME: CloneFlags = CloneFlags::from_bits_retain(libc::CLONE_NEWTIME);

fn flag_of(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CLONE_NEWTIME,
    }
}

fn name_of(f: CloneFlags) -> &'static str {
    match f {
        CloneFlags::CLONE_NEWNS => "mount",
        CloneFlags::CLONE_NEWCGROUP => "cgroup",
        CloneFlags::CLONE_NEWUTS => "uts",
        CloneFlags::CLONE_NEWIPC => "ipc",
        CloneFlags::CLONE_NEWUSER => "user",
        CloneFlags::CLONE_NEWPID => "pid",
        CloneFlags::CLONE_NEWNET => "network",
        _ => "time",
    }
}

impl NamespacePlan {
    /// Reads `linux.namespaces`, opens and type-checks every path.
    pub fn from_spec(spec: &Spec) -> Result<Self> {
        Self::build(spec, true)
    }

    /// As [`NamespacePlan::from_spec`] but no path is opened (opening a path the
    /// config names is a side effect, and a fifo there would block): the joined
    /// namespaces are only recorded in `unopened`, their type unchecked.
    pub fn unopened(spec: &Spec) -> Result<Self> {
        Self::build(spec, false)
    }

    fn build(spec: &Spec, open: bool) -> Result<Self> {
        let mut plan = NamespacePlan {
            new: CloneFlags::empty(),
            join: Vec::new(),
            uid_map: String::new(),
            gid_map: String::new(),
            time_offsets: String::new(),
            unopened: CloneFlags::empty(),
        };
        let Some(linux) = spec.linux() else {
            return Ok(plan);
        };
        let mut seen = CloneFlags::empty();
        for ns in linux.namespaces().iter().flatten() {
            let flag = flag_of(ns.typ());
            if seen.contains(flag) {
                return Err(Error::Config(format!(
                    "namespace {} is listed twice",
                    name_of(flag)
                )));
            }
            seen |= flag;
            match ns.path() {
                None => plan.new |= flag,
                Some(_) if !open => plan.unopened |= flag,
                Some(p) => {
                    let path = p.display().to_string();
                    let fd = nix::fcntl::open(
                        p.as_path(),
                        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
                        nix::sys::stat::Mode::empty(),
                    )
                    .map_err(|e| Error::sys("open namespace", &path, e))?;
                    check_type(&fd, flag, &path)?;
                    plan.join.push(Join { flag, fd, path });
                }
            }
        }
        // The user namespace is joined first: the others may be owned by it.
        plan.join
            .sort_by_key(|j| j.flag != CloneFlags::CLONE_NEWUSER);
        plan.uid_map = map_text(linux.uid_mappings().as_deref());
        plan.gid_map = map_text(linux.gid_mappings().as_deref());
        if plan.new.contains(CloneFlags::CLONE_NEWUSER)
            && (plan.uid_map.is_empty() || plan.gid_map.is_empty())
        {
            return Err(Error::Config(
                "a new user namespace needs uidMappings and gidMappings".into(),
            ));
        }
        if !plan.new.contains(CloneFlags::CLONE_NEWUSER)
            && (!plan.uid_map.is_empty() || !plan.gid_map.is_empty())
        {
            return Err(Error::Config(
                "uidMappings/gidMappings need a new user namespace".into(),
            ));
        }
        if let Some(offsets) = linux.time_offsets() {
            if !plan.new.contains(CLONE_NEWTIME) {
                return Err(Error::Config(
                    "timeOffsets need a new time namespace".into(),
                ));
            }
            for (clock, off) in offsets {
                plan.time_offsets.push_str(&format!(
                    "{clock} {} {}\n",
                    off.secs().unwrap_or(0),
                    off.nanosecs().unwrap_or(0)
                ));
            }
        }
        Ok(plan)
    }

    /// Whether the init gets a mount namespace of its own (new or joined).
    pub fn has(&self, flag: CloneFlags) -> bool {
        self.new.contains(flag)
            || self.unopened.contains(flag)
            || self.join.iter().any(|j| j.flag == flag)
    }

    /// In the intermediate child: join, then unshare all but the user namespace's maps,
    /// which the caller writes through `need_maps` (a round trip to the parent).
    pub fn enter(&self, need_maps: impl FnOnce() -> Result<()>) -> Result<()> {
        for j in &self.join {
            nix::sched::setns(&j.fd, j.flag).map_err(|e| Error::sys("setns", &j.path, e))?;
        }
        if self.new.is_empty() {
            return Ok(());
        }
        nix::sched::unshare(self.new)
            .map_err(|e| Error::sys("unshare", format!("{:?}", self.new), e))?;
        if self.new.contains(CloneFlags::CLONE_NEWUSER) {
            need_maps()?;
            // Become root of the new user namespace (uid/gid 0 must be mapped).
            nix::unistd::setresgid(0.into(), 0.into(), 0.into()).map_err(|e| {
                Error::sys(
                    "setresgid",
                    "0 in the new user namespace (is gid 0 mapped?)",
                    e,
                )
            })?;
            nix::unistd::setresuid(0.into(), 0.into(), 0.into()).map_err(|e| {
                Error::sys(
                    "setresuid",
                    "0 in the new user namespace (is uid 0 mapped?)",
                    e,
                )
            })?;
        }
        if !self.time_offsets.is_empty() {
            std::fs::write("/proc/self/timens_offsets", &self.time_offsets)
                .map_err(|e| Error::io("write", "/proc/self/timens_offsets", e))?;
        }
        Ok(())
    }
}

impl NamespacePlan {
    /// In the init, first thing: a new cgroup namespace is rooted at the cgroups the
    /// init is in, so it is made only once the init is in the container's cgroup in
    /// every hierarchy (the cgroup2 one is joined at clone). A joined one is entered
    /// here too: clone3(CLONE_INTO_CGROUP) refuses a caller whose own cgroup is outside
    /// its cgroup namespace.
    pub fn enter_cgroup(&self) -> Result<()> {
        for j in self
            .join
            .iter()
            .filter(|j| j.flag == CloneFlags::CLONE_NEWCGROUP)
        {
            nix::sched::setns(&j.fd, j.flag).map_err(|e| Error::sys("setns", &j.path, e))?;
        }
        if self.new.contains(CloneFlags::CLONE_NEWCGROUP) {
            nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP)
                .map_err(|e| Error::sys("unshare", "cgroup namespace", e))?;
        }
        Ok(())
    }
}

/// NS_GET_NSTYPE (linux/nsfs.h): _IO(0xb7, 0x3).
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

/// Refuses a path whose namespace is of another kind than the entry says.
fn check_type(fd: &OwnedFd, want: CloneFlags, path: &str) -> Result<()> {
    // SAFETY: NS_GET_NSTYPE takes no argument and only reads the fd's inode.
    let got = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE) };
    if got < 0 {
        return Err(Error::Config(format!(
            "{path} is not a namespace file: {}",
            nix::Error::last()
        )));
    }
    let got = CloneFlags::from_bits_retain(got);
    if got != want {
        return Err(Error::Config(format!(
            "{path} is a {} namespace, not {}",
            name_of(got),
            name_of(want)
        )));
    }
    Ok(())
}

pub(crate) fn map_text(maps: Option<&[LinuxIdMapping]>) -> String {
    maps.unwrap_or_default()
        .iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}
