//! Bundles on disk: a busybox rootfs, config.json, the checker, and safe removal.

use std::fs;
use std::io;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Busybox applets the scenarios use, linked into every rootfs.
const APPLETS: &[&str] = &[
    "sh", "true", "false", "sleep", "cat", "echo", "touch", "ls", "hostname", "id", "mkdir",
    "test", "kill", "wc", "grep", "readlink", "stat", "printf", "tty", "stty",
];

/// One bundle directory: `<dir>/config.json` and `<dir>/rootfs`.
pub struct Bundle {
    pub dir: PathBuf,
}

impl Bundle {
    /// Creates `<base>/<id>` with a busybox rootfs; copies the checker in when given.
    pub fn create(base: &Path, id: &str, checker: Option<&Path>) -> io::Result<Bundle> {
        let dir = base.join(id);
        let rootfs = dir.join("rootfs");
        for d in ["bin", "etc", "proc", "sys", "dev", "tmp"] {
            fs::create_dir_all(rootfs.join(d))
                .map_err(|e| annotate(e, "mkdir", &rootfs.join(d)))?;
        }
        fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
            .map_err(|e| annotate(e, "copy /bin/busybox to", &rootfs))?;
        for a in APPLETS {
            symlink("busybox", rootfs.join("bin").join(a))
                .map_err(|e| annotate(e, "symlink", &rootfs.join("bin").join(a)))?;
        }
        fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nuser10:x:10:10::/:/bin/sh\n",
        )?;
        fs::write(
            rootfs.join("etc/group"),
            "root:x:0:\ntty:x:5:\nwheel:x:10:\n",
        )?;
        if let Some(c) = checker {
            fs::copy(c, rootfs.join("runtimetest")).map_err(|e| annotate(e, "copy checker", c))?;
        }
        Ok(Bundle { dir })
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    pub fn path_str(&self) -> String {
        self.dir.display().to_string()
    }

    /// Writes config.json into the bundle and a copy into the rootfs for the checker.
    pub fn write_config(&self, cfg: &Value) -> io::Result<()> {
        let text = serde_json::to_string_pretty(cfg).map_err(io::Error::other)?;
        self.write_raw_config(&text)?;
        fs::write(self.rootfs().join("config.json"), &text)
    }

    /// Writes config.json exactly as given (for malformed-input scenarios).
    pub fn write_raw_config(&self, text: &str) -> io::Result<()> {
        fs::write(self.dir.join("config.json"), text)
            .map_err(|e| annotate(e, "write", &self.dir.join("config.json")))
    }

    pub fn stdout_path(&self) -> PathBuf {
        self.dir.join("container.out")
    }

    pub fn stderr_path(&self) -> PathBuf {
        self.dir.join("container.err")
    }

    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.dir.join(rel)).unwrap_or_default()
    }
}

fn annotate(e: io::Error, what: &str, p: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", p.display()))
}

/// Mount points at or below `dir`, deepest first (from /proc/self/mountinfo).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape(m)))
        .filter(|m| m.starts_with(dir))
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    v.dedup();
    v
}

/// Undoes the octal escapes (`\040`) of mountinfo fields.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let oct = std::str::from_utf8(&b[i + 1..i + 4]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(oct, 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Detaches every mount below `dir`, then removes it without ever crossing into
/// another filesystem (a bind mount of a host directory left behind must not be emptied).
pub fn remove_tree(dir: &Path) -> io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for _ in 0..3 {
        let mounts = mounts_under(dir);
        if mounts.is_empty() {
            break;
        }
        for m in mounts {
            let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
    let left = mounts_under(dir);
    if !left.is_empty() {
        return Err(io::Error::other(format!(
            "mounts left under {}: {:?}; not removing",
            dir.display(),
            left
        )));
    }
    let dev = fs::symlink_metadata(dir)?.dev();
    remove_same_dev(dir, dev)
}

fn remove_same_dev(p: &Path, dev: u64) -> io::Result<()> {
    let md = fs::symlink_metadata(p)?;
    if md.dev() != dev {
        return Err(io::Error::other(format!(
            "{} is on another filesystem; not removing",
            p.display()
        )));
    }
    if md.is_dir() {
        for e in fs::read_dir(p)? {
            remove_same_dev(&e?.path(), dev)?;
        }
        fs::remove_dir(p)
    } else {
        fs::remove_file(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_undoes_mountinfo_octal() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/tab\\011x\\134"), "/tab\tx\\");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("/short\\04"), "/short\\04");
    }

    #[test]
    fn remove_tree_removes_plain_trees() {
        let d = std::env::temp_dir().join(format!("berth-conf-unit-{}", std::process::id()));
        fs::create_dir_all(d.join("a/b")).expect("mkdir");
        fs::write(d.join("a/b/f"), "x").expect("write");
        symlink("/etc/passwd", d.join("a/link")).expect("symlink");
        remove_tree(&d).expect("remove");
        assert!(!d.exists());
        assert!(Path::new("/etc/passwd").exists());
    }
}
