//! Forking the init from the intermediate: `clone3(CLONE_PARENT | CLONE_INTO_CGROUP)`
//! when a cgroup2 directory is given (the child is born in the cgroup, without the
//! global threadgroup lock that writing `cgroup.procs` takes), plain
//! `clone(CLONE_PARENT)` otherwise. No new stack: both behave as fork.

use std::os::fd::RawFd;

/// `struct clone_args` of linux/sched.h (version 2, with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Returns the child's pid in the parent and 0 in the child, as fork does.
///
/// # Safety
/// The caller must be single-threaded (a child of fork): the child is a copy of it.
pub(crate) unsafe fn clone_parent(into_cgroup: Option<RawFd>) -> nix::Result<i32> {
    if let Some(fd) = into_cgroup {
        let args = CloneArgs {
            flags: libc::CLONE_PARENT as u64 | CLONE_INTO_CGROUP,
            exit_signal: libc::SIGCHLD as u64,
            cgroup: fd as u64,
            ..Default::default()
        };
        // SAFETY: a valid clone_args of the size passed; no stack, so the child runs on
        // a copy of ours as with fork.
        let r = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &args as *const CloneArgs,
                std::mem::size_of::<CloneArgs>(),
            )
        };
        return if r < 0 {
            Err(nix::Error::last())
        } else {
            Ok(r as i32)
        };
    }
    // SAFETY: raw clone with no new stack behaves as fork.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (libc::CLONE_PARENT | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if r < 0 {
        Err(nix::Error::last())
    } else {
        Ok(r as i32)
    }
}
