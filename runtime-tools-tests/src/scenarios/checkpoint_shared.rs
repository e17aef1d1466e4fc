//! A restored container keeps its mount propagation with the host: Kubernetes'
//! Bidirectional mount (a host directory made a shared mount point, bound into the
//! container with `rshared`, and `linux.rootfsPropagation` rshared, as containerd's
//! CRI plugin asks) still carries mounts both ways after checkpoint and restore. A
//! restore whose CRIU ran in a slave copy of the runtime's mount namespace gives the
//! container mounts of the copy's peer groups: host to container still works, what
//! the container mounts never reaches the host. CRIU works only in the VM lane's
//! guest; elsewhere this skips with its reason.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use serde_json::json;

use super::contract_checkpoint::need_criu;
use crate::ctx::Ctx;
use crate::spec::{default_config, push, set};
use crate::verdict::{Res, Verdict};
use crate::{ensure, fail};

/// A shell that runs on with its stdio on the container's own /dev/null.
const SPINNER: &str =
    "exec </dev/null >/dev/null 2>&1; i=0; while :; do i=$((i+1)); sleep 0.2; done";

/// A host directory bound onto itself and made shared (what kubelet does for a
/// Bidirectional volume's source); detached, with whatever was mounted below it, on
/// drop.
struct SharedPoint(PathBuf);

impl SharedPoint {
    fn new(dir: &Path) -> Result<Self, Verdict> {
        std::fs::create_dir_all(dir)?;
        let mounted =
            |what: &str, e: nix::Error| Verdict::Fail(format!("{what} {}: {e}", dir.display()));
        mount(Some(dir), dir, None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .map_err(|e| mounted("bind onto itself", e))?;
        let point = SharedPoint(dir.to_path_buf());
        // A peer group of its own: private first (the bind joined the group of the
        // mount it was made on, when that one is shared), then shared.
        for (flag, what) in [
            (MsFlags::MS_PRIVATE, "make private"),
            (MsFlags::MS_SHARED, "make shared"),
        ] {
            mount(None::<&str>, dir, None::<&str>, flag, None::<&str>)
                .map_err(|e| mounted(what, e))?;
        }
        Ok(point)
    }
}

impl Drop for SharedPoint {
    fn drop(&mut self) {
        for _ in 0..8 {
            if umount2(&self.0, MntFlags::MNT_DETACH).is_err() {
                break;
            }
        }
    }
}

/// Whether something is mounted exactly at `dir` in the driver's namespace.
fn is_mount_point(dir: &Path) -> bool {
    crate::bundle::mounts_under(dir).iter().any(|m| m == dir)
}

/// Both directions through the container's /shared, named `tag` in failures:
/// a tmpfs the container mounts at /shared/<tag>-in shows on the host (with the file
/// the container wrote in it), and a tmpfs the host mounts at <host>/<tag>-out shows
/// in the container. Each is unmounted again where it was made.
fn both_ways(c: &Ctx, id: &str, host: &Path, tag: &str) -> Res {
    let (inward, outward) = (format!("{tag}-in"), format!("{tag}-out"));
    std::fs::create_dir_all(host.join(&inward))?;
    std::fs::create_dir_all(host.join(&outward))?;
    let script = format!(
        "mount -t tmpfs -o size=1m berth-bidir /shared/{inward} && echo from-container > /shared/{inward}/marker"
    );
    c.must(&[
        "exec",
        "--cap",
        "CAP_SYS_ADMIN",
        id,
        "/bin/sh",
        "-c",
        &script,
    ])?;
    let seen = std::fs::read_to_string(host.join(&inward).join("marker")).unwrap_or_default();
    let reached = is_mount_point(&host.join(&inward));
    let _ = c.rt(&[
        "exec",
        "--cap",
        "CAP_SYS_ADMIN",
        id,
        "umount",
        &format!("/shared/{inward}"),
    ]);
    ensure!(
        reached && seen.trim() == "from-container",
        "{tag}: a tmpfs the container mounted under its Bidirectional mount did not reach \
         the host (mounted at {}: {reached}, marker {seen:?})",
        host.join(&inward).display()
    );

    let out = host.join(&outward);
    mount(
        Some("berth-bidir"),
        &out,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("size=1m"),
    )
    .map_err(|e| Verdict::Fail(format!("mount a tmpfs at {}: {e}", out.display())))?;
    let written = std::fs::write(out.join("marker"), "from-host\n");
    let inside = c.rt(&["exec", id, "cat", &format!("/shared/{outward}/marker")]);
    let _ = umount2(&out, MntFlags::MNT_DETACH);
    written?;
    ensure!(
        inside.ok() && inside.stdout.trim() == "from-host",
        "{tag}: a tmpfs the host mounted under the Bidirectional source is not seen in \
         the container: {}",
        inside.describe()
    );
    Ok(())
}

/// create with a Bidirectional mount: both ways work; checkpoint, restore: both ways
/// still work.
pub fn checkpoint_restore_bidirectional_mount(c: &mut Ctx) -> Res {
    need_criu()?;
    let host = c.suite.bundles.join(format!("{}-bidir", c.new_id()));
    c.own_dir(&host);
    let point = SharedPoint::new(&host)?;
    let mut cfg = default_config(&["/bin/sh", "-c", SPINNER], "/placeholder");
    set(&mut cfg, "linux/rootfsPropagation", json!("rshared"));
    push(
        &mut cfg,
        "mounts",
        json!({"type": "bind", "source": host, "destination": "/shared",
               "options": ["rbind", "rshared"]}),
    );
    let (id, b) = c.prepare(cfg, false)?;
    c.must_create(&b, &id)?;
    c.must(&["start", &id])?;
    c.wait_status(&id, "running", Duration::from_secs(30))?;
    both_ways(c, &id, &host, "created")?;

    let image = b.dir.join("image").display().to_string();
    let out = c.rt(&["checkpoint", "--image-path", &image, &id]);
    if !out.ok() {
        fail!(
            "checkpoint of a container with a Bidirectional mount: {}",
            out.describe()
        );
    }
    let bp = b.path_str();
    let out = c.rt(&[
        "restore",
        "--detach",
        "--bundle",
        &bp,
        "--image-path",
        &image,
        &id,
    ]);
    if !out.ok() {
        fail!(
            "restore of a container with a Bidirectional mount: {}",
            out.describe()
        );
    }
    both_ways(c, &id, &host, "restored")?;
    c.must(&["delete", "--force", &id])?;
    drop(point);
    ensure!(
        crate::bundle::mounts_under(&host).is_empty(),
        "left mounted under {}: {:?}",
        host.display(),
        crate::bundle::mounts_under(&host)
    );
    Ok(())
}
