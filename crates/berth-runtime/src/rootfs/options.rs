//! fstab-style mount options of a `mounts` entry, split into flags to set, flags
//! explicitly cleared, propagation changes (a separate mount call each), recursive
//! attributes (`rro`, `rnosuid` ...: mount_setattr with AT_RECURSIVE over the whole
//! mounted tree) and the filesystem data string, with the names mount(8) and runc use.

use nix::mount::MsFlags;

/// A parsed option list.
#[derive(Debug, Clone)]
pub(super) struct MountOptions {
    /// Flags to set (`ro`, `nosuid`, `bind`, `rbind` ...).
    pub flags: MsFlags,
    /// Flags explicitly cleared (`rw`, `suid`, `dev` ...).
    pub cleared: MsFlags,
    /// Propagation changes in the order given.
    pub propagation: Vec<MsFlags>,
    /// Recursive attributes to set (`MOUNT_ATTR_*`, mount_setattr's `attr_set`).
    pub rec_set: u64,
    /// Recursive attributes to clear (`attr_clr`).
    pub rec_clr: u64,
    /// `idmap` (false) or `ridmap` (true, every mount of the tree is mapped).
    pub idmap: Option<bool>,
    /// Everything else, comma-joined, for the filesystem.
    pub data: String,
}

/// `MOUNT_ATTR_*` of linux/mount.h.
pub(super) mod attr {
    pub const RDONLY: u64 = 0x1;
    pub const NOSUID: u64 = 0x2;
    pub const NODEV: u64 = 0x4;
    pub const NOEXEC: u64 = 0x8;
    /// The access-time field: one of RELATIME (0), NOATIME, STRICTATIME.
    pub const ATIME_MASK: u64 = 0x70;
    pub const RELATIME: u64 = 0x0;
    pub const NOATIME: u64 = 0x10;
    pub const STRICTATIME: u64 = 0x20;
    pub const NODIRATIME: u64 = 0x80;
    pub const NOSYMFOLLOW: u64 = 0x20_0000;
}

/// Maps a recursive option to (clear, attribute), with runc's names.
fn recursive_option(opt: &str) -> Option<(bool, u64)> {
    Some(match opt {
        "rro" => (false, attr::RDONLY),
        "rrw" => (true, attr::RDONLY),
        "rnosuid" => (false, attr::NOSUID),
        "rsuid" => (true, attr::NOSUID),
        "rnodev" => (false, attr::NODEV),
        "rdev" => (true, attr::NODEV),
        "rnoexec" => (false, attr::NOEXEC),
        "rexec" => (true, attr::NOEXEC),
        "rnodiratime" => (false, attr::NODIRATIME),
        "rdiratime" => (true, attr::NODIRATIME),
        "rrelatime" => (false, attr::RELATIME),
        "rnorelatime" => (true, attr::RELATIME),
        "rnoatime" => (false, attr::NOATIME),
        "ratime" => (true, attr::NOATIME),
        "rstrictatime" => (false, attr::STRICTATIME),
        "rnostrictatime" => (true, attr::STRICTATIME),
        "rnosymfollow" => (false, attr::NOSYMFOLLOW),
        "rsymfollow" => (true, attr::NOSYMFOLLOW),
        _ => return None,
    })
}

/// Every recursive option name, for `features`.
pub(crate) const RECURSIVE_OPTIONS: [&str; 18] = [
    "rro",
    "rrw",
    "rnosuid",
    "rsuid",
    "rnodev",
    "rdev",
    "rnoexec",
    "rexec",
    "rnodiratime",
    "rdiratime",
    "rrelatime",
    "rnorelatime",
    "rnoatime",
    "ratime",
    "rstrictatime",
    "rnostrictatime",
    "rnosymfollow",
    "rsymfollow",
];

/// Maps an option to (clear, flag); `None` for options that are not flags.
fn flag_option(opt: &str) -> Option<(bool, MsFlags)> {
    let nosymfollow = MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW);
    Some(match opt {
        "async" => (true, MsFlags::MS_SYNCHRONOUS),
        "atime" => (true, MsFlags::MS_NOATIME),
        "bind" => (false, MsFlags::MS_BIND),
        "defaults" => (false, MsFlags::empty()),
        "dev" => (true, MsFlags::MS_NODEV),
        "diratime" => (true, MsFlags::MS_NODIRATIME),
        "dirsync" => (false, MsFlags::MS_DIRSYNC),
        "exec" => (true, MsFlags::MS_NOEXEC),
        "iversion" => (false, MsFlags::MS_I_VERSION),
        "lazytime" => (false, MsFlags::MS_LAZYTIME),
        "loud" => (true, MsFlags::MS_SILENT),
        "mand" => (false, MsFlags::MS_MANDLOCK),
        "noatime" => (false, MsFlags::MS_NOATIME),
        "nodev" => (false, MsFlags::MS_NODEV),
        "nodiratime" => (false, MsFlags::MS_NODIRATIME),
        "noexec" => (false, MsFlags::MS_NOEXEC),
        "noiversion" => (true, MsFlags::MS_I_VERSION),
        "nolazytime" => (true, MsFlags::MS_LAZYTIME),
        "nomand" => (true, MsFlags::MS_MANDLOCK),
        "norelatime" => (true, MsFlags::MS_RELATIME),
        "nostrictatime" => (true, MsFlags::MS_STRICTATIME),
        "nosuid" => (false, MsFlags::MS_NOSUID),
        "nosymfollow" => (false, nosymfollow),
        "rbind" => (false, MsFlags::MS_BIND | MsFlags::MS_REC),
        "relatime" => (false, MsFlags::MS_RELATIME),
        "remount" => (false, MsFlags::MS_REMOUNT),
        "ro" => (false, MsFlags::MS_RDONLY),
        "rw" => (true, MsFlags::MS_RDONLY),
        "silent" => (false, MsFlags::MS_SILENT),
        "strictatime" => (false, MsFlags::MS_STRICTATIME),
        "suid" => (true, MsFlags::MS_NOSUID),
        "symfollow" => (true, nosymfollow),
        "sync" => (false, MsFlags::MS_SYNCHRONOUS),
        _ => return None,
    })
}

/// Maps a propagation name (`shared`, `rslave` ...) to its mount flags.
pub(super) fn propagation_flags(opt: &str) -> Option<MsFlags> {
    let rec = MsFlags::MS_REC;
    Some(match opt {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | rec,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | rec,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | rec,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | rec,
        _ => return None,
    })
}

impl MountOptions {
    pub(super) fn parse<'a>(options: impl IntoIterator<Item = &'a str>) -> Self {
        let mut out = MountOptions {
            flags: MsFlags::empty(),
            cleared: MsFlags::empty(),
            propagation: Vec::new(),
            rec_set: 0,
            rec_clr: 0,
            idmap: None,
            data: String::new(),
        };
        for opt in options {
            if let Some((clear, flag)) = flag_option(opt) {
                if clear {
                    out.flags.remove(flag);
                    out.cleared.insert(flag);
                } else {
                    out.flags.insert(flag);
                    out.cleared.remove(flag);
                }
            } else if let Some(p) = propagation_flags(opt) {
                out.propagation.push(p);
            } else if let Some((clear, a)) = recursive_option(opt) {
                // runc's accumulation: set and clear bits add up independently (the
                // kernel clears first, then sets). An access-time mode must also clear
                // the whole access-time field (mount_setattr(2)).
                if clear {
                    out.rec_clr |= a;
                } else {
                    out.rec_set |= a;
                    if a & attr::ATIME_MASK == a {
                        out.rec_clr |= attr::ATIME_MASK;
                    }
                }
            } else if opt == "idmap" || opt == "ridmap" {
                // Not for mount(2): see rootfs/idmap.rs.
                out.idmap = Some(opt == "ridmap");
            } else if opt == "tmpcopyup" {
                // runc's extension to copy the destination's content into a new
                // tmpfs; not supported yet, and harmless to leave out.
            } else {
                if !out.data.is_empty() {
                    out.data.push(',');
                }
                out.data.push_str(opt);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_flags_propagation_and_data() {
        let o = MountOptions::parse(["nosuid", "rbind", "ro", "rslave", "mode=755", "size=65536k"]);
        assert_eq!(
            o.flags,
            MsFlags::MS_NOSUID | MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY
        );
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
        assert_eq!(o.data, "mode=755,size=65536k");
    }

    #[test]
    fn recursive_options_are_attributes_not_data() {
        let o = MountOptions::parse(["rbind", "rro", "rnosuid", "rnoatime", "rexec"]);
        assert_eq!(o.flags, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert_eq!(o.rec_set, attr::RDONLY | attr::NOSUID | attr::NOATIME);
        assert_eq!(o.rec_clr, attr::ATIME_MASK | attr::NOEXEC);
        assert_eq!(o.data, "");
        let o = MountOptions::parse(["rrelatime"]);
        assert_eq!((o.rec_set, o.rec_clr), (0, attr::ATIME_MASK));
        for name in RECURSIVE_OPTIONS {
            assert!(recursive_option(name).is_some(), "{name}");
        }
    }

    #[test]
    fn later_option_wins() {
        let o = MountOptions::parse(["ro", "rw"]);
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert!(o.cleared.contains(MsFlags::MS_RDONLY));
    }
}
