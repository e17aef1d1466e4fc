//! Which cgroup layout the host has, read from /proc/self/mountinfo.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Where cgroup file systems are mounted (the default mount point of the hierarchies).
pub(crate) const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const MOUNTINFO: &str = "/proc/self/mountinfo";

/// The host's cgroup layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupSetup {
    /// Only v1 hierarchies.
    Legacy,
    /// v1 hierarchies plus a cgroup2 mount (at /sys/fs/cgroup/unified).
    Hybrid,
    /// cgroup2 only.
    Unified,
}

/// One mounted v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct V1Mount {
    /// Controllers of the hierarchy, and named hierarchies as `name=<name>`.
    pub controllers: Vec<String>,
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// Which cgroup of the hierarchy the mount shows (mountinfo's "root" field).
    pub root: String,
}

/// One cgroup2 mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct V2Mount {
    pub mount_point: PathBuf,
    pub root: String,
}

/// Every cgroup mount of the caller's mount namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Mounts {
    /// One entry per hierarchy (the first mount of a hierarchy wins).
    pub v1: Vec<V1Mount>,
    pub v2: Vec<V2Mount>,
}

impl Mounts {
    /// Reads /proc/self/mountinfo.
    pub fn read() -> Result<Mounts> {
        let text =
            std::fs::read_to_string(MOUNTINFO).map_err(|e| Error::io("read", MOUNTINFO, e))?;
        parse_mountinfo(&text)
    }

    /// The layout these mounts make.
    pub fn setup(&self) -> Result<CgroupSetup> {
        let unified_at_root = self
            .v2
            .iter()
            .any(|m| m.mount_point == Path::new(CGROUP_ROOT));
        match (self.v1.is_empty(), self.v2.is_empty()) {
            _ if unified_at_root => Ok(CgroupSetup::Unified),
            (true, false) => Ok(CgroupSetup::Unified),
            (false, false) => Ok(CgroupSetup::Hybrid),
            (false, true) => Ok(CgroupSetup::Legacy),
            (true, true) => Err(Error::Unsupported(format!(
                "no cgroup file system is mounted (read {MOUNTINFO})"
            ))),
        }
    }

    /// The cgroup2 mount to use: /sys/fs/cgroup (unified), /sys/fs/cgroup/unified (hybrid),
    /// else the first one.
    pub fn unified(&self) -> Option<&V2Mount> {
        let prefer = |p: &str| self.v2.iter().find(|m| m.mount_point == Path::new(p));
        prefer(CGROUP_ROOT)
            .or_else(|| prefer("/sys/fs/cgroup/unified"))
            .or_else(|| self.v2.first())
    }
}

/// Detects the layout from /proc/self/mountinfo.
pub fn detect() -> Result<CgroupSetup> {
    Mounts::read()?.setup()
}

/// Mount options of a v1 cgroup mount that are not controller names.
fn is_mount_option(opt: &str) -> bool {
    matches!(
        opt,
        "rw" | "ro"
            | "noprefix"
            | "clone_children"
            | "xattr"
            | "cpuset_v2_mode"
            | "favordynmods"
            | "nofavordynmods"
            | "none"
            | "all"
    ) || opt.starts_with("release_agent=")
}

/// Undoes mountinfo's octal escapes (`\040` for a space, and so on).
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let digits = &b[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let v = (digits[0] - b'0') as u32 * 64
                    + (digits[1] - b'0') as u32 * 8
                    + (digits[2] - b'0') as u32;
                if let Ok(byte) = u8::try_from(v) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses the text of a mountinfo file, keeping only cgroup and cgroup2 mounts.
pub(crate) fn parse_mountinfo(text: &str) -> Result<Mounts> {
    let mut mounts = Mounts::default();
    for line in text.lines() {
        if !line.contains("cgroup") {
            continue;
        }
        let (pre, post) = line.split_once(" - ").ok_or_else(|| Error::Parse {
            path: MOUNTINFO.into(),
            reason: format!("no separator in line {line:?}"),
        })?;
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 6 || post.len() < 3 {
            return Err(Error::Parse {
                path: MOUNTINFO.into(),
                reason: format!("short line {line:?}"),
            });
        }
        let (root, mount_point) = (unescape(pre[3]), PathBuf::from(unescape(pre[4])));
        match post[0] {
            "cgroup2" => mounts.v2.push(V2Mount { mount_point, root }),
            "cgroup" => {
                let controllers: Vec<String> = post[2]
                    .split(',')
                    .filter(|o| !is_mount_option(o))
                    .map(str::to_string)
                    .collect();
                if controllers.is_empty() {
                    continue;
                }
                // A hierarchy can be mounted more than once (bind mounts): keep the first.
                if mounts.v1.iter().any(|m| m.controllers == controllers) {
                    continue;
                }
                mounts.v1.push(V1Mount {
                    controllers,
                    mount_point,
                    root,
                });
            }
            _ => {}
        }
    }
    Ok(mounts)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw,relatime shared:5 - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,release_agent=/x,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
50 23 0:32 / /mnt/my\\040mem rw - cgroup cgroup rw,memory
";

    #[test]
    fn parses_v1_hierarchies_and_named_ones() {
        let m = parse_mountinfo(HYBRID).unwrap();
        let names: Vec<_> = m.v1.iter().map(|m| m.controllers.join(",")).collect();
        assert_eq!(names, ["cpu,cpuacct", "cpuset", "memory", "name=systemd"]);
        assert_eq!(m.v1[2].root, "/docker/abc");
        assert_eq!(m.v1[2].mount_point, Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(m.v2.len(), 1);
        assert_eq!(m.setup().unwrap(), CgroupSetup::Hybrid);
        assert_eq!(
            m.unified().unwrap().mount_point,
            Path::new("/sys/fs/cgroup/unified")
        );
    }

    #[test]
    fn unified_and_legacy() {
        let m = parse_mountinfo("30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n").unwrap();
        assert_eq!(m.setup().unwrap(), CgroupSetup::Unified);
        let m = parse_mountinfo("32 31 0:29 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n")
            .unwrap();
        assert_eq!(m.setup().unwrap(), CgroupSetup::Legacy);
        assert!(parse_mountinfo("").unwrap().setup().is_err());
    }

    #[test]
    fn unescapes_mount_points() {
        assert_eq!(unescape("/mnt/my\\040mem"), "/mnt/my mem");
        assert_eq!(unescape("/a\\\\b"), "/a\\\\b");
        assert_eq!(unescape("/end\\04"), "/end\\04");
    }

    #[test]
    fn this_host_has_a_layout() {
        // Whatever the host, detect() must not fail where /sys/fs/cgroup is mounted.
        if Path::new("/sys/fs/cgroup").exists() {
            detect().unwrap();
        }
    }
}
