//! runc's mount contract from mask.bats, no_pivot.bats and mounts_sshfs.bats: masked
//! files and directories are empty, read-only and cannot be unmounted from inside;
//! proc or sysfs on a symlink is refused; `run --no-pivot` leaves no bare /proc a
//! nested user namespace could mount; a `rw` bind of a read-only source (a read-only
//! FUSE mount, a read-only tmpfs) runs, as root and in a user namespace where the
//! source's read-only flag is locked.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::bundle::Bundle;
use crate::ctx::Ctx;
use crate::runtime::CmdOut;
use crate::spec::{default_config, push, set, sh};
use crate::verdict::{Res, Verdict};
use crate::{ensure, skip};

/// Links more busybox applets into a prepared bundle's rootfs.
fn applets(b: &Bundle, names: &[&str]) -> Res {
    for a in names {
        let link = b.rootfs().join("bin").join(a);
        if !link.exists() {
            std::os::unix::fs::symlink("busybox", &link)?;
        }
    }
    Ok(())
}

/// stdout and stderr together, where a message may have gone to either.
fn both(out: &CmdOut) -> String {
    format!("{}{}", out.stdout, out.stderr)
}

/// `exec` must exit `code` with `want` in its output (empty `want`: no output at all).
fn exec_expect(c: &Ctx, id: &str, cmd: &[&str], code: i32, want: &str) -> Res {
    let mut args = vec!["exec", id];
    args.extend_from_slice(cmd);
    let out = c.rt(&args);
    let text = both(&out);
    let said = if want.is_empty() {
        text.is_empty()
    } else {
        text.contains(want)
    };
    ensure!(
        out.code == Some(code) && !out.timed_out && said,
        "`{}` inside: want exit {code} and {want:?}: {}; output {text:?}",
        cmd.join(" "),
        out.describe()
    );
    Ok(())
}

/// Masked paths added to the defaults (read-only root, as `runc spec` writes it):
/// /testfile reads empty and cannot be removed (read-only) or unmounted (no
/// CAP_SYS_ADMIN); /testdir lists empty and refuses new files, removal and
/// unmounting the same way.
pub fn contract_mask_paths(c: &mut Ctx) -> Res {
    let mut cfg = default_config(&["/bin/sleep", "60"], "/placeholder");
    // runc's tests run with `runc spec`'s read-only root, which is what makes the
    // removals fail with EROFS rather than EBUSY.
    set(&mut cfg, "root/readonly", json!(true));
    push(&mut cfg, "linux/maskedPaths", json!("/testdir"));
    push(&mut cfg, "linux/maskedPaths", json!("/testfile"));
    let (id, b) = c.prepare(cfg, false)?;
    applets(&b, &["rm", "umount"])?;
    std::fs::create_dir(b.rootfs().join("testdir"))?;
    std::fs::write(b.rootfs().join("testdir/inside"), "hidden")?;
    std::fs::write(b.rootfs().join("testfile"), "Forbidden information!\n")?;
    c.must_create(&b, &id)?;
    c.must(&["start", &id])?;
    c.wait_status(&id, "running", Duration::from_secs(10))?;
    exec_expect(c, &id, &["cat", "/testfile"], 0, "")?;
    exec_expect(
        c,
        &id,
        &["rm", "-f", "/testfile"],
        1,
        "Read-only file system",
    )?;
    exec_expect(
        c,
        &id,
        &["umount", "/testfile"],
        1,
        "Operation not permitted",
    )?;
    exec_expect(c, &id, &["ls", "/testdir"], 0, "")?;
    exec_expect(
        c,
        &id,
        &["touch", "/testdir/foo"],
        1,
        "Read-only file system",
    )?;
    exec_expect(
        c,
        &id,
        &["rm", "-rf", "/testdir"],
        1,
        "Read-only file system",
    )?;
    exec_expect(
        c,
        &id,
        &["umount", "/testdir"],
        1,
        "Operation not permitted",
    )?;
    c.must(&["kill", &id, "KILL"])?;
    c.wait_stopped(&id)?;
    c.must(&["delete", &id])?;
    ensure!(
        b.rootfs().join("testdir/inside").exists() && b.rootfs().join("testfile").exists(),
        "the masked originals in the rootfs are gone"
    );
    Ok(())
}

/// The rootfs's /proc or /sys is a symlink (to /symlink): `run -d` fails with exit 1,
/// for /proc with runc's words that proc must be mounted on an ordinary directory.
pub fn contract_mask_prohibit_symlink(c: &mut Ctx) -> Res {
    for dir in ["proc", "sys"] {
        let cfg = default_config(&["/bin/sleep", "60"], "/placeholder");
        let (id, b) = c.prepare(cfg, false)?;
        let p = b.rootfs().join(dir);
        std::fs::remove_dir(&p)?;
        std::os::unix::fs::symlink("/symlink", &p)?;
        let bp = b.path_str();
        let out = c.rt(&["run", "-d", "--bundle", &bp, &id]);
        ensure!(
            out.code == Some(1) && !out.timed_out,
            "/{dir} a symlink: run -d must exit 1: {}",
            out.describe()
        );
        if dir == "proc" {
            ensure!(
                out.stderr.contains("must be mounted on ordinary directory"),
                "/proc a symlink: the error must say proc must be mounted on an \
                 ordinary directory: {}",
                out.stderr.trim()
            );
        }
        ensure!(
            !c.rt(&["state", &id]).ok(),
            "/{dir} a symlink: the failed run left {id} behind"
        );
        ensure!(
            !b.rootfs().join("symlink").exists(),
            "/{dir} a symlink: something was made at the link's target"
        );
    }
    Ok(())
}

/// `run --no-pivot`: a nested user and pid namespace cannot mount a new proc (the
/// kernel allows it only where a fully visible proc exists, and the host's must not
/// stay reachable), so writing /proc/sysrq-trigger never happens: exit 1 with
/// mount's "permission denied".
pub fn contract_no_pivot_bare_proc(c: &mut Ctx) -> Res {
    let mut cfg = default_config(
        &[
            "unshare",
            "-mrpf",
            "sh",
            "-euxc",
            "mount -t proc none /proc && echo h > /proc/sysrq-trigger",
        ],
        "/placeholder",
    );
    // runc's test adds CAP_SETFCAP (unshare -r writes the uid map); ours has it.
    set(&mut cfg, "process/noNewPrivileges", json!(false));
    let (id, b) = c.prepare(cfg, false)?;
    applets(&b, &["unshare", "mount"])?;
    let bp = b.path_str();
    let out = c.rt(&["run", "--no-pivot", "--bundle", &bp, &id]);
    ensure!(
        out.code == Some(1) && both(&out).contains("mount: permission denied"),
        "run --no-pivot: a nested proc mount must be refused: {}; output {:?}",
        out.describe(),
        both(&out)
    );
    Ok(())
}

/// A read-only mount the driver makes (removed with the scenario's directory).
fn ro_tmpfs(dir: &Path) -> Res {
    use nix::mount::{mount, MsFlags};
    std::fs::create_dir_all(dir)?;
    mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("size=1m"),
    )
    .map_err(|e| Verdict::Fail(format!("mount tmpfs on {}: {e}", dir.display())))?;
    std::fs::write(dir.join("f"), "from-the-source\n")?;
    mount(
        None::<&str>,
        dir,
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("size=1m"),
    )
    .map_err(|e| Verdict::Fail(format!("remount {} ro: {e}", dir.display())))?;
    Ok(())
}

/// A read-only FUSE mount of `lower` at `dir` (fuse-overlayfs), or why there is none.
fn ro_fuse(lower: &Path, dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(lower).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    std::fs::write(lower.join("f"), "from-the-source\n").map_err(|e| e.to_string())?;
    let out = std::process::Command::new("timeout")
        .arg("20")
        .arg("fuse-overlayfs")
        .arg("-o")
        .arg(format!("ro,lowerdir={}", lower.display()))
        .arg(dir)
        .output()
        .map_err(|e| format!("fuse-overlayfs: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "fuse-overlayfs: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// Runs busybox with `source` bound rw at /mnt (runc's options), as root and in a user
/// namespace (root mapped to root: the source's flags become locked there).
fn run_rw_bind(c: &mut Ctx, source: &Path, what: &str) -> Res {
    for userns in [false, true] {
        let args = sh("cat /mnt/f; touch /mnt/new 2>/dev/null && echo wrote; true");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cfg = default_config(&args, "/placeholder");
        push(
            &mut cfg,
            "mounts",
            json!({"type": "bind", "source": source, "destination": "/mnt",
                   "options": ["rw", "rprivate", "nosuid", "nodev", "rbind"]}),
        );
        if userns {
            push(&mut cfg, "linux/namespaces", json!({"type": "user"}));
            let map = json!([{"containerID": 0, "hostID": 0, "size": 65536}]);
            set(&mut cfg, "linux/uidMappings", map.clone());
            set(&mut cfg, "linux/gidMappings", map);
        }
        let (id, b) = c.prepare(cfg, false)?;
        let bp = b.path_str();
        let out = c.rt(&["run", "--bundle", &bp, &id]);
        ensure!(
            out.ok() && out.stdout.starts_with("from-the-source"),
            "a rw bind of a read-only {what} (user namespace {userns}): {}; stdout {:?}",
            out.describe(),
            out.stdout
        );
        ensure!(
            !out.stdout.contains("wrote"),
            "a file was written through the bind of a read-only {what}"
        );
    }
    Ok(())
}

/// A `rw` bind of a read-only source runs: a read-only tmpfs, and a read-only FUSE
/// mount as in runc's sshfs test (fuse-overlayfs stands in for sshfs), as root and in
/// a user namespace, where the source's read-only flag is locked and the bind stays
/// read-only instead of failing.
pub fn contract_bind_rw_of_ro_source(c: &mut Ctx) -> Res {
    let dir = c.suite.bundles.join(format!("{}-sources", c.new_id()));
    c.own_dir(&dir);
    let tmpfs = dir.join("ro-tmpfs");
    ro_tmpfs(&tmpfs)?;
    run_rw_bind(c, &tmpfs, "tmpfs")?;
    let fuse = dir.join("ro-fuse");
    let why = match ro_fuse(&dir.join("lower"), &fuse) {
        Ok(()) => {
            let res = run_rw_bind(c, &fuse, "FUSE mount");
            let _ = nix::mount::umount2(&fuse, nix::mount::MntFlags::MNT_DETACH);
            res?;
            None
        }
        Err(why) => Some(why),
    };
    if let Some(why) = why {
        skip!("the tmpfs case passed; no read-only FUSE mount could be made: {why}");
    }
    let _ = nix::mount::umount2(&tmpfs, nix::mount::MntFlags::MNT_DETACH);
    Ok(())
}
