//! Real cgroup v1 / hybrid behaviour: as root, on this host's hierarchies, under a
//! parent cgroup each test makes and removes. Skipped (with a printed reason) elsewhere.

use berth_cgroups::{
    detect, from_state, new_manager, CgroupManager, CgroupSetup, CgroupState, Error,
};
use oci_spec::runtime::LinuxResources;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// The v1 hierarchies every test here writes to.
const NEEDED: [&str; 6] = ["cpu", "cpuset", "devices", "freezer", "memory", "pids"];

fn usable() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return false;
    }
    match detect() {
        Ok(CgroupSetup::Legacy | CgroupSetup::Hybrid) => {}
        other => {
            eprintln!("skipped: needs cgroup v1 or hybrid, host has {other:?}");
            return false;
        }
    }
    let probe = new_manager(Some("/berth-probe"), "x").expect("manager");
    let st = probe.state();
    let missing: Vec<&str> = NEEDED
        .into_iter()
        .filter(|c| !st.paths.contains_key(*c))
        .collect();
    if !missing.is_empty() {
        eprintln!("skipped: no v1 hierarchy for {missing:?} on this host");
        return false;
    }
    true
}

/// Where the hierarchy of `controller` is mounted (not always /sys/fs/cgroup/<name>:
/// co-mounted controllers share a directory such as `cpu,cpuacct`).
fn hierarchy(controller: &str) -> PathBuf {
    let st = new_manager(Some("/berth-probe"), "x")
        .expect("manager")
        .state();
    st.paths[controller]
        .parent()
        .expect("a mount point above the probe")
        .to_path_buf()
}

/// Whether the host keeps swap accounting (memory.memsw.* files), read on a cgroup
/// directory of the memory hierarchy; prints why when it does not.
fn has_swap_accounting(mem: &Path) -> bool {
    let yes = mem.join("memory.memsw.limit_in_bytes").exists();
    if !yes {
        eprintln!("note: no memory.memsw files (swap accounting off): swap limits not checked");
    }
    yes
}

/// Which blkio weight file the host has (CFQ's or BFQ's), if any, on a blkio cgroup
/// directory; prints why when there is none.
fn blkio_weight_file(blkio: Option<&PathBuf>) -> Option<&'static str> {
    let file = blkio.and_then(|d| {
        ["blkio.weight", "blkio.bfq.weight"]
            .into_iter()
            .find(|f| d.join(f).exists())
    });
    if file.is_none() {
        eprintln!(
            "note: no blkio hierarchy or no blkio.weight/blkio.bfq.weight (no CFQ/BFQ scheduler): blkio weight not checked"
        );
    }
    file
}

/// A unique top-level test cgroup name, `/berth-test-<pid>-<n>`.
fn unique_parent() -> String {
    format!(
        "/berth-test-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    )
}

fn resources(v: serde_json::Value) -> LinuxResources {
    serde_json::from_value(v).expect("resources json")
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.join(file).display()))
        .trim()
        .to_string()
}

/// Owns what a test made: kills the child and removes every test directory on drop.
struct Guard {
    parent: String,
    child: Option<Child>,
    manager: Option<Box<dyn CgroupManager>>,
}

impl Guard {
    fn new(parent: String) -> Guard {
        Guard {
            parent,
            child: None,
            manager: None,
        }
    }

    fn spawn_sleep(&mut self) -> i32 {
        let child = Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id() as i32;
        self.child = Some(child);
        pid
    }

    /// Every directory named by the test parent, in every mounted hierarchy.
    fn parent_dirs(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let d = e.path().join(self.parent.trim_start_matches('/'));
            if d.exists() {
                out.push(d);
            }
        }
        out
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(m) = self.manager.take() {
            let _ = m.destroy();
        }
        for dir in self.parent_dirs() {
            remove_tree(&dir);
        }
    }
}

fn remove_tree(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_tree(&e.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
}

#[test]
fn lifecycle_create_set_apply_pids_destroy() {
    if !usable() {
        return;
    }
    let mut g = Guard::new(unique_parent());
    let path = format!("{}/c1", g.parent);
    let m = new_manager(Some(&path), "ignored").unwrap();
    m.create().unwrap();
    let st = m.state();
    assert_eq!(st.driver, "v1");
    // The test parent was made by create(): it is recorded, per hierarchy.
    assert!(
        st.created
            .iter()
            .any(|d| d.ends_with(g.parent.trim_start_matches('/'))),
        "{st:?}"
    );
    let mem = st.paths["memory"].clone();
    assert_eq!(mem, hierarchy("memory").join(path.trim_start_matches('/')));
    assert!(mem.is_dir());
    let cpuset = st.paths["cpuset"].clone();
    assert!(
        !read(&cpuset, "cpuset.cpus").is_empty(),
        "cpuset.cpus copied from the parent"
    );
    assert!(
        !read(&cpuset, "cpuset.mems").is_empty(),
        "cpuset.mems copied from the parent"
    );

    let swap = has_swap_accounting(&mem);
    let weight_file = blkio_weight_file(st.paths.get("blkio"));
    let mut r = json!({
        "devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"}
        ],
        "pids": {"limit": 1000},
        "memory": {"limit": 67108864, "reservation": 33554432, "swappiness": 10},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"}
    });
    if swap {
        r["memory"]["swap"] = json!(134217728);
    }
    if weight_file.is_some() {
        r["blockIO"] = json!({"weight": 500});
    }
    m.set(&resources(r)).unwrap();
    let pid = g.spawn_sleep();
    m.apply(pid).unwrap();

    assert_eq!(read(&st.paths["pids"], "pids.max"), "1000");
    assert_eq!(read(&mem, "memory.limit_in_bytes"), "67108864");
    assert_eq!(read(&mem, "memory.soft_limit_in_bytes"), "33554432");
    if swap {
        assert_eq!(read(&mem, "memory.memsw.limit_in_bytes"), "134217728");
    }
    assert_eq!(read(&mem, "memory.swappiness"), "10");
    assert_eq!(read(&st.paths["cpu"], "cpu.shares"), "512");
    assert_eq!(read(&st.paths["cpu"], "cpu.cfs_quota_us"), "50000");
    assert_eq!(read(&st.paths["cpu"], "cpu.cfs_period_us"), "100000");
    assert_eq!(read(&cpuset, "cpuset.cpus"), "0");
    if let Some(f) = weight_file {
        assert!(read(&st.paths["blkio"], f).contains("500"), "{f}");
    }
    let devs = read(&st.paths["devices"], "devices.list");
    let devs: Vec<&str> = devs.lines().collect();
    for want in [
        "c 10:200 rwm",
        "c 1:3 rwm",
        "c 136:* rwm",
        "c *:* m",
        "b *:* m",
        "c 5:2 rwm",
    ] {
        assert!(devs.contains(&want), "{want} missing from {devs:?}");
    }
    assert!(!devs.contains(&"a *:* rwm"), "still allow-all: {devs:?}");

    assert!(m.pids().unwrap().contains(&pid));
    m.freeze(true).unwrap();
    assert_eq!(read(&st.paths["freezer"], "freezer.state"), "FROZEN");
    m.freeze(false).unwrap();
    assert_eq!(read(&st.paths["freezer"], "freezer.state"), "THAWED");
    // destroy() of a paused container still kills it.
    m.freeze(true).unwrap();
    // The child is in every hierarchy, including the unified one on a hybrid host.
    for (key, dir) in &st.paths {
        assert!(
            read(dir, "cgroup.procs")
                .lines()
                .any(|l| l == pid.to_string()),
            "{key}"
        );
    }

    // A later process finds the same cgroups from the persisted state.
    let text = serde_json::to_string(&st).unwrap();
    let back: CgroupState = serde_json::from_str(&text).unwrap();
    assert_eq!(back, st);
    let later = from_state(&back).unwrap();
    assert_eq!(later.pids().unwrap(), m.pids().unwrap());

    let started = std::time::Instant::now();
    later.destroy().unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    let status = g.child.as_mut().unwrap().wait().unwrap();
    assert!(!status.success(), "sleep was killed");
    g.child = None;
    for dir in st.paths.values() {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
    assert!(
        g.parent_dirs().is_empty(),
        "parents left: {:?}",
        g.parent_dirs()
    );
    // Destroying again is fine.
    later.destroy().unwrap();
}

/// cpu.idle, cpu burst and shares together: an idle group refuses cpu.shares
/// (EINVAL), so entering idle replaces the shares and leaving it comes first.
#[test]
fn cpu_idle_burst_and_shares() {
    if !usable() {
        return;
    }
    let mut g = Guard::new(unique_parent());
    let m = new_manager(Some(&format!("{}/cpu", g.parent)), "x").unwrap();
    m.create().unwrap();
    let cpu = m.state().paths["cpu"].clone();
    g.manager = Some(m);
    let m = g.manager.as_ref().unwrap();
    if !cpu.join("cpu.idle").exists() || !cpu.join("cpu.cfs_burst_us").exists() {
        eprintln!("skipped: no cpu.idle or cpu.cfs_burst_us on this kernel");
        return;
    }
    m.set(&resources(
        json!({"cpu": {"shares": 512, "quota": 50000, "period": 100000, "burst": 10000, "idle": 1}}),
    ))
    .unwrap();
    assert_eq!(read(&cpu, "cpu.idle"), "1");
    assert_eq!(read(&cpu, "cpu.cfs_burst_us"), "10000");
    m.set(&resources(json!({"cpu": {"shares": 512, "idle": 0}})))
        .unwrap();
    assert_eq!(read(&cpu, "cpu.idle"), "0");
    assert_eq!(read(&cpu, "cpu.shares"), "512");
}

#[test]
fn memory_limits_can_be_lowered_and_raised() {
    if !usable() {
        return;
    }
    let mut g = Guard::new(unique_parent());
    let m = new_manager(Some(&format!("{}/mem", g.parent)), "x").unwrap();
    m.create().unwrap();
    let mem = m.state().paths["memory"].clone();
    g.manager = Some(m);
    let m = g.manager.as_ref().unwrap();
    let swap_ok = has_swap_accounting(&mem);
    for (limit, swap) in [
        (268435456i64, 536870912i64),
        (67108864, 67108864),
        (1073741824, 2147483648),
        (33554432, 50331648),
    ] {
        let r = if swap_ok {
            json!({"memory": {"limit": limit, "swap": swap}})
        } else {
            json!({"memory": {"limit": limit}})
        };
        m.set(&resources(r)).unwrap();
        assert_eq!(read(&mem, "memory.limit_in_bytes"), limit.to_string());
        if swap_ok {
            assert_eq!(read(&mem, "memory.memsw.limit_in_bytes"), swap.to_string());
        }
    }
    // Unlimited memory without a swap value lifts memory+swap too.
    m.set(&resources(json!({"memory": {"limit": -1}}))).unwrap();
    if swap_ok {
        assert_eq!(
            read(&mem, "memory.memsw.limit_in_bytes"),
            read(&mem, "memory.limit_in_bytes")
        );
        // Going down again from unlimited: limit first, then memory+swap.
        m.set(&resources(
            json!({"memory": {"limit": 67108864, "swap": 100663296}}),
        ))
        .unwrap();
        assert_eq!(read(&mem, "memory.memsw.limit_in_bytes"), "100663296");
    }
    let err = m
        .set(&resources(json!({"memory": {"swappiness": 200}})))
        .unwrap_err();
    assert!(err.to_string().contains("swappiness"), "{err}");
    // Negative and zero pids limits mean "max".
    m.set(&resources(json!({"pids": {"limit": -1}}))).unwrap();
    assert_eq!(read(&m.state().paths["pids"], "pids.max"), "max");
}

#[test]
fn relative_and_default_paths_hang_from_the_callers_cgroup() {
    if !usable() {
        return;
    }
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let own_mem = own
        .lines()
        .find_map(|l| {
            l.strip_prefix(|c: char| c.is_ascii_digit()).and_then(|l| {
                l.trim_start_matches(|c: char| c.is_ascii_digit())
                    .strip_prefix(":memory:")
            })
        })
        .unwrap();
    let base = hierarchy("memory").join(own_mem.trim_start_matches('/'));
    // Resolution only: nothing is created under the caller's (not our) cgroup.
    let m = new_manager(Some("rel/x"), "id").unwrap();
    assert_eq!(m.state().paths["memory"], base.join("rel/x"));
    assert!(m.state().created.is_empty());
    let m = new_manager(None, "ctr-7").unwrap();
    assert_eq!(m.state().paths["memory"], base.join("ctr-7"));
    assert!(!base.join("ctr-7").exists());
}

#[test]
fn escaping_paths_are_refused() {
    for p in ["/..", "/a/../../b", "../../x"] {
        assert!(
            matches!(new_manager(Some(p), "id"), Err(Error::InvalidPath { .. })),
            "{p}"
        );
    }
    assert!(new_manager(None, "a/b").is_err());
}

#[test]
fn hugetlb_with_a_page_size_the_host_lacks_errors() {
    if !usable() {
        return;
    }
    let g = Guard::new(unique_parent());
    let m = new_manager(Some(&format!("{}/h", g.parent)), "x").unwrap();
    m.create().unwrap();
    let err = m
        .set(&resources(
            json!({"hugepageLimits": [{"pageSize": "3MB", "limit": 1048576}]}),
        ))
        .unwrap_err();
    assert!(err.to_string().contains("3MB"), "{err}");
    // A real size: works with a v1 hugetlb hierarchy, else names the missing controller.
    if let Some(size) = berth_cgroups::huge_page_sizes().first() {
        let r = resources(json!({"hugepageLimits": [{"pageSize": size, "limit": 0}]}));
        match m.set(&r) {
            Ok(()) => assert!(m.state().paths.contains_key("hugetlb")),
            Err(Error::ControllerMissing { controller, .. }) => assert_eq!(controller, "hugetlb"),
            Err(e) => panic!("unexpected {e}"),
        }
    }
    m.destroy().unwrap();
}

#[test]
fn unmounted_controllers_and_unified_on_v1_error() {
    if !usable() {
        return;
    }
    let g = Guard::new(unique_parent());
    let m = new_manager(Some(&format!("{}/n", g.parent)), "x").unwrap();
    m.create().unwrap();
    if !m.state().paths.contains_key("net_cls") {
        let err = m
            .set(&resources(json!({"network": {"classID": 42}})))
            .unwrap_err();
        assert!(
            matches!(&err, Error::ControllerMissing { controller, .. } if controller == "net_cls"),
            "{err}"
        );
    }
    let err = m
        .set(&resources(json!({"unified": {"memory.high": "100"}})))
        .unwrap_err();
    assert!(err.to_string().contains("unified"), "{err}");
    let err = m
        .set(&resources(
            json!({"devices": [{"allow": true, "type": "p", "access": "rwm"}]}),
        ))
        .unwrap_err();
    assert!(err.to_string().contains("device type"), "{err}");
    m.destroy().unwrap();
}

#[test]
fn parents_that_existed_are_left_alone() {
    if !usable() {
        return;
    }
    let g = Guard::new(unique_parent());
    // The parent already exists in the memory hierarchy only.
    let pre = hierarchy("memory").join(g.parent.trim_start_matches('/'));
    std::fs::create_dir(&pre).unwrap();
    let m = new_manager(Some(&format!("{}/c", g.parent)), "x").unwrap();
    m.create().unwrap();
    assert!(!m.state().created.contains(&pre));
    m.destroy().unwrap();
    assert!(pre.is_dir(), "a parent create() did not make was removed");
    assert!(!pre.join("c").exists());
    let pids = hierarchy("pids").join(g.parent.trim_start_matches('/'));
    assert!(!pids.exists(), "a parent create() made was kept");
}

#[test]
fn devices_replay_in_order_and_allow_all_stays_allow_all() {
    if !usable() {
        return;
    }
    let g = Guard::new(unique_parent());
    let m = new_manager(Some(&format!("{}/d", g.parent)), "x").unwrap();
    m.create().unwrap();
    let dir = m.state().paths["devices"].clone();
    // A privileged container: allow everything; the appended defaults change nothing.
    m.set(&resources(
        json!({"devices": [{"allow": true, "access": "rwm"}]}),
    ))
    .unwrap();
    assert_eq!(read(&dir, "devices.list"), "a *:* rwm");
    // No rules at all: deny-all plus runc's defaults.
    m.set(&resources(json!({}))).unwrap();
    let list = read(&dir, "devices.list");
    assert!(
        list.lines().any(|l| l == "c 1:5 rwm") && !list.contains("a *:*"),
        "{list}"
    );
    // A later deny of a default device is undone by the defaults, as with runc.
    m.set(&resources(json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": false, "type": "c", "major": 1, "minor": 9, "access": "rwm"}
    ]})))
    .unwrap();
    assert!(read(&dir, "devices.list").lines().any(|l| l == "c 1:9 rwm"));
    m.destroy().unwrap();
}

/// With neither blkio.weight nor blkio.bfq.weight, a weight is refused naming both
/// (runc fails its write of blkio.bfq.weight there); throttles still work.
#[test]
fn blkio_weight_without_a_weight_file_is_refused() {
    if !usable() {
        return;
    }
    let g = Guard::new(unique_parent());
    let m = new_manager(Some(&format!("{}/b", g.parent)), "x").unwrap();
    m.create().unwrap();
    let Some(blkio) = m.state().paths.get("blkio").cloned() else {
        eprintln!("skipped: no v1 blkio hierarchy on this host");
        m.destroy().unwrap();
        return;
    };
    if let Some(f) = ["blkio.weight", "blkio.bfq.weight"]
        .into_iter()
        .find(|f| blkio.join(f).exists())
    {
        eprintln!("skipped: this host has {f} (a CFQ/BFQ scheduler): the weight is honoured");
        m.destroy().unwrap();
        return;
    }
    let err = m
        .set(&resources(json!({"blockIO": {"weight": 500}})))
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("blkio.weight") && text.contains("blkio.bfq.weight"),
        "{text}"
    );
    m.set(&resources(json!({"blockIO": {}}))).unwrap();
    m.destroy().unwrap();
}

/// A parent made by someone else with empty cpuset.cpus/mems (a plain mkdir) is
/// filled from its own parent at create, as runc's ensureParent does: else no task
/// could join the container's cpuset below it.
#[test]
fn empty_cpuset_parents_are_filled_at_create() {
    if !usable() {
        return;
    }
    let mut g = Guard::new(unique_parent());
    let top = hierarchy("cpuset").join(g.parent.trim_start_matches('/'));
    let pre = top.join("pod");
    std::fs::create_dir_all(&pre).unwrap();
    if std::fs::read_to_string(top.join("cgroup.clone_children")).is_ok_and(|v| v.trim() == "1") {
        eprintln!("skipped: cpuset.clone_children is on here, new cpusets are never empty");
        return;
    }
    assert_eq!(read(&pre, "cpuset.cpus"), "", "mkdir leaves cpus empty");
    let m = new_manager(Some(&format!("{}/pod/c", g.parent)), "x").unwrap();
    m.create().unwrap();
    for d in [&top, &pre, &pre.join("c")] {
        assert!(!read(d, "cpuset.cpus").is_empty(), "{}", d.display());
        assert!(!read(d, "cpuset.mems").is_empty(), "{}", d.display());
    }
    let pid = g.spawn_sleep();
    m.apply(pid).unwrap();
    g.manager = Some(m);
}

/// update() writes new limits without replaying the device rules (runc's update
/// skips them: a replay passes through deny-all while the container runs).
#[test]
fn update_leaves_device_rules_alone() {
    if !usable() {
        return;
    }
    let g = Guard::new(unique_parent());
    let m = new_manager(Some(&format!("{}/u", g.parent)), "x").unwrap();
    m.create().unwrap();
    let dir = m.state().paths["devices"].clone();
    m.set(&resources(
        json!({"devices": [{"allow": true, "access": "rwm"}]}),
    ))
    .unwrap();
    m.update(&resources(json!({"pids": {"limit": 7}}))).unwrap();
    assert_eq!(read(&dir, "devices.list"), "a *:* rwm");
    assert_eq!(read(&m.state().paths["pids"], "pids.max"), "7");
    m.destroy().unwrap();
}
