//! Host sanity: the host's /dev/null must survive the runtime under test.

use std::os::unix::fs::{FileTypeExt, MetadataExt};

/// Checks /dev/null is still a char device 1:3, root:root, mode 0666.
pub fn dev_null() -> Result<(), String> {
    let md = std::fs::symlink_metadata("/dev/null").map_err(|e| format!("stat /dev/null: {e}"))?;
    let rdev = md.rdev();
    let (maj, min) = (libc::major(rdev), libc::minor(rdev));
    let mode = md.mode() & 0o7777;
    if !md.file_type().is_char_device()
        || (maj, min) != (1, 3)
        || md.uid() != 0
        || md.gid() != 0
        || mode != 0o666
    {
        return Err(format!(
            "/dev/null is now char={} {maj}:{min} owner {}:{} mode {mode:o}; want char 1:3 0:0 666",
            md.file_type().is_char_device(),
            md.uid(),
            md.gid()
        ));
    }
    Ok(())
}
