//! Linux security modules: `process.apparmorProfile` and `process.selinuxLabel`, both
//! written to the init's procfs attr files so that they take effect at execve.
//!
//! berth follows runc 1.1.5: an empty profile or label is ignored; an SELinux label on
//! a host without SELinux is refused up front (runc's config validation); an AppArmor
//! profile is never checked up front, its write fails instead, inside the init, when
//! the host cannot apply it (EINVAL without AppArmor, ENOENT for a profile that is not
//! loaded), and that fails `create` or `exec`.

use super::cstring;
use crate::error::{Error, Result};
use oci_spec::runtime::Process;
use std::ffi::CString;
use std::io::Write;

/// Is AppArmor enabled on this host (as runc and the AppArmor tools check it)?
pub(crate) fn apparmor_enabled() -> bool {
    std::path::Path::new("/sys/kernel/security/apparmor").exists()
        && std::fs::read("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|v| v.starts_with(b"Y"))
}

/// Is SELinux enabled (selinuxfs mounted) on this host?
pub(crate) fn selinux_enabled() -> bool {
    std::path::Path::new("/sys/fs/selinux/enforce").exists()
}

/// Labels to apply at execve.
#[derive(Debug, Clone, Default)]
pub(crate) struct LsmPlan {
    /// The profile's name (for errors) and `exec <profile>`.
    apparmor: Option<(String, CString)>,
    selinux: Option<CString>,
}

impl LsmPlan {
    pub fn new(p: &Process) -> Result<Self> {
        Self::with_hosts(p, selinux_enabled())
    }

    fn with_hosts(p: &Process, selinux_on: bool) -> Result<Self> {
        let mut plan = LsmPlan::default();
        // No check of the host here: runc has none, and a host where AppArmor is
        // built in but securityfs is not mounted (some nested containers) still
        // applies the profile.
        if let Some(profile) = p.apparmor_profile().as_deref().filter(|s| !s.is_empty()) {
            let value = cstring(
                format!("exec {profile}").as_bytes(),
                "process.apparmorProfile",
            )?;
            plan.apparmor = Some((profile.to_string(), value));
        }
        if let Some(label) = p.selinux_label().as_deref().filter(|s| !s.is_empty()) {
            if !selinux_on {
                return Err(Error::Config(format!(
                    "process.selinuxLabel {label:?} was specified but SELinux is not enabled on this system"
                )));
            }
            plan.selinux = Some(cstring(label.as_bytes(), "process.selinuxLabel")?);
        }
        Ok(plan)
    }

    /// In the init or exec'd process, before seccomp: arms the labels for execve.
    pub fn apply(&self) -> Result<()> {
        if let Some((profile, aa)) = &self.apparmor {
            // The AppArmor-specific directory first (stacked LSMs), then the shared one,
            // as runc does.
            write_attr(&["apparmor/exec", "exec"], aa.as_bytes()).map_err(|e| {
                let hint = if apparmor_enabled() {
                    ""
                } else {
                    " (AppArmor is not enabled on this host)"
                };
                // runc's words first: engines and users know them.
                Error::Init(format!(
                    "unable to apply apparmor profile {profile:?} (process.apparmorProfile): {e}{hint}"
                ))
            })?;
        }
        if let Some(label) = &self.selinux {
            write_attr(&["exec"], label.as_bytes()).map_err(|e| {
                Error::Init(format!(
                    "unable to set selinux label {:?} (process.selinuxLabel): {e}",
                    label.to_string_lossy()
                ))
            })?;
        }
        Ok(())
    }
}

/// Writes one of `/proc/thread-self/attr/<names>` (the first that exists). The error
/// reads `<call> <path>: <errno in words>`.
fn write_attr(names: &[&str], value: &[u8]) -> std::result::Result<(), String> {
    let words = |e: nix::Error| {
        // Lower-case, as the Go peers print it ("no such file or directory").
        let d = e.desc();
        let mut c = d.chars();
        c.next()
            .map(|f| f.to_lowercase().chain(c).collect::<String>())
            .unwrap_or_default()
    };
    for (i, name) in names.iter().enumerate() {
        let path = format!("/proc/thread-self/attr/{name}");
        let f = match open_attr(name, nix::fcntl::OFlag::O_WRONLY) {
            Ok(f) => f,
            Err(nix::Error::ENOENT) if i + 1 < names.len() => continue,
            Err(e) => return Err(format!("open {path}: {}", words(e))),
        };
        let st =
            nix::sys::statfs::fstatfs(&f).map_err(|e| format!("fstatfs {path}: {}", words(e)))?;
        if st.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC {
            return Err(format!("{path} is not on procfs"));
        }
        return (&f).write_all(value).map_err(|e| {
            let errno = nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
            format!("write {path}: {}", words(errno))
        });
    }
    Ok(())
}

/// Opens `thread-self/attr/<name>` beneath a /proc checked to be procfs, without
/// crossing a mount (an over-mount inside /proc) or following a magic link
/// (CVE-2019-16884 and its 2025 variants). Kernels without openat2 (before 5.6): by
/// path, the file itself checked to be on procfs by the caller.
fn open_attr(name: &str, flags: nix::fcntl::OFlag) -> nix::Result<std::fs::File> {
    use nix::fcntl::{open, openat2, OFlag, OpenHow, ResolveFlag};
    use nix::sys::stat::Mode;
    let flags = flags | OFlag::O_CLOEXEC;
    let proc = open(
        "/proc",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let st = nix::sys::statfs::fstatfs(&proc)?;
    if st.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC {
        return Err(nix::Error::EXDEV);
    }
    let rel = format!("thread-self/attr/{name}");
    let how = OpenHow::new().flags(flags).resolve(
        ResolveFlag::RESOLVE_BENEATH
            | ResolveFlag::RESOLVE_NO_XDEV
            | ResolveFlag::RESOLVE_NO_MAGICLINKS,
    );
    let fd = match openat2(&proc, rel.as_str(), how) {
        Err(nix::Error::ENOSYS) => open(format!("/proc/{rel}").as_str(), flags, Mode::empty())?,
        other => other?,
    };
    Ok(std::fs::File::from(fd))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::ProcessBuilder;

    fn process(aa: &str, se: &str) -> Process {
        ProcessBuilder::default()
            .args(vec!["sh".to_string()])
            .apparmor_profile(aa.to_string())
            .selinux_label(se.to_string())
            .build()
            .unwrap()
    }

    /// The attr files open beneath /proc without crossing mounts or magic links.
    #[test]
    fn attr_files_open_beneath_proc() {
        let f = open_attr("current", nix::fcntl::OFlag::O_RDONLY).unwrap();
        let st = nix::sys::statfs::fstatfs(&f).unwrap();
        assert_eq!(st.filesystem_type(), nix::sys::statfs::PROC_SUPER_MAGIC);
        assert_eq!(
            open_attr("no-such-attr", nix::fcntl::OFlag::O_RDONLY).unwrap_err(),
            nix::Error::ENOENT
        );
    }

    #[test]
    fn disabled_modules() {
        assert!(LsmPlan::with_hosts(&process("", ""), false).is_ok());
        // AppArmor is not checked up front (runc's rule): the write in the init fails.
        let p = LsmPlan::with_hosts(&process("foo", ""), false).unwrap();
        assert_eq!(p.apparmor.unwrap().1.to_str().unwrap(), "exec foo");
        let e = LsmPlan::with_hosts(&process("", "system_u:r:t:s0"), false).unwrap_err();
        assert!(e.to_string().contains("SELinux is not enabled"), "{e}");
    }

    #[test]
    fn enabled_modules() {
        let p = LsmPlan::with_hosts(&process("foo", "l"), true).unwrap();
        assert_eq!(p.apparmor.unwrap().1.to_str().unwrap(), "exec foo");
        assert_eq!(p.selinux.unwrap().to_str().unwrap(), "l");
    }
}
