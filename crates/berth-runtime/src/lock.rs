//! Serializing the verbs that change one container: an `flock` on the container's
//! directory in the state root.
//!
//! `delete`, `pause` and `update` take it exclusively for their whole run; `start`
//! exclusively while it checks the status and releases the init; `kill` and `resume`
//! shared; `exec` shared until its
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
//! then gets [`Error::NotFound`], as it would had it come later. The same holds for a
//! lock released and taken again on the same descriptor ([`IdLock::relock`]): `start`
//! does so after the init's execve, and never acts on a new container of the same id.
//!
//! `start`'s poststart hooks run under a second lock, a shared `flock` on
//! `poststart.lock` in the directory, taken while the directory lock is held (so a
//! `delete` comes wholly before or after that moment) and held without it. A hook
//! that hangs therefore blocks nothing but a `delete`, and that one only for
//! [`POSTSTART_WAIT`]: it waits that long so that poststop hooks follow poststart
//! hooks, then goes on as runc's delete would (runc takes no lock at all).

use crate::error::{Error, Result};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// How long a `delete` waits for running poststart hooks before it goes on without
/// them.
pub(crate) const POSTSTART_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The file whose shared lock poststart hooks run under.
const POSTSTART_LOCK: &str = "poststart.lock";

/// A held lock on one container's directory; released when dropped.
#[derive(Debug)]
pub(crate) struct IdLock {
    dir: File,
    path: std::path::PathBuf,
    id: String,
}

/// Locks the directory `dir` of container `id` (blocking until it is free) and
/// checks that it is still that container's: the same directory, with its state file.
pub(crate) fn lock(dir: &Path, id: &str, exclusive: bool) -> Result<IdLock> {
    // Opened close-on-exec (std's default): no hook or child keeps the lock.
    let f = File::open(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound(id.to_string()),
        _ => Error::io("open", dir, e),
    })?;
    let held = IdLock {
        dir: f,
        path: dir.to_path_buf(),
        id: id.to_string(),
    };
    held.relock(exclusive)?;
    Ok(held)
}

impl IdLock {
    /// Lets the lock go but keeps the directory open, for [`IdLock::relock`].
    pub fn release(&self) {
        // SAFETY: flock on an fd we own.
        unsafe { libc::flock(self.dir.as_raw_fd(), libc::LOCK_UN) };
    }

    /// Takes the lock again on the same directory (blocking): [`Error::NotFound`]
    /// when a `delete` removed it meanwhile, even if a new `create` of the same id
    /// has made the path again.
    pub fn relock(&self, exclusive: bool) -> Result<()> {
        let op = if exclusive {
            libc::LOCK_EX
        } else {
            libc::LOCK_SH
        };
        flock_blocking(&self.dir, op, &self.path)?;
        let held = self
            .dir
            .metadata()
            .map_err(|e| Error::io("stat", &self.path, e))?;
        let same = std::fs::metadata(&self.path)
            .is_ok_and(|now| now.ino() == held.ino() && now.dev() == held.dev());
        if !same || !self.path.join(crate::state::STATE_FILE).exists() {
            self.release();
            return Err(Error::NotFound(self.id.clone()));
        }
        Ok(())
    }

    /// While this lock is held: takes the shared poststart lock (see the module
    /// comment), made here if need be; held until the returned file is dropped.
    pub fn poststart(&self) -> Result<File> {
        let path = self.path.join(POSTSTART_LOCK);
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        flock_blocking(&f, libc::LOCK_SH, &path)?;
        Ok(f)
    }

    /// While this lock is held exclusively: waits up to `bound` for running poststart
    /// hooks to end; false when they still run (or were not waited for).
    pub fn wait_poststart(&self, bound: std::time::Duration) -> bool {
        let Ok(f) = File::open(self.path.join(POSTSTART_LOCK)) else {
            return true; // never started with poststart hooks
        };
        let deadline = std::time::Instant::now() + bound;
        let mut pause = std::time::Duration::from_millis(1);
        loop {
            // SAFETY: flock on an fd we own; released when `f` is dropped.
            if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(std::time::Duration::from_millis(50));
        }
    }
}

/// `flock(op)` on `f`, retried on EINTR.
fn flock_blocking(f: &File, op: libc::c_int, path: &Path) -> Result<()> {
    loop {
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = nix::Error::last();
        if e != nix::Error::EINTR {
            return Err(Error::sys("flock", path.display(), e));
        }
    }
}
