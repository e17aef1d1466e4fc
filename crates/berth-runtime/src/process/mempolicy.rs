//! `linux.memoryPolicy`: the NUMA memory policy (set_mempolicy), set by the init and
//! inherited by everything the container process forks and execs.

use crate::error::{Error, Result};
use oci_spec::runtime::{LinuxMemoryPolicy, MemoryPolicyFlagType, MemoryPolicyModeType};

/// Node numbers up to this (exclusive) fit the mask.
const MAX_NODES: usize = 1024;

/// Mode names and values, as `features` reports them.
pub(crate) const MODES: [(&str, i32); 7] = [
    ("MPOL_DEFAULT", 0),
    ("MPOL_PREFERRED", 1),
    ("MPOL_BIND", 2),
    ("MPOL_INTERLEAVE", 3),
    ("MPOL_LOCAL", 4),
    ("MPOL_PREFERRED_MANY", 5),
    ("MPOL_WEIGHTED_INTERLEAVE", 6),
];

/// Flag names and values.
pub(crate) const FLAGS: [(&str, i32); 3] = [
    ("MPOL_F_NUMA_BALANCING", 1 << 13),
    ("MPOL_F_RELATIVE_NODES", 1 << 14),
    ("MPOL_F_STATIC_NODES", 1 << 15),
];

#[derive(Debug, Clone)]
pub(crate) struct MemoryPolicy {
    mode: i32,
    mask: Vec<u64>,
    any_node: bool,
}

impl MemoryPolicy {
    pub fn new(p: &LinuxMemoryPolicy) -> Result<Self> {
        let bad = |why: String| Error::Config(format!("linux.memoryPolicy: {why}"));
        use MemoryPolicyModeType::*;
        let (name, mut mode) = match p.mode() {
            MpolDefault => MODES[0],
            MpolPreferred => MODES[1],
            MpolBind => MODES[2],
            MpolInterleave => MODES[3],
            MpolLocal => MODES[4],
            MpolPreferredMany => MODES[5],
            MpolWeightedInterleave => MODES[6],
        };
        let mut mask = vec![0u64; MAX_NODES / 64];
        let nodes = p.nodes().as_deref().unwrap_or("").trim();
        if !nodes.is_empty() {
            for part in nodes.split(',') {
                let (lo, hi) = part.split_once('-').unwrap_or((part, part));
                let parse = |s: &str| {
                    s.trim()
                        .parse::<usize>()
                        .ok()
                        .filter(|n| *n < MAX_NODES)
                        .ok_or_else(|| bad(format!("nodes {nodes:?} is not a node list")))
                };
                let (lo, hi) = (parse(lo)?, parse(hi)?);
                if lo > hi {
                    return Err(bad(format!("nodes {nodes:?}: range goes backwards")));
                }
                for n in lo..=hi {
                    mask[n / 64] |= 1 << (n % 64);
                }
            }
        }
        let any_node = mask.iter().any(|w| *w != 0);
        match p.mode() {
            MpolDefault | MpolLocal if any_node => {
                return Err(bad(format!("{name} takes no nodes")))
            }
            MpolBind | MpolInterleave | MpolPreferredMany | MpolWeightedInterleave if !any_node => {
                return Err(bad(format!("{name} needs nodes")))
            }
            _ => {}
        }
        for f in p.flags().iter().flatten() {
            mode |= match f {
                MemoryPolicyFlagType::MpolFNumaBalancing => FLAGS[0].1,
                MemoryPolicyFlagType::MpolFRelativeNodes => FLAGS[1].1,
                MemoryPolicyFlagType::MpolFStaticNodes => FLAGS[2].1,
            };
        }
        Ok(MemoryPolicy {
            mode,
            mask,
            any_node,
        })
    }

    pub fn apply(&self) -> Result<()> {
        let (ptr, maxnode) = if self.any_node {
            (
                self.mask.as_ptr(),
                (self.mask.len() * 64 + 1) as libc::c_ulong,
            )
        } else {
            (std::ptr::null(), 0)
        };
        // SAFETY: `ptr` is null or points to `mask`, whose maxnode - 1 bits the kernel
        // reads.
        let r = unsafe { libc::syscall(libc::SYS_set_mempolicy, self.mode, ptr, maxnode) };
        if r != 0 {
            return Err(Error::sys(
                "set_mempolicy",
                "linux.memoryPolicy",
                nix::Error::last(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(v: serde_json::Value) -> Result<MemoryPolicy> {
        MemoryPolicy::new(&serde_json::from_value(v).unwrap())
    }

    #[test]
    fn modes_nodes_and_flags() {
        let p = policy(serde_json::json!({"mode": "MPOL_BIND", "nodes": "0-2,65",
            "flags": ["MPOL_F_STATIC_NODES"]}))
        .unwrap();
        assert_eq!(p.mode, 2 | 1 << 15);
        assert_eq!((p.mask[0], p.mask[1]), (0b111, 0b10));
        for (v, needle) in [
            (
                serde_json::json!({"mode": "MPOL_BIND"}),
                "MPOL_BIND needs nodes",
            ),
            (
                serde_json::json!({"mode": "MPOL_LOCAL", "nodes": "0"}),
                "takes no nodes",
            ),
            (
                serde_json::json!({"mode": "MPOL_INTERLEAVE", "nodes": "x"}),
                "not a node list",
            ),
        ] {
            let e = policy(v).unwrap_err().to_string();
            assert!(
                e.contains("linux.memoryPolicy") && e.contains(needle),
                "{e}"
            );
        }
    }
}
