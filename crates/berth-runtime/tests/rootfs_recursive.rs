//! Recursive mount attributes (`rro`, `rnosuid` ...): mount_setattr with
//! AT_RECURSIVE over the whole tree a mount brings, as runc 1.1's mounts_recursive
//! tests check; plain `ro` stays on the top mount only. Needs root and Linux 5.12.

mod rootfs_support;

use rootfs_support::*;

/// Linux 5.12 brought mount_setattr; older kernels skip with a message.
fn has_mount_setattr() -> bool {
    let rel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut it = rel.split(|c: char| !c.is_ascii_digit());
    let v: (u32, u32) = (
        it.next().and_then(|s| s.parse().ok()).unwrap_or(0),
        it.next().and_then(|s| s.parse().ok()).unwrap_or(0),
    );
    if v < (5, 12) {
        eprintln!(
            "skipped: mount_setattr needs Linux 5.12, this is {}",
            rel.trim()
        );
        return false;
    }
    true
}

/// The `ST_*` flags of the mount at `path`.
fn statvfs_flags(path: &str) -> Result<nix::sys::statvfs::FsFlags, String> {
    nix::sys::statvfs::statvfs(path)
        .map(|s| s.flags())
        .map_err(|e| format!("statvfs {path}: {e}"))
}

/// A tmpfs at `dir` with another tmpfs at `dir/sub`, in the child's namespace.
fn volume(dir: &Path) -> Result<(), String> {
    use nix::mount::{mount, MsFlags};
    for p in [dir.to_path_buf(), dir.join("sub")] {
        std::fs::create_dir_all(&p).map_err(|e| format!("mkdir {}: {e}", p.display()))?;
        mount(
            Some("tmpfs"),
            &p,
            Some("tmpfs"),
            MsFlags::empty(),
            Some("size=1m"),
        )
        .map_err(|e| format!("mount {}: {e}", p.display()))?;
    }
    Ok(())
}

#[test]
fn rro_makes_every_mount_of_a_bind_read_only_and_ro_only_the_top() {
    if !is_root() || !has_mount_setattr() {
        return;
    }
    use nix::sys::statvfs::FsFlags;
    let dir = TempDir::new("rro");
    let rootfs = busybox_rootfs(&dir.0);
    let vol = dir.0.join("volume");
    let v = vol.to_str().unwrap();
    let mounts = vec![
        mnt("/proc", "proc", "proc", &[]),
        mnt("/rro", "bind", v, &["rbind", "rro"]),
        mnt("/ro", "bind", v, &["rbind", "ro"]),
        mnt("/rnosuid", "bind", v, &["rbind", "rnosuid", "rnoexec"]),
        mnt("/dev", "tmpfs", "tmpfs", &["mode=755", "rro"]),
        mnt("/dev/shm", "tmpfs", "shm", &["mode=1777"]),
    ];
    let spec = spec(mounts, vec![], &[], &[], false);
    let opts = RootfsOptions {
        no_pivot: false,
        new_user_ns: false,
        mount_ns: true,
        cgroup_dirs: Vec::new(),
    };
    let plan = RootfsPlan::new(&spec, &rootfs, opts).unwrap();
    in_child(|rep| {
        volume(&vol)?;
        run_plan(&plan)?;
        let ro = |p: &str| statvfs_flags(p).map(|f| f.contains(FsFlags::ST_RDONLY));
        rep.check(
            ro("/rro")? && ro("/rro/sub")?,
            "rro: not read-only throughout",
        );
        rep.check(ro("/ro")?, "ro: the top is writable");
        rep.check(
            !ro("/ro/sub")?,
            "ro: the submount is read-only (runc: top only)",
        );
        let f = statvfs_flags("/rnosuid/sub")?;
        rep.check(
            f.contains(FsFlags::ST_NOSUID)
                && f.contains(FsFlags::ST_NOEXEC)
                && !f.contains(FsFlags::ST_RDONLY),
            format!("rnosuid,rnoexec on the submount: {f:?}"),
        );
        // rro on /dev waits for finalize: the devices and /dev/shm were made first,
        // then everything below /dev became read-only.
        rep.check(
            std::path::Path::new("/dev/null").exists(),
            "/dev/null was not created under an rro /dev",
        );
        rep.check(
            ro("/dev")? && ro("/dev/shm")?,
            "rro /dev: not read-only throughout",
        );
        rep.check(
            std::fs::write("/dev/shm/x", "x").is_err(),
            "rro /dev: /dev/shm is writable",
        );
        Ok(())
    });
}
