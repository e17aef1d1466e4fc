//! Idmapped bind mounts (runtime-spec 1.1 mount `uidMappings`/`gidMappings`, 1.2's
//! `idmap`/`ridmap` options): owners seen inside and written back, with and without
//! a container user namespace, `ridmap` against `idmap` on a nested mount, a
//! filesystem that cannot be idmapped, and `features`' `mountExtensions.idmap`.
//!
//! Each scenario first checks that this kernel can idmap a mount of the filesystem it
//! uses (a probe of its own, independent of the runtime) and skips with the reason if
//! not.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use super::contract::{cfg, prepare, run_foreground, wait_until};
use crate::bundle::Bundle;
use crate::ctx::Ctx;
use crate::spec::{push, set};
use crate::verdict::{Res, Verdict};
use crate::{ensure, skip};

/// An on-disk owner unique to this run (uid; the gid is one more), far from real users.
fn disk_owner() -> u32 {
    200_000 + (std::process::id() % 50_000) * 2
}

/// `containerID` (on-disk id) `from` shown as `to`, one id.
fn one(from: u32, to: u32) -> Value {
    json!([{"containerID": from, "hostID": to, "size": 1}])
}

/// A user namespace fd with root mapped to host root, from an `unshare --user
/// --map-root-user sleep` helper (the same pid once it has exec'd sleep), registered
/// for cleanup.
fn probe_userns(c: &mut Ctx) -> Result<OwnedFd, Verdict> {
    let child = Command::new("unshare")
        .args(["--user", "--map-root-user", "sleep", "20"])
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| Verdict::Skip(format!("cannot run unshare for the idmap probe: {e}")))?;
    let pid = child.id() as i32;
    c.own_helper(pid);
    let mut ns = None;
    wait_until(Duration::from_secs(5), || {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
        if !exe.ends_with("sleep") {
            return false;
        }
        ns = std::fs::File::open(format!("/proc/{pid}/ns/user"))
            .ok()
            .map(OwnedFd::from);
        ns.is_some()
    });
    ns.ok_or_else(|| Verdict::Skip("the idmap probe's user namespace did not appear".into()))
}

/// Whether the kernel can idmap a clone of the mount at `dir`: open_tree +
/// mount_setattr(MOUNT_ATTR_IDMAP); the clone is never attached.
fn can_idmap(c: &mut Ctx, dir: &Path) -> Result<(), Verdict> {
    let userns = probe_userns(c)?;
    let path = CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| Verdict::Fail("a NUL in the probe path".into()))?;
    // SAFETY: a valid C string; OPEN_TREE_CLONE (1) | O_CLOEXEC returns a new fd or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            path.as_ptr(),
            1u32 | libc::O_CLOEXEC as u32,
        )
    };
    if fd < 0 {
        skip!(
            "open_tree of {} fails here: {}",
            dir.display(),
            std::io::Error::last_os_error()
        );
    }
    // SAFETY: a fresh fd owned by nobody else.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    #[repr(C)]
    struct MountAttr {
        set: u64,
        clr: u64,
        propagation: u64,
        userns: u64,
    }
    let attr = MountAttr {
        set: 0x0010_0000,
        clr: 0,
        propagation: 0,
        userns: userns.as_raw_fd() as u64,
    };
    // SAFETY: the kernel reads `size` bytes of a live repr(C) struct mount_attr.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc < 0 {
        skip!(
            "this kernel cannot idmap a mount of {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// A bundle for `config` with a source directory `src` in it owned by `uid`:`uid+1`
/// (mode 0755) and the mount points listed made in the rootfs.
fn bundle_with_source(
    c: &mut Ctx,
    config: Value,
    uid: u32,
    points: &[&str],
) -> Result<(String, Bundle), Verdict> {
    let (id, b) = prepare(c, config)?;
    let src = b.dir.join("src");
    std::fs::create_dir_all(&src)?;
    std::os::unix::fs::chown(&src, Some(uid), Some(uid + 1))?;
    for p in points {
        std::fs::create_dir_all(b.rootfs().join(p))?;
    }
    Ok((id, b))
}

/// The stdout of a run that must succeed.
fn run_ok(c: &Ctx, b: &Bundle, id: &str, what: &str) -> Result<String, Verdict> {
    let out = run_foreground(c, b, id);
    ensure!(out.ok(), "run with {what}: {}", out.describe());
    Ok(out.stdout)
}

fn owner(p: &Path) -> Result<String, Verdict> {
    let m = std::fs::metadata(p)
        .map_err(|e| Verdict::Fail(format!("stat {} on the host: {e}", p.display())))?;
    Ok(format!("{}:{}", m.uid(), m.gid()))
}

/// No user namespace: a source owned by U:G, mapped U->0 and G->0, is root-owned
/// inside, and a file root creates there is U:G on the host.
pub fn idmap_mount_owner_no_userns(c: &mut Ctx) -> Res {
    let u = disk_owner();
    let script = "stat -c %u:%g /data; touch /data/made; stat -c %u:%g /data/made";
    let mut config = cfg(&["sh", "-c", script]);
    push(
        &mut config,
        "mounts",
        json!({"destination": "/data", "type": "bind", "source": "src",
               "options": ["bind", "idmap"],
               "uidMappings": one(u, 0), "gidMappings": one(u + 1, 0)}),
    );
    let (id, b) = bundle_with_source(c, config, u, &["data"])?;
    can_idmap(c, &b.dir.join("src"))?;
    let out = run_ok(c, &b, &id, "an idmapped bind at /data")?;
    let lines: Vec<&str> = out.lines().collect();
    ensure!(
        lines == ["0:0", "0:0"],
        "inside, /data and a new file in it should be 0:0 (on disk {u}:{}), got {out:?}",
        u + 1
    );
    let host = owner(&b.dir.join("src/made"))?;
    ensure!(
        host == format!("{u}:{}", u + 1),
        "the file made inside is {host} on the host, want {u}:{}",
        u + 1
    );
    Ok(())
}

/// A container user namespace (root = host 100000) and `idmap` with no mappings of
/// the mount's own: the container's are used, so a host-root-owned source is
/// root-owned inside, and a file made inside is host-root-owned on the host.
pub fn idmap_mount_userns_container_mappings(c: &mut Ctx) -> Res {
    let script = "stat -c %u:%g /data; touch /data/made; stat -c %u:%g /data/made";
    let mut config = cfg(&["sh", "-c", script]);
    push(&mut config, "linux/namespaces", json!({"type": "user"}));
    let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    set(&mut config, "linux/uidMappings", map.clone());
    set(&mut config, "linux/gidMappings", map);
    push(
        &mut config,
        "mounts",
        json!({"destination": "/data", "type": "bind", "source": "src",
               "options": ["bind", "idmap"]}),
    );
    let (id, b) = bundle_with_source(c, config, 0, &["data"])?;
    // Host root's group, not the +1 of bundle_with_source.
    std::os::unix::fs::chown(b.dir.join("src"), Some(0), Some(0))?;
    // The container's root (host 100000) must reach the source through the bundle.
    for d in [
        b.dir.clone(),
        b.dir.parent().map(Path::to_path_buf).unwrap_or_default(),
    ] {
        let mode = std::fs::metadata(&d)?.mode();
        ensure!(
            mode & 0o001 != 0,
            "{} is not searchable by others",
            d.display()
        );
    }
    can_idmap(c, &b.dir.join("src"))?;
    let out = run_ok(c, &b, &id, "idmap with the container's mappings")?;
    let lines: Vec<&str> = out.lines().collect();
    ensure!(
        lines == ["0:0", "0:0"],
        "inside the user namespace, a host-root source idmapped with the container's \
         mappings and a new file in it should be 0:0, got {out:?}"
    );
    let host = owner(&b.dir.join("src/made"))?;
    ensure!(
        host == "0:0",
        "the file made inside is {host} on the host, want 0:0"
    );
    Ok(())
}

/// `rbind` of a source with a tmpfs mounted inside it: with `ridmap` the nested
/// tmpfs is mapped too, with `idmap` only the top mount is.
pub fn idmap_mount_ridmap_nested(c: &mut Ctx) -> Res {
    let u = disk_owner();
    let script = "stat -c %u:%g /a /a/sub /r /r/sub";
    let mut config = cfg(&["sh", "-c", script]);
    for (dest, opt) in [("/a", "idmap"), ("/r", "ridmap")] {
        push(
            &mut config,
            "mounts",
            json!({"destination": dest, "type": "bind", "source": "src",
                   "options": ["rbind", opt],
                   "uidMappings": one(u, 0), "gidMappings": one(u + 1, 0)}),
        );
    }
    let (id, b) = bundle_with_source(c, config, u, &["a", "r"])?;
    let sub = b.dir.join("src/sub");
    std::fs::create_dir_all(&sub)?;
    // Detached by the bundle's cleanup (remove_tree unmounts what is below it).
    nix::mount::mount(
        Some("tmpfs"),
        &sub,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("mode=755"),
    )
    .map_err(|e| Verdict::Fail(format!("mount a tmpfs at {}: {e}", sub.display())))?;
    std::os::unix::fs::chown(&sub, Some(u), Some(u + 1))?;
    can_idmap(c, &b.dir.join("src"))?;
    can_idmap(c, &sub)?;
    let out = run_ok(c, &b, &id, "rbind mounts with idmap and ridmap")?;
    let lines: Vec<&str> = out.lines().collect();
    let plain = format!("{u}:{}", u + 1);
    ensure!(
        lines == ["0:0", plain.as_str(), "0:0", "0:0"],
        "want /a 0:0, /a/sub {plain} (idmap maps only the top), /r 0:0, /r/sub 0:0 \
         (ridmap maps the nested tmpfs), got {out:?}"
    );
    Ok(())
}

/// A source on sysfs, which cannot be idmapped: the run fails with one line naming
/// the destination and the reason, and leaves no container.
pub fn idmap_mount_unsupported_fs(c: &mut Ctx) -> Res {
    let mut config = cfg(&["true"]);
    push(
        &mut config,
        "mounts",
        json!({"destination": "/data", "type": "bind", "source": "/sys",
               "options": ["bind", "idmap"],
               "uidMappings": one(0, 100000), "gidMappings": one(0, 100000)}),
    );
    let (id, b) = prepare(c, config)?;
    std::fs::create_dir_all(b.rootfs().join("data"))?;
    // The kernel must have idmapped mounts at all (the bundle's own filesystem).
    can_idmap(c, &b.dir)?;
    let out = run_foreground(c, &b, &id);
    ensure!(
        !out.ok(),
        "an idmapped bind of /sys (sysfs) succeeded: {}",
        out.describe()
    );
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    ensure!(
        lines.len() == 1 && lines[0].contains("/data") && lines[0].contains("idmap"),
        "want one error line naming /data and the idmapped mount, got {:?}",
        out.stderr
    );
    ensure!(
        lines[0].contains("not support"),
        "the error does not give the reason (the filesystem does not support it): {:?}",
        lines[0]
    );
    ensure!(
        !c.state_entry_exists(&id),
        "the failed run left container {id} behind"
    );
    Ok(())
}

/// `features` says `mountExtensions.idmap.enabled: true` where the kernel can idmap.
pub fn idmap_features_enabled(c: &mut Ctx) -> Res {
    let out = c.must(&["features"])?;
    let scratch = c.suite.bundles.clone();
    can_idmap(c, &scratch)?;
    let v: Value = serde_json::from_str(&out.stdout)
        .map_err(|e| Verdict::Fail(format!("features is not JSON: {e}")))?;
    let got = &v["linux"]["mountExtensions"]["idmap"]["enabled"];
    ensure!(
        got == &json!(true),
        "linux.mountExtensions.idmap.enabled is {got}, want true on a kernel with idmapped mounts"
    );
    Ok(())
}
