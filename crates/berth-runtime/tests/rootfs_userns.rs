//! In a user namespace: device nodes bound from the host instead of mknod, sysfs
//! bound when it cannot be mounted, and remounts that keep locked flags.

mod rootfs_support;

use rootfs_support::*;

#[test]
fn devices_are_bound_from_the_host_in_a_user_namespace() {
    if !is_root() {
        return;
    }
    let dir = TempDir::new("userns-dev");
    let rootfs = busybox_rootfs(&dir.0);
    let mounts = vec![
        mnt("/proc", "proc", "proc", &[]),
        mnt("/dev", "tmpfs", "tmpfs", &["mode=755"]),
    ];
    let spec = spec(mounts, vec![], &[], &[], false);
    // new_user_ns without a real user namespace: the bind path runs as root, and
    // the host's nodes are only read.
    let opts = RootfsOptions {
        no_pivot: false,
        new_user_ns: true,
        mount_ns: true,
        cgroup_dirs: Vec::new(),
    };
    let plan = RootfsPlan::new(&spec, &rootfs, opts).unwrap();
    in_child(|rep| {
        run_plan(&plan)?;
        let points = mount_points();
        for d in [
            "/dev/null",
            "/dev/zero",
            "/dev/full",
            "/dev/random",
            "/dev/urandom",
            "/dev/tty",
        ] {
            rep.check(
                points.iter().any(|(p, _)| p == d),
                format!("{d} is not a bind mount"),
            );
        }
        check_device(rep, "/dev/null", SFlag::S_IFCHR, (1, 3), 0o666, (0, 0));
        rep.check(
            std::fs::write("/dev/null", "x").is_ok(),
            "/dev/null not writable",
        );
        Ok(())
    });
    let st = stat("/dev/null").unwrap();
    assert_eq!(
        (st.st_mode & 0o7777, st.st_uid, st.st_gid),
        (0o666, 0, 0),
        "host /dev/null changed"
    );
}

#[test]
fn user_namespace_binds_sysfs_and_devices_and_keeps_locked_flags() {
    if !is_root() {
        return;
    }
    let dir = TempDir::new("userns");
    let rootfs = busybox_rootfs(&dir.0);
    std::fs::create_dir_all(rootfs.join("rodir")).unwrap();
    std::fs::write(rootfs.join("secret-file"), "s").unwrap();
    let locked_src = dir.0.join("locked-src");
    std::fs::create_dir(&locked_src).unwrap();
    let mounts = vec![
        mnt("/dev", "tmpfs", "tmpfs", &["nosuid", "mode=755"]),
        mnt(
            "/dev/pts",
            "devpts",
            "devpts",
            &["newinstance", "ptmxmode=0666", "mode=0620"],
        ),
        mnt(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        // The host's cgroup tmpfs is nosuid,nodev,noexec: a plain ro remount
        // would drop locked flags.
        mnt("/cg", "bind", "/sys/fs/cgroup", &["rbind", "ro"]),
        mnt(
            "/locked",
            "bind",
            locked_src.to_str().unwrap(),
            &["bind", "ro"],
        ),
        mnt("/ro-tmp", "tmpfs", "tmpfs", &["ro"]),
    ];
    let spec = spec(mounts, vec![], &["/secret-file"], &["/rodir"], true);
    let opts = RootfsOptions {
        no_pivot: false,
        new_user_ns: true,
        mount_ns: true,
        cgroup_dirs: Vec::new(),
    };
    let plan = RootfsPlan::new(&spec, &rootfs, opts).unwrap();
    in_child(|rep| {
        // A source mount whose nosuid/nodev/noexec/noatime get locked once the user
        // namespace exists: a plain "ro" remount of its bind would drop them.
        use nix::mount::{mount, MsFlags};
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| format!("make / rslave: {e}"))?;
        let locked =
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_NOATIME;
        mount(
            Some("tmpfs"),
            &locked_src,
            Some("tmpfs"),
            locked,
            None::<&str>,
        )
        .map_err(|e| format!("mount locked source: {e}"))?;
        enter_user_namespace()?;
        run_plan(&plan)?;
        let ro = |p: &str| {
            nix::sys::statvfs::statvfs(p)
                .map(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
                .unwrap_or(false)
        };
        rep.check(
            Path::new("/sys/kernel").is_dir(),
            "/sys not bound from the host",
        );
        rep.check(ro("/sys"), "/sys is not read-only");
        if Path::new("/sys/fs/cgroup/memory").is_dir() {
            rep.check(
                ro("/sys/fs/cgroup/memory"),
                "mounts below /sys are not read-only",
            );
        }
        rep.check(ro("/cg"), "/cg is not read-only");
        rep.check(ro("/locked"), "/locked is not read-only");
        rep.check(ro("/ro-tmp"), "/ro-tmp is not read-only");
        rep.check(
            errno_of(std::fs::write("/x", "x")) == Some(libc::EROFS),
            "/ is writable",
        );
        rep.check(
            errno_of(std::fs::write("/rodir/x", "x")) == Some(libc::EROFS),
            "/rodir writable",
        );
        rep.check(
            std::fs::read_to_string("/secret-file").ok().as_deref() == Some(""),
            "/secret-file not masked",
        );
        check_device(rep, "/dev/null", SFlag::S_IFCHR, (1, 3), 0o666, (0, 0));
        rep.check(
            std::fs::write("/dev/null", "x").is_ok(),
            "/dev/null not writable",
        );
        rep.check(Path::new("/dev/pts/ptmx").exists(), "no devpts instance");
        Ok(())
    });
    let st = stat("/dev/null").unwrap();
    assert_eq!(
        (st.st_mode & 0o7777, st.st_uid, st.st_gid),
        (0o666, 0, 0),
        "host /dev/null changed"
    );
}
