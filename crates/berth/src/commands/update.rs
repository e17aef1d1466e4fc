//! `berth update`: new resource limits for a running container, from runc's flags or
//! from a LinuxResources JSON document (`--resources FILE|-`).

use crate::cli::Globals;
use anyhow::{anyhow, bail, Context};
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Map, Value};
use std::io::Read;

/// `update [flags] <container-id>`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// path to the file containing the resources to update or '-' to read from the
    /// standard input (all other options are then ignored)
    #[arg(short, long, value_name = "FILE")]
    pub resources: Option<String>,
    /// Specifies per cgroup weight, range is from 10 to 1000
    #[arg(long, value_name = "WEIGHT")]
    pub blkio_weight: Option<u16>,
    /// CPU CFS period to be used for hardcapping (in usecs). 0 to use system default
    #[arg(long, value_name = "USECS")]
    pub cpu_period: Option<u64>,
    /// CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period
    #[arg(long, value_name = "USECS", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU shares (relative weight vs. other containers)
    #[arg(long = "cpu-share", alias = "cpu-shares", value_name = "SHARES")]
    pub cpu_share: Option<u64>,
    /// CPU realtime period to be used for hardcapping (in usecs). 0 to use system default
    #[arg(long, value_name = "USECS")]
    pub cpu_rt_period: Option<u64>,
    /// CPU realtime hardcap limit (in usecs). Allowed cpu time in a given period
    #[arg(long, value_name = "USECS", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPU(s) to use
    #[arg(long, value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// Memory node(s) to use
    #[arg(long, value_name = "LIST")]
    pub cpuset_mems: Option<String>,
    /// Memory limit (in bytes; units k, m, g, t, p accepted)
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory reservation or soft_limit (in bytes)
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Total memory usage (memory + swap); set '-1' to enable unlimited swap
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Kernel memory limit (ignored, as by runc 1.1: kernel memory limits are deprecated)
    #[arg(long, value_name = "SIZE", hide = true, allow_hyphen_values = true)]
    pub kernel_memory: Option<String>,
    /// Kernel TCP memory limit (ignored, as by runc 1.1)
    #[arg(long, value_name = "SIZE", hide = true, allow_hyphen_values = true)]
    pub kernel_memory_tcp: Option<String>,
    /// Maximum number of pids allowed in the container
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// The string of Intel RDT/CAT L3 cache schema
    #[arg(long, value_name = "SCHEMA")]
    pub l3_cache_schema: Option<String>,
    /// The string of Intel RDT/MBA memory bandwidth schema
    #[arg(long, value_name = "SCHEMA")]
    pub mem_bw_schema: Option<String>,
    #[arg(value_name = "container-id")]
    pub id: String,
}

/// Validates everything first, then applies and persists the merged resources.
pub fn run(globals: &Globals, args: Args) -> anyhow::Result<()> {
    berth_runtime::validate_id(&args.id)?;
    let mut container = super::runtime(globals)?.load(&args.id)?;
    let resources = match &args.resources {
        Some(file) => read_resources(file)?,
        None => from_flags(&args)?,
    };
    container.update(&resources)?;
    Ok(())
}

fn read_resources(file: &str) -> anyhow::Result<LinuxResources> {
    let mut data = Vec::new();
    if file == "-" {
        std::io::stdin()
            .read_to_end(&mut data)
            .context("read resources from stdin")?;
    } else {
        data = std::fs::read(file).with_context(|| format!("open {file}"))?;
    }
    berth_runtime::resources_from_json(&data).map_err(|e| match e {
        berth_runtime::Error::Config(reason) => anyhow!("decode resources {file}: {reason}"),
        e => anyhow!("decode resources {file}: {e}"),
    })
}

/// The resources the flags set (others left out so the container's values stay).
pub fn from_flags(args: &Args) -> anyhow::Result<LinuxResources> {
    if args.l3_cache_schema.is_some() {
        bail!("Intel RDT/CAT: l3 cache schema is not enabled");
    }
    if args.mem_bw_schema.is_some() {
        bail!("Intel RDT/MBA: memory bandwidth schema is not enabled");
    }
    if args.kernel_memory.is_some() || args.kernel_memory_tcp.is_some() {
        tracing::warn!("kernel memory settings are ignored and will be removed");
    }
    let mut memory = Map::new();
    for (flag, key, value) in [
        ("memory", "limit", &args.memory),
        ("memory-swap", "swap", &args.memory_swap),
        (
            "memory-reservation",
            "reservation",
            &args.memory_reservation,
        ),
    ] {
        if let Some(v) = value {
            let bytes = if v == "-1" {
                -1
            } else {
                ram_in_bytes(v).map_err(|e| anyhow!("invalid value for {flag}: {e}"))?
            };
            memory.insert(key.into(), bytes.into());
        }
    }
    let mut cpu = Map::new();
    let mut put = |key: &str, v: Option<Value>| {
        if let Some(v) = v {
            cpu.insert(key.into(), v);
        }
    };
    put("shares", args.cpu_share.map(Value::from));
    put("quota", args.cpu_quota.map(Value::from));
    put("period", args.cpu_period.map(Value::from));
    put("realtimeRuntime", args.cpu_rt_runtime.map(Value::from));
    put("realtimePeriod", args.cpu_rt_period.map(Value::from));
    for (flag, key, value) in [
        ("cpuset-cpus", "cpus", &args.cpuset_cpus),
        ("cpuset-mems", "mems", &args.cpuset_mems),
    ] {
        if let Some(v) = value {
            check_cpu_list(v).map_err(|e| anyhow!("invalid value for {flag}: {e}"))?;
            put(key, Some(Value::from(v.clone())));
        }
    }
    let mut doc = Map::new();
    if !memory.is_empty() {
        doc.insert("memory".into(), Value::Object(memory));
    }
    if !cpu.is_empty() {
        doc.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(w) = args.blkio_weight {
        if !(10..=1000).contains(&w) {
            bail!("invalid value for blkio-weight: {w} is not in the range 10 to 1000");
        }
        doc.insert("blockIO".into(), json!({ "weight": w }));
    }
    if let Some(limit) = args.pids_limit {
        doc.insert("pids".into(), json!({ "limit": limit }));
    }
    serde_json::from_value(Value::Object(doc)).context("build resources")
}

/// A cpuset list (`0-2,4`): numbers and ranges separated by commas.
fn check_cpu_list(list: &str) -> Result<(), String> {
    for part in list.split(',') {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let lo: u32 = lo
            .trim()
            .parse()
            .map_err(|_| format!("invalid list {list:?}"))?;
        let hi: u32 = hi
            .trim()
            .parse()
            .map_err(|_| format!("invalid list {list:?}"))?;
        if lo > hi {
            return Err(format!("invalid range {part:?} in {list:?}"));
        }
    }
    Ok(())
}

/// go-units `RAMInBytes`: a decimal number, an optional space, an optional unit
/// (k, m, g, t, p: powers of 1024), optionally followed by `i` and/or `b`.
pub fn ram_in_bytes(size: &str) -> Result<i64, String> {
    let invalid = || format!("invalid size: '{size}'");
    let num_end = size
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(size.len());
    let (num, rest) = size.split_at(num_end);
    if num.is_empty() || !num.starts_with(|c: char| c.is_ascii_digit()) || num.ends_with('.') {
        return Err(invalid());
    }
    let value: f64 = num.parse().map_err(|_| invalid())?;
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let mut chars = rest.chars().peekable();
    let mult: f64 = match chars.peek().map(|c| c.to_ascii_lowercase()) {
        Some('k') => 1024f64,
        Some('m') => 1024f64.powi(2),
        Some('g') => 1024f64.powi(3),
        Some('t') => 1024f64.powi(4),
        Some('p') => 1024f64.powi(5),
        _ => 1.0,
    };
    if mult > 1.0 {
        chars.next();
    }
    if chars.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'i')) {
        chars.next();
    }
    if chars.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'b')) {
        chars.next();
    }
    if chars.next().is_some() {
        return Err(invalid());
    }
    Ok((value * mult) as i64)
}

#[cfg(test)]
mod tests {
    use super::{check_cpu_list, ram_in_bytes};

    #[test]
    fn sizes_as_go_units() {
        assert_eq!(ram_in_bytes("512M"), Ok(512 << 20));
        assert_eq!(ram_in_bytes("1g"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("10 KiB"), Ok(10 << 10));
        assert_eq!(ram_in_bytes("1.5k"), Ok(1536));
        assert_eq!(ram_in_bytes("100"), Ok(100));
        assert_eq!(ram_in_bytes("64mb"), Ok(64 << 20));
        for bad in ["12Q", "", "M", "-5", "1..2", "5MBx"] {
            assert!(ram_in_bytes(bad).is_err(), "{bad}");
        }
        assert_eq!(ram_in_bytes("12Q").unwrap_err(), "invalid size: '12Q'");
    }

    #[test]
    fn cpu_lists() {
        assert!(check_cpu_list("0-1,3").is_ok());
        assert!(check_cpu_list("1-0").is_err());
        assert!(check_cpu_list("a").is_err());
    }
}
