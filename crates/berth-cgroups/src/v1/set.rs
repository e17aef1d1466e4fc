//! Writing `linux.resources` into v1 hierarchies, controller by controller, in runc's
//! order; only values that are set are written.

use super::{V1Manager, UNIFIED};
use crate::convert::{check_page_size, huge_page_sizes};
use crate::devices::{effective_device_rules, is_wildcard, rule_string};
use crate::error::{Error, Result};
use crate::fsutil::{self, errno, exists, is_not_found, read, write};
use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxHugepageLimit, LinuxMemory, LinuxNetwork,
    LinuxResources,
};
use std::path::Path;

/// Writes `r`; with `devices` false the device rules are left as they are (`update`:
/// runc's update skips them, and replaying them on a running cgroup would deny every
/// device for a moment: writes to /dev/null in the container could fail).
pub(super) fn set(m: &V1Manager, r: &LinuxResources, devices: bool) -> Result<()> {
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(Error::Unsupported(
            "invalid configuration: cannot use unified on cgroup v1".into(),
        ));
    }
    let need = |c: &str| {
        m.dir(c).ok_or_else(|| {
            if m.rootless() {
                // runc's words: the rootless caller could not make or join this one.
                Error::ControllerMissing {
                    controller: c.to_string(),
                    reason: "container could not join or create cgroup".into(),
                }
            } else {
                Error::missing(c)
            }
        })
    };
    if let Some(cpu) = r.cpu() {
        if cpu.cpus().as_deref().is_some_and(|s| !s.is_empty())
            || cpu.mems().as_deref().is_some_and(|s| !s.is_empty())
        {
            set_cpuset(need("cpuset")?, cpu)?;
        }
    }
    if devices {
        let rules = effective_device_rules(r.devices().as_deref());
        let res = need("devices").and_then(|dir| set_devices(dir, &rules));
        match res {
            // As runc: a rootless caller is not expected to manage device rules
            // (writing them needs CAP_SYS_ADMIN), and the devices it can reach are
            // the ones its user may open anyway.
            Err(e) if m.rootless() => {
                tracing::debug!(error = %e, "rootless: device rules not written")
            }
            other => other?,
        }
    }
    if let Some(mem) = r.memory() {
        if memory_is_set(mem) {
            set_memory(need("memory")?, mem)?;
        }
    }
    if let Some(cpu) = r.cpu() {
        if cpu_is_set(cpu) {
            set_cpu(need("cpu")?, cpu)?;
        }
    }
    if let Some(pids) = r.pids() {
        let limit = if pids.limit() > 0 {
            pids.limit().to_string()
        } else {
            "max".to_string()
        };
        write(need("pids")?, "pids.max", &limit)?;
    }
    if let Some(bio) = r.block_io() {
        if blkio_is_set(bio) {
            set_blkio(need("blkio")?, bio)?;
        }
    }
    if let Some(limits) = r.hugepage_limits().as_deref().filter(|l| !l.is_empty()) {
        set_hugetlb(m, limits)?;
    }
    if let Some(net) = r.network() {
        set_network(m, net)?;
    }
    if r.rdma().as_ref().is_some_and(|r| !r.is_empty()) {
        let dir = need("rdma")?;
        for (dev, lim) in r.rdma().iter().flatten() {
            let mut v = dev.clone();
            if let Some(h) = lim.hca_handles() {
                v.push_str(&format!(" hca_handle={h}"));
            }
            if let Some(o) = lim.hca_objects() {
                v.push_str(&format!(" hca_object={o}"));
            }
            write(dir, "rdma.max", &v)?;
        }
    }
    Ok(())
}

fn set_cpuset(dir: &Path, cpu: &LinuxCpu) -> Result<()> {
    if let Some(cpus) = cpu.cpus().as_deref().filter(|s| !s.is_empty()) {
        write(dir, "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = cpu.mems().as_deref().filter(|s| !s.is_empty()) {
        write(dir, "cpuset.mems", mems)?;
    }
    Ok(())
}

/// Replays the rule list on the kernel: deny everything, then each rule in order (an
/// `a` rule resets to allow-all or deny-all, as the kernel does).
fn set_devices(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    let lines = rules
        .iter()
        .enumerate()
        .map(|(i, r)| rule_string(i, r))
        .collect::<Result<Vec<_>>>()?;
    // One open of each file, one write(2) per rule: the kernel parses every write on
    // its own, as it does a write through a new open (runc opens the file per rule; a
    // default config has about a dozen rules).
    let mut deny = ControlFile::new(dir, "devices.deny");
    let mut allow = ControlFile::new(dir, "devices.allow");
    deny.write("a")?;
    for (rule, line) in rules.iter().zip(&lines) {
        let Some(line) = line else { continue };
        let file = if rule.allow() { &mut allow } else { &mut deny };
        file.write(if is_wildcard(rule) { "a" } else { line })?;
    }
    Ok(())
}

/// A control file opened for writing on first use and kept open for the next values.
struct ControlFile {
    path: std::path::PathBuf,
    file: Option<std::fs::File>,
}

impl ControlFile {
    fn new(dir: &Path, name: &str) -> Self {
        ControlFile {
            path: dir.join(name),
            file: None,
        }
    }

    /// Writes `value` in one write(2), as its own record.
    fn write(&mut self, value: &str) -> Result<()> {
        use std::io::Write;
        let file = match &mut self.file {
            Some(f) => f,
            None => {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&self.path)
                    .map_err(|e| Error::io("open", &self.path, e))?;
                self.file.insert(f)
            }
        };
        loop {
            return match file.write(value.as_bytes()) {
                Ok(n) if n == value.len() => Ok(()),
                Ok(n) => Err(Error::io(
                    "write",
                    &self.path,
                    std::io::Error::other(format!(
                        "{value:?}: {n} of {} bytes written",
                        value.len()
                    )),
                )),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => Err(Error::io("write", &self.path, e)),
            };
        }
    }
}

/// runc's convention: 0 is unset.
fn nz(v: Option<i64>) -> i64 {
    v.unwrap_or(0)
}

fn memory_is_set(m: &LinuxMemory) -> bool {
    nz(m.limit()) != 0
        || nz(m.swap()) != 0
        || nz(m.reservation()) != 0
        || m.kernel().is_some()
        || m.kernel_tcp().is_some()
        || m.swappiness().is_some()
        || m.disable_oom_killer() == Some(true)
}

const LIMIT: &str = "memory.limit_in_bytes";
const MEMSW: &str = "memory.memsw.limit_in_bytes";

fn set_memory(dir: &Path, m: &LinuxMemory) -> Result<()> {
    let limit = nz(m.limit());
    let mut swap = nz(m.swap());
    // Unlimited memory without a swap value means unlimited memory+swap too.
    if limit == -1 && swap == 0 && exists(dir, MEMSW) {
        swap = -1;
    }
    // The kernel keeps limit <= memsw: when raising, memsw goes first.
    let mut swap_first = false;
    if limit != 0 && swap != 0 {
        let cur: u64 = read(dir, LIMIT)?.parse().map_err(|e| Error::Parse {
            path: dir.join(LIMIT),
            reason: format!("{e}"),
        })?;
        swap_first = swap == -1 || u64::try_from(swap).is_ok_and(|s| cur < s);
    }
    if swap_first {
        write_swap(dir, swap)?;
        write_limit(dir, limit)?;
    } else {
        write_limit(dir, limit)?;
        write_swap(dir, swap)?;
    }
    if let Some(res) = m.reservation().filter(|v| *v != 0) {
        write(dir, "memory.soft_limit_in_bytes", &res.to_string())?;
    }
    for (value, file) in [
        (m.kernel(), "memory.kmem.limit_in_bytes"),
        (m.kernel_tcp(), "memory.kmem.tcp.limit_in_bytes"),
    ] {
        let Some(v) = value else { continue };
        match write(dir, file, &v.to_string()) {
            Ok(()) => {}
            Err(e)
                if is_not_found(&e) || matches!(errno(&e), Some(libc::EOPNOTSUPP) | Some(524)) =>
            {
                tracing::warn!(
                    file,
                    "kernel memory limits are not supported by this kernel; ignored"
                );
            }
            Err(e) => return Err(e),
        }
    }
    if let Some(sw) = m.swappiness() {
        // u64::MAX is -1 from a config written by a Go runtime: unset.
        if sw != u64::MAX {
            if sw > 100 {
                return Err(Error::Resource {
                    path: dir.join("memory.swappiness"),
                    reason: format!("invalid value:{sw}. valid memory swappiness range is 0-100"),
                });
            }
            write(dir, "memory.swappiness", &sw.to_string())?;
        }
    }
    if m.disable_oom_killer() == Some(true) {
        write(dir, "memory.oom_control", "1")?;
    }
    Ok(())
}

fn write_limit(dir: &Path, limit: i64) -> Result<()> {
    if limit == 0 {
        return Ok(());
    }
    match write(dir, LIMIT, &limit.to_string()) {
        Err(e) if errno(&e) == Some(libc::EBUSY) => {
            let usage = read(dir, "memory.usage_in_bytes").unwrap_or_default();
            let peak = read(dir, "memory.max_usage_in_bytes").unwrap_or_default();
            Err(Error::Resource {
                path: dir.join(LIMIT),
                reason: format!("unable to set memory limit to {limit} (current usage: {usage}, peak usage: {peak})"),
            })
        }
        other => other,
    }
}

fn write_swap(dir: &Path, swap: i64) -> Result<()> {
    if swap == 0 {
        return Ok(());
    }
    write(dir, MEMSW, &swap.to_string()).map_err(|e| {
        if is_not_found(&e) {
            Error::Resource {
                path: dir.join(MEMSW),
                reason: "swap limit is not supported: the kernel has no swap accounting".into(),
            }
        } else {
            e
        }
    })
}

fn cpu_is_set(c: &LinuxCpu) -> bool {
    c.shares().is_some_and(|v| v != 0)
        || c.quota().is_some_and(|v| v != 0)
        || c.period().is_some_and(|v| v != 0)
        || c.realtime_runtime().is_some_and(|v| v != 0)
        || c.realtime_period().is_some_and(|v| v != 0)
        || c.burst().is_some()
        || c.idle().is_some()
}

fn set_cpu(dir: &Path, c: &LinuxCpu) -> Result<()> {
    // An idle group has the minimum weight and refuses cpu.shares (EINVAL): leaving idle
    // comes before the shares, entering it replaces them.
    if c.idle() == Some(0) {
        write(dir, "cpu.idle", "0")?;
    }
    let shares = c.shares().filter(|v| *v != 0 && c.idle() != Some(1));
    if let Some(shares) = shares {
        write(dir, "cpu.shares", &shares.to_string())?;
        let got: u64 = read(dir, "cpu.shares")?.parse().unwrap_or(shares);
        if shares > got {
            return Err(Error::Resource {
                path: dir.join("cpu.shares"),
                reason: format!("the maximum allowed cpu-shares is {got}"),
            });
        } else if shares < got {
            return Err(Error::Resource {
                path: dir.join("cpu.shares"),
                reason: format!("the minimum allowed cpu-shares is {got}"),
            });
        }
    }
    // A smaller period can be refused (EINVAL) while the old quota is in place: then
    // write it again after the quota.
    let mut period_pending = None;
    if let Some(period) = c.period().filter(|v| *v != 0) {
        match write(dir, "cpu.cfs_period_us", &period.to_string()) {
            Ok(()) => {}
            Err(e) if errno(&e) == Some(libc::EINVAL) => period_pending = Some(period),
            Err(e) => return Err(e),
        }
    }
    if let Some(quota) = c.quota().filter(|v| *v != 0) {
        write(dir, "cpu.cfs_quota_us", &quota.to_string())?;
    }
    if let Some(period) = period_pending {
        write(dir, "cpu.cfs_period_us", &period.to_string())?;
    }
    if let Some(burst) = c.burst() {
        write(dir, "cpu.cfs_burst_us", &burst.to_string())?;
    }
    if let Some(p) = c.realtime_period().filter(|v| *v != 0) {
        write(dir, "cpu.rt_period_us", &p.to_string())?;
    }
    if let Some(rt) = c.realtime_runtime().filter(|v| *v != 0) {
        write(dir, "cpu.rt_runtime_us", &rt.to_string())?;
    }
    if let Some(idle) = c.idle().filter(|i| *i != 0) {
        write(dir, "cpu.idle", &idle.to_string())?;
    }
    Ok(())
}

fn blkio_is_set(b: &LinuxBlockIo) -> bool {
    let some = |v: &Option<Vec<_>>| v.as_ref().is_some_and(|v: &Vec<_>| !v.is_empty());
    b.weight().is_some_and(|w| w != 0)
        || b.leaf_weight().is_some_and(|w| w != 0)
        || b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
        || some(b.throttle_read_bps_device())
        || some(b.throttle_write_bps_device())
        || some(b.throttle_read_iops_device())
        || some(b.throttle_write_iops_device())
}

fn set_blkio(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    // CFQ's blkio.weight is gone from recent kernels; BFQ offers blkio.bfq.weight.
    // With neither (no CFQ/BFQ scheduler) a weight cannot be honoured: refused, as
    // runc's write of blkio.bfq.weight fails then.
    let (weight_file, weight_dev_file) = if exists(dir, "blkio.weight") {
        ("blkio.weight", "blkio.weight_device")
    } else {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    };
    let weighted = b.weight().is_some_and(|w| w != 0)
        || b.weight_device()
            .iter()
            .flatten()
            .any(|wd| wd.weight().is_some_and(|w| w != 0));
    if weighted && !exists(dir, weight_file) {
        return Err(Error::Resource {
            path: dir.join(weight_file),
            reason: "blkio weight is not supported: neither blkio.weight nor blkio.bfq.weight \
                     exists (the block devices use no CFQ or BFQ io scheduler)"
                .into(),
        });
    }
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        write(dir, weight_file, &w.to_string())?;
    }
    let leaf_ok = exists(dir, "blkio.leaf_weight");
    if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
        if leaf_ok {
            write(dir, "blkio.leaf_weight", &w.to_string())?;
        } else {
            tracing::warn!(dir = %dir.display(), "blkio.leaf_weight is not supported by this kernel; ignored");
        }
    }
    for wd in b.weight_device().iter().flatten() {
        if let Some(w) = wd.weight().filter(|w| *w != 0) {
            write(
                dir,
                weight_dev_file,
                &format!("{}:{} {w}", wd.major(), wd.minor()),
            )?;
        }
        if let Some(w) = wd.leaf_weight().filter(|w| *w != 0) {
            if leaf_ok {
                write(
                    dir,
                    "blkio.leaf_weight_device",
                    &format!("{}:{} {w}", wd.major(), wd.minor()),
                )?;
            } else {
                tracing::warn!(dir = %dir.display(), "blkio.leaf_weight_device is not supported; ignored");
            }
        }
    }
    for (list, file) in [
        (
            b.throttle_read_bps_device(),
            "blkio.throttle.read_bps_device",
        ),
        (
            b.throttle_write_bps_device(),
            "blkio.throttle.write_bps_device",
        ),
        (
            b.throttle_read_iops_device(),
            "blkio.throttle.read_iops_device",
        ),
        (
            b.throttle_write_iops_device(),
            "blkio.throttle.write_iops_device",
        ),
    ] {
        for td in list.iter().flatten() {
            write(
                dir,
                file,
                &format!("{}:{} {}", td.major(), td.minor(), td.rate()),
            )?;
        }
    }
    Ok(())
}

/// v1 hugetlb files; on a hybrid host whose hugetlb controller sits on the cgroup2 mount
/// (and is enabled for our cgroup there), the v2 files of the `unified` directory.
fn set_hugetlb(m: &V1Manager, limits: &[LinuxHugepageLimit]) -> Result<()> {
    let sizes = huge_page_sizes();
    for l in limits {
        check_page_size(l.page_size(), &sizes)?;
    }
    if let Some(dir) = m.dir("hugetlb") {
        return write_hugetlb(dir, limits, ".limit_in_bytes", |v| v.to_string());
    }
    if let Some(dir) = m.dir(UNIFIED) {
        let ctrls = read(dir, "cgroup.controllers").unwrap_or_default();
        if ctrls.split_whitespace().any(|c| c == "hugetlb") {
            return write_hugetlb(dir, limits, ".max", |v| {
                if v < 0 {
                    "max".into()
                } else {
                    v.to_string()
                }
            });
        }
    }
    Err(Error::ControllerMissing {
        controller: "hugetlb".into(),
        reason: "no v1 hugetlb hierarchy is mounted and the cgroup2 mount does not enable it for this cgroup".into(),
    })
}

/// `hugetlb.<size><suffix>`, and the reservation (`rsvd`) file too where the kernel has
/// it, as the runtime spec prefers reservation limits.
pub(crate) fn write_hugetlb(
    dir: &Path,
    limits: &[LinuxHugepageLimit],
    suffix: &str,
    fmt: impl Fn(i64) -> String,
) -> Result<()> {
    for l in limits {
        let value = fmt(l.limit());
        let prefix = format!("hugetlb.{}", l.page_size());
        write(dir, &format!("{prefix}{suffix}"), &value)?;
        let rsvd = format!("{prefix}.rsvd{suffix}");
        if exists(dir, &rsvd) {
            write(dir, &rsvd, &value)?;
        }
    }
    Ok(())
}

fn set_network(m: &V1Manager, net: &LinuxNetwork) -> Result<()> {
    if let Some(id) = net.class_id().filter(|v| *v != 0) {
        let dir = m.dir("net_cls").ok_or_else(|| Error::missing("net_cls"))?;
        write(dir, "net_cls.classid", &id.to_string())?;
    }
    for p in net.priorities().iter().flatten() {
        let dir = m
            .dir("net_prio")
            .ok_or_else(|| Error::missing("net_prio"))?;
        fsutil::write(
            dir,
            "net_prio.ifpriomap",
            &format!("{} {}", p.name(), p.priority()),
        )?;
    }
    Ok(())
}
