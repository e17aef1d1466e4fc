//! A container without a mount namespace of its own (config-linux.md: a namespace type
//! that is not listed is inherited): its mounts are made in the runtime's namespace,
//! below a private bind of the rootfs, and released with it, as rootfs/shared_ns.rs
//! describes. Each test plays "the runtime's namespace" in a forked child's new mount
//! namespace, so the host's table is never touched. Needs root.

mod rootfs_support;

use berth_runtime::rootfs::SharedNsMount;
use nix::mount::{mount, MsFlags};
use rootfs_support::*;
use std::ffi::CStr;

fn opts() -> RootfsOptions {
    RootfsOptions {
        no_pivot: false,
        new_user_ns: false,
        mount_ns: false,
        cgroup_dirs: Vec::new(),
    }
}

/// What the runtime-tools generator's default config mounts.
fn generator_mounts() -> Vec<Mount> {
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
    ]
}

fn mount_cstr(path: &Path) -> std::ffi::CString {
    std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap()
}

/// Mount points at or below `dir`.
fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.display().to_string();
    mount_points()
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| *p == prefix || p.starts_with(&format!("{prefix}/")))
        .collect()
}

/// The propagation fields of the mount at `point` (the last one there).
fn propagation_of(point: &Path) -> String {
    let want = point.display().to_string();
    mount_propagation()
        .into_iter()
        .rfind(|(p, _)| *p == want)
        .map(|(_, f)| f)
        .unwrap_or_default()
}

/// Runs the init's three steps in a grandchild (chroot cannot be undone), then
/// `inside` there; returns its failures.
fn as_init(plan: &RootfsPlan, inside: impl FnOnce() -> Vec<String>) -> Result<Vec<String>, String> {
    use std::io::{Read, Write};
    let (r, w) = nix::unistd::pipe().map_err(|e| format!("pipe: {e}"))?;
    // SAFETY: the grandchild runs only this test's code and leaves with _exit.
    match unsafe { nix::unistd::fork() }.map_err(|e| format!("fork: {e}"))? {
        nix::unistd::ForkResult::Child => {
            drop(r);
            let mut out = std::fs::File::from(w);
            let failures = match run_plan(plan) {
                Ok(()) => inside(),
                Err(e) => vec![e],
            };
            for f in &failures {
                let _ = writeln!(out, "{f}");
            }
            drop(out);
            // SAFETY: ends the forked grandchild without the parent's destructors.
            unsafe { libc::_exit(0) };
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(w);
            let code = wait_bounded(child, std::time::Duration::from_secs(20));
            let mut text = String::new();
            let _ = std::fs::File::from(r).read_to_string(&mut text);
            if code != Some(0) {
                return Err(format!("init exited with {code:?}: {text}"));
            }
            Ok(text.lines().map(str::to_string).collect())
        }
    }
}

/// The generator's default mounts without a mount namespace: made below the rootfs in
/// the (runtime's) namespace, root read-only, nothing below the rootfs propagating to
/// a peer of its shared parent, no propagation changed outside the rootfs; release
/// then leaves no mount behind, in the namespace or in the peer.
#[test]
fn mounts_in_the_runtimes_namespace_are_private_and_released() {
    if !is_root() {
        return;
    }
    let dir = TempDir::new("sharedns");
    in_child(|rep| {
        // The host side: a shared tmpfs holding the bundle, and a peer of it elsewhere
        // (as another namespace's copy would be).
        let host = dir.0.join("host");
        let peer = dir.0.join("peer");
        std::fs::create_dir_all(&host).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(&peer).map_err(|e| e.to_string())?;
        let none = None::<&CStr>;
        mount(
            Some(c"tmpfs"),
            host.as_path(),
            Some(c"tmpfs"),
            MsFlags::empty(),
            none,
        )
        .map_err(|e| format!("mount tmpfs: {e}"))?;
        mount(none, host.as_path(), none, MsFlags::MS_SHARED, none)
            .map_err(|e| format!("make shared: {e}"))?;
        mount(
            Some(host.as_path()),
            peer.as_path(),
            none,
            MsFlags::MS_BIND,
            none,
        )
        .map_err(|e| format!("bind peer: {e}"))?;
        let rootfs = busybox_rootfs(&host);
        let root_before = propagation_of(Path::new("/"));
        let host_before = propagation_of(&host);

        let mut s = spec(generator_mounts(), vec![], &[], &[], true);
        if let Some(l) = s.linux_mut() {
            l.set_rootfs_propagation(Some("rslave".into()));
        }
        let plan = RootfsPlan::new(&s, &rootfs, opts()).map_err(|e| format!("plan: {e}"))?;
        let record: SharedNsMount = plan
            .bind_in_shared_ns()
            .map_err(|e| format!("bind: {e}"))?
            .ok_or("no rootfs bind without a mount namespace")?;
        rep.check(
            record.path == rootfs,
            format!(
                "recorded {} for {}",
                record.path.display(),
                rootfs.display()
            ),
        );
        let failures = as_init(&plan, || {
            let mut f = Vec::new();
            for p in [
                "/proc/self/status",
                "/dev/null",
                "/dev/pts/ptmx",
                "/sys/kernel",
            ] {
                if !Path::new(p).exists() {
                    f.push(format!("{p} missing in the container"));
                }
            }
            if std::fs::write("/probe", "x").is_ok() {
                f.push("root.readonly: / is writable".into());
            }
            if std::fs::write("/dev/shm/probe", "x").is_err() {
                f.push("/dev/shm is not writable".into());
            }
            f
        })?;
        for f in failures {
            rep.check(false, f);
        }
        // The init is gone; its mounts stay until release, below the rootfs only.
        let ours = mounts_under(&rootfs);
        for sub in [
            "",
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/sys",
        ] {
            let p = format!("{}{sub}", rootfs.display());
            rep.check(ours.contains(&p), format!("{p} not mounted: {ours:?}"));
        }
        let peer_rootfs = peer.join("rootfs");
        let leaked: Vec<String> = mounts_under(&peer_rootfs)
            .into_iter()
            .filter(|p| Path::new(p) != peer_rootfs)
            .collect();
        rep.check(
            leaked.is_empty(),
            format!("container mounts propagated to the peer: {leaked:?}"),
        );
        rep.check(
            propagation_of(Path::new("/")) == root_before,
            format!(
                "propagation of / changed: {}",
                propagation_of(Path::new("/"))
            ),
        );
        rep.check(
            propagation_of(&host) == host_before,
            format!(
                "propagation of the rootfs' parent changed: {:?} -> {:?}",
                host_before,
                propagation_of(&host)
            ),
        );

        record.release().map_err(|e| format!("release: {e}"))?;
        let left = mounts_under(&rootfs);
        rep.check(left.is_empty(), format!("left mounted: {left:?}"));
        let left = mounts_under(&peer_rootfs);
        rep.check(
            left.is_empty(),
            format!("left mounted in the peer: {left:?}"),
        );
        rep.check(
            std::fs::write(rootfs.join("probe"), "x").is_ok(),
            "the rootfs stays read-only after release",
        );
        // A second release (delete after a failed one) finds nothing to do.
        record
            .release()
            .map_err(|e| format!("second release: {e}"))?;
        let _ = nix::mount::umount2(
            mount_cstr(&peer).as_c_str(),
            nix::mount::MntFlags::MNT_DETACH,
        );
        let _ = nix::mount::umount2(
            mount_cstr(&host).as_c_str(),
            nix::mount::MntFlags::MNT_DETACH,
        );
        Ok(())
    });
}

/// Mounts the container itself stacks on its root or below (a privileged process
/// shares the namespace) go with the release too, as does one whose directory was
/// moved; a host mount reachable through a symlink in the rootfs stays.
#[test]
fn release_takes_stacked_mounts_and_follows_no_symlink() {
    if !is_root() {
        return;
    }
    let dir = TempDir::new("sharedns-stack");
    in_child(|rep| {
        let rootfs = busybox_rootfs(&dir.0);
        let outside = dir.0.join("outside");
        std::fs::create_dir_all(&outside).map_err(|e| e.to_string())?;
        let none = None::<&CStr>;
        mount(
            Some(c"tmpfs"),
            outside.as_path(),
            Some(c"tmpfs"),
            MsFlags::empty(),
            none,
        )
        .map_err(|e| format!("mount outside: {e}"))?;
        let s = spec(
            vec![mnt("/data", "tmpfs", "tmpfs", &[])],
            vec![],
            &[],
            &[],
            false,
        );
        let plan = RootfsPlan::new(&s, &rootfs, opts()).map_err(|e| format!("plan: {e}"))?;
        let record = plan
            .bind_in_shared_ns()
            .map_err(|e| format!("bind: {e}"))?
            .ok_or("no rootfs bind")?;
        plan.prepare().map_err(|e| format!("prepare: {e}"))?;
        // Stacked on the root, and one more below /data.
        mount(
            Some(c"tmpfs"),
            rootfs.as_path(),
            Some(c"tmpfs"),
            MsFlags::empty(),
            none,
        )
        .map_err(|e| format!("stack on root: {e}"))?;
        std::fs::create_dir_all(rootfs.join("x")).map_err(|e| e.to_string())?;
        mount(
            Some(c"tmpfs"),
            rootfs.join("x").as_path(),
            Some(c"tmpfs"),
            MsFlags::empty(),
            none,
        )
        .map_err(|e| format!("mount x: {e}"))?;
        record.release().map_err(|e| format!("release: {e}"))?;
        let left = mounts_under(&rootfs);
        rep.check(left.is_empty(), format!("left mounted: {left:?}"));
        rep.check(
            mounts_under(&outside) == vec![outside.display().to_string()],
            "the mount outside the rootfs was touched",
        );

        let record = plan
            .bind_in_shared_ns()
            .map_err(|e| format!("bind again: {e}"))?
            .ok_or("no rootfs bind")?;
        let inner = rootfs.join("inner");
        std::fs::create_dir_all(inner.join("m")).map_err(|e| e.to_string())?;
        mount(
            Some(c"tmpfs"),
            inner.join("m").as_path(),
            Some(c"tmpfs"),
            MsFlags::empty(),
            none,
        )
        .map_err(|e| format!("mount inner/m: {e}"))?;
        // Move the directory holding the mount point away, and plant a symlink in
        // its place to a directory whose "m" is a host mount.
        std::fs::rename(&inner, rootfs.join("moved")).map_err(|e| format!("rename: {e}"))?;
        std::fs::create_dir_all(outside.join("m")).map_err(|e| e.to_string())?;
        mount(
            Some(c"tmpfs"),
            outside.join("m").as_path(),
            Some(c"tmpfs"),
            MsFlags::empty(),
            none,
        )
        .map_err(|e| format!("mount outside/m: {e}"))?;
        std::os::unix::fs::symlink(&outside, &inner).map_err(|e| e.to_string())?;
        record.release().map_err(|e| format!("release: {e}"))?;
        rep.check(
            mounts_under(&outside).contains(&outside.join("m").display().to_string()),
            "a host mount reached through a symlink in the rootfs was unmounted",
        );
        let left = mounts_under(&rootfs);
        rep.check(left.is_empty(), format!("left mounted: {left:?}"));
        let _ = nix::mount::umount2(
            mount_cstr(&outside).as_c_str(),
            nix::mount::MntFlags::MNT_DETACH,
        );
        Ok(())
    });
}

/// maskedPaths and readonlyPaths would cover paths of the runtime's namespace: refused
/// with runc's words; everything else is accepted.
#[test]
fn masked_and_readonly_paths_need_a_mount_namespace() {
    let dir = TempDir::new("sharedns-masked");
    let rootfs = dir.0.join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    for (masked, readonly) in [
        (&["/proc/kcore"][..], &[][..]),
        (&[][..], &["/proc/sys"][..]),
    ] {
        let e = RootfsPlan::new(
            &spec(vec![], vec![], masked, readonly, false),
            &rootfs,
            opts(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("unable to restrict sys entries without a private MNT namespace"),
            "{e}"
        );
    }
    let mut s = spec(generator_mounts(), vec![], &[], &[], true);
    if let Some(l) = s.linux_mut() {
        l.set_rootfs_propagation(Some("private".into()));
    }
    RootfsPlan::new(&s, &rootfs, opts()).unwrap();
}
