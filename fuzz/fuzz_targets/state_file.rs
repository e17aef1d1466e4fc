//! A container's state.json as `Runtime::load` reads it (a state file may be
//! truncated by a crash or edited by hand).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(state) = berth_runtime::check_state_file(data, "fuzz") {
        serde_json::to_vec(&state).expect("a state serializes");
    }
});
