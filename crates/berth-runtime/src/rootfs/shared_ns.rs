//! A container without a mount namespace of its own shares the runtime's: its mounts
//! are made there, beneath the rootfs, as runc makes them. They must neither reach
//! the rest of the host's mount table nor outlive the container:
//!
//! - before the init is forked, `create` binds the rootfs onto itself and makes that
//!   bind (and what it copied from below) recursively private: every later mount of
//!   the container lands under a private mount, so none propagates to a peer of the
//!   rootfs' parent. Nothing outside the rootfs changes its propagation (runc makes
//!   the host's `/` rslave and the rootfs' parent private; berth does neither).
//! - the bind is recorded in the container's state ([`SharedNsMount`]); `delete` and a
//!   failed `create` detach every mount below it, deepest first, then the bind itself
//!   (lazy detach: a process still inside cannot keep them in the table). Each is
//!   opened by its path without following a symlink and checked to be the mount
//!   recorded (by mount id) before it is detached through its fd, so a rootfs the
//!   container rearranged cannot redirect the unmount to a host mount.
//!
//! The self-bind is made only in the runtime's namespace; its creation propagates to
//! the peers of the rootfs' parent if that is shared (unavoidable without changing
//! the parent), and its detach propagates to them the same way, removing the copies.

use crate::error::{Error, Result};
use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use serde::{Deserialize, Serialize};
use std::ffi::CStr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The rootfs self-bind of a container that shares the runtime's mount namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedNsMount {
    /// The rootfs (absolute and canonical, as mountinfo shows it).
    pub path: PathBuf,
    /// Its mount id (/proc/self/mountinfo's first field).
    pub mount_id: u64,
}

/// Opens `path` (absolute, canonical) as O_PATH without following any symlink.
fn open_exact(path: &Path) -> nix::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
        .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    openat2(nix::fcntl::AT_FDCWD, path, how)
}

/// The id of the mount `fd` is on (`mnt_id` of /proc/self/fdinfo).
fn mount_id_of(fd: &OwnedFd) -> Result<u64> {
    let path = format!("/proc/self/fdinfo/{}", fd.as_raw_fd());
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
    text.lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| Error::Init(format!("{path}: no mnt_id line")))
}

/// `/proc/self/fd/<n>` for an fd, for mount calls on exactly that mount.
fn fd_path(fd: &OwnedFd) -> std::ffi::CString {
    // Cannot fail: digits and slashes only.
    std::ffi::CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_default()
}

/// In `create`, before the init is forked: binds `rootfs` onto itself (recursively,
/// as runc's prepareRoot) and makes the bind tree private, then returns the record
/// that [`release`] needs.
pub(crate) fn bind_rootfs(rootfs: &CStr) -> Result<SharedNsMount> {
    let shown = || rootfs.to_string_lossy();
    mount(
        Some(rootfs),
        rootfs,
        None::<&CStr>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&CStr>,
    )
    .map_err(|e| Error::sys("bind mount rootfs onto itself", shown(), e))?;
    let path = PathBuf::from(std::ffi::OsStr::from_bytes(rootfs.to_bytes()));
    let record = (|| {
        let fd = open_exact(&path).map_err(|e| Error::sys("open", shown(), e))?;
        let mount_id = mount_id_of(&fd)?;
        Ok(SharedNsMount {
            path: path.clone(),
            mount_id,
        })
    })();
    let record = match record {
        Ok(r) => r,
        Err(e) => {
            // Not recorded, so nothing else would remove it.
            let _ = umount2(rootfs, MntFlags::MNT_DETACH);
            return Err(e);
        }
    };
    let private = (|| {
        let fd = open_exact(&path).map_err(|e| Error::sys("open", shown(), e))?;
        mount(
            None::<&CStr>,
            fd_path(&fd).as_c_str(),
            None::<&CStr>,
            MsFlags::MS_PRIVATE | MsFlags::MS_REC,
            None::<&CStr>,
        )
        .map_err(|e| Error::sys("make the rootfs bind private", shown(), e))
    })();
    if let Err(e) = private {
        let _ = release(&record);
        return Err(e);
    }
    Ok(record)
}

/// One line of /proc/self/mountinfo: (mount id, parent id, mount point).
struct Entry {
    id: u64,
    parent: u64,
    point: PathBuf,
}

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
fn unescape(field: &str) -> PathBuf {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        if let (b'\\', Some(d)) = (b[i], octal) {
            let v = d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    PathBuf::from(std::ffi::OsStr::from_bytes(&out))
}

fn mountinfo() -> Result<Vec<Entry>> {
    let path = "/proc/self/mountinfo";
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
    Ok(parse_mountinfo(&text))
}

fn parse_mountinfo(text: &str) -> Vec<Entry> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let id = f.next()?.parse().ok()?;
            let parent = f.next()?.parse().ok()?;
            let point = unescape(f.nth(2)?);
            Some(Entry { id, parent, point })
        })
        .collect()
}

/// The mounts below `top` (not `top` itself), deepest first: a mount always comes
/// before its parent, so each detach leaves the rest of the tree in place.
fn below(table: &[Entry], top: u64) -> Vec<&Entry> {
    let parents: std::collections::HashMap<u64, u64> =
        table.iter().map(|e| (e.id, e.parent)).collect();
    let parent_of = |id: u64| parents.get(&id).copied();
    let mut found: Vec<(usize, &Entry)> = table
        .iter()
        .filter(|e| e.id != top)
        .filter_map(|e| {
            let mut cur = e.parent;
            // Bounded: a table of n mounts has no chain longer than n.
            for depth in 1..=table.len() {
                if cur == top {
                    return Some((depth, e));
                }
                match parent_of(cur) {
                    Some(p) if p != cur => cur = p,
                    _ => return None,
                }
            }
            None
        })
        .collect();
    found.sort_by_key(|&(depth, _)| std::cmp::Reverse(depth));
    found.into_iter().map(|(_, e)| e).collect()
}

/// Detaches the mount `id` at `point` if that path still leads to exactly it.
/// Returns whether it did.
fn detach(point: &Path, id: u64) -> Result<bool> {
    let fd = match open_exact(point) {
        Ok(fd) => fd,
        // Moved, removed, or reached through a symlink now: not ours to touch by path.
        Err(_) => return Ok(false),
    };
    if mount_id_of(&fd)? != id {
        return Ok(false);
    }
    match umount2(fd_path(&fd).as_c_str(), MntFlags::MNT_DETACH) {
        Ok(()) => Ok(true),
        // Already gone (a detach of its parent took it).
        Err(Errno::EINVAL) => Ok(false),
        Err(e) => Err(Error::sys(
            "unmount",
            format_args!("{} (mount {id})", point.display()),
            e,
        )),
    }
}

impl SharedNsMount {
    /// Detaches everything the container has mounted in the runtime's namespace: the
    /// mounts below the rootfs bind, deepest first, then the bind. A record whose
    /// mount is gone (or whose id now names another mount) is done already.
    pub fn release(&self) -> Result<()> {
        release(self)
    }
}

/// The mount `rootfs` (absolute, canonical) is on now, as a record at that path.
pub(crate) fn mount_at(rootfs: &CStr) -> Result<SharedNsMount> {
    let path = PathBuf::from(std::ffi::OsStr::from_bytes(rootfs.to_bytes()));
    let fd = open_exact(&path).map_err(|e| Error::sys("open", rootfs.to_string_lossy(), e))?;
    Ok(SharedNsMount {
        mount_id: mount_id_of(&fd)?,
        path,
    })
}

impl SharedNsMount {
    /// Taking `self` as the mount the rootfs was on before `create` bound it: the
    /// mount stacked on it exactly at the rootfs now (its child at that path), which
    /// is the bind of a create killed before it recorded it. `None` if there is none.
    pub(crate) fn bind_over(&self) -> Option<SharedNsMount> {
        let table = mountinfo().ok()?;
        table
            .iter()
            .find(|e| e.parent == self.mount_id && e.point == self.path)
            .map(|e| SharedNsMount {
                path: self.path.clone(),
                mount_id: e.id,
            })
    }
}

/// See [`SharedNsMount::release`].
pub(crate) fn release(m: &SharedNsMount) -> Result<()> {
    let table = mountinfo()?;
    let Some(top) = table.iter().find(|e| e.id == m.mount_id) else {
        return Ok(());
    };
    if top.point != m.path {
        return Ok(());
    }
    let mut first_error = None;
    for e in below(&table, m.mount_id) {
        if let Err(err) = detach(&e.point, e.id) {
            first_error.get_or_insert(err);
        }
    }
    // Mounts the loop could not reach by path (covered, moved) go with the bind.
    if !detach(&m.path, m.mount_id)? {
        let still = mountinfo()?
            .iter()
            .any(|e| e.id == m.mount_id && e.point == m.path);
        if still {
            return Err(Error::Init(format!(
                "rootfs bind {} (mount {}) is covered by another mount and stays mounted",
                m.path.display(),
                m.mount_id
            )));
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_and_depth_order() {
        let text = "\
20 1 0:1 / / rw - ext4 /dev/root rw
30 20 0:2 / /b\\040c rw - tmpfs t rw
31 30 0:3 / /b\\040c/proc rw - proc proc rw
32 31 0:4 / /b\\040c/proc/sys rw - tmpfs t rw
33 30 0:5 / /b\\040c/dev rw - tmpfs t rw
40 20 0:6 / /other rw - tmpfs t rw
";
        let t = parse_mountinfo(text);
        assert_eq!(t[1].point, PathBuf::from("/b c"));
        let ids: Vec<u64> = below(&t, 30).iter().map(|e| e.id).collect();
        assert_eq!(ids[0], 32);
        assert_eq!(ids.len(), 3);
        assert!(ids.iter().position(|&i| i == 31) > ids.iter().position(|&i| i == 32));
        assert!(!ids.contains(&40) && !ids.contains(&30));
    }
}
