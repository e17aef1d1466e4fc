//! A seccomp profile (`linux.seccomp`) compiled into its BPF filter, not loaded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::LinuxSeccomp;

fuzz_target!(|data: &[u8]| {
    let Ok(profile) = serde_json::from_slice::<LinuxSeccomp>(data) else {
        return;
    };
    if let Ok(bpf) = berth_runtime::compile_seccomp(&profile) {
        // A `struct sock_filter` array: 8 bytes an instruction, never empty.
        assert!(
            !bpf.is_empty() && bpf.len().is_multiple_of(8),
            "bpf of {} bytes",
            bpf.len()
        );
    }
});
