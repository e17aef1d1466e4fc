//! Running from a sealed memfd copy of the runtime binary: CVE-2019-5736 for a
//! container that holds CAP_SYS_PTRACE.
//!
//! A process of the runtime's image sits in the container's pid namespace while it
//! sets up: the init until `start` (its `execve` of the container's program), an exec'd
//! process until its own `execve`. Its `/proc/<pid>/exe` is then the runtime's binary on
//! the host; an fd on it, kept until the runtime has exited, lets the container
//! overwrite that binary. Such processes are non-dumpable (`PR_SET_DUMPABLE 0`), which
//! shuts the container out unless it holds CAP_SYS_PTRACE over the user namespace the
//! process's memory belongs to: the one the runtime binary was executed in (a clone
//! keeps it, whatever user namespace the clone then joins). So only a container without
//! a user namespace of its own whose processes may hold CAP_SYS_PTRACE can get through;
//! for it, the runtime first re-executes itself from a copy of its binary in a memfd
//! sealed against any change (`F_SEAL_SEAL|F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_WRITE`).
//! What the container can then reach is that copy, never the host's file.
//!
//! The copy costs a copy of the binary in memory (charged to the caller's memory
//! cgroup for as long as a process runs from it: until the init's `execve` for a
//! created container) and a second start of the program, so it is made only when
//! the container needs it: [`for_create`] and [`Container::sealed_exe_for_exec`](crate::Container::sealed_exe_for_exec) decide
//! from the config (and the process to exec), [`run_from_sealed_copy`] re-executes.
//! Whether a process already runs from a sealed copy is read from its
//! `/proc/self/exe` (`F_GET_SEALS` succeeds only on a memfd), so the re-executed
//! program, given the same argv and environment, decides the same and goes on; no
//! marker in the environment, and no loop.
//!
//! # For an embedder
//!
//! The container's processes are clones of the process that calls
//! [`Runtime::create`](crate::Runtime::create) or [`Container::exec`]: their
//! `/proc/<pid>/exe` is the embedder's own binary. A program that creates containers
//! for which [`for_create`] (or [`Container::sealed_exe_for_exec`](crate::Container::sealed_exe_for_exec)) returns an exposure
//! should run from a sealed copy of itself: call [`run_from_sealed_copy`] at start-up,
//! before it starts threads or opens fds it would not want twice (the program starts
//! again with the same argv and environment and every fd that is not close-on-exec),
//! or refuse such containers. The library itself never re-executes anything.
//!
//! [`Container::exec`]: crate::Container::exec

mod exposure;
mod reexec;

pub(crate) use exposure::record_ptrace_exec;
pub use exposure::{for_create, Exposure};
pub use reexec::{run_from_sealed_copy, running_from_sealed_copy};
