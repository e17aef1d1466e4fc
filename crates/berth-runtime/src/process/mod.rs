//! The container process: what `process` asks for, prepared in the parent
//! ([`ProcessPlan::new`]) and applied by the init just before execve.

mod caps;
mod exec;
mod lsm;
mod mempolicy;
mod passwd;
mod personality;
mod rlimits;
mod sched;
pub(crate) mod seccomp;
mod seccomp_enosys;
mod user;

pub(crate) use caps::{cap_last_cap, cap_name, CapsPlan};
pub(crate) use exec::ExecPlan;
pub(crate) use lsm::{apparmor_enabled, selinux_enabled, LsmPlan};
pub(crate) use mempolicy::{
    MemoryPolicy, FLAGS as MEMORY_POLICY_FLAGS, MODES as MEMORY_POLICY_MODES,
};
pub(crate) use personality::Personality;
pub(crate) use rlimits::Rlimit;
pub(crate) use sched::SchedPlan;
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
    /// `process.consoleSize` as (rows, columns), set on the pty before the process
    /// starts; runc ignores a size with a zero in it, and so does berth.
    pub console_size: Option<(u16, u16)>,
    pub lsm: LsmPlan,
    pub sched: SchedPlan,
    /// `linux.personality` (the container's, so also for exec'd processes when the
    /// caller sets it).
    pub personality: Option<Personality>,
    /// `linux.memoryPolicy`, set by the init (exec'd processes are not its children,
    /// so they do not inherit it).
    pub memory_policy: Option<MemoryPolicy>,
}

impl ProcessPlan {
    pub fn new(spec: &Spec) -> Result<Self> {
        let p = spec
            .process()
            .as_ref()
            .ok_or_else(|| Error::Config("process is missing".into()))?;
        let linux = spec.linux().as_ref();
        Self::from_process(p, linux.and_then(|l| l.seccomp().as_ref()))?.with_container_linux(linux)
    }

    /// What a process gets from the container's `linux` section, whether it is the
    /// init's or an exec'd one: personality and memory policy (seccomp comes with
    /// `from_process`).
    pub fn with_container_linux(
        mut self,
        linux: Option<&oci_spec::runtime::Linux>,
    ) -> Result<Self> {
        if let Some(linux) = linux {
            self.personality = linux
                .personality()
                .as_ref()
                .map(Personality::new)
                .transpose()?;
            self.memory_policy = linux
                .memory_policy()
                .as_ref()
                .map(MemoryPolicy::new)
                .transpose()?;
            check_linux(linux)?;
        }
        Ok(self)
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
            // No `capabilities` means none at all (as runc: every set empty), never
            // "keep the runtime's".
            caps: Some(CapsPlan::new(
                p.capabilities().as_ref().unwrap_or(&no_capabilities()),
            )?),
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
            console_size: console_size(p)?,
            lsm: LsmPlan::new(p)?,
            sched: SchedPlan::new(p)?,
            personality: None,
            memory_policy: None,
        })
    }

    /// In the init or exec'd process, after the mounts and before privileges are
    /// dropped: personality, memory policy, scheduler and I/O priority.
    pub fn apply_attributes(&self) -> Result<()> {
        if let Some(p) = &self.personality {
            p.apply()?;
        }
        if let Some(m) = &self.memory_policy {
            m.apply()?;
        }
        self.sched.apply()
    }
}

/// `process.consoleSize`: both fields must fit a terminal's 16-bit size.
fn console_size(p: &Process) -> Result<Option<(u16, u16)>> {
    let Some(size) = p.console_size() else {
        return Ok(None);
    };
    let field = |v: u64, name: &str| {
        u16::try_from(v).map_err(|_| {
            Error::Config(format!(
                "process.consoleSize.{name}: {v} is larger than a terminal can be (65535)"
            ))
        })
    };
    let rows = field(size.height(), "height")?;
    let cols = field(size.width(), "width")?;
    Ok((rows != 0 && cols != 0).then_some((rows, cols)))
}

/// `linux` fields berth does not apply but must not silently ignore.
fn check_linux(linux: &oci_spec::runtime::Linux) -> Result<()> {
    if linux.intel_rdt().is_some() {
        let mounted = std::fs::read_to_string("/proc/self/mountinfo")
            .is_ok_and(|m| m.lines().any(|l| l.contains(" - resctrl ")));
        return Err(Error::Config(if mounted {
            "linux.intelRdt is not supported by berth yet".into()
        } else {
            "linux.intelRdt was specified but Intel RDT is not available on this system (no resctrl filesystem at /sys/fs/resctrl)".into()
        }));
    }
    // linux.mountLabel: with SELinux off it is ignored, as runc does (the label is only
    // a mount option then); with SELinux on, the rootfs code passes it as context=.
    Ok(())
}

/// Every set empty. (oci-spec's `LinuxCapabilities::default()` is runc's default
/// trio, not "none".)
fn no_capabilities() -> oci_spec::runtime::LinuxCapabilities {
    let mut c = oci_spec::runtime::LinuxCapabilities::default();
    c.set_bounding(None);
    c.set_effective(None);
    c.set_inheritable(None);
    c.set_permitted(None);
    c.set_ambient(None);
    c
}

/// A C string from config text, refusing interior NULs.
pub(crate) fn cstring(bytes: &[u8], what: &str) -> Result<CString> {
    CString::new(bytes).map_err(|_| Error::Config(format!("{what} contains a NUL byte")))
}
