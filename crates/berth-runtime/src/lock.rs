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

    /// Removes the file `name` from the directory this lock holds open, which is the
    /// container's even after the lock was released (a path would name a new
    /// container's directory once a `delete` and a `create` of the same id came in
    /// meanwhile). A file that is not there is not an error.
    pub fn unlink(&self, name: &str) -> Result<()> {
        match nix::unistd::unlinkat(&self.dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(nix::Error::ENOENT) => Ok(()),
            Err(e) => Err(Error::sys("unlink", self.path.join(name).display(), e)),
        }
    }

    /// The text of the file `name` in the directory this lock holds open (see
    /// [`IdLock::unlink`]); empty when it is not there or cannot be read. Not followed
    /// if it is a symlink.
    pub fn read_file(&self, name: &str) -> String {
        use std::io::Read;
        let fd = nix::fcntl::openat(
            &self.dir,
            name,
            nix::fcntl::OFlag::O_RDONLY
                | nix::fcntl::OFlag::O_CLOEXEC
                | nix::fcntl::OFlag::O_NOFOLLOW,
            nix::sys::stat::Mode::empty(),
        );
        let mut text = String::new();
        if let Ok(fd) = fd {
            let _ = File::from(fd).read_to_string(&mut text);
        }
        text
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `start` after it released the lock: a `delete` removed the directory and a
    /// `create` of the same id made it again, with its own exec fifo and error file.
    /// Unlinking and reading through the held directory touch the old container's
    /// files only, never the new one's.
    #[test]
    fn files_go_through_the_held_directory_not_the_path() {
        let base = std::env::temp_dir().join(format!("berth-lock-test-{}", std::process::id()));
        let dir = base.join("c1");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join(crate::state::STATE_FILE), "{}").expect("state");
        std::fs::write(dir.join("exec.fifo"), "").expect("fifo");
        std::fs::write(dir.join("exec.err"), "old error").expect("err");
        let held = lock(&dir, "c1", true).expect("lock");
        assert_eq!(held.read_file("exec.err"), "old error");
        held.release();
        // delete, then a new create of the same id.
        std::fs::remove_dir_all(&dir).expect("delete");
        std::fs::create_dir(&dir).expect("create again");
        std::fs::write(dir.join(crate::state::STATE_FILE), "{}").expect("state");
        std::fs::write(dir.join("exec.fifo"), "").expect("new fifo");
        std::fs::write(dir.join("exec.err"), "new error").expect("new err");
        held.unlink("exec.fifo")
            .expect("unlink in the old directory");
        assert!(
            dir.join("exec.fifo").exists(),
            "the new container's fifo was removed"
        );
        assert_eq!(
            held.read_file("exec.err"),
            "",
            "read the new container's file"
        );
        assert!(matches!(held.relock(false), Err(Error::NotFound(_))));
        std::fs::remove_dir_all(&base).expect("cleanup");
    }

    /// In the directory still there: the file goes, a second unlink is no error, and
    /// a symlink is not followed by `read_file`.
    #[test]
    fn unlink_and_read_in_place() {
        let base = std::env::temp_dir().join(format!("berth-lock-test2-{}", std::process::id()));
        let dir = base.join("c2");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join(crate::state::STATE_FILE), "{}").expect("state");
        std::fs::write(dir.join("exec.fifo"), "").expect("fifo");
        std::fs::write(base.join("elsewhere"), "secret").expect("target");
        std::os::unix::fs::symlink(base.join("elsewhere"), dir.join("exec.err")).expect("symlink");
        let held = lock(&dir, "c2", true).expect("lock");
        held.unlink("exec.fifo").expect("unlink");
        assert!(!dir.join("exec.fifo").exists());
        held.unlink("exec.fifo").expect("a second unlink");
        assert_eq!(held.read_file("exec.err"), "");
        drop(held);
        std::fs::remove_dir_all(&base).expect("cleanup");
    }
}
