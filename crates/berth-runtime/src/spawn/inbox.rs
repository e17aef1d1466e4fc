//! The parent's end of the channel of create (and exec), with the intermediate's report
//! of the new process's pid put before that process's own messages.
//!
//! The intermediate sends `Pid` after its clone returns; the init (or exec'd process),
//! cloned as our child, writes to the same socket from the moment it runs. Two processes writing one socket
//! have no order between them: when the intermediate is preempted right after the
//! clone (a loaded host), the init's `RuntimeHooks` and even its `Ready` can arrive
//! first, and a create that took them in arrival order recorded the container with
//! pid 0 (then "stopped: the container has no init" at once). The init's messages that
//! come early are held until the pid is in.

use super::channel::{Channel, Msg};
use crate::error::{Error, Result};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use std::collections::VecDeque;

pub(crate) struct Inbox<'a> {
    ch: &'a Channel,
    /// The init's messages that came before the pid, in their order.
    held: VecDeque<Msg>,
    pid_seen: bool,
    /// The intermediate, while not yet collected (`None` once it is; tests have none).
    intermediate: Option<Pid>,
    /// The container's id, for errors.
    id: &'a str,
}

impl<'a> Inbox<'a> {
    pub(crate) fn new(ch: &'a Channel, intermediate: Option<Pid>, id: &'a str) -> Self {
        Inbox {
            ch,
            held: VecDeque::new(),
            pid_seen: false,
            intermediate,
            id,
        }
    }

    /// Collects the intermediate's exit status, once (a second waitpid on its pid
    /// could wait for an unrelated child that got the number since).
    pub(crate) fn reap_intermediate(&mut self) {
        if let Some(pid) = self.intermediate.take() {
            let _ = waitpid(pid, None);
        }
    }

    /// Whether the intermediate's exit status has been collected (its pid is then
    /// no longer ours to kill or wait for).
    pub(crate) fn intermediate_reaped(&self) -> bool {
        self.intermediate.is_none()
    }

    /// The next message: `Pid` before any message of the init; `None` when every
    /// other end is closed.
    pub(crate) fn recv(&mut self) -> Result<Option<Msg>> {
        if self.pid_seen {
            if let Some(m) = self.held.pop_front() {
                return Ok(Some(m));
            }
            return self.ch.recv();
        }
        loop {
            // Once the intermediate has exited, its pid (if it sent it) is queued: a
            // channel with nothing to read now means it never will be (the init keeps
            // its end open while it waits for us, so a blocking read would hang).
            if !self.held.is_empty() && !self.ch.readable_now()? {
                return Err(Error::Init(format!(
                    "container {}: the intermediate process exited without reporting the pid of the process it cloned",
                    self.id
                )));
            }
            match self.ch.recv()? {
                Some(m @ (Msg::RuntimeHooks | Msg::Ready | Msg::SeccompListener(_))) => {
                    // The intermediate exits right after it sends the pid: once it has,
                    // the pid is in the channel, behind what the init sent so far.
                    if self.held.is_empty() {
                        self.reap_intermediate();
                    }
                    self.held.push_back(m);
                }
                Some(m @ Msg::Pid(_)) => {
                    self.pid_seen = true;
                    return Ok(Some(m));
                }
                other => return Ok(other),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::channel::pair;
    use super::*;

    /// The init's messages sent before the intermediate's pid come after it.
    #[test]
    fn pid_comes_first() {
        let (parent, child) = pair().unwrap();
        for m in [
            Msg::RuntimeHooks,
            Msg::Ready,
            Msg::Pid(4242),
            Msg::Error("x".into()),
        ] {
            child.send(&m).unwrap();
        }
        let mut inbox = Inbox::new(&parent, None, "t");
        let got: Vec<Msg> = (0..4).map(|_| inbox.recv().unwrap().unwrap()).collect();
        assert_eq!(
            got,
            [
                Msg::Pid(4242),
                Msg::RuntimeHooks,
                Msg::Ready,
                Msg::Error("x".into())
            ]
        );
        drop(child);
        assert_eq!(inbox.recv().unwrap(), None);
    }

    /// In order already: unchanged.
    #[test]
    fn in_order_unchanged() {
        let (parent, child) = pair().unwrap();
        for m in [Msg::NeedMaps, Msg::Pid(7), Msg::RuntimeHooks, Msg::Ready] {
            child.send(&m).unwrap();
        }
        let mut inbox = Inbox::new(&parent, None, "t");
        let got: Vec<Msg> = (0..4).map(|_| inbox.recv().unwrap().unwrap()).collect();
        assert_eq!(
            got,
            [Msg::NeedMaps, Msg::Pid(7), Msg::RuntimeHooks, Msg::Ready]
        );
    }

    /// An init message, then no pid while the other end stays open (the init waiting):
    /// an error, not a hang.
    #[test]
    fn no_pid_is_an_error() {
        let (parent, child) = pair().unwrap();
        child.send(&Msg::Ready).unwrap();
        let mut inbox = Inbox::new(&parent, None, "t");
        let e = inbox.recv().unwrap_err().to_string();
        assert!(
            e.contains("container t: the intermediate process exited without reporting the pid"),
            "{e}"
        );
        drop(child);
    }
}
