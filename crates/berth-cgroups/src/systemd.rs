//! The systemd driver (`--systemd-cgroup`, cgroup v2): the container is a transient
//! scope unit that systemd creates over D-Bus with `Delegate=yes`, in the slice that
//! `linux.cgroupsPath` names as `slice:prefix:name` (runc's form); the unit is
//! `prefix-name.scope`. Resources, stats, freezing and killing then go through
//! cgroupfs on the delegated directory (the v2 driver), and `destroy` stops the unit.
//!
//! A scope cannot exist without a process, so the unit is started by `apply(pid)`;
//! resources set before that are kept and written once the directory exists. As runc
//! does, the resources are also given to systemd as unit properties (`props`): at
//! `StartTransientUnit` and by `SetUnitProperties` on update, so a `daemon-reload`
//! re-applies the container's limits rather than the unit's defaults.
//!
//! A rootless caller's scope is its own user manager's (`bus`), in `user.slice` of
//! that manager unless the path names another slice, as runc does. The state records
//! that manager's uid, so later verbs ask the same manager whoever calls them; the
//! bus is reached only when a verb needs it, and a `delete` that cannot reach it
//! removes the cgroup through cgroupfs and warns, rather than failing.

mod bus;
mod job;
pub(crate) mod props;

pub use bus::user_manager_uid;
use bus::Instance;

use crate::error::{Error, Result};
use crate::v2::V2Manager;
use crate::{CgroupManager, CgroupState};
use oci_spec::runtime::LinuxResources;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use zbus::zvariant::Value;

/// `slice:prefix:name` → (slice, unit); an empty or missing slice is `default_slice`
/// (`system.slice`, or `user.slice` for a user manager).
pub(crate) fn parse_path(
    cgroups_path: Option<&str>,
    id: &str,
    default_slice: &str,
) -> Result<(String, String)> {
    let bad = |reason: &str| Error::InvalidPath {
        path: cgroups_path.unwrap_or_default().to_string(),
        reason: format!("systemd cgroupsPath must be \"slice:prefix:name\": {reason}"),
    };
    let (slice, prefix, name) = match cgroups_path.filter(|p| !p.is_empty()) {
        None => (default_slice, "berth", id),
        Some(p) => {
            let parts: Vec<&str> = p.split(':').collect();
            let [slice, prefix, name] = parts[..] else {
                return Err(bad("not three fields"));
            };
            (slice, prefix, name)
        }
    };
    let ok = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c))
    };
    if !ok(slice) || !ok(prefix) || !ok(name) || name.is_empty() {
        return Err(bad(
            "a field is empty or has characters systemd does not allow",
        ));
    }
    let slice = if slice.is_empty() {
        default_slice
    } else {
        slice
    };
    if !slice.ends_with(".slice") {
        return Err(bad("the slice must end in .slice"));
    }
    let unit = if name.ends_with(".slice") || name.ends_with(".scope") {
        name.to_string()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    Ok((slice.to_string(), unit))
}

/// The cgroup directory of `unit` in `slice`: `a-b.slice` lives in `a.slice/a-b.slice`.
pub(crate) fn unit_dir(root: &Path, slice: &str, unit: &str) -> PathBuf {
    let mut dir = root.to_path_buf();
    if slice != "-.slice" {
        let base = slice.trim_end_matches(".slice");
        let mut acc = String::new();
        for part in base.split('-') {
            if !acc.is_empty() {
                acc.push('-');
            }
            acc.push_str(part);
            dir.push(format!("{acc}.slice"));
        }
    }
    dir.join(unit)
}

#[derive(Debug)]
pub(crate) struct SystemdManager {
    /// The manager that owns the unit. `None` only for a rootless container's state
    /// written before the user manager's uid was recorded: the caller's own user
    /// manager then, as berth chose it before, resolved when first needed.
    instance: Option<Instance>,
    /// The manager's D-Bus proxy, connected at first use and kept.
    proxy: Mutex<Option<zbus::blocking::Proxy<'static>>>,
    slice: String,
    unit: String,
    fs: V2Manager,
    /// Resources set before the unit exists.
    pending: Mutex<Option<LinuxResources>>,
}

impl SystemdManager {
    /// The scope of container `id` for the system manager, or (`rootless`) for the
    /// caller's user manager, whose cgroup is asked for over D-Bus here.
    pub fn new(
        cgroups_path: Option<&str>,
        id: &str,
        unified_root: &Path,
        rootless: bool,
    ) -> Result<Self> {
        let (instance, default_slice) = if rootless {
            (Instance::user()?, "user.slice")
        } else {
            (Instance::System, "system.slice")
        };
        let (slice, unit) = parse_path(cgroups_path, id, default_slice)?;
        let mut connected = None;
        let root = match instance {
            Instance::System => unified_root.to_path_buf(),
            Instance::User { .. } => {
                let p = proxy(instance)?;
                let root = instance.cgroup_root(unified_root, &p)?;
                connected = Some(p);
                root
            }
        };
        Ok(SystemdManager {
            instance: Some(instance),
            proxy: Mutex::new(connected),
            fs: V2Manager::at(unit_dir(&root, &slice, &unit))
                .with_rootless(instance != Instance::System),
            slice,
            unit,
            pending: Mutex::new(None),
        })
    }

    pub fn from_state(state: &CgroupState) -> Result<Self> {
        let unit = state.unit.clone().ok_or_else(|| Error::InvalidPath {
            path: String::new(),
            reason: "systemd cgroup state has no unit".into(),
        })?;
        // Nothing is asked of the bus here: a verb that needs the manager connects.
        let instance = match (state.rootless, state.user_manager_uid) {
            (false, _) => Some(Instance::System),
            (true, Some(uid)) => Some(Instance::User { uid }),
            (true, None) => None,
        };
        Ok(SystemdManager {
            instance,
            proxy: Mutex::new(None),
            fs: V2Manager::from_state(state)?,
            slice: String::new(),
            unit,
            pending: Mutex::new(None),
        })
    }

    /// The manager that owns the unit (see [`SystemdManager::instance`]).
    fn instance(&self) -> Result<Instance> {
        match self.instance {
            Some(i) => Ok(i),
            None => Instance::user(),
        }
    }

    /// What errors call the manager.
    fn manager_name(&self) -> String {
        match self.instance {
            Some(i) => i.name(),
            None => "systemd user manager".into(),
        }
    }

    /// The manager's proxy: the one kept, else a new connection (kept if it works).
    fn manager(&self) -> Result<zbus::blocking::Proxy<'static>> {
        let mut kept = self.proxy.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = kept.as_ref() {
            return Ok(p.clone());
        }
        let p = proxy(self.instance()?)?;
        *kept = Some(p.clone());
        Ok(p)
    }

    fn call_err(&self, what: &str, e: zbus::Error) -> Error {
        Error::Unsupported(format!(
            "{} {what} of unit {}: {e}",
            self.manager_name(),
            self.unit
        ))
    }

    /// `resources` as unit properties; the systemd version is asked at most once.
    fn resource_props(
        &self,
        proxy: &zbus::blocking::Proxy<'_>,
        resources: &LinuxResources,
    ) -> Result<Vec<props::Prop>> {
        let mut version = None;
        props::resource_props(resources, || {
            *version.get_or_insert_with(|| {
                let v: std::result::Result<String, _> = proxy.get_property("Version");
                v.map(|v| systemd_version(&v)).unwrap_or(0)
            })
        })
    }
}

/// The manager object of `instance`.
fn proxy(instance: Instance) -> Result<zbus::blocking::Proxy<'static>> {
    let conn = instance.connect()?;
    zbus::blocking::Proxy::new_owned(
        conn,
        "org.freedesktop.systemd1",
        "/org/freedesktop/systemd1",
        "org.freedesktop.systemd1.Manager",
    )
    .map_err(|e| Error::Unsupported(format!("{} over D-Bus: {e}", instance.name())))
}

/// The files a delegated cgroup's owner needs: the kernel's list in
/// /sys/kernel/cgroup/delegate, or cgroups(7)'s initial three where it is missing.
fn delegated_files() -> Vec<String> {
    match std::fs::read_to_string("/sys/kernel/cgroup/delegate") {
        Ok(text) => text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
        Err(_) => ["cgroup.procs", "cgroup.subtree_control", "cgroup.threads"]
            .map(str::to_string)
            .to_vec(),
    }
}

/// "252.38-1~deb12u1" or "v245.4-1.fc32" → 252 or 245; 0 when unreadable.
fn systemd_version(v: &str) -> u32 {
    let v = v.trim_start_matches(['"', 'v']);
    let end = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    v[..end].parse().unwrap_or(0)
}

impl CgroupManager for SystemdManager {
    fn create(&self) -> Result<()> {
        // The scope is made with its first process, in `apply`.
        Ok(())
    }

    fn apply(&self, pid: i32) -> Result<()> {
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if !self.fs.dir().exists() {
            let mut props: Vec<(&str, Value)> = vec![
                (
                    "Description",
                    Value::from(format!("berth container {}", self.unit)),
                ),
                ("Slice", Value::from(self.slice.as_str())),
                ("Delegate", Value::from(true)),
                ("DefaultDependencies", Value::from(false)),
                ("PIDs", Value::from(vec![pid as u32])),
                // As runc: the accounting the cgroupfs driver would have.
                ("MemoryAccounting", Value::from(true)),
                ("CPUAccounting", Value::from(true)),
                ("IOAccounting", Value::from(true)),
                ("TasksAccounting", Value::from(true)),
            ];
            let proxy = self.manager()?;
            if let Some(res) = &pending {
                props.extend(self.resource_props(&proxy, res)?);
            }
            job::start_transient(&proxy, &self.unit, props)?;
            // The finished job has moved the pid; a short check that it is there.
            let want = self
                .fs
                .dir()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let deadline = Instant::now() + Duration::from_secs(2);
            loop {
                let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
                if cg
                    .lines()
                    .any(|l| l.starts_with("0::") && l.ends_with(&format!("/{want}")))
                {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(Error::Unsupported(format!(
                        "systemd did not move pid {pid} into {} in time",
                        self.unit
                    )));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        } else {
            self.fs.apply(pid)?;
        }
        if let Some(res) = pending {
            self.fs.set(&res)?;
        }
        Ok(())
    }

    fn set(&self, resources: &LinuxResources) -> Result<()> {
        if self.fs.dir().exists() {
            let proxy = self.manager()?;
            let props = self.resource_props(&proxy, resources)?;
            if !props.is_empty() {
                proxy
                    .call::<_, _, ()>("SetUnitProperties", &(self.unit.as_str(), true, props))
                    .map_err(|e| self.call_err("SetUnitProperties", e))?;
            }
            self.fs.set(resources)
        } else {
            *self.pending.lock().unwrap_or_else(|p| p.into_inner()) = Some(resources.clone());
            Ok(())
        }
    }

    fn delegate(&self, uid: u32) -> Result<()> {
        let dir = self.fs.dir();
        let owner = Some(nix::unistd::Uid::from_raw(uid));
        nix::unistd::chown(dir, owner, None)
            .map_err(|e| Error::io("chown", dir, std::io::Error::from(e)))?;
        for name in delegated_files() {
            let f = dir.join(&name);
            match nix::unistd::chown(&f, owner, None) {
                Ok(()) | Err(nix::errno::Errno::ENOENT) => {}
                Err(e) => return Err(Error::io("chown", f, std::io::Error::from(e))),
            }
        }
        Ok(())
    }

    fn pids(&self) -> Result<Vec<i32>> {
        self.fs.pids()
    }

    fn destroy(&self) -> Result<()> {
        // Kill what is left through cgroupfs, then let systemd remove the scope.
        let killed = self.fs.destroy();
        match self.manager() {
            Ok(proxy) => {
                let stop: std::result::Result<zbus::zvariant::OwnedObjectPath, _> =
                    proxy.call("StopUnit", &(self.unit.as_str(), "replace"));
                if let Err(e) = stop {
                    let text = e.to_string();
                    if !text.contains("NoSuchUnit") && !text.contains("not loaded") {
                        tracing::warn!("{}", self.call_err("StopUnit", e));
                    }
                }
                let _: std::result::Result<(), _> =
                    proxy.call("ResetFailedUnit", &(self.unit.as_str(),));
            }
            // The cgroup is gone through cgroupfs already; systemd drops a scope left
            // without processes by itself. Not a reason to fail the delete.
            Err(e) => tracing::warn!(
                "cannot reach the {} to stop unit {}: {e}",
                self.manager_name(),
                self.unit
            ),
        }
        // The directory goes with the unit; a removal that raced it is not an error.
        match killed {
            Err(Error::Io { ref source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Ok(())
            }
            other => other,
        }
    }

    fn state(&self) -> CgroupState {
        let mut s = self.fs.state();
        s.driver = "systemd".into();
        s.unit = Some(self.unit.clone());
        if let Some(Instance::User { uid }) = self.instance {
            s.user_manager_uid = Some(uid);
        }
        s
    }

    fn freeze(&self, frozen: bool) -> Result<()> {
        self.fs.freeze(frozen)
    }

    fn frozen(&self) -> Result<bool> {
        self.fs.frozen()
    }

    fn stats(&self) -> Result<crate::Stats> {
        self.fs.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_path_forms() {
        assert_eq!(
            parse_path(Some("system.slice:docker:abc"), "x", "system.slice").unwrap(),
            ("system.slice".into(), "docker-abc.scope".into())
        );
        assert_eq!(
            parse_path(None, "c1", "system.slice").unwrap(),
            ("system.slice".into(), "berth-c1.scope".into())
        );
        assert_eq!(
            parse_path(Some(":libpod:abc"), "x", "system.slice").unwrap(),
            ("system.slice".into(), "libpod-abc.scope".into())
        );
        // A user manager's default slice (rootless), as runc's.
        assert_eq!(
            parse_path(Some(":libpod:abc"), "x", "user.slice").unwrap(),
            ("user.slice".into(), "libpod-abc.scope".into())
        );
        assert_eq!(
            parse_path(None, "c1", "user.slice").unwrap(),
            ("user.slice".into(), "berth-c1.scope".into())
        );
        assert!(parse_path(Some("/not/systemd"), "x", "system.slice").is_err());
        assert!(parse_path(Some("a:b"), "x", "system.slice").is_err());
        assert!(parse_path(Some("system.slice:x:../y"), "x", "system.slice").is_err());
    }

    /// A rootless container's state written before the user manager's uid was
    /// recorded still loads, and asks nothing of the bus to do so.
    #[test]
    fn old_rootless_state_without_the_uid_loads() {
        let old = r#"{"driver":"systemd","paths":{"":"/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/user.slice/berth-x.scope"},"unit":"berth-x.scope","rootless":true}"#;
        let state: CgroupState = serde_json::from_str(old).expect("old state parses");
        assert_eq!(state.user_manager_uid, None);
        let m = SystemdManager::from_state(&state).expect("loads without a bus");
        assert_eq!(m.instance, None);
        let again = m.state();
        assert_eq!(again.user_manager_uid, None);
        assert!(!serde_json::to_string(&again)
            .expect("json")
            .contains("user_manager_uid"));
        assert_eq!(again.unit.as_deref(), Some("berth-x.scope"));
    }

    /// The uid is kept from state to state, and a root container's is not written.
    #[test]
    fn the_user_manager_uid_is_recorded() {
        let new = r#"{"driver":"systemd","paths":{"":"/sys/fs/cgroup/u/berth-y.scope"},"unit":"berth-y.scope","rootless":true,"user_manager_uid":20950}"#;
        let state: CgroupState = serde_json::from_str(new).expect("parses");
        let m = SystemdManager::from_state(&state).expect("loads");
        assert_eq!(m.instance, Some(Instance::User { uid: 20950 }));
        assert_eq!(m.state().user_manager_uid, Some(20950));
        let system = r#"{"driver":"systemd","paths":{"":"/sys/fs/cgroup/system.slice/berth-z.scope"},"unit":"berth-z.scope"}"#;
        let m = SystemdManager::from_state(&serde_json::from_str(system).expect("parses"))
            .expect("loads");
        assert_eq!(m.instance, Some(Instance::System));
        assert_eq!(m.state().user_manager_uid, None);
    }

    /// A `delete` whose user manager cannot be reached (no such user's bus here)
    /// removes what it can and succeeds, warning instead of failing.
    #[test]
    fn destroy_without_a_reachable_manager_succeeds() {
        let dir = std::env::temp_dir().join(format!(
            "berth-systemd-unreachable-{}/berth-u.scope",
            std::process::id()
        ));
        let state = CgroupState {
            driver: "systemd".into(),
            paths: [(String::new(), dir)].into_iter().collect(),
            created: Vec::new(),
            unit: Some("berth-u.scope".into()),
            shared: false,
            rootless: true,
            // No manager of this uid runs anywhere.
            user_manager_uid: Some(4_294_967_000),
        };
        let m = SystemdManager::from_state(&state).expect("loads");
        m.destroy().expect("delete goes on without the manager");
    }

    #[test]
    fn systemd_versions() {
        assert_eq!(systemd_version("252.38-1~deb12u1"), 252);
        assert_eq!(systemd_version("v245.4-1.fc32"), 245);
        assert_eq!(systemd_version("\"v239\""), 239);
        assert_eq!(systemd_version("unknown"), 0);
    }

    #[test]
    fn slice_directories_nest() {
        let root = Path::new("/sys/fs/cgroup");
        assert_eq!(
            unit_dir(root, "machine-pod-x.slice", "libpod-1.scope"),
            Path::new(
                "/sys/fs/cgroup/machine.slice/machine-pod.slice/machine-pod-x.slice/libpod-1.scope"
            )
        );
        assert_eq!(
            unit_dir(root, "system.slice", "berth-c.scope"),
            Path::new("/sys/fs/cgroup/system.slice/berth-c.scope")
        );
    }
}
