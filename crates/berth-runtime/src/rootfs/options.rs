//! fstab-style mount options of a `mounts` entry, split into flags to set, flags
//! explicitly cleared, propagation changes (a separate mount call each) and the
//! filesystem data string, with the names mount(8) and runc use.

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
    /// Everything else, comma-joined, for the filesystem.
    pub data: String,
}

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
    fn later_option_wins() {
        let o = MountOptions::parse(["ro", "rw"]);
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert!(o.cleared.contains(MsFlags::MS_RDONLY));
    }
}
