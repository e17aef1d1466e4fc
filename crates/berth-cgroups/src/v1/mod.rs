//! The cgroupfs v1 driver: one directory per mounted hierarchy (plus, on a hybrid host,
//! the cgroup2 mount as `unified`, where only cgroup.procs is written).

mod set;

pub(crate) use set::write_hugetlb;

use crate::detect::{Mounts, CGROUP_ROOT};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::path::CgroupsPath;
use crate::{CgroupManager, CgroupState};
use oci_spec::runtime::LinuxResources;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// Key of the cgroup2 mount of a hybrid host in [`CgroupState::paths`].
pub(crate) const UNIFIED: &str = "unified";

#[derive(Debug)]
pub(crate) struct V1Manager {
    /// Leaf directory by controller (`memory`, `name=systemd`, `unified`).
    paths: BTreeMap<String, PathBuf>,
    /// Mount point by controller, when known (a manager from state does not need them).
    mounts: BTreeMap<String, PathBuf>,
    /// Directories `create` made, shallowest first per hierarchy.
    created: Mutex<Vec<PathBuf>>,
    /// A rootless container's cgroup ([`CgroupState::rootless`]).
    rootless: bool,
}

impl V1Manager {
    pub fn new(
        mounts: &Mounts,
        cg: &CgroupsPath,
        own: Option<&HashMap<String, String>>,
    ) -> Result<Self> {
        let own_of = |key: &str| own.and_then(|o| o.get(key)).map(String::as_str);
        let mut paths = BTreeMap::new();
        let mut mount_points = BTreeMap::new();
        for m in &mounts.v1 {
            let dir = cg.resolve(&m.mount_point, &m.root, own_of(&m.controllers[0]))?;
            for c in &m.controllers {
                paths.insert(c.clone(), dir.clone());
                mount_points.insert(c.clone(), m.mount_point.clone());
            }
        }
        if let Some(u) = mounts.unified() {
            let dir = cg.resolve(&u.mount_point, &u.root, own_of(""))?;
            paths.insert(UNIFIED.to_string(), dir);
            mount_points.insert(UNIFIED.to_string(), u.mount_point.clone());
        }
        // As runc: running without a devices cgroup would give the container every
        // host device.
        if !paths.contains_key("devices") {
            return Err(Error::Unsupported(format!(
                "the devices controller is not mounted (under {CGROUP_ROOT}); refusing to run a container without it"
            )));
        }
        Ok(V1Manager {
            paths,
            mounts: mount_points,
            created: Mutex::new(Vec::new()),
            rootless: false,
        })
    }

    /// Makes this a rootless container's cgroup, keeping only the hierarchies for which
    /// `keep(controller, dir)` holds (see `crate::rootless`).
    pub(crate) fn set_rootless(&mut self, mut keep: impl FnMut(&str, &Path) -> bool) {
        self.rootless = true;
        let mut verdict: BTreeMap<PathBuf, bool> = BTreeMap::new();
        let paths = std::mem::take(&mut self.paths);
        for (controller, dir) in paths {
            let ok = *verdict
                .entry(dir.clone())
                .or_insert_with(|| keep(&controller, &dir));
            if ok {
                self.paths.insert(controller, dir);
            } else {
                self.mounts.remove(&controller);
            }
        }
    }

    /// A rootless container with no cgroup at all (none was writable).
    pub(crate) fn rootless_without_cgroups() -> Self {
        V1Manager {
            paths: BTreeMap::new(),
            mounts: BTreeMap::new(),
            created: Mutex::new(Vec::new()),
            rootless: true,
        }
    }

    /// Whether this is a rootless container's cgroup.
    pub(crate) fn rootless(&self) -> bool {
        self.rootless
    }

    pub fn from_state(state: &CgroupState) -> Self {
        V1Manager {
            paths: state.paths.clone(),
            mounts: BTreeMap::new(),
            created: Mutex::new(state.created.clone()),
            rootless: state.rootless,
        }
    }

    /// The directory of `controller`, if that hierarchy is mounted.
    pub(crate) fn dir(&self, controller: &str) -> Option<&Path> {
        self.paths.get(controller).map(PathBuf::as_path)
    }

    /// Each distinct directory once, with the first controller that names it.
    fn dirs(&self) -> Vec<(&str, &Path)> {
        let mut seen = BTreeSet::new();
        self.paths
            .iter()
            .filter(|(_, d)| seen.insert(d.as_path()))
            .map(|(k, d)| (k.as_str(), d.as_path()))
            .collect()
    }

    fn leaves(&self) -> Vec<PathBuf> {
        self.dirs()
            .into_iter()
            .map(|(_, d)| d.to_path_buf())
            .collect()
    }

    fn create_inner(&self, created: &mut Vec<PathBuf>) -> Result<()> {
        for (key, dir) in self.dirs() {
            let first_new = created.len();
            match self.mounts.get(key) {
                Some(mp) => fsutil::mkdir_tracked(mp, dir, created)?,
                None => std::fs::create_dir_all(dir).map_err(|e| Error::io("mkdir", dir, e))?,
            }
            if self.dir("cpuset") == Some(dir) {
                // A cpuset cgroup with empty cpus/mems takes no task. As runc's
                // ensureParent, every level from the hierarchy's root down to the leaf
                // that has none gets its parent's: a new level, and also a parent that
                // someone else made without filling it in.
                match self.mounts.get(key) {
                    Some(mp) => {
                        let rel = dir.strip_prefix(mp).unwrap_or(Path::new(""));
                        let mut cur = mp.clone();
                        for comp in rel.components() {
                            cur.push(comp);
                            cpuset_copy_if_empty(&cur)?;
                        }
                    }
                    None => {
                        for d in &created[first_new..] {
                            cpuset_copy_if_empty(d)?;
                        }
                        cpuset_copy_if_empty(dir)?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn cpuset_copy_if_empty(dir: &Path) -> Result<()> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for file in ["cpuset.cpus", "cpuset.mems"] {
        if fsutil::read(dir, file)?.is_empty() {
            let value = fsutil::read(parent, file)?;
            fsutil::write(dir, file, &value)?;
        }
    }
    Ok(())
}

/// Writes `pid` to `dir/cgroup.procs`, retrying EINVAL briefly (a task still being
/// forked cannot be moved yet).
pub(crate) fn write_procs(dir: &Path, pid: i32) -> Result<()> {
    let value = pid.to_string();
    let mut tries = 0;
    loop {
        match fsutil::write(dir, "cgroup.procs", &value) {
            Err(e) if fsutil::errno(&e) == Some(libc::EINVAL) && tries < 5 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

impl CgroupManager for V1Manager {
    fn create(&self) -> Result<()> {
        let mut created = Vec::new();
        let res = self.create_inner(&mut created);
        if res.is_err() {
            // Leave nothing behind: undo every directory made here, deepest first.
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
        for (_, dir) in self.dirs() {
            write_procs(dir, pid)?;
        }
        Ok(())
    }

    fn set(&self, resources: &LinuxResources) -> Result<()> {
        set::set(self, resources, true)
    }

    fn update(&self, resources: &LinuxResources) -> Result<()> {
        set::set(self, resources, false)
    }

    fn self_attach(&self) -> crate::SelfAttach {
        crate::SelfAttach {
            tasks: self
                .dirs()
                .into_iter()
                .filter(|(name, _)| *name != "unified")
                .map(|(_, dir)| dir.join("tasks"))
                .collect(),
            unified: self.dir("unified").map(Path::to_path_buf),
        }
    }

    fn pids(&self) -> Result<Vec<i32>> {
        let mut pids = Vec::new();
        for (_, dir) in self.dirs() {
            pids.extend(fsutil::procs(dir)?);
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    fn destroy(&self) -> Result<()> {
        let leaves = self.leaves();
        // Most deletes find the container's processes gone: each leaf then goes with
        // one rmdir. The kernel refuses (EBUSY) a cgroup that still has a task or a
        // sub-cgroup; only those are thawed, killed and removed below.
        let busy: Vec<PathBuf> = leaves
            .iter()
            .filter(|d| !fsutil::removed_if_empty(d))
            .cloned()
            .collect();
        // SIGKILL is not delivered to frozen tasks: thaw first (a paused container).
        if let Some(dir) = self.dir("freezer").filter(|d| busy.iter().any(|b| b == d)) {
            let _ = fsutil::write(dir, "freezer.state", "THAWED");
        }
        fsutil::kill_all(&busy, Duration::from_secs(1))?;
        let mut first_err = None;
        for dir in &busy {
            if let Err(e) = fsutil::remove_cgroup(dir, Duration::from_secs(2)) {
                first_err.get_or_insert(e);
            }
        }
        let created = self
            .created
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        fsutil::remove_created_parents(&created, &leaves);
        first_err.map_or(Ok(()), Err)
    }

    fn freeze(&self, frozen: bool) -> Result<()> {
        let dir = match self.dir("freezer") {
            Some(dir) => dir,
            // runc's words for a rootless container that got no freezer cgroup.
            None if self.rootless => {
                return Err(Error::Unsupported(
                    "cannot toggle freezer: cgroups not configured for container".into(),
                ))
            }
            None => return Err(Error::missing("freezer")),
        };
        let want = if frozen { "FROZEN" } else { "THAWED" };
        // FREEZING can linger while tasks are in uninterruptible sleep: write again
        // until the state settles, for up to a few seconds.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            fsutil::write(dir, "freezer.state", want)?;
            if fsutil::read(dir, "freezer.state")? == want {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                return Err(Error::Resource {
                    path: dir.join("freezer.state"),
                    reason: format!("cgroup did not reach {want} in time"),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn frozen(&self) -> Result<bool> {
        let Some(dir) = self.dir("freezer") else {
            return Ok(false);
        };
        Ok(fsutil::exists(dir, "freezer.state") && fsutil::read(dir, "freezer.state")? != "THAWED")
    }

    fn stats(&self) -> Result<crate::Stats> {
        crate::stats::v1(|c| self.dir(c))
    }

    fn state(&self) -> CgroupState {
        CgroupState {
            driver: "v1".into(),
            paths: self.paths.clone(),
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

    const MOUNTINFO: &str = "\
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/devices rw - cgroup cgroup rw,devices
35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
";

    #[test]
    fn one_directory_per_hierarchy_plus_unified() {
        let mounts = parse_mountinfo(MOUNTINFO).unwrap();
        let own = parse_proc_cgroup(
            "1:cpu,cpuacct:/a\n2:devices:/\n3:memory:/m/x\n4:name=systemd:/s\n0::/u\n",
        )
        .unwrap();
        let cg = CgroupsPath::new(None, "c1").unwrap();
        let m = V1Manager::new(&mounts, &cg, Some(&own)).unwrap();
        let st = m.state();
        let get = |k: &str| st.paths[k].to_str().unwrap().to_string();
        assert_eq!(get("cpu"), "/sys/fs/cgroup/cpu,cpuacct/a/c1");
        assert_eq!(get("cpuacct"), "/sys/fs/cgroup/cpu,cpuacct/a/c1");
        assert_eq!(get("memory"), "/sys/fs/cgroup/memory/m/x/c1");
        assert_eq!(get("name=systemd"), "/sys/fs/cgroup/systemd/s/c1");
        assert_eq!(get("unified"), "/sys/fs/cgroup/unified/u/c1");
        assert_eq!(m.dirs().len(), 5);
        let back = V1Manager::from_state(&st);
        assert_eq!(back.state(), st);
    }

    #[test]
    fn no_devices_hierarchy_is_refused() {
        let mounts =
            parse_mountinfo("35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n")
                .unwrap();
        let cg = CgroupsPath::new(Some("/x"), "c1").unwrap();
        assert!(V1Manager::new(&mounts, &cg, None).is_err());
    }
}
