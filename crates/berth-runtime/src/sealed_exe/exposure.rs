//! Which containers need the sealed copy: no user namespace of their own, and a pid
//! namespace in which a process may hold CAP_SYS_PTRACE.

use crate::container::Container;
use crate::error::{Error, Result};
use oci_spec::runtime::{Capability, LinuxNamespaceType, Process, Spec};
use std::path::Path;

/// In the container's state directory: an `exec` gave one of its processes
/// CAP_SYS_PTRACE that the config does not. Made only then; removed with the directory.
const PTRACE_EXEC: &str = "ptrace-exec";

/// Why a process of the runtime's image in this container must run from a sealed
/// copy of the binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposure {
    /// The process (or the container's own process) has CAP_SYS_PTRACE in its bounding
    /// set, in a pid namespace of the container's own, with no user namespace.
    Ptrace,
    /// The pid namespace is joined by path, with no user namespace: processes the
    /// runtime did not start (another container of a pod) may hold CAP_SYS_PTRACE in it.
    JoinedPidNamespace,
    /// An earlier `exec` into the container was given CAP_SYS_PTRACE, which its config
    /// lacks: that process (or what it started) may hold it still.
    PtraceGrantedByExec,
}

impl std::fmt::Display for Exposure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Exposure::Ptrace => "the container's processes may hold CAP_SYS_PTRACE",
            Exposure::JoinedPidNamespace => {
                "the container joins a pid namespace by path, where others may hold CAP_SYS_PTRACE"
            }
            Exposure::PtraceGrantedByExec => {
                "an earlier exec into the container was given CAP_SYS_PTRACE"
            }
        })
    }
}

/// The container's pid namespace, as its config says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PidNamespace {
    /// None: the runtime's own.
    Host,
    New,
    Joined,
}

fn namespace(spec: &Spec, kind: LinuxNamespaceType) -> Option<bool> {
    let ns = spec.linux().as_ref()?.namespaces().as_ref()?;
    ns.iter()
        .find(|n| n.typ() == kind)
        .map(|n| n.path().is_some())
}

fn pid_namespace(spec: &Spec) -> PidNamespace {
    match namespace(spec, LinuxNamespaceType::Pid) {
        None => PidNamespace::Host,
        Some(false) => PidNamespace::New,
        Some(true) => PidNamespace::Joined,
    }
}

/// CAP_SYS_PTRACE in the bounding set: what the process, or a program it runs (file
/// capabilities, setuid), can ever hold. No `capabilities` means none (as the library
/// applies it).
fn may_ptrace(process: Option<&Process>) -> bool {
    process
        .and_then(|p| p.capabilities().as_ref())
        .and_then(|c| c.bounding().as_ref())
        .is_some_and(|b| b.contains(&Capability::SysPtrace))
}

/// The rule for both verbs. A user namespace (new or joined) protects: the
/// non-dumpable check asks for CAP_SYS_PTRACE over the user namespace the runtime was
/// executed in, which the container cannot hold. Without a pid namespace the container
/// shares the host's: one that may hold CAP_SYS_PTRACE there can already open
/// `/proc/1/root` and any host file, so a copy would protect nothing.
fn decide(spec: &Spec, ptrace: bool, marked: impl FnOnce() -> bool) -> Option<Exposure> {
    if namespace(spec, LinuxNamespaceType::User).is_some() {
        return None;
    }
    match pid_namespace(spec) {
        PidNamespace::Host => None,
        PidNamespace::Joined => Some(Exposure::JoinedPidNamespace),
        PidNamespace::New if ptrace => Some(Exposure::Ptrace),
        PidNamespace::New => marked().then_some(Exposure::PtraceGrantedByExec),
    }
}

/// Whether `create` (or `run`) of a container of `spec` must run from a sealed copy
/// of the runtime binary, and why; `None` for the common case, which then costs
/// nothing. See the [module](crate::sealed_exe).
pub fn for_create(spec: &Spec) -> Option<Exposure> {
    decide(spec, may_ptrace(spec.process().as_ref()), || false)
}

impl Container {
    /// Whether `exec` of `process` into this container must run from a sealed copy of
    /// the runtime binary, and why: as [`for_create`], with CAP_SYS_PTRACE in the
    /// process's bounding set or the container's, or given earlier by an `exec`
    /// (recorded in the container's state directory).
    pub fn sealed_exe_for_exec(&self, process: &Process) -> Option<Exposure> {
        let config = &self.state.config;
        let ptrace = may_ptrace(Some(process)) || may_ptrace(config.process().as_ref());
        decide(config, ptrace, || self.dir().join(PTRACE_EXEC).exists())
    }
}

/// Before an exec'd process is started: records in the container's state directory
/// `dir` that it gets CAP_SYS_PTRACE the config does not give, when that exposes later
/// execs (see [`Container::sealed_exe_for_exec`]).
pub(crate) fn record_ptrace_exec(dir: &Path, config: &Spec, process: &Process) -> Result<()> {
    if !may_ptrace(Some(process))
        || may_ptrace(config.process().as_ref())
        || decide(config, true, || false) != Some(Exposure::Ptrace)
    {
        return Ok(());
    }
    let path = dir.join(PTRACE_EXEC);
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map(drop)
        .map_err(|e| Error::io("record an exec given CAP_SYS_PTRACE in", &path, e))
}

#[cfg(test)]
mod tests {
    use super::{decide, for_create, may_ptrace, Exposure};
    use oci_spec::runtime::{Process, Spec};
    use serde_json::{json, Value};

    fn spec(namespaces: Value, bounding: &[&str]) -> Spec {
        serde_json::from_value(json!({
            "ociVersion": "1.0.2",
            "process": {"user": {"uid": 0, "gid": 0}, "cwd": "/", "args": ["sh"],
                        "capabilities": {"bounding": bounding}},
            "root": {"path": "rootfs"},
            "linux": {"namespaces": namespaces}
        }))
        .unwrap()
    }

    #[test]
    fn ptrace_in_a_pid_namespace_of_its_own_needs_the_copy() {
        let s = spec(
            json!([{"type": "pid"}, {"type": "mount"}]),
            &["CAP_SYS_PTRACE"],
        );
        assert_eq!(for_create(&s), Some(Exposure::Ptrace));
    }

    #[test]
    fn the_common_case_needs_none() {
        let s = spec(json!([{"type": "pid"}, {"type": "mount"}]), &["CAP_KILL"]);
        assert_eq!(for_create(&s), None);
    }

    #[test]
    fn a_user_namespace_protects_new_or_joined() {
        for user in [
            json!({"type": "user"}),
            json!({"type": "user", "path": "/proc/7/ns/user"}),
        ] {
            let s = spec(json!([{"type": "pid"}, user]), &["CAP_SYS_PTRACE"]);
            assert_eq!(for_create(&s), None, "{user}");
            let s = spec(
                json!([{"type": "pid", "path": "/proc/7/ns/pid"}, user]),
                &["CAP_SYS_PTRACE"],
            );
            assert_eq!(for_create(&s), None, "{user}");
        }
    }

    #[test]
    fn a_joined_pid_namespace_needs_it_without_ptrace() {
        let s = spec(json!([{"type": "pid", "path": "/proc/7/ns/pid"}]), &[]);
        assert_eq!(for_create(&s), Some(Exposure::JoinedPidNamespace));
    }

    #[test]
    fn the_host_pid_namespace_needs_none() {
        let s = spec(json!([{"type": "mount"}]), &["CAP_SYS_PTRACE"]);
        assert_eq!(for_create(&s), None);
    }

    #[test]
    fn an_earlier_ptrace_exec_counts_only_in_a_new_pid_namespace() {
        let s = spec(json!([{"type": "pid"}]), &[]);
        assert_eq!(
            decide(&s, false, || true),
            Some(Exposure::PtraceGrantedByExec)
        );
        assert_eq!(decide(&s, false, || false), None);
        let host = spec(json!([]), &[]);
        assert_eq!(decide(&host, false, || true), None);
    }

    #[test]
    fn no_capabilities_is_no_ptrace() {
        let p: Process = serde_json::from_value(
            json!({"user": {"uid": 0, "gid": 0}, "cwd": "/", "args": ["sh"]}),
        )
        .unwrap();
        assert!(!may_ptrace(Some(&p)));
        assert!(!may_ptrace(None));
    }
}
