//! Idmapped bind mounts (runtime-spec 1.1 `uidMappings`/`gidMappings` on a mount,
//! 1.2's `idmap`/`ridmap` options): the source is cloned into a detached tree
//! (open_tree OPEN_TREE_CLONE), the tree gets the mapping of a user namespace made
//! for it (mount_setattr MOUNT_ATTR_IDMAP), and the init moves the tree onto its
//! destination (move_mount).
//!
//! The parent does the first two steps, in its own mount namespace and with its full
//! privileges: the kernel wants CAP_SYS_ADMIN over the filesystem's user namespace to
//! idmap a mount, which an init in a container user namespace lacks. A detached tree
//! belongs to no mount namespace, so the init may attach it in its own.
//!
//! oci-spec's `Mount` has no mapping fields: they are read from the raw config by
//! [`mount_id_mappings`] (see bundle.rs).

use crate::error::{Error, Result};
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::LinuxIdMapping;
use serde_json::Value;
use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The mappings of one mount, as the config gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountIdMappings {
    /// `uidMappings`: on-disk id (`containerID`) to the id shown (`hostID`).
    pub uid: Vec<LinuxIdMapping>,
    /// `gidMappings`, the same for groups.
    pub gid: Vec<LinuxIdMapping>,
}

/// `uidMappings`/`gidMappings` of every entry of `mounts`, by index (`None` where the
/// entry has neither), read from the raw config.
pub(crate) fn mount_id_mappings(
    config: &Value,
) -> std::result::Result<Vec<Option<MountIdMappings>>, String> {
    let Some(mounts) = config.get("mounts").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    mounts
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let field = |name: &str| -> std::result::Result<Vec<LinuxIdMapping>, String> {
                match m.get(name) {
                    None | Some(Value::Null) => Ok(Vec::new()),
                    Some(v) => serde_json::from_value(v.clone())
                        .map_err(|e| format!("mounts[{i}].{name}: {e}")),
                }
            };
            let uid = field("uidMappings")?;
            let gid = field("gidMappings")?;
            Ok((!uid.is_empty() || !gid.is_empty()).then_some(MountIdMappings { uid, gid }))
        })
        .collect()
}

/// An idmapped mount, prepared in the parent's plan.
#[derive(Debug, Clone)]
pub(super) struct IdmapPlan {
    /// uid_map and gid_map text of the user namespace that carries the mapping.
    pub uid_map: String,
    pub gid_map: String,
    /// `rbind`: the whole tree below the source is cloned.
    pub clone_recursive: bool,
    /// `ridmap`: every mount of the cloned tree is mapped, not only its top.
    pub map_recursive: bool,
}

const OPEN_TREE_CLONE: u32 = 1;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// `struct mount_attr` of linux/mount.h.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// open_tree(2) with OPEN_TREE_CLONE: a detached copy of the mount at `path` (of
/// `dirfd`, or the fd itself with AT_EMPTY_PATH in `flags`).
fn open_tree_clone(dirfd: RawFd, path: &CStr, flags: u32) -> nix::Result<OwnedFd> {
    // SAFETY: `path` is a valid C string; the kernel returns a new fd or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            dirfd,
            path.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as u32 | flags,
        )
    };
    let fd = Errno::result(fd)?;
    // SAFETY: a fresh fd returned by open_tree, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// mount_setattr(2) MOUNT_ATTR_IDMAP with the user namespace `userns` on the detached
/// tree `tree` (every mount of it with `recursive`).
fn set_idmap(tree: &OwnedFd, userns: &OwnedFd, recursive: bool) -> nix::Result<()> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let mut flags = libc::AT_EMPTY_PATH;
    if recursive {
        flags |= libc::AT_RECURSIVE;
    }
    // SAFETY: mount_setattr reads `size` bytes of `attr`, a live repr(C) struct
    // matching the kernel's struct mount_attr; the path is a static empty C string.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(rc).map(drop)
}

/// A user namespace with the given maps, as an fd: a child is cloned into a new
/// user namespace, its maps are written from here, its namespace is opened and the
/// child is killed. The namespace lives on as long as the fd.
pub(super) fn user_ns_fd(uid_map: &str, gid_map: &str) -> std::result::Result<OwnedFd, String> {
    let parent = nix::unistd::getpid().as_raw();
    // SAFETY: clone without a new stack behaves as fork. The child calls only
    // async-signal-safe functions (prctl, getppid, pause, _exit), so this is sound in
    // a multi-threaded caller too.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (libc::CLONE_NEWUSER | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid < 0 {
        return Err(format!("clone a user namespace: {}", Errno::last()));
    }
    if pid == 0 {
        // SAFETY: async-signal-safe calls only; the child dies with its parent and
        // otherwise waits to be killed.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            // The parent may have died before the death signal was armed.
            if libc::getppid() != parent {
                libc::_exit(0);
            }
            loop {
                libc::pause();
            }
        }
    }
    let pid = Pid::from_raw(pid as i32);
    let result = (|| {
        for (file, text) in [("uid_map", uid_map), ("gid_map", gid_map)] {
            let path = format!("/proc/{pid}/{file}");
            std::fs::write(&path, text).map_err(|e| format!("write {path}: {e}"))?;
        }
        let path = format!("/proc/{pid}/ns/user");
        std::fs::File::open(&path)
            .map(OwnedFd::from)
            .map_err(|e| format!("open {path}: {e}"))
    })();
    let _ = kill(pid, Signal::SIGKILL);
    let _ = waitpid(pid, None);
    result
}

/// The reason, in words, why the kernel refused to idmap a mount.
fn idmap_reason(e: Errno) -> String {
    match e {
        Errno::EINVAL => "the filesystem does not support idmapped mounts (EINVAL)".into(),
        Errno::ENOSYS => {
            "the kernel has no idmapped mounts (mount_setattr needs Linux 5.12)".into()
        }
        Errno::EPERM => "not permitted to idmap this mount (EPERM)".into(),
        e => e.to_string(),
    }
}

/// In the parent: the source cloned and idmapped, ready for the init to move onto the
/// destination. `dest` names the mount in errors.
pub(super) fn detached_tree(source: &CStr, dest: &str, plan: &IdmapPlan) -> Result<OwnedFd> {
    let bad = |reason: String| {
        Error::Config(format!(
            "mount {dest}: idmapped mount of {}: {reason}",
            source.to_string_lossy()
        ))
    };
    let flags = if plan.clone_recursive {
        libc::AT_RECURSIVE as u32
    } else {
        0
    };
    let tree = open_tree_clone(libc::AT_FDCWD, source, flags)
        .map_err(|e| bad(format!("open_tree: {e}")))?;
    let userns = user_ns_fd(&plan.uid_map, &plan.gid_map).map_err(bad)?;
    set_idmap(&tree, &userns, plan.map_recursive).map_err(|e| bad(idmap_reason(e)))?;
    Ok(tree)
}

/// In the init: moves the detached tree onto `target` (an fd of the destination,
/// resolved inside the rootfs).
pub(super) fn attach(tree: &OwnedFd, target: &OwnedFd) -> nix::Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;
    const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;
    // SAFETY: both paths are static empty C strings and both fds are open.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    Errno::result(rc).map(drop)
}

/// Whether this kernel can make idmapped mounts: a detached tmpfs (or, where tmpfs
/// cannot be idmapped, a clone of `/`) is given an identity mapping. Without the
/// privilege to probe (an unprivileged caller), Linux 5.12 or newer says yes.
pub fn supported() -> bool {
    match probe() {
        Ok(()) => true,
        Err(Errno::EPERM) => kernel_at_least(5, 12),
        Err(_) => false,
    }
}

fn probe() -> nix::Result<()> {
    let userns = user_ns_fd("0 0 1\n", "0 0 1\n").map_err(|_| Errno::EPERM)?;
    let tree = match detached_tmpfs() {
        Ok(t) => t,
        Err(Errno::ENOSYS) => return Err(Errno::ENOSYS),
        Err(e) => return Err(e),
    };
    match set_idmap(&tree, &userns, false) {
        Err(Errno::EINVAL) => {
            // tmpfs is idmappable only since Linux 6.3; the root filesystem may be.
            let root = open_tree_clone(libc::AT_FDCWD, c"/", 0)?;
            set_idmap(&root, &userns, false)
        }
        other => other,
    }
}

/// A new tmpfs, not attached anywhere (fsopen, fsconfig, fsmount).
fn detached_tmpfs() -> nix::Result<OwnedFd> {
    const FSCONFIG_CMD_CREATE: u32 = 6;
    // SAFETY: a static C string; the kernel returns a new fd or -1.
    let fs = Errno::result(unsafe { libc::syscall(libc::SYS_fsopen, c"tmpfs".as_ptr(), 1u32) })?;
    // SAFETY: a fresh fd owned by nobody else.
    let fs = unsafe { OwnedFd::from_raw_fd(fs as RawFd) };
    // SAFETY: FSCONFIG_CMD_CREATE takes no key, value or aux.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    })?;
    // SAFETY: fsmount on a created filesystem context; returns a new fd or -1.
    let m = Errno::result(unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), 1u32, 0u32) })?;
    // SAFETY: a fresh fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(m as RawFd) })
}

fn kernel_at_least(major: u32, minor: u32) -> bool {
    let Ok(u) = nix::sys::utsname::uname() else {
        return false;
    };
    let release = u.release().to_string_lossy().into_owned();
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let num = |p: Option<&str>| p.and_then(|s| s.parse::<u32>().ok()).unwrap_or(0);
    let (a, b) = (num(parts.next()), num(parts.next()));
    (a, b) >= (major, minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_are_read_by_index() {
        let v = serde_json::json!({"mounts": [
            {"destination": "/a"},
            {"destination": "/b", "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
             "gidMappings": [{"containerID": 0, "hostID": 2000, "size": 2}]}
        ]});
        let m = mount_id_mappings(&v).unwrap();
        assert_eq!(m.len(), 2);
        assert!(m[0].is_none());
        let b = m[1].as_ref().unwrap();
        assert_eq!(b.uid[0].host_id(), 1000);
        assert_eq!(b.gid[0].size(), 2);
        let bad = serde_json::json!({"mounts": [{"destination": "/a", "uidMappings": 3}]});
        let e = mount_id_mappings(&bad).unwrap_err();
        assert!(e.contains("mounts[0].uidMappings"), "{e}");
    }

    #[test]
    fn kernel_version_compare() {
        assert!(kernel_at_least(0, 0));
        assert!(!kernel_at_least(999, 0));
    }
}
