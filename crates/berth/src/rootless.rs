//! Rootless mode as runc decides it: whether the cgroups are handled by the rootless
//! manager (`--rootless`), and where the state lives when `--root` is not given.

use crate::cli::Rootless;
use anyhow::Context;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// berth's state root for root (runc's is /run/runc).
pub const DEFAULT_ROOT: &str = "/run/berth";

/// Whether this process is in a user namespace other than the initial one: the
/// initial one maps the whole 32-bit id space onto itself ("0 0 4294967295").
pub fn running_in_user_ns() -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/self/uid_map") else {
        return false;
    };
    let fields: Vec<&str> = text.split_whitespace().collect();
    fields != ["0", "0", "4294967295"]
}

/// runc's `shouldUseRootlessCgroupManager`: the flag when it is true or false; on
/// `auto`, yes for a caller whose euid is not 0 and for root inside a user
/// namespace. With `--systemd-cgroup`, root in a user namespace is rootless when the
/// user manager it would ask (its session bus, the uid it is outside) is not host
/// root's, as runc's `DetectUID`; without a session bus, not rootless (runc's
/// fallback to uid 0).
pub fn use_rootless_cgroups(flag: Rootless, systemd_cgroup: bool) -> bool {
    match flag {
        Rootless::True => true,
        Rootless::False => false,
        Rootless::Auto => {
            if !nix::unistd::geteuid().is_root() {
                return true;
            }
            if !running_in_user_ns() {
                return false;
            }
            !systemd_cgroup || berth_runtime::systemd_user_manager_uid().is_some_and(|uid| uid != 0)
        }
    }
}

/// runc's `shouldHonorXDGRuntimeDir`: `$XDG_RUNTIME_DIR` is used for a caller whose
/// euid is not 0, and for root in a user namespace unless `$USER` is root; host root
/// keeps the fixed path even when the variable is set (as /run/user/0).
fn xdg_runtime_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty())?;
    let honor = if !nix::unistd::geteuid().is_root() {
        true
    } else if !running_in_user_ns() {
        false
    } else {
        std::env::var("USER").ok().as_deref() != Some("root")
    };
    honor.then(|| PathBuf::from(dir))
}

/// The state root when `--root` is not given: `$XDG_RUNTIME_DIR/berth` where runc
/// would use `$XDG_RUNTIME_DIR/runc` (made here, mode 0700 with the sticky bit that
/// keeps the XDG cleaner from pruning it, as runc does), else /run/berth.
pub fn default_root() -> anyhow::Result<PathBuf> {
    let Some(xdg) = xdg_runtime_dir() else {
        return Ok(PathBuf::from(DEFAULT_ROOT));
    };
    let root = xdg.join("berth");
    std::fs::create_dir_all(&root).with_context(|| {
        format!(
            "create state root {}: the path in $XDG_RUNTIME_DIR must be writable by the user",
            root.display()
        )
    })?;
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o1700)).with_context(
        || {
            format!(
                "chmod state root {}: check the permissions of the path in $XDG_RUNTIME_DIR",
                root.display()
            )
        },
    )?;
    Ok(root)
}
