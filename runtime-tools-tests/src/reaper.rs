//! The driver as child subreaper: container inits orphaned by the runtime are ours to reap.

use std::collections::HashSet;
use std::sync::Mutex;

use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;

/// Pids the driver waits for itself (helpers); the orphan reaper leaves them alone.
static PROTECTED: Mutex<Option<HashSet<i32>>> = Mutex::new(None);

/// Makes this process the reaper of every orphan below it (PID 1 here reaps late).
pub fn become_subreaper() -> std::io::Result<()> {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes plain integers and touches no memory.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

pub fn protect(pid: i32) {
    let mut g = PROTECTED.lock().unwrap_or_else(|p| p.into_inner());
    g.get_or_insert_with(HashSet::new).insert(pid);
}

pub fn unprotect(pid: i32) {
    let mut g = PROTECTED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(s) = g.as_mut() {
        s.remove(&pid);
    }
}

/// Reaps every exited child that is not protected, without blocking.
pub fn reap_orphans() {
    let me = std::process::id();
    let list = std::fs::read_to_string(format!("/proc/{me}/task/{me}/children"));
    let protected: HashSet<i32> = PROTECTED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .unwrap_or_default();
    match list {
        Ok(list) => {
            for pid in list
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
            {
                if !protected.contains(&pid) {
                    let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
                }
            }
        }
        Err(_) if protected.is_empty() => {
            while let Ok(st) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                if st.pid().is_none() {
                    break;
                }
            }
        }
        Err(_) => {}
    }
}
