//! `linux.resources` as systemd unit properties (systemd.resource-control(5)), converted
//! as runc's systemd v2 driver does (`genV2ResourcesProperties`), so `systemctl show`
//! and a `daemon-reload` agree with what berth also writes to the cgroup files.

use crate::convert::{blkio_weight_to_io_weight, shares_to_weight, swap_to_v2};
use crate::error::{Error, Result};
use oci_spec::runtime::LinuxResources;
use zbus::zvariant::Value;

/// systemd's "infinity" for the u64 properties (`USEC_INFINITY`, `CGROUP_LIMIT_MAX`).
const INFINITY: u64 = u64::MAX;
/// The kernel's default cpu.max period, used when only a quota is given.
const DEFAULT_CPU_PERIOD: u64 = 100_000;

/// A unit property: name and D-Bus value.
pub(crate) type Prop = (&'static str, Value<'static>);

/// The properties for `r`. `version` is asked for the running systemd's version only when
/// a property needs a recent one (CPUQuotaPeriodUSec: 242, AllowedCPUs: 244); what the
/// systemd cannot take is left to the cgroup files alone.
pub(crate) fn resource_props(
    r: &LinuxResources,
    mut version: impl FnMut() -> u32,
) -> Result<Vec<Prop>> {
    let mut props: Vec<Prop> = Vec::new();
    if let Some(m) = r.memory() {
        let limit = m.limit().unwrap_or(0);
        if limit != 0 {
            props.push(("MemoryMax", Value::U64(limit as u64)));
        }
        if let Some(low) = m.reservation().filter(|v| *v != 0) {
            props.push(("MemoryLow", Value::U64(low as u64)));
        }
        match swap_to_v2(m.swap().unwrap_or(0), limit)?.as_deref() {
            None => {}
            Some("max") => props.push(("MemorySwapMax", Value::U64(INFINITY))),
            Some(v) => props.push(("MemorySwapMax", Value::U64(parse(v)?))),
        }
    }
    if let Some(c) = r.cpu() {
        // An idle group has no weight (the kernel refuses one).
        if let Some(shares) = c.shares().filter(|s| *s != 0 && c.idle() != Some(1)) {
            props.push(("CPUWeight", Value::U64(shares_to_weight(shares))));
        }
        let (quota, period) = (c.quota().unwrap_or(0), c.period().unwrap_or(0));
        if period != 0 && version() >= 242 {
            props.push(("CPUQuotaPeriodUSec", Value::U64(period)));
        }
        if quota != 0 || period != 0 {
            props.push((
                "CPUQuotaPerSecUSec",
                Value::U64(quota_per_sec(quota, period)),
            ));
        }
        let cpus = c.cpus().as_deref().filter(|s| !s.is_empty());
        let mems = c.mems().as_deref().filter(|s| !s.is_empty());
        if (cpus.is_some() || mems.is_some()) && version() >= 244 {
            if let Some(cpus) = cpus {
                props.push(("AllowedCPUs", Value::from(range_to_bits(cpus)?)));
            }
            if let Some(mems) = mems {
                props.push(("AllowedMemoryNodes", Value::from(range_to_bits(mems)?)));
            }
        }
    }
    if let Some(p) = r.pids() {
        // runc: a positive limit, or -1 for "max"; 0 leaves the unit's default.
        if p.limit() > 0 || p.limit() == -1 {
            props.push(("TasksMax", Value::U64(p.limit() as u64)));
        }
    }
    if let Some(w) = r
        .block_io()
        .as_ref()
        .and_then(|b| b.weight())
        .filter(|w| *w != 0)
    {
        props.push(("IOWeight", Value::U64(blkio_weight_to_io_weight(w))));
    }
    if let Some(unified) = r.unified() {
        let mut keys: Vec<&String> = unified.keys().collect();
        keys.sort();
        for k in keys {
            for (name, value) in unified_props(k, &unified[k], &mut version)? {
                props.retain(|(n, _)| *n != name);
                props.push((name, value));
            }
        }
    }
    Ok(props)
}

/// One `linux.resources.unified` entry as unit properties, as runc's
/// `unifiedResToSystemdProps`: a unit property overrides the one the other resources
/// gave; keys systemd has no property for are left to the cgroup file alone.
fn unified_props(key: &str, value: &str, version: &mut impl FnMut() -> u32) -> Result<Vec<Prop>> {
    let bad = || Error::Resource {
        path: format!("unified {key}").into(),
        reason: format!("value {value:?} does not convert to a systemd property"),
    };
    let num_or_max = |v: &str| -> Result<u64> {
        match v.trim() {
            "max" => Ok(INFINITY),
            n => n.parse().map_err(|_| bad()),
        }
    };
    let v = value.trim();
    Ok(match key {
        "cpu.weight" => vec![("CPUWeight", Value::U64(v.parse().map_err(|_| bad())?))],
        "cpu.max" => {
            let mut words = v.split_whitespace();
            let quota = words.next().ok_or_else(bad)?;
            let period: u64 = match words.next() {
                Some(p) => p.parse().map_err(|_| bad())?,
                None => 0,
            };
            let quota: i64 = match quota {
                "max" => -1,
                q => q.parse().map_err(|_| bad())?,
            };
            let mut out = Vec::new();
            if period != 0 && version() >= 242 {
                out.push(("CPUQuotaPeriodUSec", Value::U64(period)));
            }
            out.push((
                "CPUQuotaPerSecUSec",
                Value::U64(quota_per_sec(quota, period)),
            ));
            out
        }
        "cpuset.cpus" if version() >= 244 => {
            vec![("AllowedCPUs", Value::from(range_to_bits(v)?))]
        }
        "cpuset.mems" if version() >= 244 => {
            vec![("AllowedMemoryNodes", Value::from(range_to_bits(v)?))]
        }
        "memory.min" => vec![("MemoryMin", Value::U64(num_or_max(v)?))],
        "memory.low" => vec![("MemoryLow", Value::U64(num_or_max(v)?))],
        "memory.high" => vec![("MemoryHigh", Value::U64(num_or_max(v)?))],
        "memory.max" => vec![("MemoryMax", Value::U64(num_or_max(v)?))],
        "memory.swap.max" => vec![("MemorySwapMax", Value::U64(num_or_max(v)?))],
        "pids.max" => vec![("TasksMax", Value::U64(num_or_max(v)?))],
        _ => Vec::new(),
    })
}

/// The quota as microseconds per CPU second. systemd keeps it as a whole percentage
/// of a CPU, so runc rounds up to 10 ms; 0 or a negative quota is "infinity".
fn quota_per_sec(quota: i64, period: u64) -> u64 {
    if quota <= 0 {
        return INFINITY;
    }
    let period = if period == 0 {
        DEFAULT_CPU_PERIOD
    } else {
        period
    };
    let per_sec = (quota as u64).saturating_mul(1_000_000) / period;
    per_sec.div_ceil(10_000) * 10_000
}

fn parse(v: &str) -> Result<u64> {
    v.parse().map_err(|_| Error::Resource {
        path: "memory.swap.max".into(),
        reason: format!("not a number: {v:?}"),
    })
}

/// A cpuset list ("0-3,8") as systemd's bitmask bytes: byte 0 holds CPUs 0-7, bit
/// `n % 8` of byte `n / 8` is CPU `n` (runc's `RangeToBits`).
pub(crate) fn range_to_bits(list: &str) -> Result<Vec<u8>> {
    let bad = |reason: String| Error::Resource {
        path: "cpuset".into(),
        reason: format!("cpuset list {list:?}: {reason}"),
    };
    let mut bytes: Vec<u8> = Vec::new();
    for part in list.trim().split(',').map(str::trim) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let num = |s: &str| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| bad(format!("{part:?} is not a number or range")))
        };
        let (a, b) = (num(a)?, num(b)?);
        if a > b {
            return Err(bad(format!("{part:?} is a descending range")));
        }
        if b >= 1 << 16 {
            return Err(bad(format!("{b} is out of range")));
        }
        if bytes.len() <= b / 8 {
            bytes.resize(b / 8 + 1, 0);
        }
        for n in a..=b {
            bytes[n / 8] |= 1 << (n % 8);
        }
    }
    if bytes.is_empty() {
        return Err(bad("empty".into()));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(v: serde_json::Value) -> LinuxResources {
        serde_json::from_value(v).unwrap()
    }

    fn get<'a>(props: &'a [Prop], name: &str) -> Option<&'a Value<'static>> {
        props.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    #[test]
    fn limits_become_properties_like_runc() {
        let r = res(serde_json::json!({
            "memory": {"limit": 67108864, "reservation": 33554432, "swap": 100663296},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"},
            "pids": {"limit": 50},
            "blockIO": {"weight": 500}
        }));
        let p = resource_props(&r, || 252).unwrap();
        assert_eq!(get(&p, "MemoryMax"), Some(&Value::U64(67_108_864)));
        assert_eq!(get(&p, "MemoryLow"), Some(&Value::U64(33_554_432)));
        assert_eq!(get(&p, "MemorySwapMax"), Some(&Value::U64(33_554_432)));
        assert_eq!(get(&p, "CPUWeight"), Some(&Value::U64(39)));
        assert_eq!(get(&p, "CPUQuotaPeriodUSec"), Some(&Value::U64(100_000)));
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(500_000)));
        assert_eq!(get(&p, "TasksMax"), Some(&Value::U64(50)));
        assert_eq!(get(&p, "AllowedCPUs"), Some(&Value::from(vec![3u8])));
        assert_eq!(get(&p, "AllowedMemoryNodes"), Some(&Value::from(vec![1u8])));
        assert_eq!(
            get(&p, "IOWeight"),
            Some(&Value::U64(blkio_weight_to_io_weight(500)))
        );
    }

    #[test]
    fn unlimited_and_unset() {
        let r = res(serde_json::json!({
            "memory": {"limit": -1}, "pids": {"limit": -1}, "cpu": {"quota": -1}
        }));
        let p = resource_props(&r, || 252).unwrap();
        assert_eq!(get(&p, "MemoryMax"), Some(&Value::U64(u64::MAX)));
        assert_eq!(get(&p, "MemorySwapMax"), Some(&Value::U64(u64::MAX)));
        assert_eq!(get(&p, "TasksMax"), Some(&Value::U64(u64::MAX)));
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(u64::MAX)));
        let none = resource_props(&res(serde_json::json!({"pids": {"limit": 0}})), || 252);
        assert!(none.unwrap().is_empty());
    }

    #[test]
    fn unified_entries_become_properties_and_override() {
        let r = res(serde_json::json!({
            "memory": {"limit": 67108864},
            "unified": {"memory.max": "max", "memory.high": "50000000", "pids.max": "20",
                        "cpu.max": "25000 50000", "cpu.weight": "42", "io.weight": "default 50"}
        }));
        let p = resource_props(&r, || 252).unwrap();
        assert_eq!(get(&p, "MemoryMax"), Some(&Value::U64(u64::MAX)));
        assert_eq!(p.iter().filter(|(n, _)| *n == "MemoryMax").count(), 1);
        assert_eq!(get(&p, "MemoryHigh"), Some(&Value::U64(50_000_000)));
        assert_eq!(get(&p, "TasksMax"), Some(&Value::U64(20)));
        assert_eq!(get(&p, "CPUWeight"), Some(&Value::U64(42)));
        assert_eq!(get(&p, "CPUQuotaPeriodUSec"), Some(&Value::U64(50_000)));
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(500_000)));
        // No property for io.weight: the cgroup file alone.
        assert!(p.iter().all(|(n, _)| !n.starts_with("IO")));
        let bad = res(serde_json::json!({"unified": {"pids.max": "lots"}}));
        let e = resource_props(&bad, || 252).unwrap_err().to_string();
        assert!(e.contains("pids.max"), "{e}");
    }

    #[test]
    fn old_systemd_gets_no_new_properties() {
        let r = res(serde_json::json!({"cpu": {"period": 50000, "quota": 12345, "cpus": "1"}}));
        let p = resource_props(&r, || 239).unwrap();
        assert!(get(&p, "CPUQuotaPeriodUSec").is_none());
        assert!(get(&p, "AllowedCPUs").is_none());
        // 12345 us per 50 ms = 246900 us/s, rounded up to whole percent.
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(250_000)));
    }

    #[test]
    fn version_is_asked_only_when_needed() {
        let r = res(serde_json::json!({"memory": {"limit": 1048576}}));
        let p = resource_props(&r, || panic!("version asked")).unwrap();
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn cpusets_as_bitmasks() {
        assert_eq!(range_to_bits("0").unwrap(), vec![1]);
        assert_eq!(range_to_bits("0-3,8").unwrap(), vec![0x0f, 0x01]);
        assert_eq!(range_to_bits("7, 9-10").unwrap(), vec![0x80, 0x06]);
        assert!(range_to_bits("").is_err());
        assert!(range_to_bits("3-1").is_err());
        assert!(range_to_bits("a").is_err());
    }
}
