//! pause/resume through the freezer, seen as the `paused` status and in the processes'
//! state; ps lists the container's processes.

mod support;

use berth_runtime::{CreateOptions, Runtime, Status};

#[test]
fn pause_resume_and_processes() {
    let id = format!("pause-{}", std::process::id());
    let dir = std::env::temp_dir().join(format!("berth-{id}"));
    let rootfs = dir.join("bundle/rootfs");
    for d in ["bin", "proc", "dev"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    // Copied by cp, not in this process: a write fd of ours could reach a
    // concurrent test's forked child and fail its execve with ETXTBSY.
    assert!(std::process::Command::new("cp")
        .arg("/bin/busybox")
        .arg(rootfs.join("bin/busybox"))
        .status()
        .unwrap()
        .success());
    for a in ["sh", "sleep"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
    }
    let cfg = serde_json::json!({
        "ociVersion": "1.2.0", "root": {"path": "rootfs"},
        "process": {"args": ["sh", "-c", "sleep 30 & sleep 30"], "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
        "linux": {"cgroupsPath": format!("/berth-{id}"), "namespaces": [{"type": "pid"}, {"type": "mount"}]}
    });
    std::fs::write(
        dir.join("bundle/config.json"),
        serde_json::to_vec(&cfg).unwrap(),
    )
    .unwrap();
    let runtime = Runtime::new(dir.join("root")).unwrap();
    let cleanup = || {
        if let Ok(c) = runtime.load(&id) {
            let _ = c.delete(true);
        }
        let _ = std::fs::remove_dir_all(&dir);
    };
    let result = std::panic::catch_unwind(|| {
        let mut c = runtime
            .create(&id, &dir.join("bundle"), &CreateOptions::default())
            .unwrap();
        c.start().unwrap();
        // The init (the shell exec-s its last command) and the background sleep.
        let mut pids = Vec::new();
        for _ in 0..200 {
            pids = c.processes().unwrap();
            if pids.len() == 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(pids.len(), 2, "{pids:?}");
        assert!(pids.contains(&c.pid()));
        c.pause().unwrap();
        assert_eq!(c.state().unwrap().status, Status::Paused);
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", c.pid())).unwrap();
        assert!(stat.contains(") D ") || stat.contains(") S "), "{stat}");
        assert!(c.pause().is_err(), "pausing twice must fail");
        c.resume().unwrap();
        assert_eq!(c.state().unwrap().status, Status::Running);
        assert!(
            c.resume().is_err(),
            "resuming a running container must fail"
        );
        // A paused container can be force-deleted.
        c.pause().unwrap();
        runtime.load(&id).unwrap().delete(true).unwrap();
        assert!(runtime.load(&id).is_err());
    });
    cleanup();
    result.unwrap();
}

#[test]
fn update_changes_the_cgroup_and_the_state() {
    if !support::v1_hierarchies(
        "update_changes_the_cgroup_and_the_state",
        &["pids", "memory"],
    ) {
        return;
    }
    let id = format!("update-{}", std::process::id());
    let dir = std::env::temp_dir().join(format!("berth-{id}"));
    let rootfs = dir.join("bundle/rootfs");
    for d in ["bin", "proc", "dev"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    // Copied by cp, not in this process: a write fd of ours could reach a
    // concurrent test's forked child and fail its execve with ETXTBSY.
    assert!(std::process::Command::new("cp")
        .arg("/bin/busybox")
        .arg(rootfs.join("bin/busybox"))
        .status()
        .unwrap()
        .success());
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sleep")).unwrap();
    let cgroup = format!("berth-{id}");
    let cfg = serde_json::json!({
        "ociVersion": "1.2.0", "root": {"path": "rootfs"},
        "process": {"args": ["sleep", "30"], "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}},
        "linux": {"cgroupsPath": format!("/{cgroup}"), "namespaces": [{"type": "pid"}, {"type": "mount"}],
                  "resources": {"pids": {"limit": 100}, "memory": {"limit": 268435456}}}
    });
    std::fs::write(
        dir.join("bundle/config.json"),
        serde_json::to_vec(&cfg).unwrap(),
    )
    .unwrap();
    let runtime = Runtime::new(dir.join("root")).unwrap();
    let result = std::panic::catch_unwind(|| {
        let mut c = runtime
            .create(&id, &dir.join("bundle"), &CreateOptions::default())
            .unwrap();
        let read = |f: &str| std::fs::read_to_string(f).unwrap().trim().to_string();
        assert_eq!(
            read(&format!("/sys/fs/cgroup/pids/{cgroup}/pids.max")),
            "100"
        );
        let update: oci_spec::runtime::LinuxResources =
            serde_json::from_value(serde_json::json!({"pids": {"limit": 42}})).unwrap();
        c.update(&update).unwrap();
        assert_eq!(
            read(&format!("/sys/fs/cgroup/pids/{cgroup}/pids.max")),
            "42"
        );
        assert_eq!(
            read(&format!(
                "/sys/fs/cgroup/memory/{cgroup}/memory.limit_in_bytes"
            )),
            "268435456"
        );
        // A later load sees the merged resources.
        let again = runtime.load(&id).unwrap();
        let res = again
            .config()
            .linux()
            .as_ref()
            .unwrap()
            .resources()
            .clone()
            .unwrap();
        assert_eq!(res.pids().as_ref().unwrap().limit(), 42);
    });
    if let Ok(c) = runtime.load(&id) {
        let _ = c.delete(true);
    }
    let _ = std::fs::remove_dir_all(&dir);
    result.unwrap();
}
