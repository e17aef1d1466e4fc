//! Container ids: they name a directory under the state root, so they must be a single
//! safe path component.

use crate::error::{Error, Result};

/// NAME_MAX: the longest directory entry name.
const MAX_LEN: usize = 255;

/// Accepts runc's id alphabet (letters, digits, `_ + - .`), at most 255 bytes (the
/// longest name of a directory entry, NAME_MAX: the id names the state directory and
/// the cgroup directory; runc accepts a longer one and then fails in mkdir with "file
/// name too long"), not `.` or `..`. Anything else is refused with the reason.
pub fn validate_id(id: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidId {
            id: id.to_string(),
            reason,
        })
    };
    if id.is_empty() {
        return bad("empty");
    }
    if id.len() > MAX_LEN {
        return bad("longer than 255 bytes (it names a directory)");
    }
    if id == "." || id == ".." {
        return bad("is a relative path component");
    }
    if id.contains('/') {
        return bad("contains '/'");
    }
    if id.chars().any(|c| c.is_control()) {
        return bad("contains a control character");
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c))
    {
        return bad("may only contain letters, digits, '_', '+', '-' and '.'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate_id;

    #[test]
    fn accepts_runc_ids() {
        for id in ["a", "abc-123", "x_y.z+1", "0123456789abcdef"] {
            assert!(validate_id(id).is_ok(), "{id}");
        }
    }

    #[test]
    fn rejects_unsafe_ids() {
        for id in ["", ".", "..", "a/b", "/", "a\nb", "a\0b", "a b", "ä"] {
            assert!(validate_id(id).is_err(), "{id:?}");
        }
        assert!(validate_id(&"a".repeat(256)).is_err());
        assert!(validate_id(&"a".repeat(255)).is_ok());
    }
}
