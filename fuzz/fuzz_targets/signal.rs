//! Signal names and numbers as `kill` and `--stop-signal` take them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(sig) = berth_runtime::parse_signal(text) {
        let n = sig.number();
        assert!((0..=64).contains(&n), "{text:?} parsed to signal {n}");
    }
});
