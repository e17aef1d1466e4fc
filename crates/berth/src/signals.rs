//! Signal forwarding for `berth run`: signals sent to berth while it waits for the
//! container are passed on to the container's init, as runc's signal handler does.

use nix::sys::signal::{kill, SigSet, Signal};
use nix::unistd::Pid;

/// The signals forwarded to the init.
const FORWARDED: [Signal; 7] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// Blocks the forwarded signals in the calling thread (and so in threads it spawns
/// later) and starts a thread that takes them with `sigwait` and sends each to `pid`.
///
/// Call it after the init has been cloned (it must not inherit the blocked mask) and
/// before anything else spawns threads. The thread lives until the process exits.
pub fn forward_to(pid: i32) -> anyhow::Result<()> {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    set.thread_block()
        .map_err(|e| anyhow::anyhow!("pthread_sigmask block: {e}"))?;
    std::thread::Builder::new()
        .name("signal-forward".into())
        .spawn(move || loop {
            match set.wait() {
                Ok(signal) => {
                    tracing::debug!(pid, signal = %signal, "forwarding signal to container init");
                    // ESRCH: the init is already gone; `wait` in the main thread will see it.
                    if let Err(e) = kill(Pid::from_raw(pid), signal) {
                        if e != nix::errno::Errno::ESRCH {
                            tracing::warn!("forward {signal} to pid {pid}: {e}");
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!("sigwait: {e}");
                    return;
                }
            }
        })
        .map_err(|e| anyhow::anyhow!("spawn signal forwarding thread: {e}"))?;
    Ok(())
}
