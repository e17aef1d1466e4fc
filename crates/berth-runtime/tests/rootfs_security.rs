//! Mount destinations are resolved inside the rootfs: symlinks (absolute,
//! relative, dangling) never lead a mount or a created directory onto the host, and
//! nothing is mounted over /proc files or through a symlinked /proc.

mod rootfs_support;

use rootfs_support::*;

#[test]
fn destinations_through_symlinks_stay_inside_the_rootfs() {
    if !is_root() {
        return;
    }
    let dir = TempDir::new("evil");
    let rootfs = busybox_rootfs(&dir.0);
    std::os::unix::fs::symlink("/", rootfs.join("evil")).unwrap();
    std::os::unix::fs::symlink("../../../../../../..", rootfs.join("evil2")).unwrap();
    let host_file = dir.0.join("host-file");
    std::fs::write(&host_file, "from host").unwrap();
    let (a, b) = (unique("evil-a"), unique("evil-b"));
    let mounts = vec![
        mnt("/proc", "proc", "proc", &[]),
        mnt(&format!("/evil/tmp/{a}/x"), "tmpfs", "tmpfs", &[]),
        mnt(
            &format!("/evil2/tmp/{b}"),
            "bind",
            host_file.to_str().unwrap(),
            &["bind"],
        ),
    ];
    let spec = spec(mounts, vec![], &[], &[], false);
    let opts = RootfsOptions {
        no_pivot: false,
        new_user_ns: false,
        mount_ns: true,
        cgroup_dirs: Vec::new(),
    };
    let plan = RootfsPlan::new(&spec, &rootfs, opts).unwrap();
    let (a2, b2) = (a.clone(), b.clone());
    in_child(move |rep| {
        plan.prepare().map_err(|e| format!("prepare: {e}"))?;
        // Before pivot the host is still visible: nothing may have appeared there.
        rep.check(
            !Path::new("/tmp").join(&a2).exists(),
            "created on the host's /tmp",
        );
        rep.check(
            !Path::new("/tmp").join(&b2).exists(),
            "bind target created on the host's /tmp",
        );
        plan.pivot().map_err(|e| format!("pivot: {e}"))?;
        plan.finalize().map_err(|e| format!("finalize: {e}"))?;
        let points = mount_points();
        let want = format!("/tmp/{a2}/x");
        rep.check(
            points.iter().any(|(p, t)| *p == want && t == "tmpfs"),
            format!("no tmpfs at {want}: {points:?}"),
        );
        let content = std::fs::read_to_string(format!("/tmp/{b2}")).ok();
        rep.check(
            content.as_deref() == Some("from host"),
            format!("bind content {content:?}"),
        );
        Ok(())
    });
    assert!(
        !Path::new("/tmp").join(&a).exists(),
        "created on the host's /tmp"
    );
    assert!(
        !Path::new("/tmp").join(&b).exists(),
        "created on the host's /tmp"
    );
    assert!(
        rootfs.join("tmp").join(&a).join("x").is_dir(),
        "destination not created inside the rootfs"
    );
    assert!(
        rootfs.join("tmp").join(&b).is_file(),
        "file destination not created inside the rootfs"
    );
}

#[test]
fn proc_must_be_mounted_on_a_plain_directory() {
    if !is_root() {
        return;
    }
    let dir = TempDir::new("procsym");
    let rootfs = busybox_rootfs(&dir.0);
    std::fs::create_dir(rootfs.join("etc")).unwrap();
    std::os::unix::fs::symlink("/etc", rootfs.join("proc")).unwrap();
    let spec = spec(
        vec![mnt("/proc", "proc", "proc", &[])],
        vec![],
        &[],
        &[],
        false,
    );
    let opts = RootfsOptions {
        no_pivot: false,
        new_user_ns: false,
        mount_ns: true,
        cgroup_dirs: Vec::new(),
    };
    let plan = RootfsPlan::new(&spec, &rootfs, opts).unwrap();
    in_child(|rep| {
        let err = plan.prepare().err().map(|e| e.to_string());
        // runc's words (mask.bats "prohibit symlink /proc" greps for them).
        rep.check(
            err.as_deref().is_some_and(|e| {
                e.contains("/proc") && e.contains("must be mounted on ordinary directory")
            }),
            format!("prepare: {err:?}"),
        );
        Ok(())
    });
}

#[test]
fn a_symlink_to_proc_is_not_a_mount_destination() {
    if !is_root() {
        return;
    }
    // (mount type, whether proc is mounted before it): judged by where the symlink
    // leads, whatever is mounted there yet.
    for (typ, proc_first) in [("tmpfs", true), ("tmpfs", false), ("proc", true)] {
        let dir = TempDir::new("evil");
        let rootfs = busybox_rootfs(&dir.0);
        std::fs::create_dir(rootfs.join("proc")).unwrap();
        std::os::unix::fs::symlink("/proc", rootfs.join("evil")).unwrap();
        let evil = mnt("/evil", typ, typ, &[]);
        let proc_mount = mnt("/proc", "proc", "proc", &[]);
        let mounts = if proc_first {
            vec![proc_mount, evil]
        } else {
            vec![evil, proc_mount]
        };
        let spec = spec(mounts, vec![], &[], &[], false);
        let opts = RootfsOptions {
            no_pivot: false,
            new_user_ns: false,
            mount_ns: true,
            cgroup_dirs: Vec::new(),
        };
        let plan = RootfsPlan::new(&spec, &rootfs, opts).unwrap();
        in_child(|rep| {
            let err = plan.prepare().err().map(|e| e.to_string());
            rep.check(
                err.as_deref()
                    .is_some_and(|e| e.contains("mount /evil") && e.contains("ordinary directory")),
                format!("{typ} (proc first: {proc_first}): prepare: {err:?}"),
            );
            Ok(())
        });
    }
}

#[test]
fn mounts_resolving_into_proc_are_refused() {
    if !is_root() {
        return;
    }
    let dir = TempDir::new("sneaky");
    let rootfs = busybox_rootfs(&dir.0);
    std::os::unix::fs::symlink("/proc/sys", rootfs.join("sneaky")).unwrap();
    let mounts = vec![
        mnt("/proc", "proc", "proc", &[]),
        mnt("/sneaky", "tmpfs", "tmpfs", &[]),
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
        let err = plan.prepare().err().map(|e| e.to_string());
        rep.check(
            err.as_deref().is_some_and(|e| e.contains("inside /proc")),
            format!("prepare: {err:?}"),
        );
        Ok(())
    });
}

#[test]
fn dangling_symlink_destination_is_created_inside_the_rootfs() {
    if !is_root() {
        return;
    }
    let dir = TempDir::new("dangling");
    let rootfs = busybox_rootfs(&dir.0);
    let name = unique("dangling-host");
    // Like an image's /etc/resolv.conf -> /run/systemd/resolve/stub-resolv.conf,
    // but aimed at a host path: it must resolve inside the rootfs.
    std::fs::create_dir(rootfs.join("etc")).unwrap();
    std::os::unix::fs::symlink(
        format!("/tmp/{name}/resolv.conf"),
        rootfs.join("etc/resolv.conf"),
    )
    .unwrap();
    let host_file = dir.0.join("resolv.conf");
    std::fs::write(&host_file, "nameserver 127.0.0.1\n").unwrap();
    let mounts = vec![
        mnt("/proc", "proc", "proc", &[]),
        mnt(
            "/etc/resolv.conf",
            "bind",
            host_file.to_str().unwrap(),
            &["bind", "ro"],
        ),
    ];
    let spec = spec(mounts, vec![], &[], &[], false);
    let opts = RootfsOptions {
        no_pivot: false,
        new_user_ns: false,
        mount_ns: true,
        cgroup_dirs: Vec::new(),
    };
    let plan = RootfsPlan::new(&spec, &rootfs, opts).unwrap();
    let name2 = name.clone();
    in_child(move |rep| {
        plan.prepare().map_err(|e| format!("prepare: {e}"))?;
        rep.check(
            !Path::new("/tmp").join(&name2).exists(),
            "created on the host's /tmp",
        );
        plan.pivot().map_err(|e| format!("pivot: {e}"))?;
        plan.finalize().map_err(|e| format!("finalize: {e}"))?;
        let content = std::fs::read_to_string("/etc/resolv.conf").ok();
        rep.check(
            content.as_deref() == Some("nameserver 127.0.0.1\n"),
            format!("resolv.conf: {content:?}"),
        );
        Ok(())
    });
    assert!(
        !Path::new("/tmp").join(&name).exists(),
        "created on the host's /tmp"
    );
    assert!(rootfs.join("tmp").join(&name).join("resolv.conf").is_file());
}
