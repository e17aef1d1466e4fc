//! Signal names as runc's `kill` takes them: `TERM`, `SIGTERM`, `term`, or a number
//! (0 probes, real-time signals by number).

use crate::error::{Error, Result};
use nix::sys::signal::Signal;
use std::str::FromStr;

/// A signal `kill` can send: 0 (only checks that the process exists, as engines do to
/// probe liveness), a standard signal, or a real-time one up to SIGRTMAX.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KillSignal(i32);

impl KillSignal {
    /// The probe: nothing is delivered.
    pub const PROBE: KillSignal = KillSignal(0);

    /// The signal number.
    pub fn number(self) -> i32 {
        self.0
    }

    /// The signal as nix names it (None for 0 and real-time signals).
    pub fn as_signal(self) -> Option<Signal> {
        Signal::try_from(self.0).ok()
    }
}

impl From<Signal> for KillSignal {
    fn from(s: Signal) -> Self {
        KillSignal(s as i32)
    }
}

/// Parses a signal argument: a name with or without `SIG` (any case) or a number
/// from 0 to SIGRTMAX.
pub fn parse_signal(s: &str) -> Result<KillSignal> {
    let bad = || Error::InvalidSignal(s.to_string());
    if let Ok(n) = s.parse::<i32>() {
        return if (0..=libc::SIGRTMAX()).contains(&n) {
            Ok(KillSignal(n))
        } else {
            Err(bad())
        };
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name)
        .map(KillSignal::from)
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::{parse_signal, KillSignal};
    use nix::sys::signal::Signal;

    #[test]
    fn names_and_numbers() {
        let sig = |s: &str| parse_signal(s).unwrap().as_signal();
        assert_eq!(sig("TERM"), Some(Signal::SIGTERM));
        assert_eq!(sig("SIGKILL"), Some(Signal::SIGKILL));
        assert_eq!(sig("usr1"), Some(Signal::SIGUSR1));
        assert_eq!(sig("9"), Some(Signal::SIGKILL));
        assert_eq!(sig("15"), Some(Signal::SIGTERM));
        assert_eq!(parse_signal("0").unwrap(), KillSignal::PROBE);
        assert_eq!(parse_signal("34").unwrap().number(), 34);
    }

    #[test]
    fn rejects_junk() {
        for s in ["", "NOPE", "SIG", "0x9", "-1", "999"] {
            assert!(parse_signal(s).is_err(), "{s}");
        }
    }
}
