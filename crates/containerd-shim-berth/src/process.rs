//! One process of a task as containerd sees it: the init (exec id "") or an exec'd
//! process. Holds its stdio, its status and, once it has ended, its exit; Wait
//! requests block on it until then.

use crate::io::{IoPaths, StdinSink};
use oci_spec::runtime::Process as ProcessSpec;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::SystemTime;

/// Where the process is in its life, as containerd's task status has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    /// Registered (exec) or created (init), not started.
    #[default]
    Created,
    /// Started.
    Running,
    /// Exited (its exit is recorded).
    Stopped,
}

/// How and when the process ended; the code is containerd's (128+signal for a
/// signal).
#[derive(Debug, Clone, Copy)]
pub struct ExitRecord {
    pub code: u32,
    pub at: SystemTime,
}

/// The mutable part of a process.
#[derive(Default)]
pub struct ProcState {
    pub pid: i32,
    pub phase: Phase,
    pub exit: Option<ExitRecord>,
    /// The pty master, for ResizePty.
    pub console: Option<Arc<OwnedFd>>,
    /// Our end of its stdin, for CloseIO.
    pub stdin: Option<StdinSink>,
    /// An exec'd process's spec until Start.
    pub spec: Option<ProcessSpec>,
}

/// A process of a task.
pub struct Proc {
    /// "" for the init.
    pub exec_id: String,
    pub io: IoPaths,
    state: Mutex<ProcState>,
    exited: Condvar,
}

impl Proc {
    /// A process not started yet.
    pub fn new(exec_id: &str, io: IoPaths) -> Arc<Self> {
        Arc::new(Proc {
            exec_id: exec_id.to_string(),
            io,
            state: Mutex::new(ProcState::default()),
            exited: Condvar::new(),
        })
    }

    /// Its state, locked.
    pub fn lock(&self) -> MutexGuard<'_, ProcState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Its phase now.
    pub fn phase(&self) -> Phase {
        self.lock().phase
    }

    /// Records the exit and wakes every waiter.
    pub fn set_exited(&self, exit: ExitRecord) {
        let mut st = self.lock();
        st.exit = Some(exit);
        st.phase = Phase::Stopped;
        st.stdin = None;
        st.console = None;
        drop(st);
        self.exited.notify_all();
    }

    /// Blocks until the process has exited.
    pub fn wait(&self) -> ExitRecord {
        let mut st = self.lock();
        loop {
            if let Some(e) = st.exit {
                return e;
            }
            st = self.exited.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The exit if it has come within `timeout`.
    pub fn wait_timeout(&self, timeout: std::time::Duration) -> Option<ExitRecord> {
        let st = self.lock();
        let (st, _) = self
            .exited
            .wait_timeout_while(st, timeout, |s| s.exit.is_none())
            .unwrap_or_else(|p| p.into_inner());
        st.exit
    }
}
