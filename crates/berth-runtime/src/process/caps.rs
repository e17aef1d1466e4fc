//! Capabilities: the five sets of `process.capabilities`, applied in the order the
//! kernel allows (runc's finalizeNamespace): the bounding set is reduced while the init
//! is still fully privileged; after the uid switch (with PR_SET_KEEPCAPS) the
//! inheritable, effective and permitted sets are set, then the ambient set raised.

use crate::error::{Error, Result};
use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};
use std::str::FromStr;

#[derive(Debug, Clone)]
pub(crate) struct CapsPlan {
    bounding: CapsHashSet,
    effective: CapsHashSet,
    inheritable: CapsHashSet,
    permitted: CapsHashSet,
    ambient: CapsHashSet,
    /// Every capability this kernel knows (0..=cap_last_cap).
    all: CapsHashSet,
    /// The kernel's cap_last_cap, read in the parent: the init applies the bounding
    /// set under the user's seccomp filter (without no_new_privs), where reading
    /// /proc may be denied.
    last_cap: u32,
}

fn convert(set: &Option<Capabilities>) -> CapsHashSet {
    set.iter()
        .flatten()
        .filter_map(|c| {
            let name = format!("CAP_{c}");
            match Capability::from_str(&name) {
                Ok(cap) => Some(cap),
                Err(_) => {
                    tracing::warn!("capability {name} is unknown to berth: skipped");
                    None
                }
            }
        })
        .collect()
}

impl CapsPlan {
    pub fn new(c: &LinuxCapabilities) -> Result<Self> {
        let all = caps::runtime::thread_all_supported();
        let mut plan = CapsPlan {
            bounding: convert(c.bounding()),
            effective: convert(c.effective()),
            inheritable: convert(c.inheritable()),
            permitted: convert(c.permitted()),
            ambient: convert(c.ambient()),
            all,
            last_cap: cap_last_cap(),
        };
        // The kernel raises an ambient capability only if it is both permitted and
        // inheritable; runc goes on without them (its default spec asks for ambient
        // capabilities that are not inheritable and its tests expect CapAmb 0), so does
        // berth, logging it at debug level.
        let (ambient, refused): (CapsHashSet, CapsHashSet) = plan
            .ambient
            .iter()
            .partition(|c| plan.permitted.contains(c) && plan.inheritable.contains(c));
        for cap in refused {
            tracing::debug!(
                "ambient capability {cap} is not both permitted and inheritable: not raised"
            );
        }
        plan.ambient = ambient;
        Ok(plan)
    }

    /// Before the uid switch: drop from the bounding set what the config leaves out.
    /// Fails naming a capability the config wants but the runtime itself lacks.
    pub fn apply_bounding(&self) -> Result<()> {
        let current = caps::read(None, CapSet::Bounding)
            .map_err(|e| Error::Init(format!("read bounding set: {e}")))?;
        let wanted = self
            .bounding
            .iter()
            .chain(&self.permitted)
            .chain(&self.effective)
            .chain(&self.inheritable)
            .chain(&self.ambient);
        for cap in wanted {
            if self.all.contains(cap) && !current.contains(cap) {
                return Err(Error::Init(format!(
                    "capability {cap} is not in berth's own bounding set and cannot be granted"
                )));
            }
        }
        for cap in &self.all {
            if !self.bounding.contains(cap) && current.contains(cap) {
                caps::drop(None, CapSet::Bounding, *cap)
                    .map_err(|e| Error::Init(format!("drop {cap} from the bounding set: {e}")))?;
            }
        }
        // Capabilities of a newer kernel than the caps crate knows: never granted, so
        // they leave the bounding set by number.
        let named = caps::all()
            .iter()
            .map(|c| c.index() as u32)
            .max()
            .unwrap_or(0);
        for n in named + 1..=self.last_cap {
            // SAFETY: prctl with integer arguments.
            if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, n as libc::c_ulong, 0, 0, 0) } != 0 {
                let e = nix::Error::last();
                if e != nix::Error::EINVAL {
                    return Err(Error::sys(
                        "prctl PR_CAPBSET_DROP",
                        format!("capability {n}"),
                        e,
                    ));
                }
            }
        }
        Ok(())
    }

    /// After the uid switch: set I, E, P (in this order, so that each step is allowed),
    /// then raise the ambient set.
    pub fn apply_sets(&self) -> Result<()> {
        let known =
            |s: &CapsHashSet| -> CapsHashSet { s.intersection(&self.all).copied().collect() };
        for (set, want, name) in [
            (CapSet::Inheritable, &self.inheritable, "inheritable"),
            (CapSet::Effective, &self.effective, "effective"),
            (CapSet::Permitted, &self.permitted, "permitted"),
        ] {
            caps::set(None, set, &known(want))
                .map_err(|e| Error::Init(format!("set {name} capabilities: {e}")))?;
        }
        caps::clear(None, CapSet::Ambient)
            .map_err(|e| Error::Init(format!("clear ambient capabilities: {e}")))?;
        for cap in known(&self.ambient) {
            caps::raise(None, CapSet::Ambient, cap)
                .map_err(|e| Error::Init(format!("raise ambient capability {cap} (it must also be permitted and inheritable): {e}")))?;
        }
        Ok(())
    }
}

/// The highest capability number of the running kernel.
pub(crate) fn cap_last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| {
            caps::all()
                .iter()
                .map(|c| c.index() as u32)
                .max()
                .unwrap_or(0)
        })
}

/// The name of capability number `n`, if berth knows it.
pub(crate) fn cap_name(n: u32) -> Option<String> {
    caps::all()
        .into_iter()
        .find(|c| c.index() as u32 == n)
        .map(|c| c.to_string())
}
