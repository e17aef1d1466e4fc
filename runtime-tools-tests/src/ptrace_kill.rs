//! Kill points by step: the runtime run under ptrace and SIGKILLed at the entry of its
//! N-th system call, before that call runs. Only the runtime's main process is traced
//! (no PTRACE_O_TRACECLONE/TRACEFORK): what it forks or clones (the container's init,
//! hooks) runs untraced and unslowed, and is left as a crash leaves it. Works on any
//! runtime binary, with no test hook in it.

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::sync::mpsc;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::ptrace;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::runtime::Runtime;

/// How one traced run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Killed at the entry of syscall `n` (1-based), which had not run yet.
    Killed { n: u64 },
    /// Ended on its own before the kill point: its exit code, or None if a signal
    /// other than ours ended it.
    Finished(Option<i32>),
    /// Still running after the time limit: SIGKILLed with its process group.
    TimedOut,
}

/// One traced run of the runtime.
pub struct Traced {
    /// The number of every syscall the main process entered, in order (the last one is
    /// the one the kill stopped, not run).
    pub syscalls: Vec<u64>,
    pub ending: Ending,
    /// What the runtime wrote to stderr.
    pub stderr: String,
}

impl Traced {
    /// "syscall #N (name)" of the kill, with the last one that ran before it.
    pub fn describe_kill(&self) -> String {
        match self.ending {
            Ending::Killed { n } => {
                let at = self.syscalls.last().copied().map(name).unwrap_or_default();
                let before = match self.syscalls.len() {
                    l if l >= 2 => format!(", after {}", name(self.syscalls[l - 2])),
                    _ => String::new(),
                };
                format!("killed at syscall #{n} ({at} not run{before})")
            }
            Ending::Finished(code) => format!("finished before its kill point (exit {code:?})"),
            Ending::TimedOut => format!("timed out after {} syscalls", self.syscalls.len()),
        }
    }
}

/// Runs `<runtime> --root <root> args...` traced (stdio to scratch files, stdin
/// /dev/null, a process group of its own) and SIGKILLs it at the entry of its
/// `kill_at`-th syscall; with `None` it runs to its end (to count its syscalls). A run
/// still going after `limit` is SIGKILLed with its process group.
pub fn run(
    rt: &Runtime,
    args: &[&str],
    kill_at: Option<u64>,
    limit: Duration,
) -> Result<Traced, String> {
    let (out, err) = rt.next_files();
    let files =
        std::fs::File::create(&out).and_then(|o| std::fs::File::create(&err).map(|e| (o, e)));
    let (o, e) = files.map_err(|e| format!("output files {}: {e}", out.display()))?;
    let mut cmd = rt.command(args);
    cmd.stdout(o).stderr(e);
    // SAFETY: the closure runs in the forked child before exec and only makes the
    // ptrace(PTRACE_TRACEME) system call, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| ptrace::traceme().map_err(std::io::Error::from));
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", rt.path.display()))?;
    let pid = Pid::from_raw(child.id() as i32);
    // Ours to wait for (with waitpid below, never through std: dropping `child` waits
    // for nothing and closes no pipe, none was asked for); the orphan reaper leaves it
    // alone.
    crate::reaper::protect(pid.as_raw());
    drop(child);
    let res = trace(pid, kill_at, limit);
    crate::reaper::unprotect(pid.as_raw());
    let stderr = std::fs::read_to_string(&err).unwrap_or_default();
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(&err);
    let (syscalls, ending) = res?;
    Ok(Traced {
        syscalls,
        ending,
        stderr,
    })
}

/// The tracer's loop over the stopped-after-exec child `pid`.
fn trace(pid: Pid, kill_at: Option<u64>, limit: Duration) -> Result<(Vec<u64>, Ending), String> {
    // PTRACE_TRACEME makes the exec stop the child with SIGTRAP before its first
    // instruction.
    match waitpid(pid, Some(WaitPidFlag::__WALL)) {
        Ok(WaitStatus::Stopped(_, Signal::SIGTRAP)) => {}
        Ok(WaitStatus::Exited(_, code)) => return Ok((Vec::new(), Ending::Finished(Some(code)))),
        Ok(other) => {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
            return Err(format!("traced runtime: unexpected first stop {other:?}"));
        }
        Err(e) => return Err(format!("waitpid {pid}: {e}")),
    }
    // EXITKILL: a dying driver takes the tracee with it. TRACESYSGOOD: syscall stops
    // are told from SIGTRAPs. TRACEEXEC: a later execve is an event stop, not a SIGTRAP.
    let opts = ptrace::Options::PTRACE_O_EXITKILL
        | ptrace::Options::PTRACE_O_TRACESYSGOOD
        | ptrace::Options::PTRACE_O_TRACEEXEC;
    if let Err(e) = ptrace::setoptions(pid, opts) {
        let _ = kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, None);
        return Err(format!("PTRACE_SETOPTIONS on {pid}: {e}"));
    }
    let watchdog = match Watchdog::start(pid, limit) {
        Ok(w) => w,
        Err(e) => {
            // Without a bound the run could hang the suite: end the tracee instead.
            let _ = kill(pid, Signal::SIGKILL);
            reap(pid);
            return Err(e);
        }
    };
    let mut syscalls = Vec::new();
    let mut deliver: Option<Signal> = None;
    let mut in_syscall = false;
    let ending = loop {
        // ESRCH: the tracee is gone (the watchdog's kill); waitpid below says how.
        let _ = ptrace::syscall(pid, deliver.take());
        let status = match waitpid(pid, Some(WaitPidFlag::__WALL)) {
            Ok(s) => s,
            Err(Errno::EINTR) => continue,
            Err(e) => {
                // Not ours to wait for any more (cannot happen: it is our child); a
                // tracee left in a ptrace stop would hold its locks, so end it.
                let _ = kill(pid, Signal::SIGKILL);
                reap(pid);
                break Err(format!("waitpid {pid}: {e}"));
            }
        };
        match status {
            WaitStatus::PtraceSyscall(_) => {
                // Entry and exit stops alternate (an interrupted call has its exit stop
                // too, and a restart is a new entry).
                in_syscall = !in_syscall;
                if !in_syscall {
                    continue;
                }
                let nr = syscall_nr(pid);
                syscalls.push(nr);
                if kill_at == Some(syscalls.len() as u64) {
                    // The tracee is in a ptrace stop and unreaped: the pid is ours.
                    let _ = kill(pid, Signal::SIGKILL);
                    reap(pid);
                    break Ok(Ending::Killed {
                        n: syscalls.len() as u64,
                    });
                }
            }
            // An execve (or another event): nothing to deliver.
            WaitStatus::PtraceEvent(..) => {}
            WaitStatus::Stopped(_, sig) => {
                // A signal-delivery stop passes the signal on; a group-stop (no
                // siginfo to read) only resumes. SIGTRAPs are ours, never re-injected.
                if sig != Signal::SIGTRAP && ptrace::getsiginfo(pid).is_ok() {
                    deliver = Some(sig);
                }
            }
            WaitStatus::Exited(_, code) => break Ok(Ending::Finished(Some(code))),
            WaitStatus::Signaled(..) => break Ok(Ending::Finished(None)),
            WaitStatus::Continued(_) | WaitStatus::StillAlive => {}
        }
    };
    if watchdog.stop() {
        // The leader is reaped, but the group lives on in what it forked (a pgid is not
        // reused while a member lives): end them as a timeout does.
        let _ = kill(Pid::from_raw(-pid.as_raw()), Signal::SIGKILL);
        return Ok((syscalls, Ending::TimedOut));
    }
    ending.map(|e| (syscalls, e))
}

/// Why kill points by step cannot run on this architecture, or `None` where they
/// can (x86_64 and aarch64: the syscall number is read from the tracee's registers at
/// its syscall-entry stop). Scenarios skip with this reason.
pub fn unsupported() -> Option<String> {
    if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        None
    } else {
        Some(format!(
            "kill points by step read the syscall number from x86_64 or aarch64 registers; \
             this is {}",
            std::env::consts::ARCH
        ))
    }
}

/// The number of the syscall `pid` is stopped at the entry of (`u64::MAX` if it
/// cannot be read): `orig_rax` on x86_64.
#[cfg(target_arch = "x86_64")]
fn syscall_nr(pid: Pid) -> u64 {
    ptrace::getregs(pid).map(|r| r.orig_rax).unwrap_or(u64::MAX)
}

/// The number of the syscall `pid` is stopped at the entry of: `x8` on aarch64.
#[cfg(target_arch = "aarch64")]
fn syscall_nr(pid: Pid) -> u64 {
    ptrace::getregs(pid).map(|r| r.regs[8]).unwrap_or(u64::MAX)
}

/// Elsewhere no number is read ([`unsupported`] says why; no scenario gets here).
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn syscall_nr(_pid: Pid) -> u64 {
    u64::MAX
}

/// Waits until `pid` (just SIGKILLed) is gone.
fn reap(pid: Pid) {
    loop {
        match waitpid(pid, Some(WaitPidFlag::__WALL)) {
            Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) => return,
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

/// Kills the tracee through a pidfd once the time limit passes (a pidfd cannot hit
/// a reused pid, even if the tracer reaps the tracee at that moment).
struct Watchdog {
    cancel: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<bool>,
}

impl Watchdog {
    fn start(pid: Pid, limit: Duration) -> Result<Watchdog, String> {
        // SAFETY: pidfd_open(2) takes a pid and flags and returns a new fd or -1.
        let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
        if raw < 0 {
            return Err(format!(
                "pidfd_open of tracee {pid} (needs Linux 5.3): {}",
                Errno::last()
            ));
        }
        // SAFETY: a fresh fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
        let (cancel, rx) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            if rx.recv_timeout(limit) != Err(mpsc::RecvTimeoutError::Timeout) {
                return false;
            }
            use std::os::fd::AsRawFd;
            // SAFETY: pidfd_send_signal(2) on an fd we own, no siginfo, no flags.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd.as_raw_fd(),
                    libc::SIGKILL,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
            rc == 0
        });
        Ok(Watchdog { cancel, thread })
    }

    /// Stops the watchdog; true if it had killed the tracee.
    fn stop(self) -> bool {
        let _ = self.cancel.send(());
        self.thread.join().unwrap_or(false)
    }
}

/// The name of a syscall number, for failure messages ("#N" if not listed; the
/// table is x86_64's).
#[cfg(not(target_arch = "x86_64"))]
pub fn name(nr: u64) -> String {
    format!("#{nr}")
}

/// The name of an x86_64 syscall number, for failure messages ("#N" if not listed).
#[cfg(target_arch = "x86_64")]
pub fn name(nr: u64) -> String {
    macro_rules! names {
        ($($n:ident),* $(,)?) => {
            &[$((libc::$n as u64, stringify!($n))),*]
        };
    }
    static NAMES: &[(u64, &str)] = names![
        SYS_read,
        SYS_write,
        SYS_open,
        SYS_close,
        SYS_stat,
        SYS_fstat,
        SYS_lstat,
        SYS_poll,
        SYS_lseek,
        SYS_mmap,
        SYS_mprotect,
        SYS_munmap,
        SYS_brk,
        SYS_rt_sigaction,
        SYS_rt_sigprocmask,
        SYS_ioctl,
        SYS_pread64,
        SYS_pwrite64,
        SYS_readv,
        SYS_writev,
        SYS_access,
        SYS_pipe,
        SYS_sched_yield,
        SYS_madvise,
        SYS_dup,
        SYS_dup2,
        SYS_getpid,
        SYS_socket,
        SYS_connect,
        SYS_sendto,
        SYS_recvfrom,
        SYS_sendmsg,
        SYS_recvmsg,
        SYS_socketpair,
        SYS_clone,
        SYS_fork,
        SYS_vfork,
        SYS_execve,
        SYS_exit,
        SYS_wait4,
        SYS_kill,
        SYS_uname,
        SYS_fcntl,
        SYS_flock,
        SYS_fsync,
        SYS_getcwd,
        SYS_chdir,
        SYS_fchdir,
        SYS_rename,
        SYS_mkdir,
        SYS_rmdir,
        SYS_link,
        SYS_unlink,
        SYS_symlink,
        SYS_readlink,
        SYS_chmod,
        SYS_fchmod,
        SYS_chown,
        SYS_fchown,
        SYS_umask,
        SYS_getrlimit,
        SYS_getuid,
        SYS_getgid,
        SYS_setuid,
        SYS_setgid,
        SYS_geteuid,
        SYS_getegid,
        SYS_setpgid,
        SYS_getppid,
        SYS_setsid,
        SYS_setgroups,
        SYS_sigaltstack,
        SYS_statfs,
        SYS_fstatfs,
        SYS_prctl,
        SYS_arch_prctl,
        SYS_setrlimit,
        SYS_mount,
        SYS_umount2,
        SYS_gettid,
        SYS_tkill,
        SYS_futex,
        SYS_sched_getaffinity,
        SYS_getdents64,
        SYS_set_tid_address,
        SYS_clock_gettime,
        SYS_clock_nanosleep,
        SYS_exit_group,
        SYS_epoll_wait,
        SYS_epoll_ctl,
        SYS_tgkill,
        SYS_waitid,
        SYS_openat,
        SYS_mkdirat,
        SYS_fchownat,
        SYS_newfstatat,
        SYS_unlinkat,
        SYS_renameat,
        SYS_linkat,
        SYS_symlinkat,
        SYS_readlinkat,
        SYS_fchmodat,
        SYS_faccessat,
        SYS_pselect6,
        SYS_ppoll,
        SYS_unshare,
        SYS_set_robust_list,
        SYS_splice,
        SYS_utimensat,
        SYS_epoll_pwait,
        SYS_signalfd4,
        SYS_eventfd2,
        SYS_epoll_create1,
        SYS_dup3,
        SYS_pipe2,
        SYS_inotify_init1,
        SYS_prlimit64,
        SYS_setns,
        SYS_getrandom,
        SYS_memfd_create,
        SYS_execveat,
        SYS_statx,
        SYS_rseq,
        SYS_renameat2,
        SYS_pidfd_send_signal,
        SYS_open_tree,
        SYS_move_mount,
        SYS_fsopen,
        SYS_fsconfig,
        SYS_fsmount,
        SYS_fspick,
        SYS_pidfd_open,
        SYS_clone3,
        SYS_close_range,
        SYS_openat2,
        SYS_pidfd_getfd,
        SYS_faccessat2,
        SYS_mount_setattr,
    ];
    NAMES
        .iter()
        .find(|(n, _)| *n == nr)
        .map(|(_, s)| s.trim_start_matches("SYS_").to_string())
        .unwrap_or_else(|| format!("#{nr}"))
}

/// Syscalls whose only effect is on the calling process or that only read: a kill
/// just after one of these leaves the host as a kill just before it. Anything else
/// (mkdir, write, mount, clone, close of a channel end, a message sent...) may change
/// what a kill leaves, so the points right after those are always tried.
pub fn is_local(nr: u64) -> bool {
    // x86_64's and aarch64's (elsewhere every syscall counts as acting).
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    const LOCAL: &[i64] = &[
        libc::SYS_read,
        libc::SYS_pread64,
        libc::SYS_readv,
        libc::SYS_fstat,
        libc::SYS_newfstatat,
        libc::SYS_statx,
        libc::SYS_statfs,
        libc::SYS_fstatfs,
        libc::SYS_faccessat,
        libc::SYS_faccessat2,
        libc::SYS_readlinkat,
        libc::SYS_getdents64,
        libc::SYS_lseek,
        libc::SYS_mmap,
        libc::SYS_munmap,
        libc::SYS_mprotect,
        libc::SYS_madvise,
        libc::SYS_brk,
        libc::SYS_rt_sigaction,
        libc::SYS_rt_sigprocmask,
        libc::SYS_sigaltstack,
        libc::SYS_getpid,
        libc::SYS_gettid,
        libc::SYS_getppid,
        libc::SYS_getuid,
        libc::SYS_geteuid,
        libc::SYS_getgid,
        libc::SYS_getegid,
        libc::SYS_getcwd,
        libc::SYS_uname,
        libc::SYS_getrandom,
        libc::SYS_clock_gettime,
        libc::SYS_sched_getaffinity,
        libc::SYS_set_tid_address,
        libc::SYS_set_robust_list,
        libc::SYS_rseq,
    ];
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    const LOCAL: &[i64] = &[];
    // x86_64's older forms (aarch64 has only the *at and prlimit ones).
    #[cfg(target_arch = "x86_64")]
    const LEGACY: &[i64] = &[
        libc::SYS_stat,
        libc::SYS_lstat,
        libc::SYS_access,
        libc::SYS_readlink,
        libc::SYS_arch_prctl,
        libc::SYS_getrlimit,
    ];
    #[cfg(not(target_arch = "x86_64"))]
    const LEGACY: &[i64] = &[];
    LOCAL.iter().chain(LEGACY).any(|l| *l as u64 == nr)
}
