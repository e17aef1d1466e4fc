//! config-linux.md mounts, devices, maskedPaths, readonlyPaths and root.readonly
//! as the init builds them (pivot_root, --no-pivot and chroot-only), checked from
//! inside a forked child. Needs root; skipped with a message otherwise.

mod rootfs_support;

use rootfs_support::*;
use std::os::unix::fs::PermissionsExt;

/// A new pty from the container's /dev/ptmx: the master and the slave's path.
fn open_pty() -> Result<(nix::pty::PtyMaster, std::ffi::CString), String> {
    use nix::fcntl::OFlag;
    use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
    let master =
        posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY).map_err(|e| format!("posix_openpt: {e}"))?;
    grantpt(&master).map_err(|e| format!("grantpt: {e}"))?;
    unlockpt(&master).map_err(|e| format!("unlockpt: {e}"))?;
    let name = ptsname_r(&master).map_err(|e| format!("ptsname: {e}"))?;
    let name = std::ffi::CString::new(name).map_err(|e| format!("ptsname: {e}"))?;
    Ok((master, name))
}

/// The mounts runc's default spec has, plus a read-only bind and a sized tmpfs.
fn standard_mounts(bind_src: &Path) -> Vec<Mount> {
    vec![
        mnt("/proc", "proc", "proc", &[]),
        mnt(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mnt(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mnt(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        mnt(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mnt(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mnt(
            "/data",
            "bind",
            bind_src.to_str().unwrap(),
            &["rbind", "ro", "nosuid"],
        ),
        mnt("/scratch", "tmpfs", "tmpfs", &["mode=1777", "size=1m"]),
        mnt(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        ),
    ]
}

#[test]
fn mounts_devices_masked_and_readonly_paths_follow_the_config() {
    if !is_root() {
        return;
    }
    let dir = TempDir::new("full");
    let rootfs = busybox_rootfs(&dir.0);
    let host_data = dir.0.join("data");
    std::fs::create_dir(&host_data).unwrap();
    std::fs::write(host_data.join("hello"), "hi").unwrap();
    std::fs::create_dir_all(rootfs.join("secret-dir")).unwrap();
    std::fs::write(rootfs.join("secret-dir/key"), "k").unwrap();
    std::fs::write(rootfs.join("secret-file"), "s").unwrap();
    std::fs::create_dir_all(rootfs.join("rodir")).unwrap();
    std::fs::create_dir_all(rootfs.join("rwdir")).unwrap();
    let devices = vec![
        device(
            "/dev/custom-null",
            LinuxDeviceType::C,
            1,
            3,
            0o640,
            1000,
            1001,
        ),
        device("/dev/fifo", LinuxDeviceType::P, 0, 0, 0o600, 0, 0),
        device("/dev/sub/zero", LinuxDeviceType::C, 1, 5, 0o666, 0, 0),
    ];
    let masked = [
        "/proc/kcore",
        "/secret-dir",
        "/secret-file",
        "/does/not/exist",
    ];
    let readonly = ["/rodir", "/proc/sys", "/missing-ro"];
    let spec = spec(
        standard_mounts(&host_data),
        devices,
        &masked,
        &readonly,
        false,
    );
    let opts = RootfsOptions {
        no_pivot: false,
        new_user_ns: false,
        mount_ns: true,
        cgroup_dirs: Vec::new(),
    };
    let plan = RootfsPlan::new(&spec, &rootfs, opts).unwrap();
    let host_kcore = Path::new("/proc/kcore").exists();

    in_child(|rep| {
        plan.prepare().map_err(|e| format!("prepare: {e}"))?;
        plan.pivot().map_err(|e| format!("pivot: {e}"))?;
        // The console, as the init sets it up between pivot and finalize.
        let pty = open_pty()?;
        let slave = nix::fcntl::open(
            pty.1.as_c_str(),
            nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| format!("open {:?}: {e}", pty.1))?;
        plan.bind_console(&pty.1, std::os::fd::AsFd::as_fd(&slave))
            .map_err(|e| format!("bind_console: {e}"))?;
        plan.finalize().map_err(|e| format!("finalize: {e}"))?;
        // Only the rootfs is visible.
        rep.check(
            Path::new("/bin/busybox").exists(),
            "/bin/busybox missing after pivot",
        );
        rep.check(
            !Path::new("/data/../../rootfs").exists(),
            "host path visible",
        );

        // Mounts, in config order, after the root.
        let points = mount_points();
        let want = [
            "/",
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/sys",
            "/data",
            "/scratch",
            "/sys/fs/cgroup",
        ];
        let mut at = 0;
        for (p, _) in &points {
            if at < want.len() && p == want[at] {
                at += 1;
            }
        }
        rep.check(
            at == want.len(),
            format!("mount order: want {want:?} in {points:?}"),
        );
        let fstype = |p: &str| {
            points
                .iter()
                .rev()
                .find(|(m, _)| m == p)
                .map(|(_, t)| t.clone())
        };
        rep.check(
            fstype("/dev/pts").as_deref() == Some("devpts"),
            "devpts at /dev/pts",
        );
        rep.check(
            fstype("/dev/mqueue").as_deref() == Some("mqueue"),
            "mqueue at /dev/mqueue",
        );
        rep.check(fstype("/sys").as_deref() == Some("sysfs"), "sysfs at /sys");

        // Read-only bind mount with its content; sysfs read-only.
        rep.check(
            std::fs::read_to_string("/data/hello").ok().as_deref() == Some("hi"),
            "bind content",
        );
        rep.check(
            errno_of(std::fs::write("/data/new", "x")) == Some(libc::EROFS),
            "bind is not read-only",
        );
        let sys = nix::sys::statvfs::statvfs("/sys").map(|s| s.flags());
        rep.check(
            sys.map(|f| f.contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
                .unwrap_or(false),
            "/sys is not read-only",
        );

        // cgroup: the host's tree, read-only down to every hierarchy.
        let ro = |p: &str| {
            nix::sys::statvfs::statvfs(p)
                .map(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
                .unwrap_or(false)
        };
        rep.check(ro("/sys/fs/cgroup"), "/sys/fs/cgroup is not read-only");
        if Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists() {
            rep.check(
                ro("/sys/fs/cgroup/memory"),
                "/sys/fs/cgroup/memory is not read-only",
            );
        }

        // tmpfs options: mode and size.
        let scratch = std::fs::metadata("/scratch");
        rep.check(
            scratch
                .as_ref()
                .map(|m| m.permissions().mode() & 0o7777)
                .ok()
                == Some(0o1777),
            format!("/scratch mode: {scratch:?}"),
        );
        let size = nix::sys::statvfs::statvfs("/scratch").map(|s| s.blocks() * s.fragment_size());
        rep.check(
            size.as_ref().ok() == Some(&(1 << 20)),
            format!("/scratch size {size:?}"),
        );
        rep.check(
            std::fs::write("/scratch/f", "x").is_ok(),
            "/scratch not writable",
        );
        let dev_mode = std::fs::metadata("/dev")
            .map(|m| m.permissions().mode() & 0o7777)
            .ok();
        rep.check(dev_mode == Some(0o755), format!("/dev mode {dev_mode:?}"));

        // /dev/console is the pty's slave.
        let console = stat("/dev/console").map(|st| st.st_rdev).ok();
        let slave = stat(pty.1.as_c_str()).map(|st| st.st_rdev).ok();
        rep.check(
            console.is_some() && console == slave,
            format!("/dev/console {console:?}, pty {slave:?}"),
        );

        // Devices: defaults and the config's, modes exact.
        for (p, mi) in [
            ("null", 3),
            ("zero", 5),
            ("full", 7),
            ("random", 8),
            ("urandom", 9),
        ] {
            check_device(
                rep,
                &format!("/dev/{p}"),
                SFlag::S_IFCHR,
                (1, mi),
                0o666,
                (0, 0),
            );
        }
        check_device(rep, "/dev/tty", SFlag::S_IFCHR, (5, 0), 0o666, (0, 0));
        check_device(
            rep,
            "/dev/custom-null",
            SFlag::S_IFCHR,
            (1, 3),
            0o640,
            (1000, 1001),
        );
        check_device(rep, "/dev/fifo", SFlag::S_IFIFO, (0, 0), 0o600, (0, 0));
        check_device(rep, "/dev/sub/zero", SFlag::S_IFCHR, (1, 5), 0o666, (0, 0));
        rep.check(
            std::fs::write("/dev/null", "x").is_ok(),
            "/dev/null not writable",
        );

        // Symlinks.
        let link = |p: &str| {
            std::fs::read_link(p)
                .ok()
                .map(|t| t.to_string_lossy().into_owned())
        };
        rep.check(
            link("/dev/fd").as_deref() == Some("/proc/self/fd"),
            "/dev/fd",
        );
        rep.check(
            link("/dev/stdin").as_deref() == Some("/proc/self/fd/0"),
            "/dev/stdin",
        );
        rep.check(
            link("/dev/stdout").as_deref() == Some("/proc/self/fd/1"),
            "/dev/stdout",
        );
        rep.check(
            link("/dev/stderr").as_deref() == Some("/proc/self/fd/2"),
            "/dev/stderr",
        );
        rep.check(
            link("/dev/ptmx").as_deref() == Some("pts/ptmx"),
            "/dev/ptmx",
        );
        if host_kcore {
            rep.check(
                link("/dev/core").as_deref() == Some("/proc/kcore"),
                "/dev/core",
            );
        }

        // Masked paths read empty; missing ones were skipped.
        rep.check(
            std::fs::read("/proc/kcore")
                .map(|b| b.is_empty())
                .unwrap_or(false)
                || !host_kcore,
            "/proc/kcore",
        );
        rep.check(
            std::fs::read_to_string("/secret-file").ok().as_deref() == Some(""),
            "/secret-file not masked",
        );
        let listing = std::fs::read_dir("/secret-dir").map(|d| d.count()).ok();
        rep.check(
            listing == Some(0),
            format!("/secret-dir shows {listing:?} entries"),
        );
        rep.check(
            errno_of(std::fs::write("/secret-dir/x", "x")) == Some(libc::EROFS),
            "masked dir writable",
        );

        // Readonly paths; the rest of the root stays writable.
        rep.check(
            errno_of(std::fs::write("/rodir/x", "x")) == Some(libc::EROFS),
            "/rodir writable",
        );
        let proc_sys = nix::sys::statvfs::statvfs("/proc/sys").map(|s| s.flags());
        rep.check(
            proc_sys
                .map(|f| f.contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
                .unwrap_or(false),
            "/proc/sys is not read-only",
        );
        rep.check(
            std::fs::write("/rwdir/x", "x").is_ok(),
            "/rwdir not writable",
        );

        // The busybox in the rootfs runs and sees the same.
        let out = std::process::Command::new("/bin/sh")
            .args([
                "-c",
                "test -c /dev/null && test -L /dev/ptmx && cat /data/hello",
            ])
            .output();
        let ok = out
            .as_ref()
            .map(|o| o.status.success() && o.stdout == b"hi")
            .unwrap_or(false);
        rep.check(ok, format!("busybox check: {out:?}"));
        Ok(())
    });
    // Nothing leaked to the host: the self-bind and mounts died with the child.
    let points = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !points.contains(rootfs.to_str().unwrap()),
        "a mount leaked to the host"
    );
}

#[test]
fn root_readonly_leaves_mounts_writable() {
    if !is_root() {
        return;
    }
    let dir = TempDir::new("ro");
    let rootfs = busybox_rootfs(&dir.0);
    let mounts = vec![
        mnt("/proc", "proc", "proc", &[]),
        mnt("/dev", "tmpfs", "tmpfs", &["nosuid", "mode=755"]),
        mnt(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777"],
        ),
        mnt("/ro-tmp", "tmpfs", "tmpfs", &["ro"]),
    ];
    let spec = spec(mounts, vec![], &[], &[], true);
    let opts = RootfsOptions {
        no_pivot: false,
        new_user_ns: false,
        mount_ns: true,
        cgroup_dirs: Vec::new(),
    };
    let plan = RootfsPlan::new(&spec, &rootfs, opts).unwrap();
    in_child(|rep| {
        run_plan(&plan)?;
        rep.check(
            errno_of(std::fs::write("/newfile", "x")) == Some(libc::EROFS),
            "/ is writable",
        );
        rep.check(
            std::fs::write("/dev/shm/x", "x").is_ok(),
            "/dev/shm not writable",
        );
        rep.check(
            errno_of(std::fs::write("/ro-tmp/x", "x")) == Some(libc::EROFS),
            "ro tmpfs writable",
        );
        rep.check(
            std::fs::write("/dev/null", "x").is_ok(),
            "/dev/null not writable",
        );
        Ok(())
    });
    assert!(!rootfs.join("newfile").exists());
}

#[test]
fn no_pivot_moves_the_rootfs_onto_root() {
    if !is_root() {
        return;
    }
    let dir = TempDir::new("nopivot");
    let rootfs = busybox_rootfs(&dir.0);
    let marker = unique("host-marker");
    let mounts = vec![
        mnt("/proc", "proc", "proc", &[]),
        mnt("/dev", "tmpfs", "tmpfs", &["mode=755"]),
    ];
    let spec = spec(mounts, vec![], &["/proc/kcore"], &["/proc/sys"], false);
    let opts = RootfsOptions {
        no_pivot: true,
        new_user_ns: false,
        mount_ns: true,
        cgroup_dirs: Vec::new(),
    };
    let plan = RootfsPlan::new(&spec, &rootfs, opts).unwrap();
    let host_marker = dir.0.join(&marker);
    std::fs::write(&host_marker, "").unwrap();
    in_child(|rep| {
        run_plan(&plan)?;
        rep.check(Path::new("/bin/busybox").exists(), "rootfs is not /");
        rep.check(
            !Path::new("/..").join(&marker).exists(),
            "escaped the chroot",
        );
        rep.check(Path::new("/dev/null").exists(), "/dev/null missing");
        let root = mount_points().into_iter().any(|(p, _)| p == "/");
        rep.check(root, "no mount at /");
        Ok(())
    });
}
