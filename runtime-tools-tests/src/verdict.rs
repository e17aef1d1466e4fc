//! A scenario's outcome: pass, fail with a reason, or skip with a reason.

use std::fmt;

/// Why a scenario did not pass.
#[derive(Debug)]
pub enum Verdict {
    Fail(String),
    Skip(String),
}

pub type Res = Result<(), Verdict>;

impl From<std::io::Error> for Verdict {
    fn from(e: std::io::Error) -> Verdict {
        Verdict::Fail(format!("setup: {e}"))
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Fail(s) | Verdict::Skip(s) => f.write_str(s),
        }
    }
}

/// Fails the scenario with a formatted reason unless the condition holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            return Err($crate::verdict::Verdict::Fail(format!($($arg)*)));
        }
    };
}

/// Fails the scenario with a formatted reason.
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => {
        return Err($crate::verdict::Verdict::Fail(format!($($arg)*)))
    };
}

/// Skips the scenario with a formatted reason.
#[macro_export]
macro_rules! skip {
    ($($arg:tt)*) => {
        return Err($crate::verdict::Verdict::Skip(format!($($arg)*)))
    };
}
