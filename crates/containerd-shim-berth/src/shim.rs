//! The shim's own lifecycle, as containerd drives any v2 shim: `start` (spawn the
//! server, or find the one already serving this pod, and print its address),
//! `delete` (clean up after a shim that died), and serving until Shutdown.

use crate::service::Service;
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::{Config, DeleteResponse, ExitSignal, Flags, StartOpts};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The annotation the CRI plugin puts on every container of a pod (its sandbox's
/// id): containers carrying the same one share a shim, as with runc's v2 shim.
const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";

/// What containerd said on the command line, and the exit signal of the server.
pub struct BerthShim {
    namespace: String,
    id: String,
    bundle: String,
    exit: Arc<ExitSignal>,
}

/// The shim that serves container `id` whose bundle (config.json) is `bundle`: the
/// pod's sandbox id when the container belongs to one, else its own id.
fn grouping(bundle: &Path, id: &str) -> String {
    let spec = std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    spec.as_ref()
        .and_then(|s| s.get("annotations")?.get(SANDBOX_ID)?.as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or(id)
        .to_string()
}

impl containerd_shim::Shim for BerthShim {
    type T = Service;

    fn new(_runtime_id: &str, args: &Flags, _config: &mut Config) -> Self {
        BerthShim {
            namespace: args.namespace.clone(),
            id: args.id.clone(),
            bundle: args.bundle.clone(),
            exit: Arc::new(ExitSignal::default()),
        }
    }

    /// containerd runs `start` in the new container's bundle directory.
    fn start_shim(&mut self, opts: StartOpts) -> Result<String, containerd_shim::Error> {
        let cwd = std::env::current_dir()
            .map_err(|e| containerd_shim::Error::Other(format!("current directory: {e}")))?;
        let group = grouping(&cwd, &opts.id);
        // The server of this group, if one already serves it, answers and the new
        // process exits (the crate's spawn does so when the socket is taken).
        let (_pid, address) = containerd_shim::spawn(opts, &group, Vec::new())?;
        // containerd reads it back to reconnect after a restart of its own.
        std::fs::write(cwd.join("address"), &address).map_err(|e| {
            containerd_shim::Error::Other(format!("write {}: {e}", cwd.join("address").display()))
        })?;
        Ok(address)
    }

    /// After the server is gone (killed, crashed): delete the container by force
    /// and unmount its rootfs. containerd records the exit given here.
    fn delete_shim(&mut self) -> Result<DeleteResponse, containerd_shim::Error> {
        let bundle = if self.bundle.is_empty() {
            std::env::current_dir().unwrap_or_default()
        } else {
            PathBuf::from(&self.bundle)
        };
        let options = crate::options::load(&bundle);
        let root = crate::options::root(&options, &self.namespace);
        let mut pid = 0;
        if let Ok(runtime) = berth_runtime::Runtime::new(root) {
            if let Ok(c) = runtime.load(&self.id) {
                pid = c.pid();
                if let Err(e) = c.delete(true) {
                    log::warn!("delete {}: {e}", self.id);
                }
            }
        }
        crate::mounts::unmount_rootfs(&bundle.join("rootfs"));
        Ok(DeleteResponse {
            pid: pid.max(0) as u32,
            exit_status: 128 + libc::SIGKILL as u32,
            exited_at: Some(crate::events::timestamp(std::time::SystemTime::now())).into(),
            ..Default::default()
        })
    }

    fn wait(&mut self) {
        self.exit.wait();
    }

    fn create_task_service(&self, publisher: RemotePublisher) -> Self::T {
        Service::new(&self.namespace, publisher, Arc::clone(&self.exit))
    }
}

#[cfg(test)]
mod tests {
    use super::grouping;

    #[test]
    fn groups_by_the_sandbox_annotation() {
        let dir = std::env::temp_dir().join(format!("berth-shim-group-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(grouping(&dir, "c1"), "c1", "no config.json: its own id");
        std::fs::write(
            dir.join("config.json"),
            r#"{"annotations":{"io.kubernetes.cri.sandbox-id":"pod1"}}"#,
        )
        .unwrap();
        assert_eq!(grouping(&dir, "c1"), "pod1");
        std::fs::write(dir.join("config.json"), r#"{"annotations":{}}"#).unwrap();
        assert_eq!(grouping(&dir, "c1"), "c1");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
