//! `update`: new resource values for a running container, merged into the ones it
//! has (a field left out keeps its value, as runc's update does), written to the
//! cgroup and kept in the state so later commands see them.

use crate::container::Container;
use crate::error::{Error, Result};
use crate::state::Status;
use oci_spec::runtime::LinuxResources;

impl Container {
    /// Applies `resources` on top of the container's current ones.
    pub fn update(&mut self, resources: &LinuxResources) -> Result<()> {
        // Exclusive, and the state read again under the lock: two updates would each
        // merge into the state they loaded before and the last save (and its cgroup
        // writes of the merged values) would undo the other's.
        let _lock = self.lock(true)?;
        self.state = crate::state::Persisted::load(
            &self.runtime.container_dir(&self.state.id),
            &self.state.id,
        )?;
        let status = self.status();
        if status == Status::Stopped {
            return Err(self.bad_status(status, "cannot update a stopped container"));
        }
        let current = self
            .state
            .config
            .linux()
            .as_ref()
            .and_then(|l| l.resources().clone())
            .unwrap_or_default();
        let (mut merged, write) = plan(&current, resources)?;
        let cg = self
            .cgroup()?
            .ok_or_else(|| self.bad_status(status, "container has no cgroup"))?;
        cg.update(&write)?;
        // `--memory -1` alone lifts the memory+swap limit too (runc's setMemoryAndSwap).
        let mem = resources.memory().as_ref();
        if mem.and_then(|m| m.limit()) == Some(-1) && mem.and_then(|m| m.swap()).is_none() {
            if let Some(mut m) = merged.memory().filter(|m| m.swap().is_some()) {
                m.set_swap(Some(-1));
                merged.set_memory(Some(m));
            }
        }
        let mut linux = self.state.config.linux().clone().unwrap_or_default();
        linux.set_resources(Some(merged));
        self.state.config.set_linux(Some(linux));
        self.state.save(&self.runtime.container_dir(&self.state.id))
    }
}

/// What an update writes: the merged resources, but the memory limit and the
/// memory+swap limit only as the update gives them. The kernel keeps limit <=
/// memory+swap, so a stored value written again beside a new one can be refused
/// (`--memory -1` after a swap limit): runc writes only the values given, and the
/// order of the two writes follows from them (see the v1 driver).
/// What an update of `current` by `update` keeps and what it writes to the cgroup.
pub(crate) fn plan(
    current: &LinuxResources,
    update: &LinuxResources,
) -> Result<(LinuxResources, LinuxResources)> {
    let merged = merge(current, update)?;
    let write = to_write(&merged, update);
    Ok((merged, write))
}

fn to_write(merged: &LinuxResources, update: &LinuxResources) -> LinuxResources {
    let mut out = merged.clone();
    if let Some(mut m) = *merged.memory() {
        let given = update.memory().as_ref();
        m.set_limit(given.and_then(|g| g.limit()));
        m.set_swap(given.and_then(|g| g.swap()));
        out.set_memory(Some(m));
    }
    out
}

/// Deep merge: objects merge key by key, anything else (numbers, arrays) is replaced
/// by the update's value; nulls in the update change nothing.
fn merge(current: &LinuxResources, update: &LinuxResources) -> Result<LinuxResources> {
    let bad = |e: serde_json::Error| Error::Config(format!("update: resources: {e}"));
    let mut base = serde_json::to_value(current).map_err(bad)?;
    let over = serde_json::to_value(update).map_err(bad)?;
    merge_value(&mut base, over);
    serde_json::from_value(base).map_err(bad)
}

fn merge_value(base: &mut serde_json::Value, over: serde_json::Value) {
    match (base, over) {
        (serde_json::Value::Object(b), serde_json::Value::Object(o)) => {
            for (k, v) in o {
                if v.is_null() {
                    continue;
                }
                match b.get_mut(&k) {
                    Some(slot) if slot.is_object() && v.is_object() => merge_value(slot, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) if !o.is_null() => *b = o,
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::{merge, to_write};
    use oci_spec::runtime::LinuxResources;

    fn res(v: serde_json::Value) -> LinuxResources {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn keeps_what_the_update_leaves_out() {
        let current = res(serde_json::json!({
            "memory": {"limit": 100, "swap": 200},
            "pids": {"limit": 10},
            "devices": [{"allow": false, "access": "rwm"}]
        }));
        let update = res(serde_json::json!({"memory": {"limit": 150}, "cpu": {"shares": 512}}));
        let m = serde_json::to_value(merge(&current, &update).unwrap()).unwrap();
        assert_eq!(m["memory"]["limit"], 150);
        assert_eq!(m["memory"]["swap"], 200);
        assert_eq!(m["pids"]["limit"], 10);
        assert_eq!(m["cpu"]["shares"], 512);
        assert_eq!(m["devices"][0]["access"], "rwm");
    }

    #[test]
    fn memory_limits_are_written_only_as_given() {
        let current =
            res(serde_json::json!({"memory": {"limit": 100, "swap": 200, "reservation": 50}}));
        let update = res(serde_json::json!({"memory": {"limit": -1}}));
        let merged = merge(&current, &update).unwrap();
        let w = serde_json::to_value(to_write(&merged, &update)).unwrap();
        assert_eq!(w["memory"]["limit"], -1);
        assert!(w["memory"].get("swap").is_none_or(|v| v.is_null()), "{w}");
        assert_eq!(w["memory"]["reservation"], 50);
        let update = res(serde_json::json!({"pids": {"limit": 5}}));
        let merged = merge(&current, &update).unwrap();
        let w = serde_json::to_value(to_write(&merged, &update)).unwrap();
        assert!(w["memory"].get("limit").is_none_or(|v| v.is_null()), "{w}");
    }
}
