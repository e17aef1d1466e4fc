//! Checks of untrusted input without side effects: what `create`, `exec`, `update`
//! and the state loader do with a document before they touch the host, as functions
//! that only parse, check and compile. Nothing is created, mounted, opened by a path
//! the input names, written or loaded into the kernel. They exist so that a caller
//! (an engine, a linter, the fuzz targets in `fuzz/`) can run the real checks on any
//! bytes: every input gives `Ok` or an [`Error`], never a panic.

use crate::bundle::{check_args, ParsedConfig};
use crate::error::{Error, Result};
use crate::namespaces::NamespacePlan;
use crate::process::ProcessPlan;
use crate::rootfs::{RootfsOptions, RootfsPlan};
use crate::state::{Persisted, State, Status};
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxResources, LinuxSeccomp, Mount, Spec};
use std::path::Path;

/// Where [`check_config`] pretends the bundle is (relative bind sources are resolved
/// against it): never looked at.
const UNCHECKED_BUNDLE: &str = "/nonexistent-bundle";

/// config.json's text checked as [`crate::Runtime::create`] checks it before it makes
/// anything, returning the spec it would run: the JSON parsed (an error names the
/// field), the version, hooks and process args, `linux.cgroupsPath` and the device
/// cgroup rules, the namespaces and id mappings, the process (user, capabilities,
/// rlimits, scheduler, I/O priority, personality, memory policy; the seccomp filter
/// compiled to BPF), every mount, device, masked and readonly path, hostname,
/// domainname and sysctl.
///
/// What needs the host is left to `create`: the bundle and rootfs are not looked at,
/// namespace paths are not opened (nor their type checked: a joined network namespace
/// is taken as another than the runtime's for the sysctl rules), and the cgroup is
/// neither made nor written.
pub fn check_config(config: &[u8]) -> Result<Spec> {
    let parsed = ParsedConfig::parse(config, "config.json")?;
    parsed.rootfs_path()?;
    let spec = &parsed.spec;
    check_args(spec)?;
    let linux = spec.linux().as_ref();
    let cgroups_path = linux.and_then(|l| l.cgroups_path().as_ref());
    let cgroups_path = match cgroups_path {
        Some(p) => Some(
            p.to_str()
                .ok_or_else(|| Error::Config(format!("linux.cgroupsPath {p:?} is not UTF-8")))?,
        ),
        None => None,
    };
    berth_cgroups::check_cgroups_path(cgroups_path, "check")?;
    if let Some(rules) = linux
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.devices().as_ref())
    {
        berth_cgroups::check_device_rules(rules)?;
    }
    // As host root: the rootless refusals depend on the caller, not the document.
    crate::userns_checks::check_spec(spec, false)?;
    let ns = NamespacePlan::unopened(spec)?;
    let mut process = ProcessPlan::new(spec)?;
    if parsed.seccomp_wait_killable_recv {
        if let Some(filter) = process.seccomp.as_mut() {
            filter.set_wait_killable_recv();
        }
    }
    let absolute = crate::spawn::plan::with_absolute_sources(spec, Path::new(UNCHECKED_BUNDLE));
    RootfsPlan::with_id_mappings(
        absolute.as_ref().unwrap_or(spec),
        Path::new(UNCHECKED_BUNDLE).join("rootfs").as_path(),
        RootfsOptions {
            no_pivot: false,
            new_user_ns: ns.new.contains(CloneFlags::CLONE_NEWUSER),
            mount_ns: ns.has(CloneFlags::CLONE_NEWNS),
            cgroup_dirs: Vec::new(),
        },
        &parsed.mount_id_mappings,
    )?;
    crate::spawn::plan::uts_names(spec, &ns)?;
    crate::sysctl::plan(linux.and_then(|l| l.sysctl().as_ref()), &ns)?;
    Ok(parsed.spec)
}

/// One `mounts` entry of config.json checked as `create` checks it (its options
/// parsed with mount(8)'s and runc's names, destination, type and source rules), for
/// a host whose cgroups are v1 (`unified` false) or v2.
pub fn check_mount(mount: &Mount, unified: bool) -> Result<()> {
    crate::rootfs::check_mount(mount, unified)
}

/// A process.json (`exec --process`) checked as [`crate::Container::exec`] checks it
/// for a container of `container` (its seccomp filter, personality and memory policy
/// apply to the new process too): parsed, then the process prepared.
pub fn check_exec_process(process_json: &[u8], container: &Spec) -> Result<()> {
    let process = crate::parse::process_from_json(process_json)?;
    let linux = container.linux().as_ref();
    ProcessPlan::from_process(&process, linux.and_then(|l| l.seccomp().as_ref()))?
        .with_container_linux(linux)
        .map(drop)
}

/// A seccomp profile (`linux.seccomp`) compiled to its BPF program, as `create` and
/// `exec` compile it, and not loaded.
pub fn compile_seccomp(seccomp: &LinuxSeccomp) -> Result<Vec<u8>> {
    crate::process::seccomp::SeccompPlan::new(seccomp).map(|p| p.bpf().to_vec())
}

/// The resources [`crate::Container::update`] would keep and write for `update`
/// over a container's `current` ones: (kept, written). Nothing is written.
pub fn check_update(
    current: &LinuxResources,
    update: &LinuxResources,
) -> Result<(LinuxResources, LinuxResources)> {
    crate::update::plan(current, update)
}

/// A state file's text (`<root>/<id>/state.json`) read as [`crate::Runtime::load`]
/// reads it, and the OCI state it gives for a stopped container.
pub fn check_state_file(data: &[u8], id: &str) -> Result<State> {
    Persisted::from_slice(data, id, Path::new("state.json")).map(|p| p.to_state(Status::Stopped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(over: serde_json::Value) -> Vec<u8> {
        let mut base = serde_json::to_value(crate::default_spec()).unwrap();
        if let (Some(b), Some(o)) = (base.as_object_mut(), over.as_object()) {
            for (k, v) in o {
                b.insert(k.clone(), v.clone());
            }
        }
        serde_json::to_vec(&base).unwrap()
    }

    #[test]
    fn default_spec_passes() {
        check_config(&config(json!({}))).unwrap();
    }

    #[test]
    fn namespace_paths_are_not_opened() {
        // A path that cannot be opened: create would fail on it, the check does not
        // look (and a net sysctl is then allowed, as for another namespace).
        let cfg = config(json!({"linux": {
            "namespaces": [
                {"type": "mount"}, {"type": "uts"},
                {"type": "network", "path": "/nonexistent/ns/net"}
            ],
            "sysctl": {"net.ipv4.ip_forward": "1"}
        }}));
        check_config(&cfg).unwrap();
    }

    #[test]
    fn errors_name_the_field() {
        let e = check_config(&config(json!({"hostname": 7}))).unwrap_err();
        assert!(e.to_string().contains("hostname"), "{e}");
        let e = check_config(&config(json!({"linux": {
            "namespaces": [{"type": "mount"}, {"type": "uts"}],
            "sysctl": {"kernel.panic": "1"}
        }})))
        .unwrap_err();
        assert!(e.to_string().contains("kernel.panic"), "{e}");
        assert!(check_config(b"{").is_err());
        assert!(check_config(b"[]").is_err());
    }

    #[test]
    fn seccomp_compiles_to_whole_instructions() {
        let s: LinuxSeccomp = serde_json::from_value(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]
        }))
        .unwrap();
        let bpf = compile_seccomp(&s).unwrap();
        assert!(!bpf.is_empty() && bpf.len().is_multiple_of(8));
    }

    #[test]
    fn state_files() {
        assert!(check_state_file(b"{\"id\": \"x\", \"pid\":", "x").is_err());
        assert!(check_state_file(b"", "x").is_err());
    }

    #[test]
    fn exec_process_and_update() {
        let spec = crate::default_spec();
        check_exec_process(br#"{"args": ["true"], "cwd": "/"}"#, &spec).unwrap();
        assert!(check_exec_process(br#"{"args": ["true"], "cwd": "rel"}"#, &spec).is_err());
        let cur: LinuxResources = serde_json::from_value(json!({"pids": {"limit": 5}})).unwrap();
        let upd = crate::resources_from_json(br#"{"Memory": {"Limit": 1048576}}"#).unwrap();
        let (kept, _) = check_update(&cur, &upd).unwrap();
        assert_eq!(kept.pids().as_ref().map(|p| p.limit()), Some(5));
        assert_eq!(
            kept.memory().as_ref().and_then(|m| m.limit()),
            Some(1048576)
        );
    }
}
