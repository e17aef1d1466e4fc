//! `update --resources` JSON: decoded as runc decodes it, then merged over a
//! container's resources as `Container::update` merges them (nothing written).
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::LinuxResources;

fuzz_target!(|data: &[u8]| {
    let Ok(update) = berth_runtime::resources_from_json(data) else {
        return;
    };
    let current: LinuxResources = serde_json::from_value(serde_json::json!({
        "memory": {"limit": 1073741824, "swap": 2147483648u64},
        "cpu": {"shares": 512, "quota": 100000, "period": 100000, "cpus": "0"},
        "pids": {"limit": 100}
    }))
    .expect("the base resources parse");
    for base in [LinuxResources::default(), current] {
        let _ = berth_runtime::check_update(&base, &update);
    }
});
