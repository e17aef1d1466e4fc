//! cgroup management for berth: one [`CgroupManager`] trait, drivers for cgroupfs v1
//! (including hybrid hosts, where a cgroup2 mount sits beside the v1 hierarchies),
//! cgroupfs v2, and systemd (a transient scope of the system manager, or of the caller's
//! user manager when rootless; see `systemd.rs`).
//!
//! A manager is created from the spec's `linux.cgroupsPath` at `create` time and
//! persisted as a [`CgroupState`] in the container's state, so that later commands
//! (`kill --all`, `delete`) act on the exact directories that `create` made, whatever
//! cgroup the later caller itself runs in.
//!
//! Call order at container creation: `new_manager`, `create`, `set`, `apply(pid)`, then
//! persist `state()` (after `create`, so that it records which parents were made).

mod convert;
mod detect;
mod devices;
mod error;
mod exec_join;
mod fsutil;
#[doc(hidden)]
pub mod fuzzing;
mod oom_watch;
mod path;
mod rootless;
mod stats;
mod systemd;
mod v1;
mod v2;

pub use convert::{blkio_weight_to_io_weight, huge_page_sizes, shares_to_weight, swap_to_v2};
pub use detect::{detect, CgroupSetup};
pub use devices::{default_device_rules, effective_device_rules};
pub use error::{Error, Result};
pub use oom_watch::OomWatch;
pub use rootless::new_rootless_manager;
pub use stats::{
    oom_kills, Blkio, BlkioEntry, Cpu, CpuSet, CpuUsage, Hugetlb, Memory, MemoryEntry, Pids, Stats,
    Throttling,
};
pub use systemd::user_manager_uid;

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What a later process needs to find a container's cgroups again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupState {
    /// `v1` or `v2`.
    pub driver: String,
    /// Absolute directories, by controller name for v1 (`memory`, `pids`, `name=systemd`,
    /// `unified` for the cgroup2 mount of a hybrid host); one entry `""` for v2.
    pub paths: BTreeMap<String, PathBuf>,
    /// Parent directories that `create` made (shallowest first): `destroy` removes them
    /// again when they are empty. The leaf directories in `paths` are always removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub created: Vec<PathBuf>,
    /// The systemd unit (driver `systemd`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The cgroup already held processes when the container was created (a cgroup
    /// shared with another container, which runc allows with a warning): `delete`
    /// must not kill what is left in it, only remove the directories if they are
    /// empty ([`release_shared`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shared: bool,
    /// A rootless container's cgroup (runc's `Rootless` cgroup config): controllers
    /// the caller could not create or join are left out of `paths`, a limit for one of
    /// them fails with runc's "container could not join or create cgroup", and device
    /// rules that cannot be written are skipped.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rootless: bool,
    /// The systemd driver for a rootless caller: the host uid of the user manager
    /// (`user@UID.service`) that owns the unit, so that later verbs ask that manager
    /// whoever runs them. Absent in state files written before it was recorded (the
    /// caller's own user manager is asked then, as before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_manager_uid: Option<u32>,
}

/// Lets go of a shared cgroup ([`CgroupState::shared`]): each directory is removed if
/// it is empty now; one still in use by others is left as it is.
pub fn release_shared(state: &CgroupState) {
    let mut seen = std::collections::BTreeSet::new();
    for dir in state.paths.values().filter(|d| seen.insert(d.as_path())) {
        if let Err(e) = std::fs::remove_dir(dir) {
            tracing::debug!(dir = %dir.display(), error = %e, "shared cgroup kept");
        }
    }
}

/// How a single-threaded process joins a container's cgroups by itself, without the
/// kernel's global threadgroup lock: writing a pid to `cgroup.procs` takes the write
/// side of `cgroup_threadgroup_rwsem`, which waits for an RCU grace period (5-25 ms
/// measured on the development VM). Writing "0" to a v1 `tasks` file moves only the
/// writing thread and skips that lock; the cgroup2 directory is joined at fork with
/// `clone3(CLONE_INTO_CGROUP)`, which takes only the lock's read side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelfAttach {
    /// v1 `tasks` files to write "0" to, one per distinct hierarchy directory.
    pub tasks: Vec<PathBuf>,
    /// The cgroup2 directory for CLONE_INTO_CGROUP (v2, or the unified hierarchy of a
    /// hybrid host).
    pub unified: Option<PathBuf>,
}

/// One container's cgroup(s).
pub trait CgroupManager: std::fmt::Debug + Send + Sync {
    /// Creates the cgroup directories (and initialises what must be set before a task
    /// can join, e.g. v1 cpuset.cpus/mems from the parent).
    fn create(&self) -> Result<()>;
    /// Moves `pid` into the cgroup(s).
    fn apply(&self, pid: i32) -> Result<()>;
    /// Writes `linux.resources`. On v1 the device list is always rewritten: the spec's
    /// rules, then [`default_device_rules`] (runc's order), so `update` must pass the
    /// container's device rules again.
    fn set(&self, resources: &LinuxResources) -> Result<()>;
    /// Writes `linux.resources` into a cgroup that has running processes (`update`).
    /// As runc's update, the device rules are not touched: on v1 they can only be
    /// replayed through a moment of deny-all, which running processes would see.
    /// Drivers that replace their device rules atomically may keep `set`.
    fn update(&self, resources: &LinuxResources) -> Result<()> {
        self.set(resources)
    }
    /// Pids of every process in the cgroup (for `kill --all`, `ps`).
    fn pids(&self) -> Result<Vec<i32>>;
    /// Kills what is left (SIGKILL), waits for it to go, and removes every directory
    /// this manager created. Missing directories are not an error.
    fn destroy(&self) -> Result<()>;
    /// The persisted form.
    fn state(&self) -> CgroupState;
    /// Resource usage read from the cgroup files (for `events`).
    fn stats(&self) -> Result<Stats>;
    /// Freezes (`true`) or thaws (`false`) every process in the cgroup, waiting until the
    /// kernel reports the new state (for `pause` / `resume`).
    fn freeze(&self, frozen: bool) -> Result<()> {
        let _ = frozen;
        Err(Error::Unsupported(
            "this cgroup driver cannot freeze".into(),
        ))
    }
    /// The files and directory a process uses to join by itself ([`SelfAttach`]).
    fn self_attach(&self) -> SelfAttach {
        SelfAttach::default()
    }
    /// Whether the cgroup is frozen now (for the `paused` status). A cgroup that is
    /// gone or cannot freeze is not frozen.
    fn frozen(&self) -> Result<bool> {
        Ok(false)
    }
    /// Hands the cgroup over to host uid `uid` (the container's user, who manages it
    /// through a writable cgroup mount in its own cgroup namespace): the directory and
    /// the files the kernel lists for delegation. Called after `apply`. As in runc 1.1
    /// only the systemd driver delegates; the others leave the cgroup as it is.
    fn delegate(&self, uid: u32) -> Result<()> {
        let _ = uid;
        Ok(())
    }
}

/// Puts the device rules (spec order, last match wins, unmatched denied) on the
/// cgroup2 directory `dir` as an eBPF device program, replacing the ones attached
/// there. The v2 driver does this in `set`; it works on any cgroup2 directory.
pub fn apply_device_filter(
    dir: &std::path::Path,
    rules: &[oci_spec::runtime::LinuxDeviceCgroup],
) -> Result<()> {
    v2::devices_bpf::apply(dir, rules)
}

/// Like [`new_manager`], choosing the driver: with `systemd` (runc's
/// `--systemd-cgroup`) the container is a transient systemd scope, and
/// `cgroups_path` is `slice:prefix:name`. The systemd driver needs a cgroup v2 host.
pub fn new_manager_with(
    cgroups_path: Option<&str>,
    id: &str,
    systemd: bool,
) -> Result<Box<dyn CgroupManager>> {
    if !systemd {
        return new_manager(cgroups_path, id);
    }
    new_systemd_manager(cgroups_path, id, false)
}

/// The systemd driver's manager: a scope of the system manager, or (`rootless`) of
/// the caller's own user manager.
pub(crate) fn new_systemd_manager(
    cgroups_path: Option<&str>,
    id: &str,
    rootless: bool,
) -> Result<Box<dyn CgroupManager>> {
    if detect()? != CgroupSetup::Unified {
        return Err(Error::Unsupported(
            "the systemd cgroup driver needs a cgroup v2 (unified) host".into(),
        ));
    }
    Ok(Box::new(systemd::SystemdManager::new(
        cgroups_path,
        id,
        std::path::Path::new("/sys/fs/cgroup"),
        rootless,
    )?))
}

/// Builds the manager for a new container. `cgroups_path` is `linux.cgroupsPath`
/// (absolute: from each hierarchy's root; relative: from the caller's own cgroup;
/// `None`: `<caller's cgroup>/<id>`, as runc's cgroupfs driver does).
pub fn new_manager(cgroups_path: Option<&str>, id: &str) -> Result<Box<dyn CgroupManager>> {
    let cg = path::CgroupsPath::new(cgroups_path, id)?;
    let mounts = detect::Mounts::read()?;
    let own = if cg.is_relative() {
        Some(path::read_proc_cgroup()?)
    } else {
        None
    };
    Ok(match mounts.setup()? {
        CgroupSetup::Unified => Box::new(v2::V2Manager::new(&mounts, &cg, own.as_ref())?),
        CgroupSetup::Legacy | CgroupSetup::Hybrid => {
            Box::new(v1::V1Manager::new(&mounts, &cg, own.as_ref())?)
        }
    })
}

/// Checks `linux.cgroupsPath` as [`new_manager`] does (`None`: the default, `id`),
/// without reading the host's cgroups.
pub fn check_cgroups_path(cgroups_path: Option<&str>, id: &str) -> Result<()> {
    path::CgroupsPath::new(cgroups_path, id).map(drop)
}

/// Checks the device cgroup rules (`linux.resources.devices`) as the v1 driver
/// writes them, without writing them.
pub fn check_device_rules(rules: &[oci_spec::runtime::LinuxDeviceCgroup]) -> Result<()> {
    for (i, r) in rules.iter().enumerate() {
        devices::rule_string(i, r)?;
    }
    Ok(())
}

/// Rebuilds a manager from its persisted form.
pub fn from_state(state: &CgroupState) -> Result<Box<dyn CgroupManager>> {
    for p in state.paths.values().chain(&state.created) {
        if !p.is_absolute()
            || p.components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(Error::InvalidPath {
                path: p.display().to_string(),
                reason: "persisted cgroup path is not absolute and clean".into(),
            });
        }
    }
    match state.driver.as_str() {
        "v1" => Ok(Box::new(v1::V1Manager::from_state(state))),
        "v2" => Ok(Box::new(v2::V2Manager::from_state(state)?)),
        "systemd" => Ok(Box::new(systemd::SystemdManager::from_state(state)?)),
        other => Err(Error::Unsupported(format!(
            "unknown cgroup driver {other:?} in container state"
        ))),
    }
}
