//! Seccomp probe: an ERRNO rule for getcwd must make getcwd fail with the configured errno.

use serde_json::Value;

use crate::tap::Tap;

/// The errno getcwd should fail with under this config, if a rule names it.
pub fn getcwd_errno(cfg: &Value) -> Option<i64> {
    let s = cfg.pointer("/linux/seccomp")?;
    for rule in s["syscalls"].as_array().into_iter().flatten() {
        let names: Vec<&str> = rule["names"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if names.contains(&"getcwd")
            && rule["action"] == "SCMP_ACT_ERRNO"
            && rule["args"].as_array().is_none_or(|a| a.is_empty())
        {
            return Some(rule["errnoRet"].as_i64().unwrap_or(libc::EPERM as i64));
        }
    }
    None
}

pub fn check(t: &mut Tap, cfg: &Value) {
    let Some(want) = getcwd_errno(cfg) else {
        return;
    };
    let mut buf = [0u8; 256];
    // SAFETY: buf is a live, writable buffer of the length given.
    let r = unsafe { libc::getcwd(buf.as_mut_ptr().cast(), buf.len()) };
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0) as i64;
    t.check(
        "linux.seccomp getcwd ERRNO rule",
        r.is_null() && errno == want,
        || {
            if r.is_null() {
                format!("getcwd failed with errno {errno} want {want}")
            } else {
                "getcwd succeeded".into()
            }
        },
    );
}
