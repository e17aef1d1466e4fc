//! Writing a new user namespace's uid and gid maps from the parent, as runc's nsexec
//! does, for root and for a caller that is not host root (rootless).
//!
//! The kernel lets an unprivileged parent write one line that maps its own effective
//! id, and the gid map only after `setgroups` is set to "deny" (else the container
//! could drop a supplementary group that denies access). Anything more needs the
//! setuid helpers `newuidmap` and `newgidmap` (Debian's `uidmap`), which check the
//! ranges against /etc/subuid and /etc/subgid. As runc: the map file is written first
//! and the helper is run only when the kernel answers EPERM; "deny" is written only
//! for a rootless caller whose gid map is exactly its own egid as 0.

use crate::error::{Error, Result};
use nix::unistd::Pid;
use std::process::{Command, Stdio};

/// Writes `/proc/<pid>/uid_map` and `gid_map` (each `uid_map` text: one
/// "container host size" line per range).
pub(crate) fn write(pid: Pid, uid_map: &str, gid_map: &str) -> Result<()> {
    let rootless = !nix::unistd::geteuid().is_root();
    write_one(pid, "uid_map", uid_map, "newuidmap")?;
    if rootless && gid_map.trim() == format!("0 {} 1", nix::unistd::getegid()) {
        let path = format!("/proc/{pid}/setgroups");
        match std::fs::write(&path, "deny") {
            // A kernel before 3.19 has no setgroups file and no such rule.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            other => other.map_err(|e| Error::io("write", path, e))?,
        }
    }
    write_one(pid, "gid_map", gid_map, "newgidmap")
}

fn write_one(pid: Pid, file: &str, text: &str, helper: &str) -> Result<()> {
    if text.is_empty() {
        return Ok(());
    }
    let path = format!("/proc/{pid}/{file}");
    match std::fs::write(&path, text) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => run_helper(helper, pid, text)
            .map_err(|reason| Error::Init(format!("write {path}: {e}; {reason}"))),
        Err(e) => Err(Error::io("write", path, e)),
    }
}

/// `newuidmap <pid> <container> <host> <size> ...`; the error says why it did not
/// map (helper missing, or its own message: ranges not in /etc/subuid, ...).
fn run_helper(helper: &str, pid: Pid, text: &str) -> std::result::Result<(), String> {
    let mut cmd = Command::new(helper);
    cmd.arg(pid.to_string())
        .args(text.split_whitespace())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let out = cmd.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!("{helper} is not installed (Debian package uidmap), and an unprivileged caller can map only its own id")
        } else {
            format!("run {helper}: {e}")
        }
    })?;
    if out.status.success() {
        return Ok(());
    }
    let msg = String::from_utf8_lossy(&out.stderr);
    Err(format!(
        "{helper} failed ({}): {}",
        out.status,
        msg.trim().replace('\n', "; ")
    ))
}
