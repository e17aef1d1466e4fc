//! The container process: what `process` asks for, prepared in the parent
//! ([`ProcessPlan::new`]) and applied by the init just before execve.

mod caps;
mod exec;
mod rlimits;
mod seccomp;
mod user;

pub(crate) use caps::CapsPlan;
pub(crate) use exec::ExecPlan;
pub(crate) use rlimits::Rlimit;
pub(crate) use seccomp::SeccompPlan;
pub(crate) use user::UserPlan;

use crate::error::{Error, Result};
use oci_spec::runtime::{LinuxSeccomp, Process, Spec};
use std::ffi::CString;

/// Everything about the process, ready for the init.
#[derive(Debug)]
pub(crate) struct ProcessPlan {
    pub exec: ExecPlan,
    pub user: UserPlan,
    pub caps: Option<CapsPlan>,
    pub rlimits: Vec<Rlimit>,
    pub seccomp: Option<SeccompPlan>,
    pub cwd: CString,
    pub no_new_privileges: bool,
    pub oom_score_adj: Option<i32>,
    pub terminal: bool,
}

impl ProcessPlan {
    pub fn new(spec: &Spec) -> Result<Self> {
        let p = spec
            .process()
            .as_ref()
            .ok_or_else(|| Error::Config("process is missing".into()))?;
        Self::from_process(p, spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()))
    }

    /// From a process (config.json's or `exec`'s) and the container's seccomp filter.
    pub fn from_process(p: &Process, seccomp: Option<&LinuxSeccomp>) -> Result<Self> {
        let cwd = p.cwd();
        if !cwd.is_absolute() {
            return Err(Error::Config(format!(
                "process.cwd {} is not absolute",
                cwd.display()
            )));
        }
        Ok(ProcessPlan {
            exec: ExecPlan::new(p)?,
            user: UserPlan::new(p.user()),
            caps: p.capabilities().as_ref().map(CapsPlan::new).transpose()?,
            rlimits: p
                .rlimits()
                .iter()
                .flatten()
                .map(Rlimit::new)
                .collect::<Result<_>>()?,
            seccomp: seccomp.map(SeccompPlan::new).transpose()?,
            cwd: cstring(cwd.as_os_str().as_encoded_bytes(), "process.cwd")?,
            no_new_privileges: p.no_new_privileges().unwrap_or(false),
            oom_score_adj: p.oom_score_adj(),
            terminal: p.terminal().unwrap_or(false),
        })
    }
}

/// A C string from config text, refusing interior NULs.
pub(crate) fn cstring(bytes: &[u8], what: &str) -> Result<CString> {
    CString::new(bytes).map_err(|_| Error::Config(format!("{what} contains a NUL byte")))
}
