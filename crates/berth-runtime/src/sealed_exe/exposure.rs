//! Which containers need the protected image: those whose processes could write the
//! runtime binary, were they to hold it.

use crate::container::Container;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};
use std::os::unix::fs::MetadataExt;

/// Why a process of the runtime's image in this container must run from a protected
/// image of the binary (a read-only detached bind, or a sealed copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposure {
    /// No user namespace: the container's root is the host's root, the owner of the
    /// binary or not, and may write it.
    NoUserNamespace,
    /// A new user namespace whose uidMappings map the uid that owns the binary: a
    /// container process of that uid may write it.
    OwnerMapped {
        /// The binary's owner (a host uid).
        uid: u32,
    },
    /// A user namespace joined by path: its mappings are not read (a joined
    /// namespace may map anything).
    JoinedUserNamespace,
    /// The binary is writable by its group or by others: a container process may be
    /// one of them whatever its user namespace maps.
    WritableByOthers,
    /// A new user namespace made by a caller whose uid can write the binary (root,
    /// or the binary's owner): the namespace belongs to that uid, and every process
    /// of it outside the container (another container's root sharing the host's or
    /// an ancestor's pid namespace, say) counts as fully capable in the namespace, so
    /// it may open the container's processes' `/proc/<pid>/exe` and, the binary
    /// being its own to write, write it once no process runs it.
    NamespaceOwnerCanWrite {
        /// The caller's effective uid, the namespace's owner.
        euid: u32,
    },
    /// A long-lived process that will create containers it does not know yet (an
    /// embedder serving requests, such as berth's containerd shim serving a pod):
    /// any of them may be exposed, so it protects itself once, before the first.
    ContainersNotYetKnown,
}

impl std::fmt::Display for Exposure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exposure::NoUserNamespace => f.write_str("the container has no user namespace"),
            Exposure::OwnerMapped { uid } => write!(
                f,
                "the container's user namespace maps uid {uid}, the owner of the runtime binary"
            ),
            Exposure::JoinedUserNamespace => {
                f.write_str("the container joins a user namespace by path")
            }
            Exposure::WritableByOthers => {
                f.write_str("the runtime binary is writable by its group or others")
            }
            Exposure::NamespaceOwnerCanWrite { euid } => write!(
                f,
                "the container's user namespace belongs to uid {euid}, who can write the runtime binary"
            ),
            Exposure::ContainersNotYetKnown => {
                f.write_str("this process will create containers it does not know yet")
            }
        }
    }
}

/// The container's user namespace, as its config says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UserNamespace {
    /// None: the host's.
    Host,
    New,
    Joined,
}

fn user_namespace(spec: &Spec) -> UserNamespace {
    let found = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .and_then(|ns| ns.iter().find(|n| n.typ() == LinuxNamespaceType::User));
    match found {
        None => UserNamespace::Host,
        Some(n) if n.path().is_some() => UserNamespace::Joined,
        Some(_) => UserNamespace::New,
    }
}

/// Owner and mode of the running binary (`/proc/self/exe`), `None` if it cannot be
/// read (the caller then protects).
fn binary_owner_and_mode() -> Option<(u32, u32)> {
    std::fs::metadata("/proc/self/exe")
        .ok()
        .map(|m| (m.uid(), m.mode()))
}

/// Whether host uid `uid` lies in one of `maps` (host side).
fn maps_host_uid(maps: &[LinuxIdMapping], uid: u32) -> bool {
    maps.iter().any(|m| {
        uid >= m.host_id() && u64::from(uid) < u64::from(m.host_id()) + u64::from(m.size())
    })
}

/// The rule for both verbs. `binary` gives the owner and mode of the runtime binary;
/// it is asked only for a new user namespace (the one case that needs it).
fn decide(spec: &Spec, euid: u32, binary: impl FnOnce() -> Option<(u32, u32)>) -> Option<Exposure> {
    match user_namespace(spec) {
        UserNamespace::Host => Some(Exposure::NoUserNamespace),
        UserNamespace::Joined => Some(Exposure::JoinedUserNamespace),
        UserNamespace::New => {
            // Unreadable: protect. The owner's uid stands for "unknown" then.
            let Some((uid, mode)) = binary() else {
                return Some(Exposure::OwnerMapped { uid: 0 });
            };
            if mode & 0o022 != 0 {
                return Some(Exposure::WritableByOthers);
            }
            let maps = spec
                .linux()
                .as_ref()
                .and_then(|l| l.uid_mappings().as_deref());
            match maps {
                // No mappings: create refuses such a config; protect meanwhile.
                None => Some(Exposure::OwnerMapped { uid }),
                Some(maps) if maps.is_empty() || maps_host_uid(maps, uid) => {
                    Some(Exposure::OwnerMapped { uid })
                }
                Some(_) if euid == 0 || euid == uid => {
                    Some(Exposure::NamespaceOwnerCanWrite { euid })
                }
                Some(_) => None,
            }
        }
    }
}

/// Whether `create` (or `run`) of a container of `spec` must run from a protected
/// image of the runtime binary, and why; `None` for a container whose user namespace
/// does not map the binary's owner, made by a caller that cannot write the binary
/// (rootless), which then costs nothing. See the
/// [module](crate::sealed_exe).
pub fn for_create(spec: &Spec) -> Option<Exposure> {
    decide(spec, nix::unistd::geteuid().as_raw(), binary_owner_and_mode)
}

impl Container {
    /// Whether `exec` into this container must run from a protected image of the
    /// runtime binary, and why: as [`for_create`], from the container's config (the
    /// exec'd process joins the container's user namespace, whatever it is).
    pub fn sealed_exe_for_exec(&self) -> Option<Exposure> {
        decide(
            &self.state.config,
            nix::unistd::geteuid().as_raw(),
            binary_owner_and_mode,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::{decide, for_create, Exposure};
    use oci_spec::runtime::Spec;
    use serde_json::{json, Value};

    /// A caller that is neither root nor the binary's owner in these tests.
    const ROOTLESS: u32 = 1000;

    fn spec(namespaces: Value, uid_map: Option<Value>) -> Spec {
        let mut v = json!({
            "ociVersion": "1.0.2",
            "process": {"user": {"uid": 0, "gid": 0}, "cwd": "/", "args": ["sh"]},
            "root": {"path": "rootfs"},
            "linux": {"namespaces": namespaces}
        });
        if let Some(m) = uid_map {
            v["linux"]["uidMappings"] = m.clone();
            v["linux"]["gidMappings"] = m;
        }
        serde_json::from_value(v).unwrap()
    }

    fn map(host: u32, size: u32) -> Value {
        json!([{"containerID": 0, "hostID": host, "size": size}])
    }

    #[test]
    fn no_user_namespace_needs_it_whatever_the_pid_namespace() {
        for ns in [
            json!([{"type": "pid"}, {"type": "mount"}]),
            json!([{"type": "pid", "path": "/proc/7/ns/pid"}]),
            json!([{"type": "mount"}]),
        ] {
            assert_eq!(
                decide(&spec(ns.clone(), None), ROOTLESS, || Some((0, 0o755))),
                Some(Exposure::NoUserNamespace),
                "{ns}"
            );
        }
    }

    #[test]
    fn a_joined_user_namespace_needs_it() {
        let s = spec(
            json!([{"type": "pid"}, {"type": "user", "path": "/proc/7/ns/user"}]),
            None,
        );
        assert_eq!(
            decide(&s, ROOTLESS, || panic!("not asked")),
            Some(Exposure::JoinedUserNamespace)
        );
    }

    #[test]
    fn a_namespace_owned_by_a_uid_that_can_write_the_binary_needs_it() {
        let ns = json!([{"type": "pid"}, {"type": "user"}]);
        let s = spec(ns, Some(map(100_000, 65536)));
        // Made by root: root's processes outside are fully capable in it.
        assert_eq!(
            decide(&s, 0, || Some((0, 0o755))),
            Some(Exposure::NamespaceOwnerCanWrite { euid: 0 })
        );
        // Made by the binary's owner.
        assert_eq!(
            decide(&s, 1000, || Some((1000, 0o755))),
            Some(Exposure::NamespaceOwnerCanWrite { euid: 1000 })
        );
        // Made by another user, who cannot write a root-owned 0755 binary.
        assert_eq!(decide(&s, 1000, || Some((0, 0o755))), None);
    }

    #[test]
    fn a_new_user_namespace_needs_it_only_if_it_maps_the_owner() {
        let ns = json!([{"type": "pid"}, {"type": "user"}]);
        let s = spec(ns.clone(), Some(map(100_000, 65536)));
        assert_eq!(decide(&s, ROOTLESS, || Some((0, 0o755))), None);
        assert_eq!(
            decide(&s, ROOTLESS, || Some((100_000, 0o755))),
            Some(Exposure::OwnerMapped { uid: 100_000 })
        );
        assert_eq!(
            decide(&s, ROOTLESS, || Some((165_535, 0o755))),
            Some(Exposure::OwnerMapped { uid: 165_535 })
        );
        assert_eq!(decide(&s, ROOTLESS, || Some((165_536, 0o755))), None);
        // An identity map includes root.
        let s = spec(ns.clone(), Some(map(0, 65536)));
        assert_eq!(
            decide(&s, ROOTLESS, || Some((0, 0o755))),
            Some(Exposure::OwnerMapped { uid: 0 })
        );
        // No mappings, or an unreadable binary: protect.
        let s = spec(ns.clone(), None);
        assert!(decide(&s, ROOTLESS, || Some((0, 0o755))).is_some());
        let s = spec(ns, Some(map(100_000, 65536)));
        assert!(decide(&s, ROOTLESS, || None).is_some());
    }

    #[test]
    fn a_binary_writable_by_others_needs_it_in_any_user_namespace() {
        let s = spec(json!([{"type": "user"}]), Some(map(100_000, 65536)));
        assert_eq!(
            decide(&s, ROOTLESS, || Some((0, 0o775))),
            Some(Exposure::WritableByOthers)
        );
        assert_eq!(
            decide(&s, ROOTLESS, || Some((0, 0o757))),
            Some(Exposure::WritableByOthers)
        );
    }

    #[test]
    fn for_create_reads_this_binary() {
        // This test binary is owned by whoever built it; an identity map of every uid
        // maps that owner.
        let s = spec(json!([{"type": "user"}]), Some(map(0, u32::MAX)));
        assert!(for_create(&s).is_some());
        assert_eq!(
            for_create(&spec(json!([{"type": "pid"}]), None)),
            Some(Exposure::NoUserNamespace)
        );
    }
}
