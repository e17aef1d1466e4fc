//! userns.bats "userns with inaccessible bind mount": in a user namespace whose root
//! is an unprivileged host user, bind sources below host-root directories of mode
//! 0700 still mount, because the runtime opens them (O_PATH, in the container's
//! mount namespace) before the container's root would look them up; and no such fd
//! is left in the init once the mounts are made.

use berth_runtime::{CreateOptions, ExitStatus, Runtime};
use std::os::unix::fs::PermissionsExt;

struct Cleanup {
    dir: std::path::PathBuf,
    id: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Ok(r) = Runtime::new(self.dir.join("root")) {
            if let Ok(c) = r.load(&self.id) {
                let _ = c.delete(true);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn inaccessible_bind_sources_mount_in_a_user_namespace() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let id = format!("userns-src-{}", std::process::id());
    let dir = std::env::temp_dir().join(format!("berth-{id}"));
    let _cleanup = Cleanup {
        dir: dir.clone(),
        id: id.clone(),
    };
    let rootfs = dir.join("bundle/rootfs");
    for d in ["bin", "proc", "dev", "tmp/mount-1", "tmp/mount-2"] {
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
    for a in ["sh", "test", "sleep"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
    }
    // /dev is a tmpfs of the container's root: it could not create the device
    // files in a rootfs directory owned by host root.
    let mut mounts = vec![
        serde_json::json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        serde_json::json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                           "options": ["nosuid", "mode=755"]}),
    ];
    let mut sources = Vec::new();
    for n in ["1", "2"] {
        let locked = dir.join(format!("source-inaccessible-{n}"));
        std::fs::create_dir_all(locked.join("dir")).unwrap();
        std::fs::write(locked.join("dir/foo.txt"), "foo").unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700)).unwrap();
        // A relative source (to the bundle), as runc's test has it.
        mounts.push(serde_json::json!({"destination": format!("/tmp/mount-{n}"),
            "source": format!("../source-inaccessible-{n}/dir"), "options": ["bind"]}));
        sources.push(locked.join("dir"));
    }
    let cfg = serde_json::json!({
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs"},
        "process": {"args": ["sh", "-c", "test -f /tmp/mount-1/foo.txt && test -f /tmp/mount-2/foo.txt"],
                    "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}},
        "mounts": mounts,
        "linux": {"cgroupsPath": format!("/berth-{id}"),
                  "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "user"}],
                  "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65534}],
                  "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65534}]}
    });
    std::fs::write(
        dir.join("bundle/config.json"),
        serde_json::to_vec(&cfg).unwrap(),
    )
    .unwrap();
    let runtime = Runtime::new(dir.join("root")).unwrap();
    let mut c = runtime
        .create(&id, &dir.join("bundle"), &CreateOptions::default())
        .unwrap();
    // The sources' fds were closed once mounted: none is left in the created init.
    let fds = std::fs::read_dir(format!("/proc/{}/fd", c.pid())).unwrap();
    for fd in fds.flatten() {
        let target = std::fs::read_link(fd.path()).unwrap_or_default();
        assert!(
            !sources.iter().any(|s| target.starts_with(s)),
            "the init still holds {} as fd {:?}",
            target.display(),
            fd.file_name()
        );
    }
    c.start().unwrap();
    assert_eq!(c.wait().unwrap(), ExitStatus::Exited(0));
    runtime.load(&id).unwrap().delete(false).unwrap();
}
