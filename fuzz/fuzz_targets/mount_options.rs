//! One `mounts` entry, checked as create checks it. The input is text, one field a
//! line: type, source, destination, then the options (comma-separated, as fstab), so
//! that the fuzzer works on the option names rather than on JSON syntax.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::Mount;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.splitn(4, '\n');
    let typ = lines.next().unwrap_or_default();
    let source = lines.next().unwrap_or_default();
    let destination = lines.next().unwrap_or_default();
    let options = lines.next().unwrap_or_default();
    let mut m = Mount::default();
    m.set_typ((!typ.is_empty()).then(|| typ.to_string()));
    m.set_source((!source.is_empty()).then(|| source.into()));
    m.set_destination(destination.into());
    m.set_options(Some(options.split(',').map(str::to_string).collect()));
    for unified in [false, true] {
        let _ = berth_runtime::check_mount(&m, unified);
    }
});
