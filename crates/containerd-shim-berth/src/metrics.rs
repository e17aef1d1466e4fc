//! Stats in the types containerd decodes (`ctr task metrics`, the CRI plugin's
//! container stats): `io.containerd.cgroups.v1.Metrics` on a host whose controllers
//! are v1 hierarchies (hybrid included), `io.containerd.cgroups.v2.Metrics` on a
//! cgroup2-only host. The numbers are berth-cgroups' (the data of `berth events`).

use berth_runtime::Stats;
use containerd_shim::protos::cgroups::metrics as v1;
use containerd_shim::protos::cgroups_v2::metrics as v2;
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::{Message, MessageField};
use std::collections::BTreeMap;

/// `stats` as an `Any` of the metrics type for this host's cgroup layout.
pub fn to_any(stats: &Stats, unified: bool) -> Result<Any, String> {
    let (type_url, value) = if unified {
        (
            "io.containerd.cgroups.v2.Metrics",
            to_v2(stats).write_to_bytes(),
        )
    } else {
        (
            "io.containerd.cgroups.v1.Metrics",
            to_v1(stats).write_to_bytes(),
        )
    };
    Ok(Any {
        type_url: type_url.into(),
        value: value.map_err(|e| format!("encode {type_url}: {e}"))?,
        ..Default::default()
    })
}

fn raw(m: &BTreeMap<String, u64>, k: &str) -> u64 {
    m.get(k).copied().unwrap_or(0)
}

/// cgroup v1: the fields of runc's stats that containerd's cgroups package fills.
pub fn to_v1(s: &Stats) -> v1::Metrics {
    let r = &s.memory.raw;
    let entry = |e: &berth_cgroups::MemoryEntry| v1::MemoryEntry {
        limit: e.limit,
        usage: e.usage,
        max: e.max,
        failcnt: e.failcnt,
        ..Default::default()
    };
    let memory = v1::MemoryStat {
        cache: raw(r, "cache"),
        rss: raw(r, "rss"),
        rss_huge: raw(r, "rss_huge"),
        mapped_file: raw(r, "mapped_file"),
        dirty: raw(r, "dirty"),
        writeback: raw(r, "writeback"),
        pg_pg_in: raw(r, "pgpgin"),
        pg_pg_out: raw(r, "pgpgout"),
        pg_fault: raw(r, "pgfault"),
        pg_maj_fault: raw(r, "pgmajfault"),
        inactive_anon: raw(r, "inactive_anon"),
        active_anon: raw(r, "active_anon"),
        inactive_file: raw(r, "inactive_file"),
        active_file: raw(r, "active_file"),
        unevictable: raw(r, "unevictable"),
        hierarchical_memory_limit: raw(r, "hierarchical_memory_limit"),
        hierarchical_swap_limit: raw(r, "hierarchical_memsw_limit"),
        total_cache: raw(r, "total_cache"),
        total_rss: raw(r, "total_rss"),
        total_rss_huge: raw(r, "total_rss_huge"),
        total_mapped_file: raw(r, "total_mapped_file"),
        total_dirty: raw(r, "total_dirty"),
        total_writeback: raw(r, "total_writeback"),
        total_pg_pg_in: raw(r, "total_pgpgin"),
        total_pg_pg_out: raw(r, "total_pgpgout"),
        total_pg_fault: raw(r, "total_pgfault"),
        total_pg_maj_fault: raw(r, "total_pgmajfault"),
        total_inactive_anon: raw(r, "total_inactive_anon"),
        total_active_anon: raw(r, "total_active_anon"),
        total_inactive_file: raw(r, "total_inactive_file"),
        total_active_file: raw(r, "total_active_file"),
        total_unevictable: raw(r, "total_unevictable"),
        usage: MessageField::some(entry(&s.memory.usage)),
        swap: MessageField::some(entry(&s.memory.swap)),
        kernel: MessageField::some(entry(&s.memory.kernel)),
        kernel_tcp: MessageField::some(entry(&s.memory.kernel_tcp)),
        ..Default::default()
    };
    let cpu = v1::CPUStat {
        usage: MessageField::some(v1::CPUUsage {
            total: s.cpu.usage.total,
            kernel: s.cpu.usage.kernel,
            user: s.cpu.usage.user,
            per_cpu: s.cpu.usage.percpu.clone(),
            ..Default::default()
        }),
        throttling: MessageField::some(v1::Throttle {
            periods: s.cpu.throttling.periods,
            throttled_periods: s.cpu.throttling.throttled_periods,
            throttled_time: s.cpu.throttling.throttled_time,
            ..Default::default()
        }),
        ..Default::default()
    };
    let blkio_entries = |list: &[berth_cgroups::BlkioEntry]| {
        list.iter()
            .map(|e| v1::BlkIOEntry {
                op: e.op.clone(),
                major: e.major,
                minor: e.minor,
                value: e.value,
                ..Default::default()
            })
            .collect()
    };
    v1::Metrics {
        hugetlb: s
            .hugetlb
            .iter()
            .map(|(size, h)| v1::HugetlbStat {
                usage: h.usage,
                max: h.max,
                failcnt: h.failcnt,
                pagesize: size.clone(),
                ..Default::default()
            })
            .collect(),
        pids: MessageField::some(v1::PidsStat {
            current: s.pids.current,
            limit: s.pids.limit,
            ..Default::default()
        }),
        cpu: MessageField::some(cpu),
        memory: MessageField::some(memory),
        blkio: MessageField::some(v1::BlkIOStat {
            io_service_bytes_recursive: blkio_entries(&s.blkio.io_service_bytes_recursive),
            io_serviced_recursive: blkio_entries(&s.blkio.io_serviced_recursive),
            ..Default::default()
        }),
        memory_oom_control: MessageField::some(v1::MemoryOomControl {
            oom_kill: s.oom_kills.unwrap_or(0),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// cgroup v2: memory.stat's keys by name, cpu.stat in microseconds, io.stat per device.
pub fn to_v2(s: &Stats) -> v2::Metrics {
    let r = &s.memory.raw;
    let usage = &s.memory.usage;
    // berth reports swap as memory + swap (runc's v1 shape); v2 wants swap alone.
    let swap_usage = s.memory.swap.usage.saturating_sub(usage.usage);
    let swap_limit = if s.memory.swap.limit == u64::MAX || usage.limit == u64::MAX {
        u64::MAX
    } else {
        s.memory.swap.limit.saturating_sub(usage.limit)
    };
    let memory = v2::MemoryStat {
        anon: raw(r, "anon"),
        file: raw(r, "file"),
        kernel_stack: raw(r, "kernel_stack"),
        slab: raw(r, "slab"),
        sock: raw(r, "sock"),
        shmem: raw(r, "shmem"),
        file_mapped: raw(r, "file_mapped"),
        file_dirty: raw(r, "file_dirty"),
        file_writeback: raw(r, "file_writeback"),
        anon_thp: raw(r, "anon_thp"),
        inactive_anon: raw(r, "inactive_anon"),
        active_anon: raw(r, "active_anon"),
        inactive_file: raw(r, "inactive_file"),
        active_file: raw(r, "active_file"),
        unevictable: raw(r, "unevictable"),
        slab_reclaimable: raw(r, "slab_reclaimable"),
        slab_unreclaimable: raw(r, "slab_unreclaimable"),
        pgfault: raw(r, "pgfault"),
        pgmajfault: raw(r, "pgmajfault"),
        workingset_refault: raw(r, "workingset_refault"),
        workingset_activate: raw(r, "workingset_activate"),
        workingset_nodereclaim: raw(r, "workingset_nodereclaim"),
        pgrefill: raw(r, "pgrefill"),
        pgscan: raw(r, "pgscan"),
        pgsteal: raw(r, "pgsteal"),
        pgactivate: raw(r, "pgactivate"),
        pgdeactivate: raw(r, "pgdeactivate"),
        pglazyfree: raw(r, "pglazyfree"),
        pglazyfreed: raw(r, "pglazyfreed"),
        thp_fault_alloc: raw(r, "thp_fault_alloc"),
        thp_collapse_alloc: raw(r, "thp_collapse_alloc"),
        usage: usage.usage,
        usage_limit: usage.limit,
        max_usage: usage.max,
        swap_usage,
        swap_limit,
        ..Default::default()
    };
    // io.stat lines come back as (Read|Write) bytes and ios per device.
    let mut io: BTreeMap<(u64, u64), v2::IOEntry> = BTreeMap::new();
    for (list, bytes) in [
        (&s.blkio.io_service_bytes_recursive, true),
        (&s.blkio.io_serviced_recursive, false),
    ] {
        for e in list.iter() {
            let entry = io.entry((e.major, e.minor)).or_insert_with(|| v2::IOEntry {
                major: e.major,
                minor: e.minor,
                ..Default::default()
            });
            match (e.op.as_str(), bytes) {
                ("Read", true) => entry.rbytes = e.value,
                ("Write", true) => entry.wbytes = e.value,
                ("Read", false) => entry.rios = e.value,
                ("Write", false) => entry.wios = e.value,
                _ => {}
            }
        }
    }
    v2::Metrics {
        pids: MessageField::some(v2::PidsStat {
            current: s.pids.current,
            limit: s.pids.limit,
            ..Default::default()
        }),
        cpu: MessageField::some(v2::CPUStat {
            usage_usec: s.cpu.usage.total / 1000,
            user_usec: s.cpu.usage.user / 1000,
            system_usec: s.cpu.usage.kernel / 1000,
            nr_periods: s.cpu.throttling.periods,
            nr_throttled: s.cpu.throttling.throttled_periods,
            throttled_usec: s.cpu.throttling.throttled_time / 1000,
            ..Default::default()
        }),
        memory: MessageField::some(memory),
        io: MessageField::some(v2::IOStat {
            usage: io.into_values().collect(),
            ..Default::default()
        }),
        hugetlb: s
            .hugetlb
            .iter()
            .map(|(size, h)| v2::HugeTlbStat {
                current: h.usage,
                max: h.max,
                failcnt: h.failcnt,
                pagesize: size.clone(),
                ..Default::default()
            })
            .collect(),
        memory_events: MessageField::some(v2::MemoryEvents {
            max: usage.failcnt,
            oom_kill: s.oom_kills.unwrap_or(0),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_carries_memory_usage_and_limit() {
        let mut s = Stats::default();
        s.memory.usage.usage = 4096;
        s.memory.usage.limit = 67108864;
        s.memory.raw.insert("total_rss".into(), 123);
        s.pids.current = 2;
        let m = to_v1(&s);
        assert_eq!(m.memory.usage.usage, 4096);
        assert_eq!(m.memory.usage.limit, 67108864);
        assert_eq!(m.memory.total_rss, 123);
        assert_eq!(m.pids.current, 2);
        let any = to_any(&s, false).unwrap();
        assert_eq!(any.type_url, "io.containerd.cgroups.v1.Metrics");
        assert_eq!(v1::Metrics::parse_from_bytes(&any.value).unwrap(), m);
    }

    #[test]
    fn v2_splits_swap_and_io_per_device() {
        let mut s = Stats::default();
        s.memory.usage.usage = 1000;
        s.memory.usage.limit = 5000;
        s.memory.swap.usage = 1500;
        s.memory.swap.limit = 8000;
        for (op, v) in [("Read", 10), ("Write", 20)] {
            s.blkio
                .io_service_bytes_recursive
                .push(berth_cgroups::BlkioEntry {
                    major: 8,
                    minor: 0,
                    op: op.into(),
                    value: v,
                });
        }
        let m = to_v2(&s);
        assert_eq!(m.memory.swap_usage, 500);
        assert_eq!(m.memory.swap_limit, 3000);
        assert_eq!(m.io.usage.len(), 1);
        assert_eq!((m.io.usage[0].rbytes, m.io.usage[0].wbytes), (10, 20));
        assert_eq!(
            to_any(&s, true).unwrap().type_url,
            "io.containerd.cgroups.v2.Metrics"
        );
    }
}
