//! The entry point: a state directory (runc's `--root`) and the containers in it.

use crate::bundle::{LoadedBundle, SpecBundle};
use crate::console::Console;
use crate::container::Container;
use crate::error::{Error, Result};
use crate::stdio::Stdio;
use std::path::{Path, PathBuf};

/// runc's default is /run/runc; berth keeps its own.
pub const DEFAULT_ROOT: &str = "/run/berth";

/// Options of `create` (runc's flags, and the embedder's stdio).
#[derive(Debug, Default)]
pub struct CreateOptions {
    /// `--pid-file`: written with the init's pid (decimal, no newline) once created.
    pub pid_file: Option<PathBuf>,
    /// Where the pty master goes when `process.terminal` is true (runc's
    /// `--console-socket`, or back to the caller). Required with a terminal, refused
    /// without one.
    pub console: Option<Console>,
    /// `--no-pivot`.
    pub no_pivot: bool,
    /// `--no-new-keyring`: stay in the caller's session keyring.
    pub no_new_keyring: bool,
    /// `--preserve-fds N`: fds 3..3+N of the caller are passed to the process as they
    /// are.
    pub preserve_fds: u32,
    /// The init's stdin, stdout and stderr (inherited from the caller by default).
    /// The createContainer and startContainer hooks, which the init runs, get them too.
    pub stdio: Stdio,
    /// Where to record the per-phase timing of this create (see [`crate::trace`]);
    /// `None` (the default) records nothing and costs nothing.
    pub trace: Option<crate::TraceSink>,
}

/// A state directory holding containers by id.
#[derive(Debug, Clone)]
pub struct Runtime {
    root: PathBuf,
    systemd_cgroup: bool,
    rootless_cgroups: bool,
}

impl Runtime {
    /// Opens (creating if needed, mode 0700) the state directory.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|e| Error::io("create state root", &root, e))?;
        Ok(Runtime {
            root,
            systemd_cgroup: false,
            rootless_cgroups: false,
        })
    }

    /// runc's `--systemd-cgroup`: new containers get a transient systemd scope
    /// (`linux.cgroupsPath` is then `slice:prefix:name`). cgroup v2 hosts only.
    pub fn with_systemd_cgroup(mut self, on: bool) -> Self {
        self.systemd_cgroup = on;
        self
    }

    /// runc's rootless cgroup manager (`--rootless`, on by default for a caller that is
    /// not host root): new containers leave out the cgroups the caller cannot create
    /// or join, without `linux.cgroupsPath` (a path that is asked for must work); a
    /// limit for a left-out controller fails with runc's "container could not join or
    /// create cgroup", and device rules that cannot be written are skipped.
    pub fn with_rootless_cgroups(mut self, on: bool) -> Self {
        self.rootless_cgroups = on;
        self
    }

    /// The state directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates container `id` from the bundle directory (`config.json` and the rootfs
    /// it names): on return the init is blocked before the user program, status
    /// `created`, and it is a child of the calling process (see [`Container::wait_handle`]).
    pub fn create(&self, id: &str, bundle: &Path, options: &CreateOptions) -> Result<Container> {
        let bundle = LoadedBundle::load(bundle, options.trace.as_ref())?;
        self.create_loaded(id, bundle, options)
    }

    /// Creates container `id` from a bundle [`LoadedBundle::load`] read: the rest of
    /// [`Runtime::create`].
    pub fn create_loaded(
        &self,
        id: &str,
        bundle: LoadedBundle,
        options: &CreateOptions,
    ) -> Result<Container> {
        crate::spawn::create(self, id, bundle.0, false, options)
    }

    /// Creates container `id` from a spec held in memory and its rootfs, with no
    /// config.json read. What is recorded as the bundle (in the state, and given to
    /// hooks) is [`SpecBundle::bundle_dir`] if set; otherwise the container's own
    /// directory in the state root, where the library then writes a `config.json` of
    /// the spec (with `root.path` set to the rootfs), for hooks that read
    /// `<bundle>/config.json`. Otherwise as [`Runtime::create`].
    pub fn create_from_spec(
        &self,
        id: &str,
        spec: SpecBundle,
        options: &CreateOptions,
    ) -> Result<Container> {
        crate::id::validate_id(id)?;
        let own_dir = spec.bundle_dir().is_none();
        let bundle = spec.into_bundle(&self.container_dir(id))?;
        crate::spawn::create(self, id, bundle, own_dir, options)
    }

    /// Loads an existing container.
    pub fn load(&self, id: &str) -> Result<Container> {
        Container::load(self, id)
    }

    /// Every container in the state directory, by id order. Entries that cannot be read
    /// are skipped (a concurrent delete may remove them while listing).
    pub fn list(&self) -> Result<Vec<Container>> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("read state root", &self.root, e)),
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids.iter().filter_map(|id| self.load(id).ok()).collect())
    }

    /// Removes what is left of container `id`'s state directory when [`Runtime::load`]
    /// cannot load it (a create that died before its state was written, a state file
    /// that is corrupt): first the rootfs bind of an interrupted restore, then the
    /// directory, without ever entering a mount point below it (a live restore's bind
    /// is refused with `EXDEV`, never removed through). A missing directory is not an
    /// error. It removes no cgroup and kills no process: only the state names those.
    pub fn remove_leftover(&self, id: &str) -> Result<()> {
        crate::id::validate_id(id)?;
        let dir = self.container_dir(id);
        if !crate::criu::release_criu_root(&dir) {
            return Err(Error::io(
                "detach the rootfs bind of an interrupted restore",
                dir.join("criu-root"),
                std::io::Error::from_raw_os_error(libc::EBUSY),
            ));
        }
        crate::state_dir::remove(&dir).map_err(|e| Error::io("remove state directory", &dir, e))
    }

    /// The directory of one container.
    pub(crate) fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Makes the directory of a new container; a taken id is [`Error::AlreadyExists`].
    pub(crate) fn new_container_dir(&self, id: &str) -> Result<PathBuf> {
        let dir = self.container_dir(id);
        match std::fs::create_dir(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Error::AlreadyExists(id.to_string()))
            }
            Err(e) => Err(Error::io("create state directory", &dir, e)),
        }
    }

    /// Creates the cgroup of a new container and writes `spec`'s resources to it.
    pub(crate) fn setup_cgroup(
        cgroup: &dyn berth_cgroups::CgroupManager,
        spec: &oci_spec::runtime::Spec,
    ) -> Result<()> {
        cgroup.create()?;
        if let Some(res) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()) {
            cgroup.set(res)?;
        }
        Ok(())
    }

    /// runc's checks on a container's cgroup before anything is made: a frozen cgroup
    /// is refused (the container could never start in it: `run` would hang), and one
    /// that already holds processes is used with runc's warning. Returns whether the
    /// cgroup is shared (held processes), so that `delete` leaves those alone.
    pub(crate) fn check_cgroup(cgroup: &dyn berth_cgroups::CgroupManager) -> Result<bool> {
        let state = cgroup.state();
        if cgroup.frozen()? {
            let path = ["freezer", ""]
                .iter()
                .find_map(|k| state.paths.get(*k))
                .or_else(|| state.paths.values().next())
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            return Err(Error::CgroupInUse {
                path,
                reason: "container's cgroup unexpectedly frozen".into(),
            });
        }
        let n = cgroup.pids()?.len();
        if n > 0 {
            tracing::warn!("container's cgroup is not empty: {n} process(es) found");
        }
        Ok(n > 0)
    }

    /// The cgroup manager for a new container of `spec` (its `linux.cgroupsPath`, this
    /// runtime's driver); nothing is created yet.
    pub(crate) fn cgroup_for(
        &self,
        spec: &oci_spec::runtime::Spec,
        id: &str,
    ) -> Result<Box<dyn berth_cgroups::CgroupManager>> {
        let path = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone());
        if self.rootless_cgroups {
            return Ok(berth_cgroups::new_rootless_manager(
                path.as_ref().and_then(|p| p.to_str()),
                id,
                self.systemd_cgroup,
            )?);
        }
        Ok(berth_cgroups::new_manager_with(
            path.as_ref().and_then(|p| p.to_str()),
            id,
            self.systemd_cgroup,
        )?)
    }
}
