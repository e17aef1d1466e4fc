//! Mount propagation of the container's tree: `/` made recursively slave (or what
//! `linux.rootfsPropagation` asks) before anything is mounted, so nothing leaks to
//! the host, and the rootfs bound onto itself so pivot_root has a mount point.

use super::buf::StackCStr;
use crate::error::{Error, Result};
use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use std::ffi::CStr;

/// runc's prepareRoot: propagation on `/`, the rootfs' parent mount made private
/// when it may be shared (pivot_root refuses a shared parent, and the bind
/// below must not propagate to other namespaces), then the self-bind.
pub(super) fn prepare_root(rootfs: &CStr, flags: MsFlags) -> Result<()> {
    mount(None::<&CStr>, c"/", None::<&CStr>, flags, None::<&CStr>)
        .map_err(|e| Error::sys("mount", format_args!("/ with propagation {flags:?}"), e))?;
    // After a recursive slave/private/unbindable change nothing can be shared;
    // after any other mode the rootfs' parent may be (still a peer of the host's).
    let cannot_share = MsFlags::MS_SLAVE | MsFlags::MS_PRIVATE | MsFlags::MS_UNBINDABLE;
    if !(flags.contains(MsFlags::MS_REC) && flags.intersects(cannot_share)) {
        make_parent_private(rootfs)?;
    }
    mount(
        Some(rootfs),
        rootfs,
        None::<&CStr>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&CStr>,
    )
    .map_err(|e| Error::sys("bind mount rootfs onto itself", rootfs.to_string_lossy(), e))
}

/// Makes the mount holding `rootfs` private: walks up from `rootfs` until a
/// propagation change is accepted (EINVAL means "not a mount point").
fn make_parent_private(rootfs: &CStr) -> Result<()> {
    let mut path = StackCStr::<4096>::new();
    path.push_bytes(rootfs.to_bytes());
    loop {
        let Some(p) = path.as_cstr() else {
            return Err(Error::sys(
                "mount",
                rootfs.to_string_lossy(),
                Errno::ENAMETOOLONG,
            ));
        };
        match mount(
            None::<&CStr>,
            p,
            None::<&CStr>,
            MsFlags::MS_PRIVATE,
            None::<&CStr>,
        ) {
            Ok(()) => return Ok(()),
            Err(Errno::EINVAL) => {}
            Err(e) => {
                return Err(Error::sys(
                    "make parent mount private",
                    p.to_string_lossy(),
                    e,
                ))
            }
        }
        let bytes = path.as_bytes();
        match bytes.iter().rposition(|&b| b == b'/') {
            Some(0) if bytes.len() > 1 => path.truncate(1),
            Some(i) if i > 0 => path.truncate(i),
            _ => return Ok(()),
        }
    }
}

/// `rootfsPropagation` applied to the new `/` after pivot (the root mount is the
/// rootfs bind, which made its parent private for pivot_root). Only `/` itself:
/// the mounts below got the recursive mode in `prepare_root` and may have their
/// own propagation options, which must win.
pub(super) fn apply_root(flags: MsFlags) -> Result<()> {
    let flags = flags - MsFlags::MS_REC;
    mount(None::<&CStr>, c"/", None::<&CStr>, flags, None::<&CStr>).map_err(|e| {
        Error::sys(
            "mount",
            format_args!("/ with rootfsPropagation {flags:?}"),
            e,
        )
    })
}
