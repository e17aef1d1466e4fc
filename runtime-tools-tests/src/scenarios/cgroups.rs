//! cgroup v1 scenarios: resources written at create, judged from the host's cgroupfs.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::cgroup::{v1_controller, Controller};
use crate::ctx::{read_trim, Ctx};
use crate::spec::{default_config, set};
use crate::verdict::{Res, Verdict};
use crate::{ensure, skip};

/// create only with these resources; returns the id and the cgroupsPath used.
fn create_with(c: &mut Ctx, resources: Value) -> Result<(String, String), Verdict> {
    let mut cfg = default_config(&["/bin/sleep", "30"], "/placeholder");
    if let (Some(dst), Some(src)) = (
        cfg.pointer_mut("/linux/resources")
            .and_then(Value::as_object_mut),
        resources.as_object(),
    ) {
        for (k, v) in src {
            dst.insert(k.clone(), v.clone());
        }
    }
    let (id, b) = c.prepare(cfg, false)?;
    c.must_create(&b, &id)?;
    let path = format!("/{}/{id}", c.suite.cg_parent);
    Ok((id, path))
}

fn any_controller(name: &str) -> Result<Controller, Verdict> {
    crate::cgroup::controller(name)
        .ok_or_else(|| Verdict::Skip(format!("no {name} controller on this host")))
}

fn controller(name: &str) -> Result<PathBuf, Verdict> {
    v1_controller(name)
        .ok_or_else(|| Verdict::Skip(format!("no cgroup v1 {name} hierarchy on this host")))
}

/// Compares a cgroup file's content with the wanted value.
fn expect(dir: &Path, file: &str, want: &str, problems: &mut Vec<String>) {
    let p = dir.join(file);
    if !p.exists() {
        problems.push(format!("{} does not exist", p.display()));
        return;
    }
    let got = read_trim(&p);
    if got != want {
        problems.push(format!("{file} is {got:?} want {want:?}"));
    }
}

/// delete --force, then every hierarchy must have lost the container's cgroup.
fn finish(c: &mut Ctx, id: &str, path: &str, problems: Vec<String>) -> Res {
    c.must(&["delete", "--force", id])?;
    ensure!(problems.is_empty(), "{}", problems.join("; "));
    let left = crate::cgroup::existing(path);
    ensure!(left.is_empty(), "cgroup left after delete: {left:?}");
    Ok(())
}

pub fn linux_cgroups_pids(c: &mut Ctx) -> Res {
    let pids = any_controller("pids")?;
    let (id, path) = create_with(c, json!({"pids": {"limit": 1000}}))?;
    let mut p = Vec::new();
    expect(&pids.dir(&path), "pids.max", "1000", &mut p);
    finish(c, &id, &path, p)
}

/// v1: limit, soft limit, swappiness, memsw and the OOM killer switch. v2: memory.max,
/// memory.low and memory.swap.max (swap minus limit); swappiness and the OOM switch
/// have no v2 files.
pub fn linux_cgroups_memory(c: &mut Ctx) -> Res {
    let mem = any_controller("memory")?;
    let mem = match &mem {
        Controller::V1(p) => p.clone(),
        Controller::V2(_) => return memory_v2(c, &mem),
    };
    let memsw = mem.join("memory.memsw.limit_in_bytes").exists();
    let mut m = json!({"limit": 50593792, "reservation": 25296896, "swappiness": 50, "disableOOMKiller": true});
    if memsw {
        set(&mut m, "swap", json!(101187584));
    } else {
        println!(
            "# linux_cgroups_memory: no memory.memsw files (swap accounting off): swap not checked"
        );
    }
    let (id, path) = create_with(c, json!({"memory": m}))?;
    let dir = mem.join(path.trim_start_matches('/'));
    let mut p = Vec::new();
    expect(&dir, "memory.limit_in_bytes", "50593792", &mut p);
    expect(&dir, "memory.soft_limit_in_bytes", "25296896", &mut p);
    expect(&dir, "memory.swappiness", "50", &mut p);
    if memsw {
        expect(&dir, "memory.memsw.limit_in_bytes", "101187584", &mut p);
    }
    let oom = read_trim(&dir.join("memory.oom_control"));
    if !oom.lines().any(|l| l == "oom_kill_disable 1") {
        p.push(format!(
            "memory.oom_control is {oom:?}, want oom_kill_disable 1"
        ));
    }
    finish(c, &id, &path, p)
}

fn memory_v2(c: &mut Ctx, mem: &Controller) -> Res {
    let (id, path) = create_with(
        c,
        json!({"memory": {"limit": 50593792, "reservation": 25296896, "swap": 101187584}}),
    )?;
    let dir = mem.dir(&path);
    let mut p = Vec::new();
    expect(&dir, "memory.max", "50593792", &mut p);
    expect(&dir, "memory.low", "25296896", &mut p);
    if dir.join("memory.swap.max").exists() {
        expect(&dir, "memory.swap.max", "50593792", &mut p);
    }
    finish(c, &id, &path, p)
}

pub fn linux_cgroups_cpus(c: &mut Ctx) -> Res {
    if let Some(Controller::V2(root)) = crate::cgroup::controller("cpu") {
        return cpus_v2(c, &root);
    }
    let cpu = controller("cpu")?;
    let cpuset = controller("cpuset")?;
    let (id, path) = create_with(
        c,
        json!({"cpu": {"shares": 512, "period": 100000, "quota": 50000, "cpus": "0", "mems": "0"}}),
    )?;
    let rel = path.trim_start_matches('/');
    let mut p = Vec::new();
    expect(&cpu.join(rel), "cpu.shares", "512", &mut p);
    expect(&cpu.join(rel), "cpu.cfs_period_us", "100000", &mut p);
    expect(&cpu.join(rel), "cpu.cfs_quota_us", "50000", &mut p);
    expect(&cpuset.join(rel), "cpuset.cpus", "0", &mut p);
    expect(&cpuset.join(rel), "cpuset.mems", "0", &mut p);
    finish(c, &id, &path, p)?;
    // An empty cpu object: the new cpuset is initialised from its parent.
    let (id, path) = create_with(c, json!({"cpu": {}}))?;
    let rel = path.trim_start_matches('/');
    let mut p = Vec::new();
    let root_cpus = read_trim(&cpuset.join("cpuset.cpus"));
    let root_mems = read_trim(&cpuset.join("cpuset.mems"));
    expect(&cpuset.join(rel), "cpuset.cpus", &root_cpus, &mut p);
    expect(&cpuset.join(rel), "cpuset.mems", &root_mems, &mut p);
    finish(c, &id, &path, p)
}

/// v2: cpu.max holds quota and period; the cpuset files are exact.
fn cpus_v2(c: &mut Ctx, root: &Path) -> Res {
    let (id, path) = create_with(
        c,
        json!({"cpu": {"shares": 512, "period": 100000, "quota": 50000, "cpus": "0", "mems": "0"}}),
    )?;
    let dir = root.join(path.trim_start_matches('/'));
    let mut p = Vec::new();
    expect(&dir, "cpu.max", "50000 100000", &mut p);
    if dir.join("cpuset.cpus").exists() {
        expect(&dir, "cpuset.cpus", "0", &mut p);
        expect(&dir, "cpuset.mems", "0", &mut p);
    }
    finish(c, &id, &path, p)
}

/// cpu.idle with shares: an idle group refuses a weight (EINVAL), so the runtime must
/// not write one after idle 1 (v2 wrote the weight after idle and failed create).
pub fn linux_cgroups_cpu_idle(c: &mut Ctx) -> Res {
    let cpu = any_controller("cpu")?;
    // cpu.idle (5.15) shows only in non-root cgroups: look in a probe container's.
    let (probe, path) = create_with(c, json!({"cpu": {"shares": 512}}))?;
    let has_idle = cpu.dir(&path).join("cpu.idle").exists();
    finish(c, &probe, &path, Vec::new())?;
    if !has_idle {
        skip!("no cpu.idle on this kernel");
    }
    let (id, path) = create_with(c, json!({"cpu": {"shares": 512, "idle": 1}}))?;
    let mut p = Vec::new();
    expect(&cpu.dir(&path), "cpu.idle", "1", &mut p);
    finish(c, &id, &path, p)
}

/// v1: after deny-all, the three allow rules appear in devices.list and no blanket
/// `a *:* rwm` entry remains. The runtime may add its default devices, and v1 lists
/// exceptions in the kernel's order (not the config's), so order is not judged.
/// Then, on v1 and v2 (an eBPF program there), the effect from inside.
pub fn linux_cgroups_devices(c: &mut Ctx) -> Res {
    if let Some(devices) = v1_controller("devices") {
        let (id, path) = create_with(
            c,
            json!({"devices": [
                {"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
                {"allow": true, "type": "b", "major": 8, "minor": 20, "access": "rw"},
                {"allow": true, "type": "b", "major": 10, "minor": 200, "access": "r"}
            ]}),
        )?;
        let list = read_trim(
            &devices
                .join(path.trim_start_matches('/'))
                .join("devices.list"),
        );
        let lines: Vec<&str> = list.lines().collect();
        let mut p = Vec::new();
        for want in ["c 10:229 rwm", "b 8:20 rw", "b 10:200 r"] {
            if !lines.contains(&want) {
                p.push(format!("devices.list lacks {want:?}: {lines:?}"));
            }
        }
        if lines.contains(&"a *:* rwm") {
            p.push("devices.list still allows everything (a *:* rwm)".into());
        }
        finish(c, &id, &path, p)?;
    } else if crate::cgroup::controller("memory").is_none() {
        skip!("no cgroup v1 devices hierarchy and no cgroup2 host");
    }
    devices_effect(c)
}

/// Two nodes of a character major no driver has: opening the allowed one fails with
/// ENXIO (no driver), the denied one with EPERM (the device cgroup or eBPF filter).
fn devices_effect(c: &mut Ctx) -> Res {
    let used = std::fs::read_to_string("/proc/devices").unwrap_or_default();
    let chars = used.split("Block devices:").next().unwrap_or("");
    let taken: Vec<u64> = chars
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    let Some(major) = (234..=254u64).find(|m| !taken.contains(m)) else {
        skip!("no unused character device major in 234-254");
    };
    let script = "head -c1 /dev/berth-allowed >/dev/null 2>/tmp/a; cat /tmp/a; \
                  head -c1 /dev/berth-denied >/dev/null 2>/tmp/d; cat /tmp/d";
    let mut cfg = default_config(&["/bin/sh", "-c", script], "/placeholder");
    let node = |name: &str, minor: u64| {
        json!({"path": format!("/dev/{name}"), "type": "c", "major": major, "minor": minor,
               "fileMode": 438, "uid": 0, "gid": 0})
    };
    set(
        &mut cfg,
        "linux/devices",
        json!([node("berth-allowed", 0), node("berth-denied", 1)]),
    );
    // Forty more rules for other minors, as engines' default lists are long: on v2 a
    // filter of this size once failed to load (its verifier log overflowed).
    let mut rules = vec![
        json!({"allow": false, "access": "rwm"}),
        json!({"allow": true, "type": "c", "major": major, "minor": 0, "access": "rw"}),
    ];
    rules.extend((2..42).map(
        |minor| json!({"allow": true, "type": "c", "major": major, "minor": minor, "access": "rw"}),
    ));
    set(&mut cfg, "linux/resources/devices", json!(rules));
    let (id, b) = c.prepare(cfg, false)?;
    c.must_create(&b, &id)?;
    c.must(&["start", &id])?;
    c.wait_stopped(&id)?;
    let out = std::fs::read_to_string(b.stdout_path()).unwrap_or_default();
    c.must(&["delete", &id])?;
    let lines: Vec<&str> = out.lines().collect();
    ensure!(
        lines.len() == 2,
        "inside the container: want two error lines, got {out:?}"
    );
    ensure!(
        lines[0].contains("No such device or address"),
        "the allowed node c {major}:0 did not reach the (missing) driver: {:?}",
        lines[0]
    );
    ensure!(
        lines[1].contains("Operation not permitted"),
        "the denied node c {major}:1 was not refused: {:?}",
        lines[1]
    );
    Ok(())
}

/// The whole-disk block device under `/` (throttling needs a real queue).
pub(super) fn root_disk() -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata("/").ok()?.dev();
    let (maj, min) = (libc::major(dev) as u64, libc::minor(dev) as u64);
    let sys = PathBuf::from(format!("/sys/dev/block/{maj}:{min}"));
    if !sys.exists() {
        return None;
    }
    if sys.join("partition").exists() {
        let parent = std::fs::canonicalize(&sys).ok()?.parent()?.join("dev");
        let t = read_trim(&parent);
        let (a, b) = t.split_once(':')?;
        return Some((a.parse().ok()?, b.parse().ok()?));
    }
    Some((maj, min))
}

/// Throttles on the root disk (or, where / is not on a block device, the first one in
/// /sys/block): v1 `blkio.throttle.*` files, v2 one `io.max` line.
pub fn linux_cgroups_blkio(c: &mut Ctx) -> Res {
    let io = match crate::cgroup::controller("io") {
        Some(Controller::V2(root)) => Some(root),
        _ => None,
    };
    let blkio = match &io {
        Some(_) => None,
        None => Some(controller("blkio")?),
    };
    let Some((maj, min)) = root_disk().or_else(any_disk) else {
        skip!("no block device on this host");
    };
    let rate = |r: u64| json!([{"major": maj, "minor": min, "rate": r}]);
    let (id, path) = create_with(
        c,
        json!({"blockIO": {
            "throttleReadBpsDevice": rate(102400),
            "throttleWriteBpsDevice": rate(204800),
            "throttleReadIOPSDevice": rate(300),
            "throttleWriteIOPSDevice": rate(400)
        }}),
    )?;
    let rel = path.trim_start_matches('/');
    let mut p = Vec::new();
    match (&io, &blkio) {
        (Some(root), _) => expect(
            &root.join(rel),
            "io.max",
            &format!("{maj}:{min} rbps=102400 wbps=204800 riops=300 wiops=400"),
            &mut p,
        ),
        (None, Some(blkio)) => {
            for (file, v) in [
                ("blkio.throttle.read_bps_device", 102400),
                ("blkio.throttle.write_bps_device", 204800),
                ("blkio.throttle.read_iops_device", 300),
                ("blkio.throttle.write_iops_device", 400),
            ] {
                expect(&blkio.join(rel), file, &format!("{maj}:{min} {v}"), &mut p);
            }
        }
        (None, None) => {}
    }
    finish(c, &id, &path, p)
}

/// The first whole disk in /sys/block (a RAM disk in the VM lane, whose root is 9p).
pub(super) fn any_disk() -> Option<(u64, u64)> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("loop"))
        .collect();
    names.sort();
    let t = read_trim(&PathBuf::from(format!("/sys/block/{}/dev", names.first()?)));
    let (a, b) = t.split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Every host huge page size at 2 GiB (v1 `limit_in_bytes`, v2 `.max`).
pub fn linux_cgroups_hugetlb(c: &mut Ctx) -> Res {
    let hugetlb = crate::cgroup::controller("hugetlb").ok_or_else(|| {
        Verdict::Skip(
            "no usable hugetlb controller (on a hybrid host it sits undelegated on cgroup2)".into(),
        )
    })?;
    let suffix = match hugetlb {
        Controller::V1(_) => "limit_in_bytes",
        Controller::V2(_) => "max",
    };
    let sizes: Vec<String> = std::fs::read_dir("/sys/kernel/mm/hugepages")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let mut limits = Vec::new();
    let mut files = Vec::new();
    for s in &sizes {
        // hugepages-2048kB -> 2MB
        let kb: u64 = s
            .trim_start_matches("hugepages-")
            .trim_end_matches("kB")
            .parse()
            .unwrap_or(0);
        let name = if kb >= 1 << 20 {
            format!("{}GB", kb >> 20)
        } else {
            format!("{}MB", kb >> 10)
        };
        limits.push(json!({"pageSize": name, "limit": 2147483648u64}));
        files.push(format!("hugetlb.{name}.{suffix}"));
    }
    if limits.is_empty() {
        skip!("no huge page sizes on this kernel");
    }
    let (id, path) = create_with(c, json!({"hugepageLimits": limits}))?;
    let dir = hugetlb.dir(&path);
    let mut p = Vec::new();
    for f in &files {
        expect(&dir, f, "2147483648", &mut p);
    }
    finish(c, &id, &path, p)
}

pub fn linux_cgroups_network(c: &mut Ctx) -> Res {
    let net_cls = controller("net_cls")?;
    let (id, path) = create_with(c, json!({"network": {"classID": 255}}))?;
    let mut p = Vec::new();
    expect(
        &net_cls.join(path.trim_start_matches('/')),
        "net_cls.classid",
        "255",
        &mut p,
    );
    finish(c, &id, &path, p)
}

/// A relative cgroupsPath lands below the runtime's own cgroup; its line in
/// /proc/<pid>/cgroup (the pids hierarchy's on v1, the `0::` one on v2) contains the
/// path. Skipped where the driver sits in a cgroup it does not own (the container
/// cgroup would be created inside it).
pub fn linux_cgroups_relative_pids(c: &mut Ctx) -> Res {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let pids = any_controller("pids")?;
    let v2 = matches!(pids, Controller::V2(_));
    let foreign = if v2 {
        own.lines().find(|l| l.starts_with("0::") && *l != "0::/")
    } else {
        own.lines()
            .find(|l| !l.ends_with(":/") && !l.starts_with("0::"))
    };
    if let Some(l) = foreign {
        skip!("the driver runs in a cgroup it does not own ({l}): a relative cgroupsPath would nest inside it");
    }
    let mut cfg = default_config(&["/bin/sleep", "30"], "/placeholder");
    let (id, b) = c.prepare(cfg.clone(), false)?;
    let rel = format!("{}/relative/{id}", c.suite.cg_parent);
    set(&mut cfg, "linux/cgroupsPath", json!(rel));
    set(&mut cfg, "linux/resources/pids", json!({"limit": 1000}));
    b.write_config(&cfg)?;
    c.must_create(&b, &id)?;
    let pid = c.pid(&id)?;
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let line = cg
        .lines()
        .find(|l| {
            if v2 {
                l.starts_with("0::")
            } else {
                l.split(':').nth(1) == Some("pids")
            }
        })
        .unwrap_or("");
    let mut p = Vec::new();
    if !line.contains(&rel) {
        p.push(format!("pids line {line:?} does not contain {rel}"));
    }
    expect(&pids.dir(&rel), "pids.max", "1000", &mut p);
    finish(c, &id, &format!("/{rel}"), p)
}

/// The `cgroup` mount shows the container its own cgroup, read-only (runc's layout:
/// on v1 a tmpfs with each hierarchy's container directory bound in): the process
/// reads the pids limit it was given, not the host root's, and cannot change it. On a
/// cgroup2-only host the mount shows the hierarchy from the cgroup namespace's root, so
/// the container gets one there (without it, runc and berth show the host's root).
pub fn linux_cgroups_mount_own_limits(c: &mut Ctx) -> Res {
    let script = "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; \
                  (echo 1 > /sys/fs/cgroup/pids/pids.max || echo 1 > /sys/fs/cgroup/pids.max) 2>/dev/null \
                  && echo writable || echo read-only";
    let mut cfg = default_config(&["/bin/sh", "-c", script], "/placeholder");
    set(&mut cfg, "linux/resources/pids", json!({"limit": 42}));
    crate::spec::push(
        &mut cfg,
        "mounts",
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
               "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
    );
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        crate::spec::push(&mut cfg, "linux/namespaces", json!({"type": "cgroup"}));
    }
    let (id, b) = c.prepare(cfg, false)?;
    c.must_create(&b, &id)?;
    c.must(&["start", &id])?;
    c.wait_stopped(&id)?;
    let out = std::fs::read_to_string(b.stdout_path()).unwrap_or_default();
    c.must(&["delete", &id])?;
    ensure!(
        out == "42\nread-only\n",
        "inside the container: {out:?} want \"42\\nread-only\\n\""
    );
    Ok(())
}
