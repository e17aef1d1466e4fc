//! The cgroupfs v2 driver: one directory under the unified hierarchy, with the needed
//! controllers enabled in each ancestor's cgroup.subtree_control.

pub(crate) mod devices_bpf;
mod set;

use crate::detect::Mounts;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::path::CgroupsPath;
use crate::{CgroupManager, CgroupState};
use oci_spec::runtime::LinuxResources;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug)]
pub(crate) struct V2Manager {
    dir: PathBuf,
    /// The unified mount point, when known (a manager from state does not need it).
    mount_point: Option<PathBuf>,
    created: Mutex<Vec<PathBuf>>,
    /// A rootless container's cgroup ([`CgroupState::rootless`]): the device filter
    /// is best effort, as runc's, since an unprivileged caller may not load eBPF.
    rootless: bool,
}

impl V2Manager {
    pub fn new(
        mounts: &Mounts,
        cg: &CgroupsPath,
        own: Option<&HashMap<String, String>>,
    ) -> Result<Self> {
        let m = mounts
            .unified()
            .ok_or_else(|| Error::Unsupported("no cgroup2 file system is mounted".into()))?;
        let own = own.and_then(|o| o.get("")).map(String::as_str);
        let dir = cg.resolve(&m.mount_point, &m.root, own)?;
        Ok(V2Manager {
            dir,
            mount_point: Some(m.mount_point.clone()),
            created: Mutex::new(Vec::new()),
            rootless: false,
        })
    }

    /// A manager for an existing directory it did not create (the systemd driver's
    /// delegated scope).
    pub(crate) fn at(dir: PathBuf) -> Self {
        V2Manager {
            dir,
            mount_point: None,
            created: Mutex::new(Vec::new()),
            rootless: false,
        }
    }

    /// Marks the cgroup as a rootless container's (see the field).
    pub(crate) fn with_rootless(mut self, rootless: bool) -> Self {
        self.rootless = rootless;
        self
    }

    pub(crate) fn rootless(&self) -> bool {
        self.rootless
    }

    pub fn from_state(state: &CgroupState) -> Result<Self> {
        let dir = state
            .paths
            .get("")
            .cloned()
            .ok_or_else(|| Error::InvalidPath {
                path: String::new(),
                reason: "v2 cgroup state has no \"\" path".into(),
            })?;
        Ok(V2Manager {
            dir,
            mount_point: None,
            created: Mutex::new(state.created.clone()),
            rootless: state.rootless,
        })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn create_inner(&self, created: &mut Vec<PathBuf>) -> Result<()> {
        let Some(mp) = &self.mount_point else {
            return std::fs::create_dir_all(&self.dir)
                .map_err(|e| Error::io("mkdir", &self.dir, e));
        };
        fsutil::mkdir_tracked(mp, &self.dir, created)?;
        // Enable every available controller from the mount point down to our parent, as
        // runc does; failures (e.g. an ancestor with processes of its own) are caught
        // later, when a value for that controller is written.
        let mut level = mp.clone();
        let rel = self.dir.strip_prefix(mp).unwrap_or(Path::new(""));
        let comps: Vec<_> = rel.components().collect();
        for (i, comp) in comps.iter().enumerate() {
            enable_controllers(&level);
            if i + 1 < comps.len() {
                level.push(comp);
            }
        }
        Ok(())
    }
}

/// Writes `+ctrl` for each controller of `dir/cgroup.controllers` missing from its
/// cgroup.subtree_control: all at once, then one by one if that is refused.
fn enable_controllers(dir: &Path) {
    let available = fsutil::read(dir, "cgroup.controllers").unwrap_or_default();
    let enabled = fsutil::read(dir, "cgroup.subtree_control").unwrap_or_default();
    let missing: Vec<String> = available
        .split_whitespace()
        .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return;
    }
    if fsutil::write(dir, "cgroup.subtree_control", &missing.join(" ")).is_err() {
        for c in &missing {
            if let Err(e) = fsutil::write(dir, "cgroup.subtree_control", c) {
                tracing::debug!(error = %e, controller = %c, "controller not enabled");
            }
        }
    }
}

impl CgroupManager for V2Manager {
    fn create(&self) -> Result<()> {
        let mut created = Vec::new();
        let res = self.create_inner(&mut created);
        if res.is_err() {
            for d in created.iter().rev() {
                let _ = std::fs::remove_dir(d);
            }
            created.clear();
        }
        self.created
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(created);
        res
    }

    fn apply(&self, pid: i32) -> Result<()> {
        crate::v1::write_procs(&self.dir, pid)
    }

    fn set(&self, resources: &LinuxResources) -> Result<()> {
        set::set(self, resources)
    }

    fn self_attach(&self) -> crate::SelfAttach {
        crate::SelfAttach {
            tasks: Vec::new(),
            unified: Some(self.dir.clone()),
        }
    }

    fn pids(&self) -> Result<Vec<i32>> {
        let mut pids = fsutil::procs(&self.dir)?;
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    fn destroy(&self) -> Result<()> {
        // cgroup.kill (Linux 5.14) kills the whole subtree at once; kill_all then only
        // waits, or does the killing itself on older kernels.
        if fsutil::exists(&self.dir, "cgroup.kill") {
            if let Err(e) = fsutil::write(&self.dir, "cgroup.kill", "1") {
                tracing::debug!(error = %e, "cgroup.kill failed; killing pid by pid");
            }
        }
        if fsutil::exists(&self.dir, "cgroup.freeze") {
            let _ = fsutil::write(&self.dir, "cgroup.freeze", "0");
        }
        let leaves = vec![self.dir.clone()];
        fsutil::kill_all(&leaves, Duration::from_secs(1))?;
        let res = fsutil::remove_cgroup(&self.dir, Duration::from_secs(2));
        let created = self
            .created
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        fsutil::remove_created_parents(&created, &leaves);
        res
    }

    fn freeze(&self, frozen: bool) -> Result<()> {
        if !fsutil::exists(&self.dir, "cgroup.freeze") {
            return Err(Error::Unsupported(
                "cgroup.freeze needs Linux 5.2 or later".into(),
            ));
        }
        fsutil::write(&self.dir, "cgroup.freeze", if frozen { "1" } else { "0" })?;
        let want = if frozen { "frozen 1" } else { "frozen 0" };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let events = fsutil::read(&self.dir, "cgroup.events")?;
            if events.lines().any(|l| l.trim() == want) {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                return Err(Error::Resource {
                    path: self.dir.join("cgroup.events"),
                    reason: format!("cgroup did not reach \"{want}\" in time"),
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn frozen(&self) -> Result<bool> {
        Ok(fsutil::exists(&self.dir, "cgroup.freeze")
            && fsutil::read(&self.dir, "cgroup.freeze")? == "1")
    }

    fn stats(&self) -> Result<crate::Stats> {
        crate::stats::v2(&self.dir)
    }

    fn state(&self) -> CgroupState {
        CgroupState {
            driver: "v2".into(),
            paths: BTreeMap::from([(String::new(), self.dir.clone())]),
            created: self
                .created
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            unit: None,
            shared: false,
            rootless: self.rootless,
            user_manager_uid: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::parse_mountinfo;
    use crate::path::parse_proc_cgroup;

    #[test]
    fn resolves_under_the_unified_mount() {
        let mounts =
            parse_mountinfo("30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n").unwrap();
        let own = parse_proc_cgroup("0::/user.slice/x\n").unwrap();
        let m =
            V2Manager::new(&mounts, &CgroupsPath::new(None, "c1").unwrap(), Some(&own)).unwrap();
        assert_eq!(m.dir(), Path::new("/sys/fs/cgroup/user.slice/x/c1"));
        let m = V2Manager::new(
            &mounts,
            &CgroupsPath::new(Some("/a/b"), "c1").unwrap(),
            None,
        )
        .unwrap();
        assert_eq!(m.dir(), Path::new("/sys/fs/cgroup/a/b"));
        let st = m.state();
        assert_eq!(st.driver, "v2");
        assert_eq!(V2Manager::from_state(&st).unwrap().dir(), m.dir());
    }
}
