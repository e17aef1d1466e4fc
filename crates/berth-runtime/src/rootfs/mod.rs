//! The container's root filesystem: mounts, propagation, pivot_root (or chroot with
//! `--no-pivot`), devices, /dev symlinks, masked and readonly paths, and resolution
//! of paths inside the rootfs that never follows a symlink out of it.
//!
//! A [`RootfsPlan`] is built in the parent from the spec (all paths and mount data
//! prepared there), then run by the container init in three steps:
//! [`RootfsPlan::prepare`] before the createContainer hooks, [`RootfsPlan::pivot`]
//! after them, and [`RootfsPlan::finalize`] last. The init's steps allocate only
//! to format errors (and to read mountinfo on the rare `--no-pivot` path).

mod buf;
pub mod cgroup_v1;
mod devices;
mod idmap;
mod masked;
mod mountpoints;
mod mounts;
mod options;
mod pivot;
mod propagation;
mod resolve;
mod shared_ns;
mod sources;

use crate::error::{Error, Result};
use devices::DevicePlan;
pub(crate) use idmap::mount_id_mappings;
pub use idmap::{supported as idmap_supported, MountIdMappings};
pub(crate) use mountpoints::{ensure_mount_points, resolve_destination};
use mounts::{IdmapContext, MountPlan};
use nix::fcntl::{open, OFlag};
use nix::mount::MsFlags;
use nix::sys::stat::Mode;
use nix::unistd::{access, AccessFlags};
use oci_spec::runtime::Spec;
pub(crate) use options::RECURSIVE_OPTIONS;
pub(crate) use shared_ns::release as release_shared_ns;
pub use shared_ns::SharedNsMount;
use std::ffi::{CStr, CString};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

/// One `mounts` entry checked as [`RootfsPlan::new`] checks it (options parsed,
/// destination, type and source rules), on a host of `unified` cgroups, with no
/// cgroup directories and no id mappings: nothing is looked at or made.
pub(crate) fn check_mount(m: &oci_spec::runtime::Mount, unified: bool) -> Result<()> {
    let ctx = IdmapContext {
        ids: None,
        container_maps: None,
    };
    MountPlan::new(m, unified, &[], ctx).map(drop)
}

/// Options from the command line and namespace setup that shape the rootfs.
#[derive(Debug, Clone, Default)]
pub struct RootfsOptions {
    /// `--no-pivot`: move the rootfs onto / and chroot instead of pivot_root.
    pub no_pivot: bool,
    /// The init is in a new user namespace: device nodes are bind-mounted from the
    /// host instead of created with mknod.
    pub new_user_ns: bool,
    /// The init has a mount namespace of its own (new or joined). Without one it shares
    /// the runtime's: the mounts are made there below a private bind of the rootfs
    /// that `create` makes first (see [`RootfsPlan::bind_in_shared_ns`]), and the
    /// rootfs is entered with chroot.
    pub mount_ns: bool,
    /// The container's cgroup directories, for a `cgroup` mount on a v1 host.
    pub cgroup_dirs: Vec<cgroup_v1::CgroupDir>,
}

/// Everything the init needs to build the rootfs, prepared in the parent.
#[derive(Debug)]
pub struct RootfsPlan {
    rootfs: CString,
    options: RootfsOptions,
    /// Propagation set on `/` before anything is mounted.
    root_propagation: MsFlags,
    /// `linux.rootfsPropagation`, applied again to the new `/` by `finalize`.
    final_propagation: Option<MsFlags>,
    mounts: Vec<MountPlan>,
    /// runc's rule: /dev is populated unless it is a bind mount.
    setup_dev: bool,
    devices: Vec<DevicePlan>,
    /// The host has /proc/kcore, so /dev/core is linked to it.
    kcore: bool,
    masked: Vec<CString>,
    /// Data of the tmpfs over masked directories: `linux.mountLabel`'s context.
    masked_data: Option<CString>,
    readonly: Vec<CString>,
    root_readonly: bool,
}

/// `path` as a C string.
/// A bind mount: type `bind`, or any mount with a bind/rbind option.
pub(crate) fn is_bind(m: &oci_spec::runtime::Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

fn cstring(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::Config(format!("path {} contains a NUL byte", path.display())))
}

/// Cleans a container path lexically (`..` cannot climb above `/`) into the form
/// the init resolves relative to the root fd (`.` for `/`), and its absolute form
/// for messages.
fn rel_path(path: &Path) -> Result<(CString, String)> {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p),
            Component::ParentDir => {
                parts.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    let mut rel = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            rel.push(b'/');
        }
        rel.extend_from_slice(p.as_bytes());
    }
    let display = format!("/{}", String::from_utf8_lossy(&rel));
    if rel.is_empty() {
        rel.push(b'.');
    }
    let rel = CString::new(rel)
        .map_err(|_| Error::Config(format!("path {} contains a NUL byte", path.display())))?;
    Ok((rel, display))
}

fn rel_paths(paths: Option<&Vec<String>>) -> Result<Vec<CString>> {
    paths
        .into_iter()
        .flatten()
        .map(|p| rel_path(Path::new(p)).map(|(rel, _)| rel))
        .collect()
}

impl RootfsPlan {
    /// Prepares the plan from the spec. `rootfs` is the absolute, canonical rootfs path.
    pub fn new(spec: &Spec, rootfs: &Path, options: RootfsOptions) -> Result<Self> {
        Self::with_id_mappings(spec, rootfs, options, &[])
    }

    /// As [`RootfsPlan::new`], with the `uidMappings`/`gidMappings` of each entry of
    /// `mounts` by index (oci-spec's `Mount` cannot carry them).
    pub fn with_id_mappings(
        spec: &Spec,
        rootfs: &Path,
        options: RootfsOptions,
        id_mappings: &[Option<MountIdMappings>],
    ) -> Result<Self> {
        if !rootfs.is_absolute() {
            return Err(Error::Config(format!(
                "rootfs {} is not an absolute path",
                rootfs.display()
            )));
        }
        let linux = spec.linux().as_ref();
        let final_propagation = match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
            None | Some("") => None,
            Some(p) => Some(options::propagation_flags(p).ok_or_else(|| {
                Error::Config(format!("rootfsPropagation {p:?} is not a propagation mode"))
            })?),
        };
        let unified = mounts::host_is_unified();
        let uid_map = crate::namespaces::map_text(linux.and_then(|l| l.uid_mappings().as_deref()));
        let gid_map = crate::namespaces::map_text(linux.and_then(|l| l.gid_mappings().as_deref()));
        let container_maps = (options.new_user_ns && !uid_map.is_empty() && !gid_map.is_empty())
            .then_some((uid_map.as_str(), gid_map.as_str()));
        let mut mounts = spec
            .mounts()
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, m)| {
                let ctx = IdmapContext {
                    ids: id_mappings.get(i).and_then(Option::as_ref),
                    container_maps,
                };
                MountPlan::new(m, unified, &options.cgroup_dirs, ctx)
            })
            .collect::<Result<Vec<_>>>()?;
        // Without SELinux there is no context to give: the label is ignored, as the
        // runtime-tools validation expects (runc 1.1.5 fails the mount instead; see
        // docs/spec-differences.md).
        let mount_label = linux
            .and_then(|l| l.mount_label().as_deref())
            .filter(|l| !l.is_empty() && crate::process::selinux_enabled());
        let mut masked_data = None;
        if let Some(label) = mount_label {
            for m in &mut mounts {
                m.set_mount_label(label)?;
            }
            masked_data = Some(
                CString::new(format!("context={label:?}"))
                    .map_err(|_| Error::Config("linux.mountLabel contains a NUL byte".into()))?,
            );
        }
        let setup_dev = !mounts.iter().any(MountPlan::is_dev_bind);
        let devices = match linux.and_then(|l| l.devices().as_ref()) {
            Some(d) => devices::plan(d)?,
            None => devices::plan(&[])?,
        };
        let masked = rel_paths(linux.and_then(|l| l.masked_paths().as_ref()))?;
        let readonly = rel_paths(linux.and_then(|l| l.readonly_paths().as_ref()))?;
        let root_readonly = spec
            .root()
            .as_ref()
            .and_then(|r| r.readonly())
            .unwrap_or(false);
        if !options.mount_ns && (!masked.is_empty() || !readonly.is_empty()) {
            // They would cover host paths for as long as the container lives, in the
            // namespace every other process of the host sees (runc refuses too).
            return Err(Error::Config(
                "linux.maskedPaths and linux.readonlyPaths: unable to restrict sys entries \
                 without a private MNT namespace"
                    .into(),
            ));
        }
        Ok(RootfsPlan {
            rootfs: cstring(rootfs)?,
            root_propagation: final_propagation.unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC),
            final_propagation,
            mounts,
            setup_dev,
            devices,
            kcore: Path::new("/proc/kcore").exists(),
            masked,
            masked_data,
            readonly,
            root_readonly,
            options,
        })
    }

    /// The rootfs directory (createContainer hooks run there, as under runc).
    pub fn path(&self) -> &std::path::Path {
        use std::os::unix::ffi::OsStrExt;
        std::path::Path::new(std::ffi::OsStr::from_bytes(self.rootfs.as_bytes()))
    }

    /// In `create`, before the init is forked, for a container that shares the
    /// runtime's mount namespace: binds the rootfs onto itself, private, so that the
    /// container's mounts go below it and nowhere else, and returns the record of it
    /// that `delete` needs to detach them all. `None` with a mount namespace.
    pub fn bind_in_shared_ns(&self) -> Result<Option<SharedNsMount>> {
        if self.options.mount_ns {
            return Ok(None);
        }
        shared_ns::bind_rootfs(&self.rootfs).map(Some)
    }

    /// For a container that shares the runtime's mount namespace, before
    /// [`RootfsPlan::bind_in_shared_ns`]: the mount the rootfs is on now (see
    /// [`SharedNsMount::bind_over`]). `None` with a mount namespace.
    pub fn shared_ns_under(&self) -> Result<Option<SharedNsMount>> {
        if self.options.mount_ns {
            return Ok(None);
        }
        shared_ns::mount_at(&self.rootfs).map(Some)
    }

    /// In the init, in its mount namespace, before createContainer hooks: makes the
    /// mount tree private/slave as runc does, bind-mounts the rootfs onto itself,
    /// performs every mount of `mounts` in order, creates `linux.devices` and the
    /// default devices, and the /dev symlinks. Without a mount namespace of its own,
    /// the rootfs bind is `create`'s (already private) and the propagation of
    /// everything else is left alone.
    pub fn prepare(&self) -> Result<()> {
        self.prepare_traced(None)
    }

    /// [`RootfsPlan::prepare`], stamping the end of the mounts and the device nodes
    /// for a traced create.
    pub(crate) fn prepare_traced(&self, stamps: Option<&crate::trace::ChildStamps>) -> Result<()> {
        use crate::trace::Phase;
        if self.options.mount_ns {
            propagation::prepare_root(&self.rootfs, self.root_propagation)?;
        }
        // Opened after the self-bind, so it names the bind mount.
        let root = open(
            self.rootfs.as_c_str(),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::sys("open", self.rootfs.to_string_lossy(), e))?;
        for m in &self.mounts {
            m.perform(root.as_fd(), self.options.new_user_ns)?;
        }
        if let Some(s) = stamps {
            s.end(Phase::Mounts);
            s.begin(Phase::Devices);
        }
        if self.setup_dev {
            devices::create_all(root.as_fd(), &self.devices, self.options.new_user_ns)?;
            devices::symlinks(root.as_fd(), self.kcore)?;
        }
        if let Some(s) = stamps {
            s.end(Phase::Devices);
        }
        Ok(())
    }

    /// After createContainer hooks: pivot_root into the rootfs (or MS_MOVE + chroot
    /// with no_pivot; chroot only without a mount namespace, where both would move
    /// the runtime's root). The cwd is then `/`.
    pub fn pivot(&self) -> Result<()> {
        if !self.options.mount_ns {
            pivot::chroot_only(&self.rootfs)?;
        } else if self.options.no_pivot {
            pivot::move_root(&self.rootfs)?;
        } else {
            pivot::pivot(&self.rootfs)?;
        }
        if self.setup_dev {
            pivot::reopen_dev_null()?;
        }
        Ok(())
    }

    /// Last, inside the new root: `rootfsPropagation` on `/`, maskedPaths,
    /// readonlyPaths, and `root.readonly`. Without a mount namespace `/` is the rootfs
    /// bind `create` made, so these change only the container's own mounts.
    pub fn finalize(&self) -> Result<()> {
        if let Some(flags) = self.final_propagation {
            propagation::apply_root(flags)?;
        }
        let root = open(
            c"/",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::sys("open", "/", e))?;
        // Mount targets are named through /proc/self/fd when the container has a
        // /proc; otherwise by path, which after pivot cannot leave the root either.
        let use_fd = access(c"/proc/self/fd", AccessFlags::F_OK).is_ok();
        // runc's finalizeRootfs order: read-only tmpfs and /dev, then `/`, then the
        // readonly paths, then the masked ones.
        for m in self.mounts.iter().filter(|m| m.ro_later) {
            m.remount_ro(root.as_fd(), use_fd)?;
        }
        if self.root_readonly {
            masked::readonly_root(&root)?;
        }
        for p in &self.readonly {
            masked::readonly(root.as_fd(), p, use_fd)?;
        }
        for p in &self.masked {
            masked::mask(root.as_fd(), p, use_fd, self.masked_data.as_deref())?;
        }
        Ok(())
    }
}

impl RootfsPlan {
    /// For `process.terminal`, between [`RootfsPlan::pivot`] and
    /// [`RootfsPlan::finalize`]: binds the pty slave `slave` (named `pty`, its
    /// ptsname, for messages and where /proc is missing) onto /dev/console, as the spec
    /// and runc have it (without a mount namespace too: it is the rootfs' /dev/console,
    /// below the container's private rootfs bind).
    pub fn bind_console(&self, pty: &CStr, slave: std::os::fd::BorrowedFd<'_>) -> Result<()> {
        devices::bind_console(pty, slave)
    }

    /// The rootfs path this plan enters (for messages, and the cwd of
    /// createContainer hooks as runc has it).
    pub fn rootfs(&self) -> &CStr {
        &self.rootfs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rel_path_cleans_and_clamps() {
        let (rel, display) = rel_path(Path::new("/a/./b/../../../c/")).unwrap();
        assert_eq!(rel.as_bytes(), b"c");
        assert_eq!(display, "/c");
        let (rel, display) = rel_path(Path::new("/")).unwrap();
        assert_eq!(rel.as_bytes(), b".");
        assert_eq!(display, "/");
    }
}
