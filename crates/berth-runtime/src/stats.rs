//! `stats`: resource usage of a running container, read from its cgroup (the data of
//! `berth events`).

use crate::container::Container;
use crate::error::Result;
use crate::state::Status;
pub use berth_cgroups::Stats;

impl Container {
    /// Usage now; a stopped container or one without a cgroup is an error.
    pub fn stats(&self) -> Result<Stats> {
        let status = self.status();
        if status == Status::Stopped {
            return Err(self.bad_status(status, "container is not running"));
        }
        let cg = self
            .cgroup()?
            .ok_or_else(|| self.bad_status(status, "container has no cgroup"))?;
        Ok(cg.stats()?)
    }
}
