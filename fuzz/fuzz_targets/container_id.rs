//! Container ids: an id validate_id accepts names one directory in the state root
//! and, as the default cgroupsPath, one cgroup.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(id) = std::str::from_utf8(data) else {
        return;
    };
    if berth_runtime::validate_id(id).is_ok() {
        assert!(
            !id.is_empty() && !id.contains(['/', '\0']) && id != "." && id != "..",
            "{id:?} accepted but not a single path component"
        );
        berth_cgroups::check_cgroups_path(None, id)
            .unwrap_or_else(|e| panic!("{id:?} accepted but not a cgroup name: {e}"));
    }
});
