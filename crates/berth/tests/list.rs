//! `berth list` of 100 created containers, as root: every format, and fast.

mod support;

use std::time::{Duration, Instant};

use support::{berth_root, bundle, stderr, stdout, unique_id, usable, Guard, TempDir};

#[test]
fn list_of_100_containers_is_fast() {
    if !usable() {
        return;
    }
    let dir = TempDir::new("list");
    let root = TempDir::new("list-root");
    let mut guard = Guard::new(&root, "list");
    let b = bundle(&dir, &["sleep", "100"], &guard.cgroup_parent, "list");
    // One rootfs, one small bundle per id (config.json only), each container in its
    // own cgroup below the test's parent.
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(b.join("config.json")).expect("read"))
            .expect("json");
    config["root"]["path"] = b.join("rootfs").to_str().expect("utf-8").into();
    let deadline = Instant::now() + Duration::from_secs(120);
    for n in 0..100 {
        let id = format!("{}-{n:03}", unique_id("list"));
        guard.ids.push(id.clone());
        let bn = dir.path().join(format!("b-{n}"));
        std::fs::create_dir_all(&bn).expect("mkdir bundle");
        config["linux"]["cgroupsPath"] = format!("/{}/{id}", guard.cgroup_parent).into();
        std::fs::write(bn.join("config.json"), config.to_string()).expect("write");
        let out = berth_root(&root, &["create", "-b", bn.to_str().expect("utf-8"), &id]);
        assert!(out.status.success(), "create {id}: {}", stderr(&out));
        assert!(
            Instant::now() < deadline,
            "creating 100 containers took too long"
        );
    }
    let t = Instant::now();
    let out = berth_root(&root, &["list"]);
    let took = t.elapsed();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 101);
    assert!(took < Duration::from_secs(2), "list took {took:?}");
    let out = berth_root(&root, &["list", "-q"]);
    assert_eq!(stdout(&out).lines().count(), 100);
    let out = berth_root(&root, &["list", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("list json");
    let all = v.as_array().expect("array");
    assert_eq!(all.len(), 100);
    assert!(all.iter().all(|c| c["status"] == "created"));
}
