//! `process.user`: uid, gid, additional gids and umask.

use crate::error::{Error, Result};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::User;

#[derive(Debug, Clone)]
pub(crate) struct UserPlan {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<Gid>,
    /// runc's default umask is 0022.
    pub umask: u32,
}

impl UserPlan {
    pub fn new(u: &User) -> Self {
        UserPlan {
            uid: u.uid(),
            gid: u.gid(),
            additional_gids: u
                .additional_gids()
                .iter()
                .flatten()
                .map(|g| Gid::from_raw(*g))
                .collect(),
            umask: u.umask().unwrap_or(0o022),
        }
    }

    /// Groups first, then gid, then uid (the order in which each step is still
    /// permitted). The caller keeps capabilities across with PR_SET_KEEPCAPS.
    pub fn apply(&self, allow_setgroups: bool) -> Result<()> {
        if allow_setgroups {
            nix::unistd::setgroups(&self.additional_gids)
                .map_err(|e| Error::Init(format!("setgroups {:?}: {e}", self.additional_gids)))?;
        }
        let gid = Gid::from_raw(self.gid);
        nix::unistd::setresgid(gid, gid, gid)
            .map_err(|e| Error::Init(format!("setresgid {}: {e}", self.gid)))?;
        let uid = Uid::from_raw(self.uid);
        nix::unistd::setresuid(uid, uid, uid)
            .map_err(|e| Error::Init(format!("setresuid {}: {e}", self.uid)))?;
        Ok(())
    }
}
