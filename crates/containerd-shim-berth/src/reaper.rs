//! The shim is a child subreaper (containerd's shim crate makes it one), so orphans
//! of its containers (a process of a container sharing the host's pid namespace whose
//! parent died) become its children. Their exits must be collected, or they stay
//! zombies for the shim's life; but the init's and exec'd processes' exits belong to
//! their pidfd waiters, so a blanket `waitpid(-1)` is out. The reaper collects only
//! zombie children that no waiter tracks.
//!
//! berth-runtime forks helpers of its own during create, exec and delete and waits
//! for them: those calls hold the spawn lock, which the reaper takes too, and a new
//! process is tracked before the lock is released.

use signal_hook::consts::SIGCHLD;
use signal_hook::iterator::Signals;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The processes whose exits have a waiter, and the lock around forking calls.
#[derive(Default)]
pub struct Children {
    spawning: Mutex<()>,
    tracked: Mutex<HashSet<i32>>,
    /// A task shares the host's pid namespace: orphans of its processes may become
    /// ours (in a container with its own pid namespace, they go to its init).
    orphans_possible: AtomicBool,
}

impl Children {
    /// Held across a berth-runtime call that forks, until its process is tracked.
    pub fn spawn_guard(&self) -> MutexGuard<'_, ()> {
        self.spawning.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `pid`'s exit is collected by its waiter.
    pub fn track(&self, pid: i32) {
        self.tracked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(pid);
    }

    /// A task without a pid namespace of its own exists: orphans may come.
    pub fn expect_orphans(&self) {
        self.orphans_possible.store(true, Ordering::Relaxed);
    }

    /// `pid` has been collected.
    pub fn untrack(&self, pid: i32) {
        self.tracked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&pid);
    }

    /// Starts the reaper thread: on each SIGCHLD, collect untracked zombie children.
    pub fn start_reaper(self: &Arc<Self>) -> Result<(), String> {
        // A handler, not SIG_IGN: ignoring SIGCHLD would have the kernel reap every
        // child itself and leave the waiters no status.
        let mut signals = Signals::new([SIGCHLD]).map_err(|e| format!("SIGCHLD handler: {e}"))?;
        let me = Arc::clone(self);
        std::thread::Builder::new()
            .name("reaper".into())
            .spawn(move || {
                for _ in signals.forever() {
                    me.reap_orphans();
                }
            })
            .map_err(|e| format!("spawn the reaper thread: {e}"))?;
        Ok(())
    }

    fn reap_orphans(&self) {
        let _spawning = self.spawn_guard();
        let tracked = self
            .tracked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        // The common case without touching /proc: peek (WNOWAIT) at the first child
        // that can be collected; collect it if no waiter tracks it, and look again.
        // Scanning /proc costs a read of every process's stat file on the host (on a
        // busy node, thousands per SIGCHLD): it is left for when a tracked zombie,
        // which its waiter is about to collect, stands in front of others that may
        // be orphans.
        loop {
            // SAFETY: an all-zero siginfo_t is valid; waitid only writes into it.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            // SAFETY: waitid(2) on our own children, not reaping (WNOWAIT).
            let r = unsafe {
                libc::waitid(
                    libc::P_ALL,
                    0,
                    &mut info,
                    libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
                )
            };
            // SAFETY: si_pid is the field waitid fills for an exited child (0: none).
            let pid = if r == 0 { unsafe { info.si_pid() } } else { 0 };
            if pid <= 0 {
                return;
            }
            if tracked.contains(&pid) {
                if !self.orphans_possible.load(Ordering::Relaxed) {
                    // Only tracked processes and berth's own helpers (collected
                    // under the spawn lock) are our children: nothing to look for.
                    return;
                }
                break;
            }
            // SAFETY: waitpid on a zombie child no one else waits for.
            unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
        }
        for pid in zombie_children() {
            if !tracked.contains(&pid) {
                // SAFETY: waitpid on a zombie child no one else waits for.
                unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
            }
        }
    }
}

/// Our children that have exited and not been collected, from /proc.
fn zombie_children() -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // After the command name (which may hold spaces and parentheses): the
            // state, then the parent's pid.
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                return false;
            };
            let mut f = rest.split_whitespace();
            let state = f.next();
            let ppid = f.next().and_then(|p| p.parse::<i32>().ok());
            state == Some("Z") && ppid == Some(me)
        })
        .collect()
}
