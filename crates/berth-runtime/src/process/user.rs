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
    ///
    /// setgid/setuid rather than setres*: with CAP_SETGID/CAP_SETUID (the init always
    /// has them here) they set the real, effective and saved ids alike, and they are
    /// the syscalls runc makes at this point, which may be under the user's seccomp
    /// filter: a profile written for runc allows them.
    pub fn apply(&self, allow_setgroups: bool) -> Result<()> {
        if allow_setgroups {
            nix::unistd::setgroups(&self.additional_gids)
                .map_err(|e| Error::Init(format!("setgroups {:?}: {e}", self.additional_gids)))?;
        }
        nix::unistd::setgid(Gid::from_raw(self.gid))
            .map_err(|e| Error::Init(format!("setgid {}: {e}", self.gid)))?;
        nix::unistd::setuid(Uid::from_raw(self.uid))
            .map_err(|e| Error::Init(format!("setuid {}: {e}", self.uid)))?;
        Ok(())
    }
}
