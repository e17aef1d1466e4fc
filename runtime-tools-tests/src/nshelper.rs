//! Helper processes that hold fresh namespaces for scenarios that join them by path.

use std::io::Read;
use std::os::fd::AsRawFd;

use nix::sched::{unshare, CloneFlags};
use nix::unistd::{fork, ForkResult};

/// Forks a helper that unshares `flags` and then sleeps until killed. A new mount
/// namespace is made recursively private first, so nothing propagates back to the host.
/// For a new pid namespace the helper forks that namespace's init (which dies with it),
/// so `/proc/<helper>/ns/pid_for_children` names a living namespace.
pub fn spawn(flags: CloneFlags) -> Result<i32, String> {
    let (r, w) = nix::unistd::pipe().map_err(|e| format!("pipe: {e}"))?;
    // SAFETY: the driver is single-threaded; the child only makes plain syscalls and
    // never returns into the driver's code (it sleeps or exits).
    match unsafe { fork() } {
        Err(e) => Err(format!("fork: {e}")),
        Ok(ForkResult::Child) => {
            drop(r);
            // SAFETY: plain prctl/pause/_exit syscalls with integer arguments.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
            let mut ok = unshare(flags).is_ok();
            if ok && flags.contains(CloneFlags::CLONE_NEWNS) {
                ok = nix::mount::mount(
                    None::<&str>,
                    "/",
                    None::<&str>,
                    nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
                    None::<&str>,
                )
                .is_ok();
            }
            if ok && flags.contains(CloneFlags::CLONE_NEWPID) {
                // SAFETY: as above; the grandchild only sleeps.
                if let Ok(ForkResult::Child) = unsafe { fork() } {
                    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
                    loop {
                        // SAFETY: pause has no arguments.
                        unsafe { libc::pause() };
                    }
                }
            }
            // SAFETY: writing one byte from a live buffer to our pipe end.
            unsafe {
                libc::write(
                    w.as_raw_fd(),
                    if ok { b"1".as_ptr() } else { b"0".as_ptr() } as *const _,
                    1,
                )
            };
            drop(w);
            if !ok {
                // SAFETY: _exit never returns and runs no destructors of the parent's state.
                unsafe { libc::_exit(1) };
            }
            loop {
                // SAFETY: pause has no arguments.
                unsafe { libc::pause() };
            }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(w);
            let mut f = std::fs::File::from(r);
            let mut b = [0u8; 1];
            let n = f
                .read(&mut b)
                .map_err(|e| format!("read helper pipe: {e}"))?;
            let pid = child.as_raw();
            crate::reaper::protect(pid);
            if n != 1 || b[0] != b'1' {
                let _ = nix::sys::wait::waitpid(child, None);
                crate::reaper::unprotect(pid);
                return Err(format!("helper could not unshare {flags:?}"));
            }
            Ok(pid)
        }
    }
}

/// The namespace link `/proc/<pid>/ns/<kind>` (e.g. `net:[4026531992]`).
pub fn link(pid: &str, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("<unreadable: {e}>"))
}
