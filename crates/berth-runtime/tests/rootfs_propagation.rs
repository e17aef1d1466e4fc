//! Mount propagation: per-mount options (rshared, unbindable) and
//! linux.rootfsPropagation on the container's `/`.

mod rootfs_support;

use rootfs_support::*;

#[test]
fn propagation_options_and_rootfs_propagation_apply() {
    if !is_root() {
        return;
    }
    let dir = TempDir::new("prop");
    let rootfs = busybox_rootfs(&dir.0);
    let src = dir.0.join("src");
    std::fs::create_dir(&src).unwrap();
    let mounts = vec![
        mnt("/proc", "proc", "proc", &[]),
        mnt(
            "/shared",
            "bind",
            src.to_str().unwrap(),
            &["rbind", "rshared"],
        ),
        mnt("/unbindable", "tmpfs", "tmpfs", &["unbindable"]),
    ];
    let mut spec = spec(mounts, vec![], &[], &[], false);
    let mut linux = spec.linux().clone().unwrap();
    linux.set_rootfs_propagation(Some("rshared".to_string()));
    spec.set_linux(Some(linux));
    let opts = RootfsOptions {
        no_pivot: false,
        new_user_ns: false,
        mount_ns: true,
        cgroup_dirs: Vec::new(),
    };
    let plan = RootfsPlan::new(&spec, &rootfs, opts).unwrap();
    in_child(|rep| {
        // Cut every tie to the host's peer groups first, so rshared below makes
        // new groups private to this namespace whatever the host's / is.
        nix::mount::mount(
            None::<&str>,
            "/",
            None::<&str>,
            nix::mount::MsFlags::MS_PRIVATE | nix::mount::MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| format!("make / private: {e}"))?;
        run_plan(&plan)?;
        let props = mount_propagation();
        let of = |p: &str| {
            props
                .iter()
                .rev()
                .find(|(m, _)| m == p)
                .map(|(_, o)| o.clone())
                .unwrap_or_default()
        };
        rep.check(
            of("/").contains("shared:"),
            format!("/ not shared: {props:?}"),
        );
        rep.check(
            of("/shared").contains("shared:"),
            format!("/shared not shared: {props:?}"),
        );
        rep.check(
            of("/unbindable").contains("unbindable"),
            format!("/unbindable: {props:?}"),
        );
        Ok(())
    });
}

#[test]
fn rootfs_propagation_private_unshares_a_shared_root() {
    if !is_root() {
        return;
    }
    let dir = TempDir::new("private");
    let rootfs = busybox_rootfs(&dir.0);
    let mut spec = spec(
        vec![mnt("/proc", "proc", "proc", &[])],
        vec![],
        &[],
        &[],
        false,
    );
    let mut linux = spec.linux().clone().unwrap();
    linux.set_rootfs_propagation(Some("private".to_string()));
    spec.set_linux(Some(linux));
    let opts = RootfsOptions {
        no_pivot: false,
        new_user_ns: false,
        mount_ns: true,
        cgroup_dirs: Vec::new(),
    };
    let plan = RootfsPlan::new(&spec, &rootfs, opts).unwrap();
    in_child(|rep| {
        use nix::mount::{mount, MsFlags};
        // A tree shared within this namespace only (new peer groups).
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_PRIVATE | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| format!("make / private: {e}"))?;
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| format!("make / shared: {e}"))?;
        run_plan(&plan)?;
        let props = mount_propagation();
        let root = props.iter().find(|(m, _)| m == "/").map(|(_, o)| o.clone());
        rep.check(
            root.as_deref() == Some(""),
            format!("/ is not private: {props:?}"),
        );
        Ok(())
    });
}
