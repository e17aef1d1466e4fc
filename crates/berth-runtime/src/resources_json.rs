//! `update --resources`' JSON document (a LinuxResources) read as runc reads it.

use crate::error::{Error, Result};
use oci_spec::runtime::LinuxResources;
use serde_json::Value;

/// A LinuxResources JSON document (`update --resources FILE`), with runc's
/// leniency: field names match without regard to case, as Go's encoding/json
/// matches them. The error is [`Error::Config`] with serde's one-line reason.
pub fn resources_from_json(data: &[u8]) -> Result<LinuxResources> {
    let mut doc: Value = serde_json::from_slice(data).map_err(|e| Error::Config(e.to_string()))?;
    fold_key_case(&mut doc);
    serde_json::from_value(doc).map_err(|e| Error::Config(e.to_string()))
}

/// Every field name of the runtime spec's LinuxResources and the types inside it.
const RESOURCE_KEYS: &[&str] = &[
    "devices",
    "memory",
    "cpu",
    "pids",
    "blockIO",
    "hugepageLimits",
    "network",
    "rdma",
    "unified",
    "allow",
    "type",
    "major",
    "minor",
    "access",
    "limit",
    "reservation",
    "swap",
    "kernel",
    "kernelTCP",
    "swappiness",
    "disableOOMKiller",
    "useHierarchy",
    "checkBeforeUpdate",
    "shares",
    "quota",
    "burst",
    "period",
    "realtimeRuntime",
    "realtimePeriod",
    "cpus",
    "mems",
    "idle",
    "weight",
    "leafWeight",
    "weightDevice",
    "throttleReadBpsDevice",
    "throttleWriteBpsDevice",
    "throttleReadIOPSDevice",
    "throttleWriteIOPSDevice",
    "rate",
    "pageSize",
    "classID",
    "priorities",
    "name",
    "priority",
    "hcaHandles",
    "hcaObjects",
];

/// runc decodes `--resources` with Go's encoding/json, which matches field names
/// without regard to case (`{"CPU": {"Cpus": "1"}}` is runc's own test): keys that
/// differ from a field name only in case are renamed to it. The keys of `unified`
/// and `rdma` are data (file and device names) and stay as they are.
fn fold_key_case(v: &mut Value) {
    match v {
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                let canon = RESOURCE_KEYS
                    .iter()
                    .find(|c| c.eq_ignore_ascii_case(&k))
                    .map(|c| c.to_string());
                let Some(mut val) = map.remove(&k) else {
                    continue;
                };
                let name = match canon {
                    Some(c) if !map.contains_key(&c) || c == k => c,
                    _ => k,
                };
                if name != "unified" && name != "rdma" {
                    fold_key_case(&mut val);
                }
                map.insert(name, val);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(fold_key_case),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::fold_key_case;

    #[test]
    fn resource_keys_match_without_case() {
        let mut v = serde_json::json!({"CPU": {"Cpus": "1", "SHARES": 5},
            "unified": {"Memory.High": "1"}, "Memory": {"Limit": 7}});
        fold_key_case(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"cpu": {"cpus": "1", "shares": 5},
                "unified": {"Memory.High": "1"}, "memory": {"limit": 7}})
        );
    }
}
