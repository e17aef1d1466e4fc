//! Resource usage read from a container's cgroup files, in the shape of runc's
//! `types.Stats` (the `data` of `runc events`): field names and Go's omitempty rules.

use crate::error::Result;
use crate::fsutil;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

fn zero(v: &u64) -> bool {
    *v == 0
}

/// Everything `events` reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    pub cpu: Cpu,
    pub cpuset: CpuSet,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
    pub intel_rdt: BTreeMap<String, u64>,
    pub network_interfaces: Option<Vec<String>>,
    /// The kernel's count of OOM kills in the cgroup (v1 `memory.oom_control`
    /// `oom_kill`, v2 `memory.events` `oom_kill`), when it reports one. Not part of
    /// runc's document.
    #[serde(skip)]
    pub oom_kills: Option<u64>,
}

/// CPU time and throttling.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

/// Nanoseconds of CPU time.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

/// CFS throttling counters (time in nanoseconds).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    #[serde(skip_serializing_if = "zero")]
    pub periods: u64,
    #[serde(skip_serializing_if = "zero")]
    pub throttled_periods: u64,
    #[serde(skip_serializing_if = "zero")]
    pub throttled_time: u64,
}

/// cpuset placement (left empty: berth does not report it yet).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CpuSet {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
}

/// Memory usage; `raw` is memory.stat as key/value pairs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Memory {
    #[serde(skip_serializing_if = "zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

/// One memory counter family (bytes).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// Task counts (`limit` 0 means no limit).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Pids {
    #[serde(skip_serializing_if = "zero")]
    pub current: u64,
    #[serde(skip_serializing_if = "zero")]
    pub limit: u64,
}

/// Block I/O counters by device and operation.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Blkio {
    #[serde(
        rename = "ioServiceBytesRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioServicedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

/// One `major:minor op value` line.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "zero")]
    pub value: u64,
}

/// Huge page usage of one page size.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// A number from a file; a missing file is 0, "max" is `u64::MAX`.
fn num(dir: &Path, file: &str) -> Result<u64> {
    match fsutil::read(dir, file) {
        Ok(s) if s == "max" => Ok(u64::MAX),
        Ok(s) => Ok(s.parse().unwrap_or(0)),
        Err(e) if fsutil::is_not_found(&e) => Ok(0),
        Err(e) => Err(e),
    }
}

/// `key value` lines (memory.stat, cpu.stat, cpuacct.stat); a missing file is empty.
fn flat_keyed(dir: &Path, file: &str) -> Result<BTreeMap<String, u64>> {
    let text = match fsutil::read(dir, file) {
        Ok(s) => s,
        Err(e) if fsutil::is_not_found(&e) => return Ok(BTreeMap::new()),
        Err(e) => return Err(e),
    };
    Ok(parse_flat_keyed(&text))
}

pub(crate) fn parse_flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// Clock ticks per second for cpuacct.stat (USER_HZ).
/// The kernel's count of OOM kills in a container's memory cgroup now: v1's
/// `memory.oom_control` `oom_kill` (Linux 4.13+), v2's `memory.events` `oom_kill`
/// (hierarchical: kills in sub-cgroups count). `None` when there is no memory cgroup,
/// the kernel keeps no count, or the cgroup is gone. One small file read: cheap enough
/// for every process exit (the embedder API compares it before and after a process).
pub fn oom_kills(state: &crate::CgroupState) -> Option<u64> {
    let (key, file) = match state.driver.as_str() {
        "v1" => ("memory", "memory.oom_control"),
        _ => ("", "memory.events"),
    };
    let text = fsutil::read(state.paths.get(key)?, file).ok()?;
    parse_flat_keyed(&text).get("oom_kill").copied()
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no memory effects.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// `max` → no limit (0) for pids.max.
fn pids_of(dir: &Path) -> Result<Pids> {
    let limit = num(dir, "pids.max")?;
    Ok(Pids {
        current: num(dir, "pids.current")?,
        limit: if limit == u64::MAX { 0 } else { limit },
    })
}

/// The cgroup v1 files of each hierarchy (`dir(controller)`).
pub(crate) fn v1<'a>(dir: impl Fn(&str) -> Option<&'a Path>) -> Result<Stats> {
    let mut s = Stats::default();
    if let Some(d) = dir("cpuacct") {
        s.cpu.usage.total = num(d, "cpuacct.usage")?;
        if let Ok(text) = fsutil::read(d, "cpuacct.usage_percpu") {
            s.cpu.usage.percpu = text
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
        }
        if let Ok(text) = fsutil::read(d, "cpuacct.usage_all") {
            // "cpu user system" header, then one line per cpu.
            for line in text.lines().skip(1) {
                let f: Vec<u64> = line
                    .split_whitespace()
                    .filter_map(|v| v.parse().ok())
                    .collect();
                if f.len() == 3 {
                    s.cpu.usage.percpu_user.push(f[1]);
                    s.cpu.usage.percpu_kernel.push(f[2]);
                }
            }
        }
        let st = flat_keyed(d, "cpuacct.stat")?;
        let ns_per_tick = 1_000_000_000 / clock_ticks();
        s.cpu.usage.user = st.get("user").copied().unwrap_or(0) * ns_per_tick;
        s.cpu.usage.kernel = st.get("system").copied().unwrap_or(0) * ns_per_tick;
    }
    if let Some(d) = dir("cpu") {
        let st = flat_keyed(d, "cpu.stat")?;
        s.cpu.throttling = Throttling {
            periods: st.get("nr_periods").copied().unwrap_or(0),
            throttled_periods: st.get("nr_throttled").copied().unwrap_or(0),
            throttled_time: st.get("throttled_time").copied().unwrap_or(0),
        };
    }
    if let Some(d) = dir("memory") {
        let entry = |prefix: &str| -> Result<MemoryEntry> {
            let p = if prefix.is_empty() {
                "memory.".to_string()
            } else {
                format!("memory.{prefix}.")
            };
            Ok(MemoryEntry {
                limit: num(d, &format!("{p}limit_in_bytes"))?,
                usage: num(d, &format!("{p}usage_in_bytes"))?,
                max: num(d, &format!("{p}max_usage_in_bytes"))?,
                failcnt: num(d, &format!("{p}failcnt"))?,
            })
        };
        s.memory.usage = entry("")?;
        s.memory.swap = entry("memsw")?;
        s.memory.kernel = entry("kmem")?;
        s.memory.kernel_tcp = entry("kmem.tcp")?;
        s.memory.raw = flat_keyed(d, "memory.stat")?;
        s.memory.cache = s.memory.raw.get("cache").copied().unwrap_or(0);
        s.oom_kills = flat_keyed(d, "memory.oom_control")?
            .get("oom_kill")
            .copied();
    }
    if let Some(d) = dir("pids") {
        s.pids = pids_of(d)?;
    }
    if let Some(d) = dir("blkio") {
        s.blkio.io_service_bytes_recursive =
            blkio_v1(d, "blkio.throttle.io_service_bytes_recursive")?;
        s.blkio.io_serviced_recursive = blkio_v1(d, "blkio.throttle.io_serviced_recursive")?;
    }
    for (dir, v2) in [(dir("hugetlb"), false), (dir(crate::v1::UNIFIED), true)] {
        if let Some(d) = dir {
            hugetlb(d, v2, &mut s.hugetlb)?;
        }
    }
    Ok(s)
}

/// `8:0 Read 4096` lines; the closing `Total N` line (no device) is left out.
fn blkio_v1(dir: &Path, file: &str) -> Result<Vec<BlkioEntry>> {
    let text = match fsutil::read(dir, file) {
        Ok(s) => s,
        Err(e) if fsutil::is_not_found(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(parse_blkio_v1(&text))
}

pub(crate) fn parse_blkio_v1(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let [dev, op, value] = f[..] else {
                return None;
            };
            let (major, minor) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op: op.to_string(),
                value: value.parse().ok()?,
            })
        })
        .collect()
}

/// Huge page counters for each page size the kernel has.
fn hugetlb(dir: &Path, v2: bool, out: &mut BTreeMap<String, Hugetlb>) -> Result<()> {
    for size in crate::huge_page_sizes() {
        let h = if v2 {
            if !fsutil::exists(dir, &format!("hugetlb.{size}.current")) {
                continue;
            }
            Hugetlb {
                usage: num(dir, &format!("hugetlb.{size}.current"))?,
                max: 0,
                failcnt: flat_keyed(dir, &format!("hugetlb.{size}.events"))?
                    .get("max")
                    .copied()
                    .unwrap_or(0),
            }
        } else {
            if !fsutil::exists(dir, &format!("hugetlb.{size}.usage_in_bytes")) {
                continue;
            }
            Hugetlb {
                usage: num(dir, &format!("hugetlb.{size}.usage_in_bytes"))?,
                max: num(dir, &format!("hugetlb.{size}.max_usage_in_bytes"))?,
                failcnt: num(dir, &format!("hugetlb.{size}.failcnt"))?,
            }
        };
        out.insert(size, h);
    }
    Ok(())
}

/// The cgroup v2 files of one directory.
pub(crate) fn v2(dir: &Path) -> Result<Stats> {
    let mut s = Stats::default();
    let cpu = flat_keyed(dir, "cpu.stat")?;
    let get = |m: &BTreeMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
    s.cpu.usage.total = get(&cpu, "usage_usec") * 1000;
    s.cpu.usage.user = get(&cpu, "user_usec") * 1000;
    s.cpu.usage.kernel = get(&cpu, "system_usec") * 1000;
    s.cpu.throttling = Throttling {
        periods: get(&cpu, "nr_periods"),
        throttled_periods: get(&cpu, "nr_throttled"),
        throttled_time: get(&cpu, "throttled_usec") * 1000,
    };
    if fsutil::exists(dir, "memory.current") {
        let events = flat_keyed(dir, "memory.events")?;
        s.memory.usage = MemoryEntry {
            limit: num(dir, "memory.max")?,
            usage: num(dir, "memory.current")?,
            max: num(dir, "memory.peak")?,
            failcnt: get(&events, "max"),
        };
        // runc reports swap as memory + swap, as v1's memsw does.
        let swap_max = num(dir, "memory.swap.max")?;
        s.memory.swap = MemoryEntry {
            limit: swap_max.saturating_add(s.memory.usage.limit),
            usage: num(dir, "memory.swap.current")? + s.memory.usage.usage,
            max: 0,
            failcnt: 0,
        };
        s.memory.raw = flat_keyed(dir, "memory.stat")?;
        s.memory.cache = get(&s.memory.raw, "file");
        s.oom_kills = events.get("oom_kill").copied();
    }
    s.pids = pids_of(dir)?;
    if let Ok(text) = fsutil::read(dir, "io.stat") {
        let (bytes, ios) = parse_io_stat(&text);
        s.blkio.io_service_bytes_recursive = bytes;
        s.blkio.io_serviced_recursive = ios;
    }
    hugetlb(dir, true, &mut s.hugetlb)?;
    Ok(s)
}

/// io.stat: `8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...` → (bytes, ios) with Read/Write ops.
pub(crate) fn parse_io_stat(text: &str) -> (Vec<BlkioEntry>, Vec<BlkioEntry>) {
    let mut bytes = Vec::new();
    let mut ios = Vec::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let Some((major, minor)) = f.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            continue;
        };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut bytes, "Read"),
                "wbytes" => (&mut bytes, "Write"),
                "rios" => (&mut ios, "Read"),
                "wios" => (&mut ios, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.into(),
                value,
            });
        }
    }
    (bytes, ios)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_file_formats() {
        let m = parse_flat_keyed("cache 4096\nrss 8192\n");
        assert_eq!(m["cache"], 4096);
        let b = parse_blkio_v1("8:0 Read 100\n8:0 Write 5\nTotal 105\n");
        assert_eq!(b.len(), 2);
        assert_eq!((b[1].major, b[1].op.as_str(), b[1].value), (8, "Write", 5));
        let (bytes, ios) = parse_io_stat("259:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0\n");
        assert_eq!(bytes[0].value, 10);
        assert_eq!(ios[1].op, "Write");
    }

    #[test]
    fn serializes_like_runc() {
        let v = serde_json::to_value(Stats::default()).unwrap();
        assert_eq!(v["cpu"]["throttling"], serde_json::json!({}));
        assert_eq!(
            v["memory"]["usage"],
            serde_json::json!({"limit": 0, "failcnt": 0})
        );
        assert_eq!(v["blkio"], serde_json::json!({}));
        assert!(v["network_interfaces"].is_null());
    }

    /// A temporary directory of fake cgroup v2 files.
    fn fake_v2() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("berth-stats-v2-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        for (f, v) in [
            ("cpu.stat", "usage_usec 10\nuser_usec 6\nsystem_usec 4\nnr_periods 3\nnr_throttled 1\nthrottled_usec 7\n"),
            ("memory.current", "4096\n"),
            ("memory.max", "max\n"),
            ("memory.events", "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n"),
            ("memory.stat", "anon 100\nfile 200\n"),
            ("pids.current", "3\n"),
            ("pids.max", "max\n"),
        ] {
            std::fs::write(d.join(f), v).unwrap();
        }
        d
    }

    #[test]
    fn reads_v2_files() {
        let d = fake_v2();
        let s = v2(&d).unwrap();
        let _ = std::fs::remove_dir_all(&d);
        assert_eq!(s.cpu.usage.total, 10_000);
        assert_eq!(s.cpu.usage.user, 6_000);
        assert_eq!(s.cpu.throttling.throttled_time, 7_000);
        assert_eq!(s.memory.usage.usage, 4096);
        assert_eq!(s.memory.usage.limit, u64::MAX);
        assert_eq!(s.memory.usage.failcnt, 2);
        assert_eq!(s.memory.cache, 200);
        assert_eq!(s.oom_kills, Some(1));
        assert_eq!((s.pids.current, s.pids.limit), (3, 0));
    }

    #[test]
    fn reads_v1_files() {
        let d = std::env::temp_dir().join(format!("berth-stats-v1-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        for (f, v) in [
            ("cpuacct.usage", "5000\n"),
            ("cpuacct.usage_percpu", "2000 3000 \n"),
            ("cpuacct.stat", "user 2\nsystem 1\n"),
            (
                "cpu.stat",
                "nr_periods 4\nnr_throttled 2\nthrottled_time 99\n",
            ),
            ("memory.usage_in_bytes", "8192\n"),
            ("memory.max_usage_in_bytes", "9000\n"),
            ("memory.limit_in_bytes", "65536\n"),
            ("memory.failcnt", "3\n"),
            ("memory.stat", "cache 100\nrss 200\n"),
            (
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
            ),
            ("pids.current", "2\n"),
            ("pids.max", "10\n"),
            (
                "blkio.throttle.io_service_bytes_recursive",
                "8:0 Read 512\nTotal 512\n",
            ),
        ] {
            std::fs::write(d.join(f), v).unwrap();
        }
        let s = v1(|_| Some(d.as_path())).unwrap();
        let _ = std::fs::remove_dir_all(&d);
        let tick = 1_000_000_000 / clock_ticks();
        assert_eq!(s.cpu.usage.total, 5000);
        assert_eq!(s.cpu.usage.percpu, [2000, 3000]);
        assert_eq!((s.cpu.usage.user, s.cpu.usage.kernel), (2 * tick, tick));
        assert_eq!(s.cpu.throttling.throttled_time, 99);
        assert_eq!(
            s.memory.usage,
            MemoryEntry {
                limit: 65536,
                usage: 8192,
                max: 9000,
                failcnt: 3
            }
        );
        assert_eq!(s.memory.cache, 100);
        assert_eq!(s.memory.raw["rss"], 200);
        assert_eq!(s.oom_kills, Some(2));
        assert_eq!((s.pids.current, s.pids.limit), (2, 10));
        assert_eq!(s.blkio.io_service_bytes_recursive.len(), 1);
    }
}
