//! cgroup management for berth: one [`CgroupManager`] trait, drivers for cgroupfs v1
//! (including hybrid hosts, where a cgroup2 mount sits beside the v1 hierarchies) and
//! cgroupfs v2. The systemd driver comes later (issue 4).
//!
//! A manager is created from the spec's `linux.cgroupsPath` at `create` time and
//! persisted as a [`CgroupState`] in the container's state, so that later commands
//! (`kill --all`, `delete`) act on the exact directories that `create` made, whatever
//! cgroup the later caller itself runs in.

mod detect;
mod error;
mod path;
mod v1;
mod v2;

pub use detect::{detect, CgroupSetup};
pub use error::{Error, Result};

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
}

/// One container's cgroup(s).
pub trait CgroupManager: std::fmt::Debug + Send + Sync {
    /// Creates the cgroup directories (and initialises what must be set before a task
    /// can join, e.g. v1 cpuset.cpus/mems from the parent).
    fn create(&self) -> Result<()>;
    /// Moves `pid` into the cgroup(s).
    fn apply(&self, pid: i32) -> Result<()>;
    /// Writes `linux.resources`.
    fn set(&self, resources: &LinuxResources) -> Result<()>;
    /// Pids of every process in the cgroup (for `kill --all`, `ps`).
    fn pids(&self) -> Result<Vec<i32>>;
    /// Kills what is left (SIGKILL), waits for it to go, and removes every directory
    /// this manager created. Missing directories are not an error.
    fn destroy(&self) -> Result<()>;
    /// The persisted form.
    fn state(&self) -> CgroupState;
}

/// Builds the manager for a new container. `cgroups_path` is `linux.cgroupsPath`
/// (absolute: from each hierarchy's root; relative: from the caller's own cgroup;
/// `None`: `<caller's cgroup>/<id>`, as runc's cgroupfs driver does).
pub fn new_manager(cgroups_path: Option<&str>, id: &str) -> Result<Box<dyn CgroupManager>> {
    let _ = (cgroups_path, id);
    todo!("filled in by the cgroups work")
}

/// Rebuilds a manager from its persisted form.
pub fn from_state(state: &CgroupState) -> Result<Box<dyn CgroupManager>> {
    let _ = state;
    todo!("filled in by the cgroups work")
}
