//! Writing `linux.resources` into a cgroup v2 directory, converting the v1-shaped OCI
//! values as runc does; `unified` key/values are written last, verbatim.

use super::V2Manager;
use crate::convert::{
    blkio_weight_to_io_weight, check_page_size, huge_page_sizes, shares_to_weight, swap_to_v2,
};
use crate::error::{Error, Result};
use crate::fsutil::{exists, is_not_found, read, write};
use crate::v1::write_hugetlb;
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};
use std::collections::HashMap;
use std::path::Path;

pub(super) fn set(m: &V2Manager, r: &LinuxResources) -> Result<()> {
    let dir = m.dir();
    if let Some(pids) = r.pids() {
        let limit = if pids.limit() > 0 {
            pids.limit().to_string()
        } else {
            "max".to_string()
        };
        write_ctrl(dir, "pids", "pids.max", &limit)?;
    }
    if let Some(mem) = r.memory() {
        set_memory(dir, mem)?;
    }
    if let Some(b) = r.block_io() {
        set_io(dir, b)?;
    }
    if let Some(cpu) = r.cpu() {
        set_cpu(dir, cpu)?;
    }
    // cgroup v2 has no devices controller: the rules (the spec's, then the defaults
    // every container gets, as on v1) become an eBPF program on the cgroup.
    // A rootless caller usually may not load eBPF: as runc, its device rules are
    // best effort (the container reaches only the host's device nodes that are bound
    // in, with the caller's own rights).
    if let Err(e) = super::devices_bpf::apply(
        dir,
        &crate::devices::effective_device_rules(r.devices().as_deref()),
    ) {
        // Only for a caller without privilege: host root given `--rootless true`
        // keeps its filter (it has CAP_MKNOD over the host's devices).
        if !m.rootless() || !unprivileged() {
            return Err(e);
        }
        tracing::warn!(error = %e, "rootless: device filter not applied");
    }
    if let Some(limits) = r.hugepage_limits().as_deref().filter(|l| !l.is_empty()) {
        let sizes = huge_page_sizes();
        for l in limits {
            check_page_size(l.page_size(), &sizes)?;
        }
        check_controller(dir, "hugetlb")?;
        write_hugetlb(dir, limits, ".max", |v| {
            if v < 0 {
                "max".into()
            } else {
                v.to_string()
            }
        })?;
    }
    if let Some(rdma) = r.rdma().as_ref().filter(|r| !r.is_empty()) {
        for (dev, lim) in rdma {
            let mut v = dev.clone();
            if let Some(h) = lim.hca_handles() {
                v.push_str(&format!(" hca_handle={h}"));
            }
            if let Some(o) = lim.hca_objects() {
                v.push_str(&format!(" hca_object={o}"));
            }
            write_ctrl(dir, "rdma", "rdma.max", &v)?;
        }
    }
    if let Some(net) = r.network() {
        if net.class_id().is_some() || net.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            tracing::warn!(
                "net_cls/net_prio do not exist on cgroup v2; linux.resources.network ignored"
            );
        }
    }
    if let Some(unified) = r.unified() {
        set_unified(dir, unified)?;
    }
    Ok(())
}

/// A caller that is not host root: a non-zero euid, or any euid inside a user
/// namespace (whose map is not the initial one's identity of all 2^32 ids).
fn unprivileged() -> bool {
    !nix::unistd::geteuid().is_root()
        || std::fs::read_to_string("/proc/self/uid_map")
            .map(|m| m.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"])
            .unwrap_or(true)
}

/// Writes a controller file; a missing file is reported as the controller missing.
fn write_ctrl(dir: &Path, controller: &str, file: &str, value: &str) -> Result<()> {
    write(dir, file, value).map_err(|e| {
        if is_not_found(&e) {
            not_enabled(dir, controller)
        } else {
            e
        }
    })
}

fn not_enabled(dir: &Path, controller: &str) -> Error {
    Error::ControllerMissing {
        controller: controller.to_string(),
        reason: format!(
            "the {controller} controller is not enabled for {}",
            dir.display()
        ),
    }
}

fn check_controller(dir: &Path, controller: &str) -> Result<()> {
    let ctrls = read(dir, "cgroup.controllers")?;
    if ctrls.split_whitespace().any(|c| c == controller) {
        Ok(())
    } else {
        Err(not_enabled(dir, controller))
    }
}

/// "max" for -1, None for 0 (unset), the number otherwise.
fn num(v: i64) -> Option<String> {
    match v {
        0 => None,
        -1 => Some("max".into()),
        v => Some(v.to_string()),
    }
}

fn set_memory(dir: &Path, m: &LinuxMemory) -> Result<()> {
    let (limit, swap) = (m.limit().unwrap_or(0), m.swap().unwrap_or(0));
    if let Some(v) = swap_to_v2(swap, limit)? {
        if let Err(e) = write(dir, "memory.swap.max", &v) {
            // Without swap accounting, "unlimited" and "none" are what there is anyway.
            if !(is_not_found(&e) && (v == "max" || v == "0")) {
                return Err(e);
            }
        }
    }
    if let Some(v) = num(limit) {
        write_ctrl(dir, "memory", "memory.max", &v)?;
    }
    if let Some(v) = num(m.reservation().unwrap_or(0)) {
        write_ctrl(dir, "memory", "memory.low", &v)?;
    }
    if m.kernel().is_some() || m.kernel_tcp().is_some() {
        tracing::warn!("kernel memory limits do not exist on cgroup v2; ignored");
    }
    if m.swappiness().is_some_and(|s| s != u64::MAX) {
        tracing::warn!("memory.swappiness does not exist on cgroup v2; ignored");
    }
    if m.disable_oom_killer() == Some(true) {
        tracing::warn!("disabling the OOM killer is not possible on cgroup v2; ignored");
    }
    Ok(())
}

fn set_cpu(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if c.realtime_runtime().is_some_and(|v| v != 0) || c.realtime_period().is_some_and(|v| v != 0) {
        return Err(Error::Unsupported(
            "real-time cpu limits are not supported on cgroup v2".into(),
        ));
    }
    // An idle group has the minimum weight and refuses cpu.weight (EINVAL): leaving
    // idle comes before the weight, entering it replaces it.
    if let Some(idle) = c.idle() {
        write_ctrl(dir, "cpu", "cpu.idle", &idle.to_string())?;
    }
    if let Some(shares) = c.shares().filter(|s| *s != 0 && c.idle() != Some(1)) {
        write_ctrl(
            dir,
            "cpu",
            "cpu.weight",
            &shares_to_weight(shares).to_string(),
        )?;
    }
    let (quota, period) = (c.quota().unwrap_or(0), c.period().unwrap_or(0));
    if quota != 0 || period != 0 {
        let mut v = if quota > 0 {
            quota.to_string()
        } else {
            "max".to_string()
        };
        if period != 0 {
            v.push_str(&format!(" {period}"));
        }
        write_ctrl(dir, "cpu", "cpu.max", &v)?;
    }
    if let Some(burst) = c.burst() {
        write_ctrl(dir, "cpu", "cpu.max.burst", &burst.to_string())?;
    }
    if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        write_ctrl(dir, "cpuset", "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        write_ctrl(dir, "cpuset", "cpuset.mems", mems)?;
    }
    Ok(())
}

fn set_io(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    let bfq = exists(dir, "io.bfq.weight");
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        if bfq {
            write(dir, "io.bfq.weight", &w.to_string())?;
        } else {
            write_ctrl(
                dir,
                "io",
                "io.weight",
                &blkio_weight_to_io_weight(w).to_string(),
            )?;
        }
    }
    if b.leaf_weight().is_some_and(|w| w != 0) {
        tracing::warn!("blkio leaf weight does not exist on cgroup v2; ignored");
    }
    for wd in b.weight_device().iter().flatten() {
        if let Some(w) = wd.weight().filter(|w| *w != 0) {
            if !bfq {
                return Err(Error::Unsupported(
                    "per-device io weight needs the BFQ io scheduler (io.bfq.weight), which is not available".into(),
                ));
            }
            write(
                dir,
                "io.bfq.weight",
                &format!("{}:{} {w}", wd.major(), wd.minor()),
            )?;
        }
    }
    for (list, key) in [
        (b.throttle_read_bps_device(), "rbps"),
        (b.throttle_write_bps_device(), "wbps"),
        (b.throttle_read_iops_device(), "riops"),
        (b.throttle_write_iops_device(), "wiops"),
    ] {
        for td in list.iter().flatten() {
            let rate = if td.rate() == 0 {
                "max".to_string()
            } else {
                td.rate().to_string()
            };
            write_ctrl(
                dir,
                "io",
                "io.max",
                &format!("{}:{} {key}={rate}", td.major(), td.minor()),
            )?;
        }
    }
    Ok(())
}

/// Writes `linux.resources.unified` verbatim; keys must be plain file names.
fn set_unified(dir: &Path, unified: &HashMap<String, String>) -> Result<()> {
    let mut keys: Vec<&String> = unified.keys().collect();
    keys.sort();
    for key in keys {
        check_unified_key(key)?;
        match write(dir, key, &unified[key]) {
            Err(e) if is_not_found(&e) => {
                let controller = key.split('.').next().unwrap_or(key);
                return Err(
                    if controller != "cgroup" && check_controller(dir, controller).is_err() {
                        not_enabled(dir, controller)
                    } else {
                        Error::Resource {
                            path: dir.join(key),
                            reason: "no such cgroup file on this kernel".into(),
                        }
                    },
                );
            }
            other => other?,
        }
    }
    Ok(())
}

pub(crate) fn check_unified_key(key: &str) -> Result<()> {
    let bad = key.is_empty()
        || key.contains('/')
        || key.contains('\0')
        || key == "."
        || key == ".."
        || !key.contains('.');
    let reserved = matches!(
        key,
        "cgroup.procs" | "cgroup.threads" | "cgroup.subtree_control" | "cgroup.kill"
    );
    if bad || reserved {
        return Err(Error::Resource {
            path: dir_hint(key),
            reason: format!(
                "unified resource {key:?} must be a cgroup file name (like memory.high)"
            ),
        });
    }
    Ok(())
}

fn dir_hint(key: &str) -> std::path::PathBuf {
    format!("linux.resources.unified[{key:?}]").into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unified_keys_are_plain_file_names() {
        check_unified_key("memory.high").unwrap();
        check_unified_key("io.max").unwrap();
        for bad in [
            "",
            "..",
            "../memory.max",
            "a/b.c",
            "memory",
            "cgroup.procs",
            "cgroup.kill",
        ] {
            assert!(check_unified_key(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn num_is_runc_numtostr() {
        assert_eq!(num(0), None);
        assert_eq!(num(-1).as_deref(), Some("max"));
        assert_eq!(num(42).as_deref(), Some("42"));
    }
}
