//! process.json for `exec --process`, prepared for a container of berth's default
//! spec (whose seccomp, personality and memory policy apply too).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fuzz_target!(|data: &[u8]| {
    static SPEC: OnceLock<oci_spec::runtime::Spec> = OnceLock::new();
    let spec = SPEC.get_or_init(berth_runtime::default_spec);
    let _ = berth_runtime::check_exec_process(data, spec);
});
