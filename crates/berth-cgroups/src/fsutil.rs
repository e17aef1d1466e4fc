//! Small cgroupfs file operations shared by the drivers: one open/write/close per value,
//! directory creation that records what it made, and kill-then-rmdir teardown.

use crate::error::{Error, Result};
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Writes `value` to `dir/file`.
pub(crate) fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    std::fs::write(&path, value).map_err(|e| Error::io("write", path, e))
}

/// Reads `dir/file`, trimmed.
pub(crate) fn read(dir: &Path, file: &str) -> Result<String> {
    let path = dir.join(file);
    std::fs::read_to_string(&path)
        .map(|s| s.trim().to_string())
        .map_err(|e| Error::io("read", path, e))
}

/// Whether `dir/file` exists (a control file the kernel may or may not have).
pub(crate) fn exists(dir: &Path, file: &str) -> bool {
    dir.join(file).exists()
}

/// Whether an error is "no such file" (a control file this kernel lacks).
pub(crate) fn is_not_found(err: &Error) -> bool {
    matches!(err, Error::Io { source, .. } if source.kind() == ErrorKind::NotFound)
}

/// The errno of an I/O error, if any.
pub(crate) fn errno(err: &Error) -> Option<i32> {
    match err {
        Error::Io { source, .. } => source.raw_os_error(),
        _ => None,
    }
}

/// Creates `dir` and any missing parents below `mount_point`, pushing each directory it
/// made to `created` (shallowest first). The fast path is one mkdir.
pub(crate) fn mkdir_tracked(
    mount_point: &Path,
    dir: &Path,
    created: &mut Vec<PathBuf>,
) -> Result<()> {
    match std::fs::create_dir(dir) {
        Ok(()) => {
            created.push(dir.to_path_buf());
            return Ok(());
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("mkdir", dir, e)),
    }
    let rel = dir
        .strip_prefix(mount_point)
        .map_err(|_| Error::InvalidPath {
            path: dir.display().to_string(),
            reason: format!(
                "not below the hierarchy mounted at {}",
                mount_point.display()
            ),
        })?;
    let mut cur = mount_point.to_path_buf();
    for comp in rel.components() {
        cur.push(comp);
        match std::fs::create_dir(&cur) {
            Ok(()) => created.push(cur.clone()),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io("mkdir", &cur, e)),
        }
    }
    Ok(())
}

/// Pids listed in `dir/cgroup.procs` (thread ids of `cgroup.threads` in a threaded
/// cgroup); a missing directory lists none.
pub(crate) fn procs(dir: &Path) -> Result<Vec<i32>> {
    let mut path = dir.join("cgroup.procs");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        // A threaded cgroup (v2) lists threads only. Their ids still name the
        // processes for kill(2), which signals a whole thread group.
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
            path = dir.join("cgroup.threads");
            std::fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?
        }
        Err(e) => return Err(Error::io("read", path, e)),
    };
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.trim().parse::<i32>().map_err(|e| Error::Parse {
                path: path.clone(),
                reason: format!("pid {l:?}: {e}"),
            })
        })
        .collect()
}

/// Sends SIGKILL to everything listed in `dirs` (and their sub-cgroups) until they are
/// empty or `timeout` passes. Never signals the caller itself.
pub(crate) fn kill_all(dirs: &[PathBuf], timeout: Duration) -> Result<()> {
    let me = std::process::id() as i32;
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        let mut any = false;
        for dir in dirs {
            for pid in procs_recursive(dir)? {
                if pid == me || pid <= 0 {
                    continue;
                }
                any = true;
                match kill(Pid::from_raw(pid), Signal::SIGKILL) {
                    Ok(()) | Err(Errno::ESRCH) => {}
                    Err(e) => {
                        return Err(Error::io(
                            "kill",
                            dir.join("cgroup.procs"),
                            std::io::Error::from(e),
                        ));
                    }
                }
            }
        }
        if !any {
            return Ok(());
        }
        if Instant::now() >= deadline {
            tracing::warn!(dirs = ?dirs, "processes still listed after SIGKILL; removing what can be removed");
            return Ok(());
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Pids of `dir` and, only when it has sub-cgroups, of those too.
fn procs_recursive(dir: &Path) -> Result<Vec<i32>> {
    let mut pids = procs(dir)?;
    for sub in sub_cgroups(dir) {
        pids.extend(procs_recursive(&sub)?);
    }
    Ok(pids)
}

/// Child cgroup directories of `dir` (none when it is missing).
fn sub_cgroups(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .map(|e| e.path())
        .collect()
}

/// One rmdir of `dir`: true when it is gone (removed now, or missing), false when the
/// kernel refused (a task or a sub-cgroup is still there) or anything else failed;
/// the caller then takes the path that kills, waits and reports.
pub(crate) fn removed_if_empty(dir: &Path) -> bool {
    match std::fs::remove_dir(dir) {
        Ok(()) => true,
        Err(e) => e.kind() == ErrorKind::NotFound,
    }
}

/// Removes the cgroup `dir` (sub-cgroups first), retrying on EBUSY while the kernel
/// finishes tearing down exited tasks. A missing directory is fine.
pub(crate) fn remove_cgroup(dir: &Path, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY) | Some(libc::ENOTEMPTY)) => {
                for sub in sub_cgroups(dir) {
                    remove_cgroup(&sub, deadline.saturating_duration_since(Instant::now()))?;
                }
                if Instant::now() >= deadline {
                    return Err(Error::io("rmdir", dir, e));
                }
            }
            Err(e) => return Err(Error::io("rmdir", dir, e)),
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Removes the parents that `create` made (deepest first) where they are now empty.
pub(crate) fn remove_created_parents(created: &[PathBuf], leaves: &[PathBuf]) {
    for dir in created.iter().rev() {
        if leaves.contains(dir) {
            continue;
        }
        match std::fs::remove_dir(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => tracing::debug!(dir = %dir.display(), error = %e, "parent cgroup kept"),
        }
    }
}
