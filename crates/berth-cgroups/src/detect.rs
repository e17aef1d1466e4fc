//! Which cgroup layout the host has.

use crate::error::Result;

/// The host's cgroup layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupSetup {
    /// Only v1 hierarchies.
    Legacy,
    /// v1 hierarchies plus a cgroup2 mount (at /sys/fs/cgroup/unified).
    Hybrid,
    /// cgroup2 only.
    Unified,
}

/// Detects the layout from /sys/fs/cgroup.
pub fn detect() -> Result<CgroupSetup> {
    todo!()
}
