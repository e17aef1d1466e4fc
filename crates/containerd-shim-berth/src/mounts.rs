//! The rootfs mounts containerd passes with a create (an overlay of the image's
//! snapshot, usually; a bind mount with the native snapshotter): mounted on
//! `<bundle>/rootfs` before the container is created, unmounted when the task is
//! deleted (or by the `delete` action after a crash).
//!
//! mount(2) is called here, not through the shim crate's helper: that one forks a
//! child for long option strings and waits for it through the crate's own SIGCHLD
//! reaper, which this shim turns off (see main.rs).

use containerd_shim::protos::types::mount::Mount;
use nix::mount::MsFlags;
use std::path::{Path, PathBuf};

/// Mounts each of `mounts` on `<bundle>/rootfs`, in order; on a failure, what was
/// mounted is undone. Returns the rootfs path when something was mounted.
pub fn mount_rootfs(bundle: &Path, mounts: &[Mount]) -> Result<Option<PathBuf>, String> {
    if mounts.is_empty() {
        return Ok(None);
    }
    let target = bundle.join("rootfs");
    std::fs::create_dir_all(&target).map_err(|e| format!("mkdir {}: {e}", target.display()))?;
    for m in mounts {
        let kind = (!m.type_.is_empty()).then_some(m.type_.as_str());
        let source = (!m.source.is_empty()).then_some(m.source.as_str());
        if let Err(e) = mount_one(kind, source, &m.options, &target) {
            unmount_rootfs(&target);
            return Err(format!(
                "mount {} ({}) on {}: {e}",
                m.source,
                m.type_,
                target.display()
            ));
        }
    }
    Ok(Some(target))
}

/// mount(2) of one containerd mount: flag words become flags, the rest the data.
fn mount_one(
    kind: Option<&str>,
    source: Option<&str>,
    options: &[String],
    target: &Path,
) -> nix::Result<()> {
    let (flags, data) = parse_options(options);
    // A bind mount's type is ignored by the kernel ("bind" is containerd's word).
    let kind = kind.filter(|k| *k != "bind");
    let data = (!data.is_empty()).then_some(data.as_str());
    nix::mount::mount(source, target, kind, flags, data)?;
    // A read-only bind needs a remount to take the flag.
    if flags.contains(MsFlags::MS_BIND) && flags.contains(MsFlags::MS_RDONLY) {
        nix::mount::mount(
            None::<&str>,
            target,
            None::<&str>,
            flags | MsFlags::MS_REMOUNT,
            None::<&str>,
        )?;
    }
    Ok(())
}

/// Splits mount options into mount(2) flags and the data string (for overlay:
/// lowerdir, upperdir, workdir ...).
fn parse_options(options: &[String]) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for o in options {
        let (set, f) = match o.as_str() {
            "ro" => (true, MsFlags::MS_RDONLY),
            "rw" => (false, MsFlags::MS_RDONLY),
            "bind" => (true, MsFlags::MS_BIND),
            "rbind" => (true, MsFlags::MS_BIND | MsFlags::MS_REC),
            "nosuid" => (true, MsFlags::MS_NOSUID),
            "suid" => (false, MsFlags::MS_NOSUID),
            "nodev" => (true, MsFlags::MS_NODEV),
            "dev" => (false, MsFlags::MS_NODEV),
            "noexec" => (true, MsFlags::MS_NOEXEC),
            "exec" => (false, MsFlags::MS_NOEXEC),
            "noatime" => (true, MsFlags::MS_NOATIME),
            "relatime" => (true, MsFlags::MS_RELATIME),
            "sync" => (true, MsFlags::MS_SYNCHRONOUS),
            "async" => (false, MsFlags::MS_SYNCHRONOUS),
            "defaults" => (false, MsFlags::empty()),
            _ => {
                data.push(o.as_str());
                continue;
            }
        };
        flags.set(f, set);
    }
    (flags, data.join(","))
}

/// Unmounts everything on `rootfs` (several stacked mounts included); an unmounted
/// path is not an error.
pub fn unmount_rootfs(rootfs: &Path) {
    loop {
        match nix::mount::umount2(rootfs, nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => break,
            Err(e) => {
                log::warn!("unmount {}: {e}", rootfs.display());
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_options_are_data_and_bind_words_are_flags() {
        let o = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (f, d) = parse_options(&o(&[
            "index=off",
            "lowerdir=/a:/b",
            "upperdir=/u",
            "workdir=/w",
        ]));
        assert!(f.is_empty());
        assert_eq!(d, "index=off,lowerdir=/a:/b,upperdir=/u,workdir=/w");
        let (f, d) = parse_options(&o(&["rbind", "ro"]));
        assert_eq!(f, MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY);
        assert!(d.is_empty());
    }
}
