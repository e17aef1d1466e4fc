//! Resolving `linux.cgroupsPath` to directories, as runc's cgroupfs driver does.
//!
//! An absolute path is taken from the root of each mounted hierarchy, a relative one from
//! the caller's own cgroup in that hierarchy (/proc/self/cgroup), and no path at all means
//! `<caller's cgroup>/<id>`. `..` may not climb above where the path starts.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub(crate) const PROC_SELF_CGROUP: &str = "/proc/self/cgroup";

/// A checked, normalised `linux.cgroupsPath`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CgroupsPath {
    /// From the hierarchy's root; components without `.`/`..`; never empty.
    Absolute(Vec<String>),
    /// From the caller's own cgroup; never empty.
    Relative(Vec<String>),
}

impl CgroupsPath {
    /// Checks `linux.cgroupsPath`, or builds the default `<id>` when it is absent.
    pub fn new(cgroups_path: Option<&str>, id: &str) -> Result<CgroupsPath> {
        let Some(raw) = cgroups_path.filter(|p| !p.is_empty()) else {
            if id.is_empty() || id.contains('/') || id == "." || id == ".." || id.contains('\0') {
                return Err(Error::InvalidPath {
                    path: id.to_string(),
                    reason: "container id cannot be used as a cgroup name".into(),
                });
            }
            return Ok(CgroupsPath::Relative(vec![id.to_string()]));
        };
        let invalid = |reason: &str| Error::InvalidPath {
            path: raw.to_string(),
            reason: reason.to_string(),
        };
        if raw.contains('\0') {
            return Err(invalid("contains a NUL byte"));
        }
        let mut parts: Vec<String> = Vec::new();
        for c in raw.split('/') {
            match c {
                "" | "." => {}
                ".." => {
                    if parts.pop().is_none() {
                        return Err(invalid("\"..\" escapes the cgroup hierarchy"));
                    }
                }
                c => parts.push(c.to_string()),
            }
        }
        if parts.is_empty() {
            return Err(invalid(
                "names the root of the hierarchy, not a cgroup of its own",
            ));
        }
        Ok(if raw.starts_with('/') {
            CgroupsPath::Absolute(parts)
        } else {
            CgroupsPath::Relative(parts)
        })
    }

    /// Whether the caller's own cgroup is needed to resolve this path.
    pub fn is_relative(&self) -> bool {
        matches!(self, CgroupsPath::Relative(_))
    }

    /// The directory in a hierarchy mounted at `mount_point`, showing the hierarchy's
    /// cgroup `mount_root`; `own` is the caller's cgroup in that hierarchy (needed only for
    /// relative paths).
    pub fn resolve(
        &self,
        mount_point: &Path,
        mount_root: &str,
        own: Option<&str>,
    ) -> Result<PathBuf> {
        match self {
            CgroupsPath::Absolute(parts) => Ok(join(mount_point.to_path_buf(), parts)),
            CgroupsPath::Relative(parts) => {
                let own = own.ok_or_else(|| Error::InvalidPath {
                    path: parts.join("/"),
                    reason: format!(
                        "the caller's cgroup of the hierarchy at {} is not in {PROC_SELF_CGROUP}",
                        mount_point.display()
                    ),
                })?;
                let inside = strip_root(own, mount_root).ok_or_else(|| Error::InvalidPath {
                    path: parts.join("/"),
                    reason: format!(
                        "the caller's cgroup {own} is not visible under {} (mount root {mount_root})",
                        mount_point.display()
                    ),
                })?;
                Ok(join(join(mount_point.to_path_buf(), &inside), parts))
            }
        }
    }
}

fn join(mut base: PathBuf, parts: &[String]) -> PathBuf {
    for p in parts {
        base.push(p);
    }
    base
}

/// `own` relative to `root`, component-wise, or None when `own` is not below `root`.
fn strip_root(own: &str, root: &str) -> Option<Vec<String>> {
    let comps = |s: &str| {
        s.split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let (own, root) = (comps(own), comps(root));
    if root.iter().any(|c| c == "..") || own.iter().any(|c| c == "..") || !own.starts_with(&root) {
        return None;
    }
    Some(own[root.len()..].to_vec())
}

/// Parses /proc/self/cgroup text: cgroup path by controller (`memory`, `name=systemd`;
/// `""` for the cgroup2 hierarchy).
pub(crate) fn parse_proc_cgroup(text: &str) -> Result<HashMap<String, String>> {
    let mut map = HashMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let mut f = line.splitn(3, ':');
        let (Some(_id), Some(ctrls), Some(path)) = (f.next(), f.next(), f.next()) else {
            return Err(Error::Parse {
                path: PROC_SELF_CGROUP.into(),
                reason: format!("bad line {line:?}"),
            });
        };
        if ctrls.is_empty() {
            map.insert(String::new(), path.to_string());
        } else {
            for c in ctrls.split(',') {
                map.insert(c.to_string(), path.to_string());
            }
        }
    }
    Ok(map)
}

/// Reads the caller's own cgroups.
pub(crate) fn read_proc_cgroup() -> Result<HashMap<String, String>> {
    let text = std::fs::read_to_string(PROC_SELF_CGROUP)
        .map_err(|e| Error::io("read", PROC_SELF_CGROUP, e))?;
    parse_proc_cgroup(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> CgroupsPath {
        CgroupsPath::new(Some(s), "id").unwrap()
    }

    #[test]
    fn absolute_paths_hang_from_the_mount_point() {
        let mem = Path::new("/sys/fs/cgroup/memory");
        assert_eq!(p("/a/b").resolve(mem, "/", None).unwrap(), mem.join("a/b"));
        assert_eq!(
            p("//a/./x/../b/").resolve(mem, "/", None).unwrap(),
            mem.join("a/b")
        );
        // A mount that shows /docker/abc: absolute paths still hang from the mount point.
        assert_eq!(
            p("/a").resolve(mem, "/docker/abc", None).unwrap(),
            mem.join("a")
        );
    }

    #[test]
    fn relative_paths_hang_from_the_callers_cgroup() {
        let mem = Path::new("/sys/fs/cgroup/memory");
        assert_eq!(
            p("c/d").resolve(mem, "/", Some("/user/1")).unwrap(),
            mem.join("user/1/c/d")
        );
        assert_eq!(
            p("c")
                .resolve(mem, "/docker/abc", Some("/docker/abc/x"))
                .unwrap(),
            mem.join("x/c")
        );
        assert!(p("c")
            .resolve(mem, "/docker/abc", Some("/elsewhere"))
            .is_err());
        assert!(p("c").resolve(mem, "/", None).is_err());
        let def = CgroupsPath::new(None, "ctr1").unwrap();
        assert_eq!(def.resolve(mem, "/", Some("/")).unwrap(), mem.join("ctr1"));
    }

    #[test]
    fn dot_dot_may_not_escape() {
        for bad in ["/..", "/a/../..", "../x", "a/../../b", "/", ".", "a/.."] {
            assert!(CgroupsPath::new(Some(bad), "id").is_err(), "{bad} accepted");
        }
        assert_eq!(p("a/../b"), CgroupsPath::Relative(vec!["b".into()]));
        for bad in ["", "a/b", "..", "."] {
            assert!(CgroupsPath::new(None, bad).is_err(), "id {bad} accepted");
        }
    }

    #[test]
    fn parses_proc_self_cgroup() {
        let m = parse_proc_cgroup("9:name=systemd:/\n2:cpu,cpuacct:/x\n4:memory:/a:b\n0::/u\n")
            .unwrap();
        assert_eq!(m["name=systemd"], "/");
        assert_eq!(m["cpu"], "/x");
        assert_eq!(m["cpuacct"], "/x");
        assert_eq!(m["memory"], "/a:b");
        assert_eq!(m[""], "/u");
        assert!(parse_proc_cgroup("garbage\n").is_err());
    }
}
