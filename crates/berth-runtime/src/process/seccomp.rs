//! `linux.seccomp`: the filter is compiled to BPF with libseccomp in the parent (with
//! the ENOSYS stub of [`super::seccomp_enosys`] in front when the profile is
//! restrictive), and the init loads the finished program with the seccomp(2) system
//! call, so libseccomp never runs in the forked child and the runtime's own setup is
//! not filtered.

use crate::error::{Error, Result};
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use std::io::{Read, Seek};
use std::os::fd::{FromRawFd, OwnedFd};

const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
const FLAG_TSYNC: u32 = 1;
const FLAG_LOG: u32 = 2;
const FLAG_SPEC_ALLOW: u32 = 4;
const FLAG_NEW_LISTENER: u32 = 8;
const FLAG_WAIT_KILLABLE_RECV: u32 = 32;

/// A compiled filter.
#[derive(Debug)]
pub(crate) struct SeccompPlan {
    /// `struct sock_filter` array.
    bpf: Vec<u8>,
    flags: u32,
    /// Some rule uses SCMP_ACT_NOTIFY: the load returns a listener fd.
    pub notify: bool,
}

fn action(a: LinuxSeccompAction, errno_ret: Option<u32>) -> ScmpAction {
    let errno = errno_ret.map_or(libc::EPERM, |e| e as i32);
    match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(errno as u16),
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
    }
}

fn compare(op: LinuxSeccompOperator, index: u32, value: u64, value_two: u64) -> ScmpArgCompare {
    let op = match op {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(value),
    };
    let datum = if matches!(op, ScmpCompareOp::MaskedEqual(_)) {
        value_two
    } else {
        value
    };
    ScmpArgCompare::new(index, op, datum)
}

impl SeccompPlan {
    /// Compiles the filter. Unknown syscall names are skipped (as runc does);
    /// unknown architectures are an error naming them.
    pub fn new(s: &LinuxSeccomp) -> Result<Self> {
        let bad = |what: String| Error::Config(format!("seccomp: {what}"));
        refuse_notify_misuse(s)?;
        let default = action(s.default_action(), s.default_errno_ret());
        let mut ctx =
            ScmpFilterContext::new(default).map_err(|e| bad(format!("new filter: {e}")))?;
        let mut archs = Vec::new();
        for a in s.architectures().iter().flatten() {
            let name = serde_json::to_value(a)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let arch: ScmpArch = name
                .parse()
                .map_err(|_| bad(format!("architecture {name} is not supported")))?;
            archs.push(arch);
            // The native architecture is already in a new filter.
            if !ctx.is_arch_present(arch).unwrap_or(false) {
                ctx.add_arch(arch)
                    .map_err(|e| bad(format!("add architecture {name}: {e}")))?;
            }
        }
        let mut notify = false;
        for rule in s.syscalls().iter().flatten() {
            let act = action(rule.action(), rule.errno_ret());
            if act == default {
                // libseccomp refuses rules equal to the default action; they are no-ops.
                continue;
            }
            notify |= act == ScmpAction::Notify;
            let args = rule.args().clone().unwrap_or_default();
            let conds: Vec<ScmpArgCompare> = args
                .iter()
                .map(|a| {
                    compare(
                        a.op(),
                        a.index() as u32,
                        a.value(),
                        a.value_two().unwrap_or(0),
                    )
                })
                .collect();
            // Several conditions on the same argument cannot be ANDed by libseccomp: as
            // runc, each becomes a rule of its own (OR).
            let mut indexes: Vec<usize> = args.iter().map(|a| a.index()).collect();
            indexes.sort_unstable();
            let repeated = indexes.windows(2).any(|w| w[0] == w[1]);
            for name in rule.names() {
                let Ok(sys) = ScmpSyscall::from_name(name) else {
                    tracing::debug!("seccomp: unknown syscall {name} skipped");
                    continue;
                };
                let r = if conds.is_empty() {
                    ctx.add_rule(act, sys)
                } else if repeated {
                    conds
                        .iter()
                        .try_for_each(|c| {
                            ctx.add_rule_conditional(act, sys, std::slice::from_ref(c))
                                .map(|_| ())
                        })
                        .map(|_| &mut ctx)
                } else {
                    ctx.add_rule_conditional(act, sys, &conds)
                };
                r.map_err(|e| bad(format!("rule for {name}: {e}")))?;
            }
        }
        let mut flags = 0;
        for f in s.flags().iter().flatten() {
            flags |= match f {
                LinuxSeccompFilterFlag::SeccompFilterFlagTsync => FLAG_TSYNC,
                LinuxSeccompFilterFlag::SeccompFilterFlagLog => FLAG_LOG,
                LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
            };
        }
        if notify {
            flags |= FLAG_NEW_LISTENER;
        }
        let stub = super::seccomp_enosys::stub(s, &archs)?;
        Ok(SeccompPlan {
            bpf: super::seccomp_enosys::prepend(&stub, export(&ctx)?)?,
            flags,
            notify,
        })
    }

    /// The compiled `struct sock_filter` array.
    pub fn bpf(&self) -> &[u8] {
        &self.bpf
    }

    /// SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (Linux 6.0): a notifying syscall's wait
    /// becomes killable once the listener has received it. The kernel accepts it only
    /// with a listener, so a filter without NOTIFY rules ignores it.
    pub fn set_wait_killable_recv(&mut self) {
        if self.notify {
            self.flags |= FLAG_WAIT_KILLABLE_RECV;
        } else {
            tracing::debug!(
                "seccomp: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV without SCMP_ACT_NOTIFY rules: ignored"
            );
        }
    }

    /// In the init: installs the program. Needs CAP_SYS_ADMIN or no_new_privs. Returns
    /// the notify listener fd when the filter has SCMP_ACT_NOTIFY rules.
    pub fn load(&self) -> Result<Option<OwnedFd>> {
        let prog = libc::sock_fprog {
            len: (self.bpf.len() / std::mem::size_of::<libc::sock_filter>()) as u16,
            filter: self.bpf.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: `prog` points into `self.bpf`, a valid sock_filter array that lives
        // for the duration of the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                SECCOMP_SET_MODE_FILTER,
                self.flags as libc::c_ulong,
                &prog,
            )
        };
        if r < 0 {
            return Err(Error::sys(
                "seccomp",
                "SECCOMP_SET_MODE_FILTER",
                nix::Error::last(),
            ));
        }
        // SAFETY: with NEW_LISTENER the call returns a fresh fd that nothing else owns.
        Ok(self
            .notify
            .then(|| unsafe { OwnedFd::from_raw_fd(r as i32) }))
    }
}

/// What runc refuses about SCMP_ACT_NOTIFY, refused before anything starts: the
/// runtime writes after loading the filter (the init to report, and runc its sync
/// pipe), so `write` must not wait for an agent that cannot have the listener yet; the
/// same holds for a NOTIFY default action. And the listener fd needs somewhere to go.
fn refuse_notify_misuse(s: &LinuxSeccomp) -> Result<()> {
    let bad = |what: String| Error::Config(format!("seccomp: {what}"));
    if s.default_action() == LinuxSeccompAction::ScmpActNotify {
        return Err(bad(
            "SCMP_ACT_NOTIFY cannot be used as default action (linux.seccomp.defaultAction)".into(),
        ));
    }
    let mut notify = None;
    for (i, rule) in s.syscalls().iter().flatten().enumerate() {
        if rule.action() != LinuxSeccompAction::ScmpActNotify {
            continue;
        }
        if rule.names().iter().any(|n| n == "write") {
            return Err(bad(format!(
                "SCMP_ACT_NOTIFY cannot be used for the write syscall (linux.seccomp.syscalls[{i}])"
            )));
        }
        notify.get_or_insert(i);
    }
    if let Some(i) = notify {
        if s.listener_path()
            .as_ref()
            .is_none_or(|p| p.as_os_str().is_empty())
        {
            return Err(bad(format!(
                "linux.seccomp.listenerPath is not set but linux.seccomp.syscalls[{i}] uses SCMP_ACT_NOTIFY"
            )));
        }
    }
    Ok(())
}

/// The filter as BPF, through a memfd (seccomp_export_bpf_mem needs libseccomp 2.6;
/// Debian 12 has 2.5).
fn export(ctx: &ScmpFilterContext) -> Result<Vec<u8>> {
    let fd =
        nix::sys::memfd::memfd_create(c"berth-seccomp", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(|e| Error::sys("memfd_create", "seccomp export", e))?;
    ctx.export_bpf(&fd)
        .map_err(|e| Error::Config(format!("seccomp: export filter: {e}")))?;
    let mut f = std::fs::File::from(fd);
    let mut bpf = Vec::new();
    f.rewind()
        .and_then(|_| f.read_to_end(&mut bpf))
        .map_err(|e| Error::io("read", "seccomp memfd", e))?;
    Ok(bpf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(json: serde_json::Value) -> Result<SeccompPlan> {
        SeccompPlan::new(&serde_json::from_value(json).unwrap())
    }

    #[test]
    fn compiles_rules_and_skips_unknown_syscalls() {
        let p = plan(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [
                {"names": ["getcwd", "no_such_syscall"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 15, "op": "SCMP_CMP_EQ"}]}
            ]
        }))
        .unwrap();
        assert!(!p.bpf.is_empty() && p.bpf.len().is_multiple_of(8));
        assert!(!p.notify);
    }

    #[test]
    fn notify_sets_new_listener() {
        let p = plan(
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/l.sock",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
        )
        .unwrap();
        assert!(p.notify && p.flags & FLAG_NEW_LISTENER != 0);
        let mut p = p;
        p.set_wait_killable_recv();
        assert_ne!(p.flags & FLAG_WAIT_KILLABLE_RECV, 0);
    }

    #[test]
    fn notify_misuse_is_refused_naming_the_field() {
        for (v, want) in [
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/l.sock",
                    "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
                                 {"names": ["read", "write"], "action": "SCMP_ACT_NOTIFY"}]}),
                "SCMP_ACT_NOTIFY cannot be used for the write syscall (linux.seccomp.syscalls[1])",
            ),
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/l.sock"}),
                "SCMP_ACT_NOTIFY cannot be used as default action",
            ),
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
                "linux.seccomp.listenerPath is not set",
            ),
        ] {
            let e = plan(v).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn restrictive_profiles_answer_unknown_syscalls_with_enosys() {
        use super::super::seccomp_enosys::{tests::eval, RET_ENOSYS};
        const X86_64: u32 = 0xc000_003e;
        let p = plan(
            serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 6,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": ["read", "write", "getrandom"], "action": "SCMP_ACT_ALLOW"}]}),
        )
        .unwrap();
        let allow = 0x7fff_0000;
        let enxio = 0x0005_0000 | libc::ENXIO as u32;
        // getrandom is 318 on x86_64: above it nothing is known to the profile.
        for (nr, want) in [
            (0, allow),
            (1, allow),
            (318, allow),
            (2, enxio),
            (317, enxio),
            (319, RET_ENOSYS),
            (435, RET_ENOSYS),
            (1000, RET_ENOSYS),
        ] {
            assert_eq!(eval(&p.bpf, X86_64, nr), want, "nr {nr}");
        }
        // A permissive default: no stub, and the filter is libseccomp's alone.
        let p = plan(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}))
        .unwrap();
        assert_eq!(eval(&p.bpf, X86_64, 1000), allow);
    }
}
