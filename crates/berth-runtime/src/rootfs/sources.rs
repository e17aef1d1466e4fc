//! Bind mount sources opened for an init in a user namespace, as runc does with its
//! mount-source fds: the container's root is an unprivileged user on the host, so a
//! source below a directory it cannot search (mode 0700, owned by host root) fails
//! its own lookup with EACCES. The parent, still privileged, opens each source
//! O_PATH and the init binds `/proc/self/fd/<n>`, which needs no lookup.
//!
//! The fd must name a mount of the init's own mount namespace (mount(2) refuses a
//! bind from another namespace's mount), so the parent does not open the path in its
//! own namespace: it resolves it beneath `/proc/<intermediate>/root`, the root of the
//! namespace the intermediate has just made (and the init will inherit), with
//! RESOLVE_IN_ROOT so an absolute symlink on the way resolves there too. No setns is
//! needed, so the parent may be multi-threaded. A source that cannot be opened this
//! way is left to the init's own lookup (and its error).

use super::RootfsPlan;
use nix::fcntl::{open, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use std::ffi::CStr;
use std::os::fd::OwnedFd;

impl RootfsPlan {
    /// Whether any mount is a bind (so there is a source to open).
    pub(crate) fn has_bind_sources(&self) -> bool {
        self.mounts.iter().any(|m| m.bind_source().is_some())
    }

    /// Whether any mount is idmapped (the parent makes its tree, see rootfs/idmap.rs).
    pub(crate) fn has_idmapped(&self) -> bool {
        self.mounts.iter().any(|m| m.idmapped().is_some())
    }

    /// In the parent, once the intermediate `pid` has entered its namespaces: the
    /// detached idmapped tree of every idmapped mount and, with `plain`, every other
    /// bind source opened there, as (index in `mounts`, fd). A tree that cannot be
    /// made is an error naming the mount.
    pub(crate) fn open_bind_sources(
        &self,
        pid: i32,
        plain: bool,
    ) -> crate::error::Result<Vec<(u32, OwnedFd)>> {
        let mut out = Vec::new();
        for (i, m) in self.mounts.iter().enumerate() {
            let Some((src, plan)) = m.idmapped() else {
                continue;
            };
            let Ok(index) = u32::try_from(i) else { break };
            out.push((index, super::idmap::detached_tree(src, &m.display, plan)?));
        }
        if plain {
            out.extend(self.open_plain_sources(pid));
        }
        Ok(out)
    }

    /// Opens every bind source that is not idmapped beneath the intermediate's root.
    fn open_plain_sources(&self, pid: i32) -> Vec<(u32, OwnedFd)> {
        let root_path = format!("/proc/{pid}/root");
        let root = match open(
            root_path.as_str(),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(e) => {
                // Without CAP_SYS_PTRACE (a rootless caller) the init's own lookups
                // are the only way; they work wherever its user can search.
                tracing::debug!("mount sources are looked up by the init: open {root_path}: {e}");
                return Vec::new();
            }
        };
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT);
        let mut out = Vec::new();
        for (i, m) in self.mounts.iter().enumerate() {
            let Some(src) = m.bind_source() else { continue };
            if m.idmapped().is_some() {
                continue;
            }
            let Ok(index) = u32::try_from(i) else { break };
            match openat2(&root, relative(src), how) {
                Ok(fd) => out.push((index, fd)),
                Err(e) => tracing::debug!(
                    "mount source {} is looked up by the init: {e}",
                    src.to_string_lossy()
                ),
            }
        }
        out
    }

    /// In the intermediate: the fd the parent opened for mount `index`.
    pub(crate) fn set_bind_source(&self, index: u32, fd: OwnedFd) -> bool {
        match self.mounts.get(index as usize) {
            Some(m) if m.bind_source().is_some() => {
                m.set_source_fd(fd);
                true
            }
            _ => false,
        }
    }
}

/// An absolute source as a path relative to the namespace's root (`.` for `/`).
fn relative(src: &CStr) -> &CStr {
    let bytes = src.to_bytes_with_nul();
    let skip = bytes.iter().take_while(|&&b| b == b'/').count();
    if bytes[skip] == 0 {
        return c".";
    }
    CStr::from_bytes_with_nul(&bytes[skip..]).unwrap_or(c".")
}

#[cfg(test)]
mod tests {
    use super::relative;

    #[test]
    fn sources_become_relative_to_the_root() {
        assert_eq!(relative(c"/srv/data"), c"srv/data");
        assert_eq!(relative(c"//srv"), c"srv");
        assert_eq!(relative(c"/"), c".");
    }
}
