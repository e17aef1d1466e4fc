//! Real cgroup v2 behaviour: as root on a cgroup2-only host (the VM lane:
//! `hack`/shared `vm-lane/vm-run.sh --mode host`, with `--ignored`). Marked ignored so
//! that a run on another host reports it as not run rather than passed.

use berth_cgroups::{detect, new_manager, CgroupSetup, Error};
use oci_spec::runtime::LinuxResources;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

fn usable() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return false;
    }
    match detect() {
        Ok(CgroupSetup::Unified) => true,
        other => {
            eprintln!("skipped: needs a cgroup2-only host, this one is {other:?}");
            false
        }
    }
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.join(file).display()))
        .trim()
        .to_string()
}

struct Guard {
    parent: PathBuf,
    child: Option<Child>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir(self.parent.join("c1"));
        let _ = std::fs::remove_dir(&self.parent);
    }
}

#[test]
#[ignore = "needs a cgroup2-only host: run it in the VM lane with --ignored"]
fn v2_lifecycle_create_set_apply_pids_destroy() {
    if !usable() {
        return;
    }
    let name = format!("berth-test-{}-v2", std::process::id());
    let mut g = Guard {
        parent: Path::new("/sys/fs/cgroup").join(&name),
        child: None,
    };
    let m = new_manager(Some(&format!("/{name}/c1")), "x").unwrap();
    m.create().unwrap();
    let st = m.state();
    assert_eq!(st.driver, "v2");
    let dir = st.paths[""].clone();
    assert_eq!(dir, g.parent.join("c1"));
    assert_eq!(st.created, vec![g.parent.clone(), dir.clone()]);
    let ctrls = read(&dir, "cgroup.controllers");
    for c in ["memory", "pids", "cpu"] {
        assert!(ctrls.contains(c), "{c} not enabled: {ctrls}");
    }

    let mut unified = serde_json::Map::new();
    unified.insert("memory.high".into(), json!("50000000"));
    let r: LinuxResources = serde_json::from_value(json!({
        "devices": [{"allow": false, "access": "rwm"}],
        "pids": {"limit": 100},
        "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0"},
        "unified": unified
    }))
    .unwrap();
    m.set(&r).unwrap();
    assert_eq!(read(&dir, "pids.max"), "100");
    assert_eq!(read(&dir, "memory.max"), "67108864");
    assert_eq!(read(&dir, "memory.low"), "33554432");
    if dir.join("memory.swap.max").exists() {
        assert_eq!(read(&dir, "memory.swap.max"), "67108864");
    }
    assert_eq!(read(&dir, "cpu.weight"), "39");
    assert_eq!(read(&dir, "cpu.max"), "50000 100000");
    if ctrls.contains("cpuset") {
        assert_eq!(read(&dir, "cpuset.cpus"), "0");
    }
    assert_eq!(read(&dir, "memory.high"), "49999872");

    // Idle and burst (5.14/5.15 kernels): an idle group refuses cpu.weight, so entering
    // idle replaces the weight and leaving it comes first.
    if dir.join("cpu.idle").exists() && dir.join("cpu.max.burst").exists() {
        m.set(
            &serde_json::from_value(
                json!({"cpu": {"shares": 512, "quota": 50000, "period": 100000, "burst": 10000, "idle": 1}}),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(read(&dir, "cpu.idle"), "1");
        assert_eq!(read(&dir, "cpu.max.burst"), "10000");
        m.set(&serde_json::from_value(json!({"cpu": {"shares": 512, "idle": 0}})).unwrap())
            .unwrap();
        assert_eq!(read(&dir, "cpu.idle"), "0");
        assert_eq!(read(&dir, "cpu.weight"), "20");
    } else {
        eprintln!("cpu.idle or cpu.max.burst missing: idle and burst not checked");
    }

    if let Some(size) = berth_cgroups::huge_page_sizes().first() {
        let r: LinuxResources = serde_json::from_value(
            json!({"hugepageLimits": [{"pageSize": size, "limit": 4194304}]}),
        )
        .unwrap();
        match m.set(&r) {
            Ok(()) => assert_eq!(read(&dir, &format!("hugetlb.{size}.max")), "4194304"),
            Err(Error::ControllerMissing { controller, .. }) => assert_eq!(controller, "hugetlb"),
            Err(e) => panic!("{e}"),
        }
    }
    let bad: LinuxResources =
        serde_json::from_value(json!({"unified": {"../cgroup.procs": "1"}})).unwrap();
    assert!(m.set(&bad).is_err());
    let bad: LinuxResources =
        serde_json::from_value(json!({"hugepageLimits": [{"pageSize": "3MB", "limit": 1}]}))
            .unwrap();
    assert!(m.set(&bad).unwrap_err().to_string().contains("3MB"));

    let child = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = child.id() as i32;
    g.child = Some(child);
    m.apply(pid).unwrap();
    assert_eq!(m.pids().unwrap(), vec![pid]);
    m.freeze(true).unwrap();
    assert!(read(&dir, "cgroup.events").contains("frozen 1"));
    m.freeze(false).unwrap();
    assert!(read(&dir, "cgroup.events").contains("frozen 0"));
    // destroy() of a paused container still kills it.
    m.freeze(true).unwrap();

    m.destroy().unwrap();
    let status = g.child.as_mut().unwrap().wait().unwrap();
    assert!(!status.success());
    g.child = None;
    assert!(
        !dir.exists() && !g.parent.exists(),
        "directories left behind"
    );
}
