//! `linux.personality`: the execution domain (LINUX or LINUX32) and flags, set with
//! personality(2) just before the process's privileges are dropped.

use crate::error::{Error, Result};
use oci_spec::runtime::{LinuxPersonality, LinuxPersonalityDomain};

/// Flag names as personality(2) and <linux/personality.h> spell them.
const FLAGS: [(&str, libc::c_ulong); 11] = [
    ("UNAME26", 0x002_0000),
    ("ADDR_NO_RANDOMIZE", 0x004_0000),
    ("FDPIC_FUNCPTRS", 0x008_0000),
    ("MMAP_PAGE_ZERO", 0x010_0000),
    ("ADDR_COMPAT_LAYOUT", 0x020_0000),
    ("READ_IMPLIES_EXEC", 0x040_0000),
    ("ADDR_LIMIT_32BIT", 0x080_0000),
    ("SHORT_INODE", 0x100_0000),
    ("WHOLE_SECONDS", 0x200_0000),
    ("STICKY_TIMEOUTS", 0x400_0000),
    ("ADDR_LIMIT_3GB", 0x800_0000),
];

/// The persona value to set.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Personality(libc::c_ulong);

impl Personality {
    pub fn new(p: &LinuxPersonality) -> Result<Self> {
        let mut v: libc::c_ulong = match p.domain() {
            LinuxPersonalityDomain::PerLinux => 0,
            LinuxPersonalityDomain::PerLinux32 => 0x0008,
        };
        for f in p.flags().iter().flatten() {
            let bit = FLAGS
                .iter()
                .find(|(n, _)| n == f)
                .map(|(_, b)| *b)
                .ok_or_else(|| {
                    Error::Config(format!("linux.personality.flags: unknown flag {f:?}"))
                })?;
            v |= bit;
        }
        Ok(Personality(v))
    }

    pub fn apply(&self) -> Result<()> {
        // SAFETY: personality takes a plain integer.
        if unsafe { libc::personality(self.0) } == -1 {
            return Err(Error::sys(
                "personality",
                format!("linux.personality {:#x}", self.0),
                nix::Error::last(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_and_flags() {
        let p: LinuxPersonality = serde_json::from_value(
            serde_json::json!({"domain": "LINUX32", "flags": ["ADDR_NO_RANDOMIZE"]}),
        )
        .unwrap();
        assert_eq!(Personality::new(&p).unwrap().0, 0x8 | 0x40000);
        let p: LinuxPersonality =
            serde_json::from_value(serde_json::json!({"domain": "LINUX", "flags": ["NOPE"]}))
                .unwrap();
        let e = Personality::new(&p).unwrap_err().to_string();
        assert!(
            e.contains("linux.personality.flags") && e.contains("NOPE"),
            "{e}"
        );
    }
}
