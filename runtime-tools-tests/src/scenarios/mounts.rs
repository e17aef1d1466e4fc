//! Mount behaviour runc 1.1.5's mounts_recursive.bats, mask.bats and userns.bats
//! check: recursive attributes (`rro`), proc destinations that are symlinks, and bind
//! sources a user namespace's root cannot reach.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use nix::mount::{mount, MsFlags};
use serde_json::json;

use super::running::stop_and_delete;
use crate::ctx::Ctx;
use crate::spec::{default_config, push, set, sh};
use crate::verdict::{Res, Verdict};
use crate::{ensure, fail, skip};

/// Kernel (major, minor), from /proc/sys/kernel/osrelease.
fn kernel_version() -> Option<(u32, u32)> {
    let rel = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let mut it = rel.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// A tmpfs at `dir` holding `foo`, with a second tmpfs at `dir/subvol` holding `bar`
/// (runc's test volume). Mounted under the bundle directory, so the scenario guard
/// detaches it.
fn volume(dir: &Path) -> Res {
    let tmpfs = |p: &Path| {
        mount(
            Some("tmpfs"),
            p,
            Some("tmpfs"),
            MsFlags::empty(),
            Some("size=1m"),
        )
        .map_err(|e| Verdict::Fail(format!("mount tmpfs on {}: {e}", p.display())))
    };
    std::fs::create_dir_all(dir)?;
    tmpfs(dir)?;
    std::fs::write(dir.join("foo"), "foo")?;
    std::fs::create_dir(dir.join("subvol"))?;
    tmpfs(&dir.join("subvol"))?;
    std::fs::write(dir.join("subvol/bar"), "bar")?;
    Ok(())
}

/// How `exec touch` fares on /mnt/foo and /mnt/subvol/bar in a container with the
/// volume bound at /mnt with `options`: `top-rw`/`top-ro`, then `sub-rw`/`sub-ro`. A
/// refusal counts as read-only only as runc's test judges it: exit 1 and "Read-only
/// file system".
fn writes_with(c: &mut Ctx, options: &[&str]) -> Result<String, Verdict> {
    let mut cfg = default_config(&["sleep", "600"], "/placeholder");
    let (id, b) = c.prepare(cfg.clone(), false)?;
    // The config is written again below: keep the run's own cgroupsPath, not the
    // placeholder (a fixed path is shared with whatever else runs on the host).
    let cg = c.cgroups_path(&id);
    set(&mut cfg, "linux/cgroupsPath", json!(cg));
    let vol = b.dir.join("volume");
    volume(&vol)?;
    push(
        &mut cfg,
        "mounts",
        json!({"destination": "/mnt", "source": vol, "options": options}),
    );
    b.write_config(&cfg)?;
    let bp = b.path_str();
    let out = c.suite.rt.run_to(
        &["run", "-d", "--bundle", &bp, &id],
        &b.stdout_path(),
        &b.stderr_path(),
    );
    ensure!(
        out.ok(),
        "run -d with options {options:?}: {}",
        out.describe()
    );
    let mut seen = Vec::new();
    for (name, file) in [("top", "/mnt/foo"), ("sub", "/mnt/subvol/bar")] {
        let out = c.rt(&["exec", &id, "touch", file]);
        if out.ok() {
            seen.push(format!("{name}-rw"));
        } else if out.code == Some(1)
            && (out.stderr.contains("Read-only file system")
                || out.stdout.contains("Read-only file system"))
        {
            seen.push(format!("{name}-ro"));
        } else {
            fail!(
                "exec touch {file} with options {options:?}: want exit 0, or exit 1 and \
                 \"Read-only file system\": {}",
                out.describe()
            );
        }
    }
    c.must(&["delete", "--force", &id])?;
    Ok(seen.join(" "))
}

/// mounts_recursive.bats: `rro` makes every mount of a recursive bind read-only
/// (mount_setattr with AT_RECURSIVE), alone or with `ro`; plain `rbind,ro` makes
/// only the top mount read-only, as in runc 1.1.5. Judged as runc's test does: a
/// started container, `exec touch` in the top mount and in the one below it.
pub fn mounts_recursive_read_only(c: &mut Ctx) -> Res {
    let recursive = kernel_version().is_some_and(|v| v >= (5, 12));
    for (options, want) in [
        (&["rbind", "ro"][..], "top-ro sub-rw"),
        (&["rbind", "rro"][..], "top-ro sub-ro"),
        (&["rbind", "ro", "rro"][..], "top-ro sub-ro"),
    ] {
        if options.contains(&"rro") && !recursive {
            skip!("recursive mount attributes need Linux 5.12 (mount_setattr)");
        }
        let got = writes_with(c, options)?;
        ensure!(
            got == want,
            "with options {options:?} exec saw {got:?}, want {want:?}"
        );
    }
    Ok(())
}

/// mask.bats "prohibit symlink /proc": proc must land on an ordinary directory; a
/// rootfs whose /proc is a symlink fails create with runc's words. A destination
/// that is a symlink to /proc (`/evil -> /proc`) is refused too, saying it must be
/// an ordinary directory.
pub fn mounts_proc_symlink_refused(c: &mut Ctx) -> Res {
    let cfg = default_config(&["/bin/true"], "/placeholder");
    let (id, b) = c.prepare(cfg, false)?;
    let proc_dir = b.rootfs().join("proc");
    std::fs::remove_dir(&proc_dir)?;
    std::os::unix::fs::symlink("/symlink", &proc_dir)?;
    let out = c.create(&b, &id);
    if out.ok() {
        fail!("create accepted a rootfs whose /proc is a symlink");
    }
    ensure!(
        out.stderr.contains("must be mounted on ordinary directory"),
        "the refusal of a symlinked /proc does not say it must be an ordinary directory: {}",
        out.stderr.trim()
    );

    let mut cfg = default_config(&["/bin/true"], "/placeholder");
    push(
        &mut cfg,
        "mounts",
        json!({"destination": "/evil", "type": "tmpfs", "source": "tmpfs"}),
    );
    let (id, b) = c.prepare(cfg, false)?;
    std::os::unix::fs::symlink("/proc", b.rootfs().join("evil"))?;
    let out = c.create(&b, &id);
    if out.ok() {
        let _ = c.rt(&["delete", "--force", &id]);
        fail!("create mounted a tmpfs through /evil -> /proc");
    }
    ensure!(
        out.stderr.contains("/evil") && out.stderr.contains("ordinary directory"),
        "the refusal of /evil -> /proc does not name /evil and say it must be an \
         ordinary directory: {}",
        out.stderr.trim()
    );
    ensure!(
        !c.rt(&["state", &id]).ok(),
        "a failed create left container {id} behind"
    );
    Ok(())
}

/// userns.bats: in a user namespace whose root is an unprivileged host user, bind
/// sources below directories of mode 0700 owned by host root still mount (the
/// runtime opens them before the container's root would look them up), for two
/// sources at once, and `exec` sees them. As in runc's test the mount points exist
/// in the rootfs: the container's root could not create them in a rootfs owned by
/// host root.
pub fn userns_inaccessible_bind_sources(c: &mut Ctx) -> Res {
    let script = "stat -c %n /tmp/mount-1/foo.txt /tmp/mount-2/foo.txt";
    let a = sh(script);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let mut cfg = default_config(&a, "/placeholder");
    push(&mut cfg, "linux/namespaces", json!({"type": "user"}));
    let map = json!([{"containerID": 0, "hostID": 100000, "size": 65534}]);
    set(&mut cfg, "linux/uidMappings", map.clone());
    set(&mut cfg, "linux/gidMappings", map);
    let (id, b) = c.prepare(cfg.clone(), false)?;
    // The config is written again below: keep the run's own cgroupsPath, not the
    // placeholder (a fixed path is shared with whatever else runs on the host).
    let cg = c.cgroups_path(&id);
    set(&mut cfg, "linux/cgroupsPath", json!(cg));
    for n in ["1", "2"] {
        std::fs::create_dir_all(b.rootfs().join(format!("tmp/mount-{n}")))?;
        let dir = b.dir.join(format!("source-inaccessible-{n}"));
        std::fs::create_dir_all(dir.join("dir"))?;
        std::fs::write(dir.join("dir/foo.txt"), "foo")?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        push(
            &mut cfg,
            "mounts",
            json!({"destination": format!("/tmp/mount-{n}"),
                   "source": dir.join("dir"), "options": ["bind"]}),
        );
    }
    b.write_config(&cfg)?;
    c.must_create(&b, &id)?;
    c.must(&["start", &id])?;
    c.wait_stopped(&id)?;
    let out = std::fs::read_to_string(b.stdout_path()).unwrap_or_default();
    let err = std::fs::read_to_string(b.stderr_path()).unwrap_or_default();
    c.must(&["delete", &id])?;
    ensure!(
        out.contains("/tmp/mount-1/foo.txt") && out.contains("/tmp/mount-2/foo.txt"),
        "the container does not see both bind mounts: stdout {out:?}, stderr {err:?}"
    );

    // The same mounts with exec (runc: "userns with inaccessible mount + exec").
    set(&mut cfg, "process/args", json!(["/bin/sleep", "60"]));
    let (id, b2) = c.prepare(cfg.clone(), false)?;
    // The config is written again below: keep the run's own cgroupsPath, not the
    // placeholder (a fixed path is shared with whatever else runs on the host).
    let cg = c.cgroups_path(&id);
    set(&mut cfg, "linux/cgroupsPath", json!(cg));
    for n in ["1", "2"] {
        let from = b.dir.join(format!("source-inaccessible-{n}"));
        std::fs::create_dir_all(b2.rootfs().join(format!("tmp/mount-{n}")))?;
        let to = b2.dir.join(format!("source-inaccessible-{n}"));
        std::fs::create_dir_all(to.join("dir"))?;
        std::fs::copy(from.join("dir/foo.txt"), to.join("dir/foo.txt"))?;
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o700))?;
    }
    if let Some(m) = cfg["mounts"].as_array_mut() {
        for e in m.iter_mut() {
            if let Some(s) = e["source"].as_str() {
                let s = s.replace(&b.path_str(), &b2.path_str());
                e["source"] = json!(s);
            }
        }
    }
    b2.write_config(&cfg)?;
    c.must_create(&b2, &id)?;
    c.must(&["start", &id])?;
    let out = c.must(&[
        "exec",
        &id,
        "stat",
        "-c",
        "%n",
        "/tmp/mount-1/foo.txt",
        "/tmp/mount-2/foo.txt",
    ])?;
    stop_and_delete(c, &id)?;
    ensure!(
        out.stdout.contains("/tmp/mount-2/foo.txt"),
        "exec does not see the bind mounts: {:?}",
        out.stdout
    );
    Ok(())
}
