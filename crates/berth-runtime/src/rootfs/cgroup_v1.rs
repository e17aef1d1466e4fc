//! The `cgroup` mount on a cgroup v1 (or hybrid) host, as runc makes it: a tmpfs at
//! the destination, and in it one directory per hierarchy with the container's own
//! cgroup directory bound onto it, so that the container reads its own limits
//! (`memory/memory.limit_in_bytes` is its limit, not the host root's). Co-mounted
//! controllers get symlinks (`cpu -> cpu,cpuacct`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One hierarchy as the container sees it under /sys/fs/cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupDir {
    /// Directory name under the destination: the host mount point's name (`memory`,
    /// `cpu,cpuacct`, `systemd`, `unified`).
    pub name: String,
    /// The container's cgroup directory on the host.
    pub host: PathBuf,
    /// Controller names that differ from `name`, made symlinks to it.
    pub aliases: Vec<String>,
}

/// From the cgroup manager's paths (controller → host directory under /sys/fs/cgroup).
pub fn from_paths(paths: &BTreeMap<String, PathBuf>) -> Vec<CgroupDir> {
    let root = Path::new("/sys/fs/cgroup");
    let mut dirs: Vec<CgroupDir> = Vec::new();
    for (controller, host) in paths {
        let Some(name) = host
            .strip_prefix(root)
            .ok()
            .and_then(|rel| rel.components().next())
            .and_then(|c| c.as_os_str().to_str())
        else {
            continue;
        };
        let i = match dirs.iter().position(|d| d.name == name) {
            Some(i) => i,
            None => {
                dirs.push(CgroupDir {
                    name: name.to_string(),
                    host: host.clone(),
                    aliases: Vec::new(),
                });
                dirs.len() - 1
            }
        };
        let plain = !controller.contains('=') && controller != "unified" && !controller.is_empty();
        if plain && controller != name && !dirs[i].aliases.contains(controller) {
            dirs[i].aliases.push(controller.clone());
        }
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hierarchies_and_aliases() {
        let paths: BTreeMap<String, PathBuf> = [
            ("cpu", "/sys/fs/cgroup/cpu,cpuacct/c1"),
            ("cpuacct", "/sys/fs/cgroup/cpu,cpuacct/c1"),
            ("memory", "/sys/fs/cgroup/memory/c1"),
            ("name=systemd", "/sys/fs/cgroup/systemd/c1"),
            ("unified", "/sys/fs/cgroup/unified/c1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), PathBuf::from(v)))
        .collect();
        let dirs = from_paths(&paths);
        let names: Vec<_> = dirs.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["cpu,cpuacct", "memory", "systemd", "unified"]);
        assert_eq!(dirs[0].aliases, ["cpu", "cpuacct"]);
        assert!(
            dirs[1].aliases.is_empty() && dirs[2].aliases.is_empty() && dirs[3].aliases.is_empty()
        );
        assert_eq!(dirs[1].host, Path::new("/sys/fs/cgroup/memory/c1"));
    }
}
