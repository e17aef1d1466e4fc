//! The process user's home directory from the container's `/etc/passwd`, for a `HOME`
//! that `process.env` does not set (runc's setupUser: the first entry with the uid, `/`
//! when there is none or no file).
//!
//! Read by the init (or the exec'd process) after pivot_root, as root, so the path and
//! any symlink in it resolve inside the container.

use crate::error::{Error, Result};
use std::ffi::CString;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;

const PASSWD: &str = "/etc/passwd";

/// Larger files are not a passwd database a container ships; reading stops there.
const MAX_SIZE: u64 = 16 << 20;

/// The home directory of `uid` in the current root's `/etc/passwd`.
pub(crate) fn home_of(uid: u32) -> Result<CString> {
    // Non-blocking: a FIFO put at /etc/passwd must not hang the init; only a regular
    // file is read (runc would read whatever is there).
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(PASSWD);
    let Ok(file) = file else {
        return Ok(c"/".to_owned());
    };
    let is_file = file.metadata().is_ok_and(|m| m.is_file());
    if !is_file {
        return Ok(c"/".to_owned());
    }
    let mut text = Vec::new();
    file.take(MAX_SIZE)
        .read_to_end(&mut text)
        .map_err(|e| Error::io("read", PASSWD, e))?;
    let home = lookup(&text, uid).unwrap_or(b"/");
    CString::new(home).map_err(|_| Error::Init(format!("{PASSWD}: home of uid {uid} has a NUL")))
}

/// The sixth field of the first line whose third field is `uid`, parsed as runc's
/// user package does: surrounding space trimmed, blank lines skipped, a missing field
/// empty and a uid that is not a number read as 0.
fn lookup(text: &[u8], uid: u32) -> Option<&[u8]> {
    text.split(|&b| b == b'\n')
        .map(|l| l.trim_ascii())
        .filter(|l| !l.is_empty())
        .find_map(|line| {
            let mut fields = line.split(|&b| b == b':');
            let entry_uid = fields
                .nth(2)
                .and_then(|f| std::str::from_utf8(f).ok())
                .and_then(|f| f.parse::<i64>().ok())
                .unwrap_or(0);
            (entry_uid == i64::from(uid)).then(|| fields.nth(2).unwrap_or(b""))
        })
}

#[cfg(test)]
mod tests {
    use super::lookup;

    #[test]
    fn first_entry_with_the_uid() {
        let text = b"root:x:0:0:root:/root:/bin/sh\n\n  u:x:10:10::/home/u:/bin/sh  \nv:x:10:10::/home/v:/bin/sh\nshort:x:20\n";
        assert_eq!(lookup(text, 0), Some(&b"/root"[..]));
        assert_eq!(lookup(text, 10), Some(&b"/home/u"[..]));
        assert_eq!(lookup(text, 20), Some(&b""[..]));
        assert_eq!(lookup(text, 30), None);
        assert_eq!(lookup(b"bad:x:abc:0::/weird:\n", 0), Some(&b"/weird"[..]));
    }
}
