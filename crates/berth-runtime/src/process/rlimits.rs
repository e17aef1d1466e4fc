//! `process.rlimits`: RLIMIT_* names mapped to resources, set by the init before it
//! drops privileges.

use crate::error::{Error, Result};
use oci_spec::runtime::{PosixRlimit, PosixRlimitType};

#[derive(Debug, Clone, Copy)]
pub(crate) struct Rlimit {
    resource: libc::__rlimit_resource_t,
    name: &'static str,
    soft: u64,
    hard: u64,
}

impl Rlimit {
    pub fn new(r: &PosixRlimit) -> Result<Self> {
        use PosixRlimitType::*;
        let (resource, name) = match r.typ() {
            RlimitCpu => (libc::RLIMIT_CPU, "RLIMIT_CPU"),
            RlimitFsize => (libc::RLIMIT_FSIZE, "RLIMIT_FSIZE"),
            RlimitData => (libc::RLIMIT_DATA, "RLIMIT_DATA"),
            RlimitStack => (libc::RLIMIT_STACK, "RLIMIT_STACK"),
            RlimitCore => (libc::RLIMIT_CORE, "RLIMIT_CORE"),
            RlimitRss => (libc::RLIMIT_RSS, "RLIMIT_RSS"),
            RlimitNproc => (libc::RLIMIT_NPROC, "RLIMIT_NPROC"),
            RlimitNofile => (libc::RLIMIT_NOFILE, "RLIMIT_NOFILE"),
            RlimitMemlock => (libc::RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK"),
            RlimitAs => (libc::RLIMIT_AS, "RLIMIT_AS"),
            RlimitLocks => (libc::RLIMIT_LOCKS, "RLIMIT_LOCKS"),
            RlimitSigpending => (libc::RLIMIT_SIGPENDING, "RLIMIT_SIGPENDING"),
            RlimitMsgqueue => (libc::RLIMIT_MSGQUEUE, "RLIMIT_MSGQUEUE"),
            RlimitNice => (libc::RLIMIT_NICE, "RLIMIT_NICE"),
            RlimitRtprio => (libc::RLIMIT_RTPRIO, "RLIMIT_RTPRIO"),
            RlimitRttime => (libc::RLIMIT_RTTIME, "RLIMIT_RTTIME"),
        };
        if r.soft() > r.hard() {
            return Err(Error::Config(format!(
                "{name}: soft limit {} is above hard limit {}",
                r.soft(),
                r.hard()
            )));
        }
        Ok(Rlimit {
            resource,
            name,
            soft: r.soft(),
            hard: r.hard(),
        })
    }

    /// setrlimit; raising a hard limit needs CAP_SYS_RESOURCE, which is named in the error.
    pub fn apply(&self) -> Result<()> {
        let lim = libc::rlimit {
            rlim_cur: self.soft,
            rlim_max: self.hard,
        };
        // SAFETY: a valid resource constant and a pointer to an initialised rlimit.
        if unsafe { libc::setrlimit(self.resource, &lim) } != 0 {
            let e = nix::Error::last();
            let hint = if e == nix::Error::EPERM {
                " (raising a hard limit needs CAP_SYS_RESOURCE)"
            } else {
                ""
            };
            return Err(Error::Init(format!(
                "setrlimit {} soft {} hard {}: {e}{hint}",
                self.name, self.soft, self.hard
            )));
        }
        Ok(())
    }
}
