//! Persisted container state (`<root>/<id>/state.json`, written atomically with a
//! temporary file and rename) and the OCI state document derived from it.

use crate::error::{Error, Result};
use berth_cgroups::CgroupState;
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file name inside a container's directory.
pub(crate) const STATE_FILE: &str = "state.json";
/// The exec fifo: present while the container is `created`.
pub(crate) const EXEC_FIFO: &str = "exec.fifo";
/// Where the init writes why it failed between `start` and execve.
pub(crate) const EXEC_ERROR: &str = "exec.err";

/// OCI runtime status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Being created.
    Creating,
    /// Created; the user process has not started.
    Created,
    /// The user process runs.
    Running,
    /// Frozen.
    Paused,
    /// The init has exited.
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// The state document of `berth state`: the OCI fields plus runc's `rootfs`, `created`
/// and `owner`, in runc's field order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The OCI runtime spec version the state follows.
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    /// The container's id.
    pub id: String,
    /// The init's host pid (0 once stopped, as runc reports it).
    pub pid: i32,
    /// The container's status.
    pub status: Status,
    /// The bundle directory (for an in-memory create without one, the container's
    /// directory in the state root).
    pub bundle: PathBuf,
    /// The root filesystem's host path.
    pub rootfs: PathBuf,
    /// When it was created (RFC 3339, nanoseconds, UTC).
    pub created: String,
    /// The spec's annotations.
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
    /// The owner's user name (empty, as runc leaves it).
    pub owner: String,
}

/// What berth keeps on disk for a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Persisted {
    pub id: String,
    /// The init's host pid.
    pub pid: i32,
    /// The init's start time (field 22 of /proc/<pid>/stat), to tell a reused pid apart.
    pub pid_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 with nanoseconds, UTC, as runc writes it.
    pub created: String,
    pub owner: String,
    /// The config as it was at create time: later steps never re-read config.json.
    pub config: Spec,
    pub cgroup: Option<CgroupState>,
    /// Set once `create` has finished; a directory without it is a failed create.
    pub created_done: bool,
    /// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` was asked for: oci-spec cannot keep it in
    /// `config`, so it is kept here for the filters of exec'd processes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub seccomp_wait_killable_recv: bool,
    /// Without a mount namespace of its own: the rootfs bind in the runtime's mount
    /// namespace under which the container's mounts are, detached at delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_ns_mount: Option<crate::rootfs::SharedNsMount>,
    /// Without a mount namespace: the mount the rootfs was on before `create` bound
    /// it. While `shared_ns_mount` is not recorded yet (a create killed just after the
    /// bind), a mount stacked on it at the rootfs is that bind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_ns_under: Option<crate::rootfs::SharedNsMount>,
    /// Set by `restore` while CRIU runs in the runtime's mount namespace (a container
    /// sharing a mount with the host): CRIU's work directory, where a CRIU killed
    /// midway leaves its cgroup yard mounted; `delete` detaches it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub criu_work_dir: Option<PathBuf>,
}

impl Persisted {
    /// The state of a container being made from `bundle`: no init yet.
    pub(crate) fn new(id: &str, bundle: &crate::bundle::Bundle, cgroup: CgroupState) -> Self {
        Persisted {
            id: id.to_string(),
            pid: 0,
            pid_start_time: 0,
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            created: now_rfc3339(),
            owner: String::new(),
            config: bundle.spec.clone(),
            cgroup: Some(cgroup),
            created_done: false,
            seccomp_wait_killable_recv: bundle.seccomp_wait_killable_recv,
            shared_ns_mount: None,
            shared_ns_under: None,
            criu_work_dir: None,
        }
    }

    /// Writes `<dir>/state.json` atomically: the whole new text under a temporary name,
    /// then swapped in, so a reader (or a `delete` after a SIGKILL at any point) finds
    /// the old state or the new one, never a part.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join(STATE_FILE);
        // A name of this thread's own (its id is unique among live threads): two
        // writers (an `update` during `create`, say) never write into, or swap away,
        // each other's file.
        let tmp = dir.join(format!(".state.json.{}.tmp", nix::unistd::gettid()));
        let data = serde_json::to_vec(self).map_err(|e| Error::State {
            id: self.id.clone(),
            reason: format!("serialize: {e}"),
        })?;
        let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
        f.write_all(&data)
            .map_err(|e| Error::io("write", &tmp, e))?;
        drop(f);
        replace(&tmp, &path)
    }

    /// Reads `<dir>/state.json`.
    pub fn load(dir: &Path, id: &str) -> Result<Self> {
        let path = dir.join(STATE_FILE);
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(id.to_string()))
            }
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        Self::from_slice(&data, id, &path)
    }

    /// A state file's text; `path` (where it was read) is named by the error.
    pub fn from_slice(data: &[u8], id: &str, path: &Path) -> Result<Self> {
        serde_json::from_slice(data).map_err(|e| Error::State {
            id: id.to_string(),
            reason: format!("{}: {e}", path.display()),
        })
    }

    /// The OCI state with `status` as observed by the caller.
    pub fn to_state(&self, status: Status) -> State {
        State {
            oci_version: crate::OCI_VERSION.to_string(),
            id: self.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status,
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            owner: self.owner.clone(),
            annotations: self.config.annotations().clone().unwrap_or_default(),
        }
    }
}

/// RFC 3339 timestamp with nanoseconds in UTC, the format of runc's `created`.
pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Puts the file `tmp` in the place of `path`, atomically. An existing `path` is
/// swapped with `tmp` (`renameat2(RENAME_EXCHANGE)`) and the old text then unlinked,
/// rather than renamed over: on ext4, a rename over an existing file makes the kernel
/// allocate and start writing the new file's blocks at once (`auto_da_alloc`, a
/// guard for files meant to survive a power loss), about 0.2 ms per write on this VM
/// whose /run is on ext4, twice per `create`. A state directory describes live
/// processes and means nothing after a reboot. Where there is nothing to swap with
/// (`ENOENT`), or the swap is not available (`EINVAL`/`EOPNOTSUPP`: a file system
/// without it; `ENOSYS`/`EPERM`: a kernel or a seccomp profile, berth nested in a
/// container, without `renameat2`), a plain rename.
fn replace(tmp: &Path, path: &Path) -> Result<()> {
    use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
    match renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RenameFlags::RENAME_EXCHANGE) {
        Ok(()) => {
            // The new state is in place; an old text left under this thread's
            // temporary name (the unlink failed) goes with the directory.
            if let Err(e) = std::fs::remove_file(tmp) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %tmp.display(), error = %e, "replaced state not removed");
                }
            }
            Ok(())
        }
        Err(
            nix::errno::Errno::ENOENT
            | nix::errno::Errno::EINVAL
            | nix::errno::Errno::EOPNOTSUPP
            | nix::errno::Errno::ENOSYS
            | nix::errno::Errno::EPERM,
        ) => std::fs::rename(tmp, path).map_err(|e| Error::io("rename to state.json", tmp, e)),
        Err(e) => Err(Error::io("rename (exchange)", path, e.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state file written before the systemd driver recorded a rootless
    /// container's user manager uid loads, and its cgroup manager is rebuilt.
    #[test]
    fn old_state_file_of_a_rootless_systemd_container_loads() {
        let config = serde_json::to_value(Spec::default()).expect("spec json");
        let old = serde_json::json!({
            "id": "c1",
            "pid": 0,
            "pid_start_time": 0,
            "bundle": "/b",
            "rootfs": "/b/rootfs",
            "created": "2026-01-01T00:00:00.000000000Z",
            "owner": "",
            "config": config,
            "cgroup": {
                "driver": "systemd",
                "paths": {"": "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/user.slice/berth-c1.scope"},
                "unit": "berth-c1.scope",
                "rootless": true
            },
            "created_done": true
        });
        let text = serde_json::to_vec(&old).expect("json");
        let state = Persisted::from_slice(&text, "c1", Path::new("/x/state.json"))
            .expect("an old state file loads");
        let cgroup = state.cgroup.expect("cgroup");
        assert_eq!(cgroup.user_manager_uid, None);
        let manager = berth_cgroups::from_state(&cgroup).expect("manager from an old state");
        assert_eq!(manager.state().unit.as_deref(), Some("berth-c1.scope"));
    }

    /// Each save replaces state.json whole (the first by rename, the later ones by
    /// exchange) and leaves no temporary file behind; what is read back is the last.
    #[test]
    fn save_replaces_the_state_and_leaves_no_temporary_file() {
        let dir = std::env::temp_dir().join(format!("berth-state-save-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let bundle_json = serde_json::json!({
            "id": "s1", "pid": 0, "pid_start_time": 0, "bundle": "/b", "rootfs": "/b/rootfs",
            "created": "2026-01-01T00:00:00.000000000Z", "owner": "",
            "config": serde_json::to_value(Spec::default()).expect("spec json"),
            "created_done": false
        });
        let mut state = Persisted::from_slice(
            &serde_json::to_vec(&bundle_json).expect("json"),
            "s1",
            Path::new("/x/state.json"),
        )
        .expect("state");
        for pid in [0, 41, 42] {
            state.pid = pid;
            state.save(&dir).expect("save");
            let names: Vec<_> = std::fs::read_dir(&dir)
                .expect("list")
                .map(|e| e.expect("entry").file_name())
                .collect();
            assert_eq!(names, [STATE_FILE], "after saving pid {pid}");
            assert_eq!(Persisted::load(&dir, "s1").expect("load").pid, pid);
        }
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    /// Writers on two threads at once: every load in between reads a whole state,
    /// no save fails, and no temporary file is left.
    #[test]
    fn concurrent_saves_never_fail_or_leave_a_part() {
        let dir = std::env::temp_dir().join(format!("berth-state-race-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let json = serde_json::json!({
            "id": "r1", "pid": 0, "pid_start_time": 0, "bundle": "/b", "rootfs": "/b/rootfs",
            "created": "2026-01-01T00:00:00.000000000Z", "owner": "",
            "config": serde_json::to_value(Spec::default()).expect("spec json"),
            "created_done": false
        });
        let state = Persisted::from_slice(
            &serde_json::to_vec(&json).expect("json"),
            "r1",
            Path::new("/x/state.json"),
        )
        .expect("state");
        std::thread::scope(|scope| {
            for base in [1000, 2000] {
                let (dir, mut state) = (&dir, state.clone());
                scope.spawn(move || {
                    for i in 0..200 {
                        state.pid = base + i;
                        state.save(dir).expect("save");
                        let pid = Persisted::load(dir, "r1").expect("a whole state").pid;
                        assert!((1000..2200).contains(&pid), "loaded pid {pid}");
                    }
                });
            }
        });
        let names: Vec<_> = std::fs::read_dir(&dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, [STATE_FILE]);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
