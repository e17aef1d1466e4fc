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
    /// The file system's device (mountinfo's "major:minor" field).
    pub dev: (u64, u64),
}

/// One cgroup2 mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct V2Mount {
    pub mount_point: PathBuf,
    pub root: String,
    pub dev: (u64, u64),
}

/// Every cgroup mount of the caller's mount namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Mounts {
    /// One entry per hierarchy (the first mount of a hierarchy wins).
    pub v1: Vec<V1Mount>,
    pub v2: Vec<V2Mount>,
}

impl Mounts {
    /// Reads /proc/self/mountinfo, keeping only the mounts that can be reached at their
    /// mount point now.
    ///
    /// mountinfo also lists mounts that a later mount covers: a private view of
    /// /sys/fs/cgroup made by mounting a tmpfs over it and binding the v1 hierarchies
    /// back leaves the host's cgroup2 mount listed at /sys/fs/cgroup/unified although
    /// nothing is there. runc decides hybrid mode by statfs of that path; a mount point
    /// that shows another device (or is gone) is treated as absent here too.
    pub fn read() -> Result<Mounts> {
        let text =
            std::fs::read_to_string(MOUNTINFO).map_err(|e| Error::io("read", MOUNTINFO, e))?;
        parse_mountinfo_visible(&text, |mp, dev| {
            nix::sys::stat::stat(mp).is_ok_and(|st| {
                (
                    nix::sys::stat::major(st.st_dev),
                    nix::sys::stat::minor(st.st_dev),
                ) == dev
            })
        })
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

/// mountinfo's `major:minor`.
fn parse_dev(field: &str) -> Option<(u64, u64)> {
    let (a, b) = field.split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
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
#[cfg(test)]
pub(crate) fn parse_mountinfo(text: &str) -> Result<Mounts> {
    parse_mountinfo_visible(text, |_, _| true)
}

/// Parses mountinfo text like [`parse_mountinfo`], keeping a mount only if `visible`
/// says its mount point shows its device (`major`, `minor`) now: a covered mount, or
/// one whose mount point is gone, is left out. Of several mounts at one mount point
/// the last one listed is the one on top.
pub(crate) fn parse_mountinfo_visible(
    text: &str,
    visible: impl Fn(&Path, (u64, u64)) -> bool,
) -> Result<Mounts> {
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
        if !matches!(post[0], "cgroup" | "cgroup2") {
            continue;
        }
        let dev = parse_dev(pre[2]).ok_or_else(|| Error::Parse {
            path: MOUNTINFO.into(),
            reason: format!("bad device {:?} in line {line:?}", pre[2]),
        })?;
        if !visible(&mount_point, dev) {
            continue;
        }
        // A later mount at the same place covers the earlier one.
        mounts.v1.retain(|m| m.mount_point != mount_point);
        mounts.v2.retain(|m| m.mount_point != mount_point);
        match post[0] {
            "cgroup2" => mounts.v2.push(V2Mount {
                mount_point,
                root,
                dev,
            }),
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
                    dev,
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

    /// A private view: a tmpfs over /sys/fs/cgroup with the v1 hierarchies bound back.
    /// The host's cgroup2 mount is still listed but its mount point is gone.
    #[test]
    fn covered_mounts_are_left_out() {
        let text = format!(
            "{HYBRID}\
60 31 0:90 / /sys/fs/cgroup rw - tmpfs v1view rw\n\
61 60 0:32 /sub /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
62 60 0:31 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset\n"
        );
        let shown = |p: &Path| match p.to_str().unwrap() {
            "/sys/fs/cgroup/memory" | "/mnt/my mem" => Some((0, 32)),
            "/sys/fs/cgroup/cpuset" => Some((0, 31)),
            _ => None,
        };
        let m = parse_mountinfo_visible(&text, |p, dev| shown(p) == Some(dev)).unwrap();
        assert!(m.v2.is_empty(), "covered cgroup2 mount kept: {:?}", m.v2);
        assert_eq!(m.setup().unwrap(), CgroupSetup::Legacy);
        let names: Vec<_> = m.v1.iter().map(|m| m.controllers.join(",")).collect();
        assert_eq!(names, ["memory", "cpuset"]);
        // The mount on top wins, with its own root.
        assert_eq!(m.v1[0].root, "/sub");
        assert_eq!(m.v1[0].mount_point, Path::new("/sys/fs/cgroup/memory"));
    }

    #[test]
    fn this_host_has_a_layout() {
        // Whatever the host, detect() must not fail where /sys/fs/cgroup is mounted.
        if Path::new("/sys/fs/cgroup").exists() {
            detect().unwrap();
        }
    }
}
