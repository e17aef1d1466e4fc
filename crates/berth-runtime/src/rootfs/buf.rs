//! Fixed-size C strings on the stack, so the init can build paths and mount data
//! after fork without touching the heap.

use std::ffi::CStr;
use std::fmt;

/// A NUL-terminated string of at most `N - 1` bytes, built with `write!`.
pub(super) struct StackCStr<const N: usize> {
    buf: [u8; N],
    len: usize,
    overflow: bool,
}

impl<const N: usize> StackCStr<N> {
    pub(super) const fn new() -> Self {
        StackCStr {
            buf: [0; N],
            len: 0,
            overflow: false,
        }
    }

    /// Appends raw bytes; an interior NUL or running out of room marks the string
    /// unusable ([`StackCStr::as_cstr`] then returns `None`).
    pub(super) fn push_bytes(&mut self, bytes: &[u8]) {
        if bytes.contains(&0) || self.len + bytes.len() >= N {
            self.overflow = true;
            return;
        }
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
        self.buf[self.len] = 0;
    }

    /// Empties the string (and forgets an overflow).
    pub(super) fn clear(&mut self) {
        self.len = 0;
        self.buf[0] = 0;
        self.overflow = false;
    }

    /// Shortens the string to `len` bytes.
    pub(super) fn truncate(&mut self, len: usize) {
        if len < self.len {
            self.len = len;
            self.buf[len] = 0;
        }
    }

    pub(super) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub(super) fn as_cstr(&self) -> Option<&CStr> {
        if self.overflow {
            return None;
        }
        CStr::from_bytes_with_nul(&self.buf[..=self.len]).ok()
    }
}

impl<const N: usize> fmt::Write for StackCStr<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_bytes(s.as_bytes());
        if self.overflow {
            Err(fmt::Error)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write;

    #[test]
    fn formats_and_terminates() {
        let mut s = StackCStr::<32>::new();
        write!(s, "/proc/self/fd/{}", 17).unwrap();
        assert_eq!(s.as_cstr().unwrap().to_bytes(), b"/proc/self/fd/17");
        s.truncate(5);
        assert_eq!(s.as_cstr().unwrap().to_bytes(), b"/proc");
    }

    #[test]
    fn overflow_is_reported() {
        let mut s = StackCStr::<4>::new();
        assert!(write!(s, "abcd").is_err());
        assert!(s.as_cstr().is_none());
    }
}
