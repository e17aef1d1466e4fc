//! `checkpoint`: `criu dump` (or `pre-dump`) of the init's process tree into the image
//! directory, with descriptors.json beside it; the container is deleted afterwards
//! unless it is left running.

use super::{
    check, config_file, external_mounts, failed, joined_netns, rootfs_of, run_captured,
    CriuOptions, DESCRIPTORS, EXT_NETNS,
};
use crate::container::Container;
use crate::error::{Error, Result};
use crate::state::Status;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Options of `checkpoint` (runc's flags).
#[derive(Debug, Clone, Default)]
pub struct CheckpointOptions {
    /// What restore shares.
    pub criu: CriuOptions,
    /// `--parent-path`: the images of a previous pre-dump.
    pub parent_path: Option<PathBuf>,
    /// `--leave-running`.
    pub leave_running: bool,
    /// `--pre-dump`: memory only; the container keeps running.
    pub pre_dump: bool,
    /// `--page-server ADDRESS:PORT`.
    pub page_server: Option<(String, u16)>,
    /// `--status-fd`: CRIU writes \0 to it once lazy-pages is ready.
    pub status_fd: Option<i32>,
}

impl Container {
    /// Dumps the container's processes into `options.criu.image_dir`. A running or
    /// paused container only; unless `leave_running` or `pre_dump`, it is deleted after
    /// a successful dump (its processes are gone).
    pub fn checkpoint(self, options: &CheckpointOptions) -> Result<()> {
        self.dump(options)?;
        if !options.leave_running && !options.pre_dump {
            self.delete(true)?;
        }
        Ok(())
    }

    /// The dump of [`Container::checkpoint`] without the delete that follows it: unless
    /// `leave_running` or `pre_dump`, the container's processes are gone on success and
    /// the caller deletes the container (a shim, once it has reported the init's exit).
    pub fn dump(&self, options: &CheckpointOptions) -> Result<()> {
        let status = self.status();
        if !matches!(status, Status::Running | Status::Paused) {
            return Err(
                self.bad_status(status, "cannot checkpoint a container that is not running")
            );
        }
        let mut o = options.criu.clone();
        o.config = config_file(self.config());
        let o = &o;
        for d in [Some(o.image_dir.as_path()), o.work_dir.as_deref()]
            .into_iter()
            .flatten()
        {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(d)
                .map_err(|e| Error::io("create checkpoint directory", d, e))?;
        }
        let pid = self.pid();
        let external_stdio = write_descriptors(&o.image_dir, pid)?;
        let spec = self.config();
        let verb = if options.pre_dump { "pre-dump" } else { "dump" };
        let mut cmd = Command::new(&o.criu);
        cmd.stdin(std::process::Stdio::null())
            .args([verb, "-t", &pid.to_string()])
            .arg("--root")
            .arg(rootfs_of(spec, self.bundle()));
        o.common_args(&mut cmd, verb);
        for (dest, _) in external_mounts(spec, Some(&rootfs_of(spec, self.bundle()))) {
            cmd.arg("--ext-mount-map").arg(format!("{dest}:{dest}"));
        }
        for key in &external_stdio {
            cmd.arg("--external").arg(key);
        }
        if let Some(ns) = joined_netns(spec) {
            let ino = std::fs::metadata(&ns)
                .map_err(|e| Error::io("stat network namespace", &ns, e))?
                .ino();
            cmd.arg("--external").arg(format!("net[{ino}]:{EXT_NETNS}"));
        }
        if let Some(parent) = &options.parent_path {
            cmd.arg("--prev-images-dir").arg(parent);
        }
        if options.leave_running || options.pre_dump {
            cmd.arg("--leave-running");
        }
        // Pages unchanged since the parent's images are only skipped with memory
        // tracking (CRIU's page_in_parent), as runc sets it with a parent.
        if options.pre_dump || options.parent_path.is_some() {
            cmd.arg("--track-mem");
        }
        cmd.args(page_server_args(options));
        // A paused container is frozen: CRIU must find it so and leave it so.
        if status == Status::Paused {
            if let Some(dir) = self.freezer_dir()? {
                cmd.arg("--freeze-cgroup").arg(dir);
            }
        }
        let (ok, text) = run_captured(&mut cmd, None, "dump")?;
        if !ok {
            // Whether CRIU can work here at all says more than its dump log.
            check(&o.criu)?;
            return Err(failed(verb, self.id(), o, &text));
        }
        Ok(())
    }

    /// The cgroup directory whose freezer holds the container (v1 freezer or v2).
    fn freezer_dir(&self) -> Result<Option<PathBuf>> {
        let Some(state) = &self.state.cgroup else {
            return Ok(None);
        };
        Ok(state
            .paths
            .get("freezer")
            .or_else(|| state.paths.get(""))
            .cloned())
    }
}

/// CRIU's flags for `--page-server ADDRESS:PORT` and `--status-fd`. Without lazy
/// pages the dump sends its pages to a page server already listening there
/// (`--page-server`). With lazy pages the dump is itself the page server: it listens
/// on ADDRESS:PORT for the lazy-pages daemon of the restoring side, and says on the
/// status fd when it is ready; `--page-server` would make it connect there instead
/// and fail with nothing listening (CRIU's RPC, which runc uses, drops it the same
/// way when lazy pages are asked for).
fn page_server_args(options: &CheckpointOptions) -> Vec<String> {
    let mut args = Vec::new();
    let lazy = options.criu.lazy_pages;
    if let Some((addr, port)) = &options.page_server {
        if !lazy {
            args.push("--page-server".to_string());
        }
        args.extend([
            "--address".to_string(),
            addr.clone(),
            "--port".to_string(),
            port.to_string(),
        ]);
    }
    if let Some(fd) = options.status_fd {
        args.push(format!("--status-fd={fd}"));
    }
    args
}

/// runc's descriptors.json: where the init's stdio pointed (`pipe:[N]`, a path, ...).
/// A stdio fd on a fifo or regular file of the host (a shim's fifo, a log file) is on
/// a mount the container's mount namespace does not have, where CRIU cannot find it
/// ("Can't lookup mount"): it is recorded as CRIU's external `file[MNT_ID:INODE]`
/// instead of its path, and returned to be passed as `--external` to the dump; restore
/// hands the new stream in its place (`--inherit-fd`), as for a pipe. A file on one of
/// the container's own mounts (`exec >/var/log/app.log`) is left to CRIU, which dumps
/// and reopens it by path.
fn write_descriptors(image: &Path, pid: i32) -> Result<Vec<String>> {
    let mut external = Vec::new();
    let own_mounts = mount_ids(pid);
    let fds: Vec<String> = (0..3)
        .map(|fd| {
            let link = std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "/dev/null".into());
            match host_file_key(pid, fd, &link).filter(|(mnt, _)| !own_mounts.contains(mnt)) {
                Some((_, key)) => {
                    external.push(key.clone());
                    key
                }
                None => link,
            }
        })
        .collect();
    let path = image.join(DESCRIPTORS);
    let text = serde_json::to_string(&fds).unwrap_or_else(|_| "[]".into());
    std::fs::write(&path, text).map_err(|e| Error::io("write", &path, e))?;
    Ok(external)
}

/// The ids of the mounts in `pid`'s mount namespace (the first field of each line of
/// its mountinfo); empty if it cannot be read.
fn mount_ids(pid: i32) -> std::collections::HashSet<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').next()?.parse().ok())
        .collect()
}

/// The mount id and CRIU's key for fd `fd` of `pid` (whose link is `link`) when it is
/// a fifo or a regular file: `file[MNT_ID:INODE]`, both in hex, as CRIU prints them.
fn host_file_key(pid: i32, fd: i32, link: &str) -> Option<(u64, String)> {
    use std::os::unix::fs::FileTypeExt;
    if !link.starts_with('/') {
        return None;
    }
    let meta = std::fs::metadata(format!("/proc/{pid}/fd/{fd}")).ok()?;
    if !(meta.file_type().is_fifo() || meta.is_file()) {
        return None;
    }
    let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
    let mnt_id: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))?
        .trim()
        .parse()
        .ok()?;
    Some((mnt_id, format!("file[{mnt_id:x}:{:x}]", meta.ino())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lazy_dump_listens_as_the_page_server() {
        let mut o = CheckpointOptions {
            page_server: Some(("0.0.0.0".into(), 27277)),
            ..Default::default()
        };
        assert_eq!(
            page_server_args(&o),
            ["--page-server", "--address", "0.0.0.0", "--port", "27277"]
        );
        o.criu.lazy_pages = true;
        o.status_fd = Some(3);
        assert_eq!(
            page_server_args(&o),
            ["--address", "0.0.0.0", "--port", "27277", "--status-fd=3"]
        );
        o.page_server = None;
        o.status_fd = None;
        assert!(page_server_args(&o).is_empty());
    }
}
