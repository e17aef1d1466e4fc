//! Which systemd manages a container's scope, and the D-Bus connection to it.
//!
//! As root that is the system manager on the system bus. A rootless caller cannot ask
//! the system manager for units; as runc does, it asks its own user manager
//! (`user@UID.service`, which systemd delegates the user's cgroup subtree to) on the
//! session bus: `DBUS_SESSION_BUS_ADDRESS`, else `$XDG_RUNTIME_DIR/bus`. The scope's
//! directory is then below the user manager's own cgroup (its `ControlGroup`
//! property), e.g. `/user.slice/user-1000.slice/user@1000.service/user.slice/x.scope`.
//!
//! The bus daemon checks the uid an `EXTERNAL` authentication claims against the
//! socket's peer credentials, which it sees as the caller's uid in the daemon's own
//! user namespace. A caller inside a user namespace (rootless Podman runs its runtime
//! there as uid 0) therefore claims the uid its euid maps to outside (runc asks
//! `busctl --user status` for the bus owner's uid; the mapping gives the same answer
//! without a helper).

use crate::error::{Error, Result};
use std::path::PathBuf;

/// The manager a scope belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Instance {
    /// The system manager (PID 1) on the system bus.
    System,
    /// The caller's user manager on its session bus, authenticated as `uid`: the
    /// caller's effective uid as the host sees it.
    User { uid: u32 },
}

impl Instance {
    /// The user manager of the calling user.
    pub fn user() -> Result<Self> {
        let euid = nix::unistd::geteuid().as_raw();
        let map = std::fs::read_to_string("/proc/self/uid_map")
            .map_err(|e| Error::io("read", "/proc/self/uid_map", e))?;
        let uid = outside_uid(&map, euid).ok_or_else(|| {
            Error::Unsupported(format!(
                "systemd user manager: uid {euid} is not mapped outside this user namespace"
            ))
        })?;
        Ok(Instance::User { uid })
    }

    /// What the errors call this manager.
    pub fn name(&self) -> String {
        match self {
            Instance::System => "systemd".into(),
            Instance::User { uid } => format!("systemd user manager of uid {uid}"),
        }
    }

    /// A connection to this manager's bus.
    pub fn connect(&self) -> Result<zbus::blocking::Connection> {
        let dbus = |e: zbus::Error| Error::Unsupported(format!("{} over D-Bus: {e}", self.name()));
        match self {
            Instance::System => zbus::blocking::Connection::system().map_err(dbus),
            Instance::User { uid } => zbus::blocking::connection::Builder::session()
                .and_then(|b| b.user_id(*uid).build())
                .map_err(dbus),
        }
    }

    /// The cgroup directory under which this manager's slices live: the mount point
    /// itself for the system manager, the user manager's own cgroup below it else.
    pub fn cgroup_root(
        &self,
        unified_root: &std::path::Path,
        proxy: &zbus::blocking::Proxy<'_>,
    ) -> Result<PathBuf> {
        match self {
            Instance::System => Ok(unified_root.to_path_buf()),
            Instance::User { .. } => {
                let cg: String = proxy.get_property("ControlGroup").map_err(|e| {
                    Error::Unsupported(format!(
                        "{}: reading its ControlGroup property: {e}",
                        self.name()
                    ))
                })?;
                let rel = cg.trim_start_matches('/');
                if cg.is_empty()
                    || std::path::Path::new(rel)
                        .components()
                        .any(|c| !matches!(c, std::path::Component::Normal(_)))
                {
                    return Err(Error::Unsupported(format!(
                        "{} reports the control group {cg:?}, not a path below the cgroup root",
                        self.name()
                    )));
                }
                Ok(unified_root.join(rel))
            }
        }
    }
}

/// runc's `systemd.DetectUID` for root in a user namespace: the host uid whose user
/// manager `--systemd-cgroup` would ask, when there is a session bus to ask it on
/// (`DBUS_SESSION_BUS_ADDRESS`, or a socket at `$XDG_RUNTIME_DIR/bus`) that accepts
/// us; `None` when there is none. runc reads the bus owner's uid from `busctl --user
/// status`; berth tries the uid it is outside its user namespace, then its own.
pub fn user_manager_uid() -> Option<u32> {
    let env_set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    let bus = env_set("DBUS_SESSION_BUS_ADDRESS")
        || std::env::var_os("XDG_RUNTIME_DIR")
            .filter(|d| !d.is_empty())
            .is_some_and(|d| {
                use std::os::unix::fs::FileTypeExt;
                std::fs::metadata(std::path::Path::new(&d).join("bus"))
                    .is_ok_and(|m| m.file_type().is_socket())
            });
    if !bus {
        return None;
    }
    // The uid the bus daemon knows us by: the one we are outside this namespace when
    // the daemon runs outside it (rootless Podman's runtime), our own when it runs in
    // it (root of a system container with its own session). The one it accepts is
    // the bus owner's, as runc's OwnerUID.
    let outside = match Instance::user() {
        Ok(Instance::User { uid }) => Some(uid),
        _ => None,
    };
    let own = nix::unistd::geteuid().as_raw();
    outside
        .into_iter()
        .chain((outside != Some(own)).then_some(own))
        .find(|&uid| Instance::User { uid }.connect().is_ok())
}

/// The uid that `uid` of this user namespace is outside of it, from `uid_map`'s
/// `inside outside count` lines.
fn outside_uid(uid_map: &str, uid: u32) -> Option<u32> {
    uid_map.lines().find_map(|line| {
        let mut f = line.split_whitespace().map(|s| s.parse::<u64>().ok());
        let (inside, outside, count) = (f.next()??, f.next()??, f.next()??);
        let uid = u64::from(uid);
        (uid >= inside && uid < inside + count)
            .then(|| u32::try_from(outside + (uid - inside)).ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_map_outside() {
        assert_eq!(outside_uid("0 0 4294967295\n", 1000), Some(1000));
        // rootless Podman's namespace: its root is the user, the rest subordinate ids.
        let podman = "         0       1000          1\n         1     100000      65536\n";
        assert_eq!(outside_uid(podman, 0), Some(1000));
        assert_eq!(outside_uid(podman, 5), Some(100004));
        assert_eq!(outside_uid(podman, 65537), None);
        assert_eq!(outside_uid("garbage\n", 0), None);
    }
}
