//! runc's user namespace contract (userns.bats) beyond the inaccessible sources that
//! `userns_inaccessible_bind_sources` covers: a plain bind of a source relative to the
//! bundle, and (cgroup v1, no cgroup namespace) a bind mount placed just before the
//! /sys/fs/cgroup mount, which must stay a real cgroupfs (runc#3510).

use serde_json::{json, Value};

use super::contract::{cfg, cgroup_mount, prepare, run_detached, run_foreground, unified_host};
use crate::ctx::Ctx;
use crate::spec::{push, set};
use crate::verdict::Res;
use crate::{cgroup, ensure, skip};

/// A user namespace whose root is host uid/gid 100000 (65534 ids), as userns.bats
/// maps it when run as root.
fn userns(config: &mut Value) {
    push(config, "linux/namespaces", json!({"type": "user"}));
    let map = json!([{"hostID": 100000, "containerID": 0, "size": 65534}]);
    set(config, "linux/uidMappings", map.clone());
    set(config, "linux/gidMappings", map);
}

/// The bind of userns.bats: `source-accessible/dir` (relative to the bundle, readable
/// by all) at /tmp/mount-1.
fn accessible_bind() -> Value {
    json!({"source": "source-accessible/dir", "destination": "/tmp/mount-1",
           "options": ["bind"]})
}

/// Makes `source-accessible/dir/foo.txt` in the bundle and the mount point in the
/// rootfs (the container's root could not create it in a rootfs owned by host root).
fn accessible_source(b: &crate::bundle::Bundle) -> Res {
    std::fs::create_dir_all(b.dir.join("source-accessible/dir"))?;
    std::fs::write(b.dir.join("source-accessible/dir/foo.txt"), "")?;
    std::fs::create_dir_all(b.rootfs().join("tmp/mount-1"))?;
    Ok(())
}

/// "userns with simple mount": the bound file is there for the mapped root.
pub fn contract_userns_simple_bind(c: &mut Ctx) -> Res {
    let mut config = cfg(&["sh", "-c", "stat /tmp/mount-1/foo.txt"]);
    userns(&mut config);
    push(&mut config, "mounts", accessible_bind());
    let (id, b) = prepare(c, config)?;
    accessible_source(&b)?;
    let out = run_foreground(c, &b, &id);
    ensure!(
        out.ok(),
        "run in a user namespace with a bind mount: {}; stdout {:?}",
        out.describe(),
        out.stdout
    );
    Ok(())
}

/// "userns with bind mount before a cgroupfs mount" (cgroup v1, no cgroup namespace,
/// where the cgroup mount is made of bind mounts of each hierarchy): the pids and
/// memory hierarchies are real cgroupfs inside (their `tasks` files read).
pub fn contract_userns_bind_before_cgroupfs(c: &mut Ctx) -> Res {
    if unified_host() {
        skip!("cgroup v1 only (runc's test requires cgroups_v1)");
    }
    for h in ["pids", "memory"] {
        if cgroup::v1_controller(h).is_none() {
            skip!("no v1 {h} hierarchy on this host");
        }
    }
    let mut config = cfg(&["sleep", "600"]);
    userns(&mut config);
    push(&mut config, "mounts", accessible_bind());
    push(&mut config, "mounts", cgroup_mount(true));
    let (id, b) = prepare(c, config)?;
    accessible_source(&b)?;
    run_detached(c, &b, &id)?;
    let out = c.rt(&[
        "exec",
        &id,
        "cat",
        "/sys/fs/cgroup/pids/tasks",
        "/sys/fs/cgroup/memory/tasks",
    ]);
    ensure!(
        out.ok(),
        "reading the pids and memory tasks files inside: {}",
        out.describe()
    );
    c.must(&["delete", "--force", &id])?;
    Ok(())
}
