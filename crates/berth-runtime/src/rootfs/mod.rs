//! The container's root filesystem: mounts, propagation, pivot_root (or chroot with
//! `--no-pivot`), devices, /dev symlinks, masked and readonly paths, and resolution
//! of paths inside the rootfs that never follows a symlink out of it.
//!
//! A [`RootfsPlan`] is built in the parent from the spec (all paths and mount data
//! prepared there), then run by the container init in three steps:
//! [`RootfsPlan::prepare`] before the createContainer hooks, [`RootfsPlan::pivot`]
//! after them, and [`RootfsPlan::finalize`] last.

use crate::error::Result;
use oci_spec::runtime::Spec;
use std::path::Path;

/// Options from the command line and namespace setup that shape the rootfs.
#[derive(Debug, Clone, Default)]
pub struct RootfsOptions {
    /// `--no-pivot`: move the rootfs onto / and chroot instead of pivot_root.
    pub no_pivot: bool,
    /// The init is in a new user namespace: device nodes are bind-mounted from the
    /// host instead of created with mknod.
    pub new_user_ns: bool,
    /// The init has a mount namespace of its own (new or joined). Without one, the
    /// rootfs is entered with chroot only and no mount is made (mounting would change
    /// the host).
    pub mount_ns: bool,
}

/// Everything the init needs to build the rootfs, prepared in the parent.
#[derive(Debug)]
pub struct RootfsPlan {
    _todo: (),
}

impl RootfsPlan {
    /// Prepares the plan from the spec. `rootfs` is the absolute, canonical rootfs path.
    pub fn new(spec: &Spec, rootfs: &Path, options: RootfsOptions) -> Result<Self> {
        let _ = (spec, rootfs, options);
        todo!("filled in by the rootfs work")
    }

    /// In the init, in its mount namespace, before createContainer hooks: makes the
    /// mount tree private/slave as runc does, bind-mounts the rootfs onto itself,
    /// performs every mount of `mounts` in order, creates `linux.devices` and the
    /// default devices, and the /dev symlinks.
    pub fn prepare(&self) -> Result<()> {
        todo!()
    }

    /// After createContainer hooks: pivot_root into the rootfs (or MS_MOVE + chroot
    /// with no_pivot; chroot only without a mount namespace). The cwd is then `/`.
    pub fn pivot(&self) -> Result<()> {
        todo!()
    }

    /// Last, inside the new root: `rootfsPropagation` on `/`, maskedPaths,
    /// readonlyPaths, and `root.readonly`.
    pub fn finalize(&self) -> Result<()> {
        todo!()
    }
}
