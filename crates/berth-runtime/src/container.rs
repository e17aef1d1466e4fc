//! A container handle: id, persisted state, and the lifecycle operations on it.

use crate::error::Result;
use crate::runtime::Runtime;
use crate::state::State;
use nix::sys::signal::Signal;

/// How the container's init ended (from `wait`, for `berth run`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Exited with this code.
    Exited(i32),
    /// Killed by this signal.
    Signaled(i32),
}

impl ExitStatus {
    /// The shell convention runc uses for its own exit status: the code, or 128+signal.
    pub fn code(&self) -> i32 {
        match *self {
            ExitStatus::Exited(c) => c,
            ExitStatus::Signaled(s) => 128 + s,
        }
    }
}

/// One container in a [`Runtime`]'s state directory.
#[derive(Debug)]
pub struct Container {
    pub(crate) runtime: Runtime,
    pub(crate) state: crate::state::Persisted,
}

impl Container {
    pub(crate) fn load(runtime: &Runtime, id: &str) -> Result<Self> {
        let _ = (runtime, id);
        todo!()
    }

    /// The id.
    pub fn id(&self) -> &str {
        &self.state.id
    }

    /// The init's pid on the host (0 once stopped and unknown).
    pub fn pid(&self) -> i32 {
        self.state.pid
    }

    /// The OCI state, with the status observed now (a dead or zombie init is `stopped`).
    pub fn state(&self) -> Result<State> {
        todo!()
    }

    /// Lets a `created` container run its process; runs poststart hooks.
    pub fn start(&mut self) -> Result<()> {
        todo!()
    }

    /// Sends `signal` to the init (or with `all` to every process in its cgroup).
    /// Fails on a stopped container.
    pub fn kill(&self, signal: Signal, all: bool) -> Result<()> {
        let _ = (signal, all);
        todo!()
    }

    /// Deletes a stopped (or, like runc, a created) container: cgroup, state, poststop
    /// hooks. A running or paused one is refused unless `force`, which kills it first.
    pub fn delete(self, force: bool) -> Result<()> {
        let _ = force;
        todo!()
    }

    /// Waits for the init to end; only for a caller that is the init's parent (the
    /// process that called `create`, as `berth run` is).
    pub fn wait(&self) -> Result<ExitStatus> {
        todo!()
    }
}
