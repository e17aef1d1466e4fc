//! Serializing the verbs that change one container: an `flock` on the container's
//! directory in the state root.
//!
//! `delete`, `pause` and `update` take it exclusively for their whole run; `start`
//! exclusively while it checks the status and releases the init, then shared while
//! its poststart hooks run; `kill` and `resume` shared; `exec` shared until its
//! process is in the container's cgroup (so a `delete` after it kills that process
//! too), except into a paused container (`--ignore-paused`), where the process waits
//! in the frozen cgroup until a resume. Long waits are never under it: not `run`'s wait for the container,
//! not an exec'd process's life, not `start`'s wait for the init to execve. `create`
//! takes none (its init is a clone of the creating process and would inherit it
//! until execve): whatever it has made is recorded before it is made, so a `delete`
//! meanwhile, or after it was killed, still finds all of it. `state`, `list`, `ps`
//! and `events` read the state file, which is replaced atomically, and take none.
//!
//! A directory removed by a `delete` the waiter queued behind (and perhaps made
//! again by a new `create` of the same id) is told apart by its inode: the waiter
//! then gets [`Error::NotFound`], as it would had it come later.

use crate::error::{Error, Result};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A held lock on one container's directory; released when dropped.
#[derive(Debug)]
pub(crate) struct IdLock {
    _dir: File,
}

/// Locks the directory `dir` of container `id` (blocking until it is free) and
/// checks that it is still that container's: the same directory, with its state file.
pub(crate) fn lock(dir: &Path, id: &str, exclusive: bool) -> Result<IdLock> {
    // Opened close-on-exec (std's default): no hook or child keeps the lock.
    let f = File::open(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound(id.to_string()),
        _ => Error::io("open", dir, e),
    })?;
    let op = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    };
    loop {
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
            break;
        }
        let e = nix::Error::last();
        if e != nix::Error::EINTR {
            return Err(Error::sys("flock", dir.display(), e));
        }
    }
    let held = f.metadata().map_err(|e| Error::io("stat", dir, e))?;
    let same =
        std::fs::metadata(dir).is_ok_and(|now| now.ino() == held.ino() && now.dev() == held.dev());
    if !same || !dir.join(crate::state::STATE_FILE).exists() {
        return Err(Error::NotFound(id.to_string()));
    }
    Ok(IdLock { _dir: f })
}
