//! config.json into the create plan: every check `create` makes before it touches
//! the host (berth_runtime::check_config), on any bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(spec) = berth_runtime::check_config(data) {
        // What create keeps in the state file must serialize again.
        serde_json::to_vec(&spec).expect("a checked spec serializes");
    }
});
