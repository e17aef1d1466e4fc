//! Running from a protected image of the runtime binary: CVE-2019-5736.
//!
//! A process of the runtime's image sits in the container while it sets up: the init
//! until `start` (its `execve` of the container's program), an exec'd process until its
//! own `execve`. Worse, the container's program may itself be `/proc/self/exe` (or a
//! `#!/proc/self/exe` script, or a symlink to it): the kernel then executes the
//! runtime's host binary inside the container, as container root, dumpable again after
//! that `execve` (so `PR_SET_DUMPABLE 0` before it is no defence), with its ELF
//! interpreter and libraries from the container's rootfs. Any container process (or a
//! library constructor of the container's) can open its `/proc/<pid>/exe`, keep the fd,
//! and once no process runs the binary any more, reopen it for writing and overwrite
//! the host's runtime binary. No capability is needed.
//!
//! So before the verb makes, locks or writes anything, the runtime re-executes itself
//! from a protected image ([`run_protected`]):
//!
//! - a read-only detached bind of its binary: `open_tree(/proc/self/exe,
//!   OPEN_TREE_CLONE)`, `mount_setattr(MOUNT_ATTR_RDONLY)`, then
//!   `execveat(fd, "", AT_EMPTY_PATH)`. The bind is in no mount table; the fd is
//!   close-on-exec, so the anonymous tree is dissolved at the exec and no one can
//!   remount it read-write: whatever reaches `/proc/<pid>/exe` reaches a read-only mount,
//!   and a write-open fails with `EROFS`. It costs no copy (as crun, and runc 1.1.5's
//!   read-only bind, without a mount in the host's table);
//! - where no bind can be made (`open_tree`/`mount_setattr` fail: Linux before 5.12,
//!   or no CAP_SYS_ADMIN over the caller's mount namespace, as rootless): a copy of the
//!   binary in a memfd sealed against any change
//!   (`F_SEAL_SEAL|F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_WRITE`), which costs the binary's
//!   size in memory (charged to the caller's memory cgroup for as long as a process
//!   runs from it: until the init's `execve` for a created container).
//!
//! A binary that already lies on a read-only mount needs neither.
//!
//! It is needed only when a container process could write the binary
//! ([`for_create`], [`Container::sealed_exe_for_exec`](crate::Container::sealed_exe_for_exec)):
//! the container has no user namespace, joins one by path, or has a new one whose
//! uidMappings map the uid that owns the binary (or the binary is writable by its
//! group or others), or has a new one made by a caller that can write the binary
//! (root, or the binary's owner): such a namespace belongs to the caller's uid, whose
//! processes outside the container (another container's root that shares the host's
//! pid namespace, say) are fully capable in it and may open the container's
//! processes' `/proc/<pid>/exe`. Only a new user namespace that does not map the owner
//! and is made by another user (a rootless engine) needs nothing.
//!
//! Whether a process already runs from a protected image is read from its
//! `/proc/self/exe` ([`protection`]: `statvfs` shows `ST_RDONLY`, or `F_GET_SEALS`,
//! which only a memfd answers, shows every seal), so the re-executed program, given the
//! same argv and environment, decides the same and goes on: no marker in the
//! environment. A process that runs from an image of a re-execution (its
//! `/proc/self/exe` is a dissolved mount's root or a memfd) and still finds itself
//! unprotected fails instead of trying again: no loop.
//!
//! # For an embedder
//!
//! The container's processes are clones of the process that calls
//! [`Runtime::create`](crate::Runtime::create) or [`Container::exec`]: their
//! `/proc/<pid>/exe` is the embedder's own binary. A program that creates containers
//! for which [`for_create`] (or [`Container::sealed_exe_for_exec`](crate::Container::sealed_exe_for_exec))
//! returns an exposure should run from a protected image of itself: call
//! [`run_protected`] at start-up, before it starts threads or opens fds it would not
//! want twice (the program starts again with the same argv and environment and every
//! fd that is not close-on-exec), or refuse such containers. A server that cannot know
//! the containers it will be asked for (berth's containerd shim) protects itself at
//! start-up with [`Exposure::ContainersNotYetKnown`]. The library itself never
//! re-executes anything.
//!
//! [`Container::exec`]: crate::Container::exec

mod exposure;
mod reexec;

pub use exposure::{for_create, Exposure};
pub use reexec::{protection, run_protected, Protection};
