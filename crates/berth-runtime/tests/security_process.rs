//! The process's privileges and scheduling as seen from inside the container:
//! capabilities (ambient ones usable by a non-root user after exec, ones outside
//! berth's own bounding set refused by name), no_new_privs both ways, rlimits,
//! AppArmor/SELinux/Intel RDT refused clearly where the host lacks them, scheduler,
//! I/O priority, CPU affinity and personality read back from /proc.

mod security_support;

use berth_runtime::ExitStatus;
use security_support::{host_bounding_has, set, status_bits, Fixture};
use serde_json::json;

const CAP_CHOWN: u32 = 0;
const CAP_SYS_RESOURCE: u32 = 24;

#[test]
fn ambient_capabilities_survive_exec_for_a_non_root_user() {
    let f = Fixture::new("ambient");
    let script = "grep -E '^Cap(Eff|Amb)' /proc/self/status >> /out/log; \
                  touch /tmp/f && chown 0 /tmp/f && echo chown=ok >> /out/log; true";
    let mut cfg = f.config(script);
    set(&mut cfg, "process/user", json!({"uid": 1000, "gid": 1000}));
    let caps = json!(["CAP_CHOWN"]);
    for s in [
        "bounding",
        "effective",
        "permitted",
        "inheritable",
        "ambient",
    ] {
        set(&mut cfg, &format!("process/capabilities/{s}"), caps.clone());
    }
    let r = f.run(&cfg);
    assert_eq!(r.status, ExitStatus::Exited(0), "{r:?}");
    assert_eq!(
        status_bits(&r.log, "CapAmb"),
        Some(1 << CAP_CHOWN),
        "{}",
        r.log
    );
    assert_eq!(
        status_bits(&r.log, "CapEff"),
        Some(1 << CAP_CHOWN),
        "{}",
        r.log
    );
    assert!(r.log.contains("chown=ok"), "{}", r.log);

    // Without the ambient set, execve as a non-root user clears the effective set.
    set(&mut cfg, "process/capabilities/ambient", json!([]));
    let r = f.run(&cfg);
    assert_eq!(status_bits(&r.log, "CapEff"), Some(0), "{}", r.log);
    assert!(!r.log.contains("chown=ok"), "{}", r.log);
}

#[test]
fn a_capability_outside_berths_bounding_set_is_refused_by_name() {
    if host_bounding_has(CAP_SYS_RESOURCE) {
        eprintln!("skipped: CAP_SYS_RESOURCE is in this host's bounding set");
        return;
    }
    let f = Fixture::new("capbnd");
    let mut cfg = f.config("true");
    for s in ["bounding", "effective", "permitted"] {
        set(
            &mut cfg,
            &format!("process/capabilities/{s}"),
            json!(["CAP_KILL", "CAP_SYS_RESOURCE"]),
        );
    }
    let e = f.create_fails(&cfg);
    assert!(e.contains("CAP_SYS_RESOURCE"), "{e}");
}

#[test]
fn no_new_privileges_both_ways() {
    let f = Fixture::new("nnp");
    for (nnp, want) in [(true, "1"), (false, "0")] {
        let mut cfg = f.config("grep NoNewPrivs /proc/self/status >> /out/log");
        set(&mut cfg, "process/noNewPrivileges", json!(nnp));
        let r = f.run(&cfg);
        let got = r
            .log
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string();
        assert_eq!(got, want, "noNewPrivileges {nnp}: {}", r.log);
    }
}

#[test]
fn rlimits_are_seen_and_a_hard_limit_raise_names_cap_sys_resource() {
    let f = Fixture::new("rlimits");
    let mut cfg =
        f.config("ulimit -Sn >> /out/log; ulimit -Hn >> /out/log; ulimit -Hc >> /out/log");
    set(
        &mut cfg,
        "process/rlimits",
        json!([{"type": "RLIMIT_NOFILE", "soft": 200, "hard": 300},
               {"type": "RLIMIT_CORE", "soft": 0, "hard": 4096}]),
    );
    let r = f.run(&cfg);
    // busybox reports RLIMIT_CORE in 512-byte blocks.
    assert_eq!(r.log, "200\n300\n8\n");

    if host_bounding_has(CAP_SYS_RESOURCE) {
        eprintln!("skipped the raise: CAP_SYS_RESOURCE is in this host's bounding set");
        return;
    }
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid, writable rlimit.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    set(
        &mut cfg,
        "process/rlimits",
        json!([{"type": "RLIMIT_NOFILE", "soft": 10, "hard": lim.rlim_max + 1}]),
    );
    let e = f.create_fails(&cfg);
    assert!(
        e.contains("RLIMIT_NOFILE") && e.contains("CAP_SYS_RESOURCE"),
        "{e}"
    );
}

#[test]
fn an_unknown_rlimit_is_a_one_line_error_naming_the_field() {
    let f = Fixture::new("rlimit-name");
    let mut cfg = f.config("true");
    set(
        &mut cfg,
        "process/rlimits",
        json!([{"type": "RLIMIT_TEST", "soft": 1, "hard": 1}]),
    );
    let e = f.create_fails(&cfg);
    assert!(
        e.contains("process.rlimits[0]") && e.contains("RLIMIT_TEST"),
        "{e}"
    );
}

#[test]
fn lsm_labels_need_the_module() {
    let f = Fixture::new("lsm");
    // An empty profile means "none" and is accepted everywhere.
    let mut cfg = f.config("true");
    set(&mut cfg, "process/apparmorProfile", json!(""));
    set(&mut cfg, "process/selinuxLabel", json!(""));
    assert_eq!(f.run(&cfg).status, ExitStatus::Exited(0));

    let apparmor =
        std::fs::read("/sys/module/apparmor/parameters/enabled").is_ok_and(|v| v.starts_with(b"Y"));
    if apparmor {
        eprintln!("skipped the AppArmor refusal: AppArmor is enabled here");
    } else {
        let mut cfg = f.config("true");
        set(&mut cfg, "process/apparmorProfile", json!("berth-test"));
        let e = f.create_fails(&cfg);
        assert!(
            e.contains("berth-test") && e.contains("AppArmor is not enabled"),
            "{e}"
        );
    }
    if std::path::Path::new("/sys/fs/selinux/enforce").exists() {
        eprintln!("skipped the SELinux refusal: SELinux is enabled here");
    } else {
        let mut cfg = f.config("true");
        set(
            &mut cfg,
            "process/selinuxLabel",
            json!("system_u:system_r:container_t:s0"),
        );
        let e = f.create_fails(&cfg);
        assert!(e.contains("SELinux is not enabled"), "{e}");
        // linux.mountLabel alone is ignored without SELinux, as runc does.
        let mut cfg = f.config("true");
        set(
            &mut cfg,
            "linux/mountLabel",
            json!("system_u:object_r:container_file_t:s0"),
        );
        assert_eq!(f.run(&cfg).status, ExitStatus::Exited(0));
    }
}

#[test]
fn intel_rdt_without_resctrl_is_refused() {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    if mounts.contains(" - resctrl ") {
        eprintln!("skipped: resctrl is mounted here");
        return;
    }
    let f = Fixture::new("rdt");
    let mut cfg = f.config("true");
    set(
        &mut cfg,
        "linux/intelRdt",
        json!({"closID": "berth", "l3CacheSchema": "L3:0=f"}),
    );
    let e = f.create_fails(&cfg);
    assert!(e.contains("linux.intelRdt") && e.contains("resctrl"), "{e}");
}

/// Field `n` (1-based, as in proc(5)) of a /proc/<pid>/stat line.
fn stat_field(stat: &str, n: usize) -> Option<String> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(n - 3).map(str::to_string)
}

#[test]
fn scheduler_io_priority_and_affinity_are_seen_inside() {
    let f = Fixture::new("sched");
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (initial, last) = if cpus > 1 { ("1", "0") } else { ("0", "0") };
    let mut cfg = f.config(
        "cat /proc/$$/stat >> /out/log; ionice -p $$ >> /out/log; \
         grep Cpus_allowed_list /proc/$$/status >> /out/log",
    );
    set(
        &mut cfg,
        "process/scheduler",
        json!({"policy": "SCHED_BATCH", "nice": 7}),
    );
    set(
        &mut cfg,
        "process/ioPriority",
        json!({"class": "IOPRIO_CLASS_BE", "priority": 6}),
    );
    set(
        &mut cfg,
        "process/execCPUAffinity",
        json!({"initial": initial, "final": last}),
    );
    let r = f.run(&cfg);
    assert_eq!(r.status, ExitStatus::Exited(0), "{r:?}");
    let stat = r.log.lines().next().unwrap_or_default();
    assert_eq!(stat_field(stat, 19).as_deref(), Some("7"), "nice: {stat}");
    assert_eq!(stat_field(stat, 41).as_deref(), Some("3"), "policy: {stat}");
    assert!(r.log.contains("best-effort: prio 6"), "{}", r.log);
    assert!(
        r.log.contains(&format!("Cpus_allowed_list:\t{last}\n")),
        "{}",
        r.log
    );
}

#[test]
fn bad_scheduler_values_name_the_field() {
    let f = Fixture::new("sched-bad");
    let mut cfg = f.config("true");
    set(
        &mut cfg,
        "process/scheduler",
        json!({"policy": "SCHED_FIFO", "priority": 150}),
    );
    let e = f.create_fails(&cfg);
    assert!(e.contains("process.scheduler") && e.contains("150"), "{e}");
    let mut cfg = f.config("true");
    set(
        &mut cfg,
        "process/ioPriority",
        json!({"class": "IOPRIO_CLASS_IDLE", "priority": 8}),
    );
    let e = f.create_fails(&cfg);
    assert!(e.contains("process.ioPriority"), "{e}");
    let mut cfg = f.config("true");
    set(
        &mut cfg,
        "process/scheduler",
        json!({"policy": "SCHED_WHATEVER"}),
    );
    let e = f.create_fails(&cfg);
    assert!(e.contains("process.scheduler"), "{e}");
}

#[test]
fn personality_linux32() {
    let f = Fixture::new("persona");
    let mut cfg = f.config("uname -m >> /out/log");
    set(&mut cfg, "linux/personality", json!({"domain": "LINUX32"}));
    let r = f.run(&cfg);
    assert_eq!(r.log.trim(), "i686", "{r:?}");
    set(&mut cfg, "linux/personality", json!({"domain": "LINUX"}));
    let r = f.run(&cfg);
    assert_eq!(r.log.trim(), std::env::consts::ARCH, "{r:?}");
}

#[test]
fn memory_policy_is_seen_in_numa_maps() {
    if !std::path::Path::new("/proc/self/numa_maps").exists() {
        eprintln!("skipped: no NUMA support in this kernel");
        return;
    }
    let f = Fixture::new("mempolicy");
    let mut cfg = f.config("grep -c interleave:0 /proc/$$/numa_maps >> /out/log");
    set(
        &mut cfg,
        "linux/memoryPolicy",
        json!({"mode": "MPOL_INTERLEAVE", "nodes": "0"}),
    );
    let r = f.run(&cfg);
    assert!(
        r.log.trim().parse::<u32>().unwrap_or(0) > 0,
        "no interleave:0 mapping: {r:?}"
    );
    set(&mut cfg, "linux/memoryPolicy", json!({"mode": "MPOL_BIND"}));
    let e = f.create_fails(&cfg);
    assert!(e.contains("linux.memoryPolicy"), "{e}");
}
