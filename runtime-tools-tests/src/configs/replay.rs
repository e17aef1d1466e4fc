//! A config.json captured from an engine, made to run from one of our bundles.
//!
//! An engine's config names things only that engine's run had: its image's rootfs,
//! files in its own storage bound over /etc/hosts and friends, hooks that call back
//! into the engine process, its own cgroup parent. Replay changes exactly those and
//! keeps every other field as the engine wrote it (process, capabilities, seccomp,
//! mounts, masked paths, sysctls, resources, namespaces).

use std::io;
use std::path::Path;

use serde_json::Value;

/// Bind destinations that engines fill with a file (the rest are directories).
const FILE_DESTINATIONS: &[&str] = &[
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
    "/run/.containerenv",
    "/dev/termination-log",
];

/// Rewrites `cfg` in place to run from the bundle at `bundle` (rootfs `rootfs`):
/// - `root.path` becomes the bundle's rootfs;
/// - every hook is dropped: engine hooks run the engine's own binary against its
///   own state (Docker's `libnetwork-setkey` through `/proc/<dockerd>/exe`);
/// - a bind mount whose source does not exist here gets a stand-in under
///   `<bundle>/binds/` (a file for /etc/hosts-like destinations, else a directory,
///   with a tmpfs on it for /dev/shm);
/// - a namespace `path` that does not exist here is dropped (a new namespace), and so
///   is one under `/proc/<pid>/`: it named a process of the engine's run (containerd's
///   CRI joins a pod's containers to its sandbox by `/proc/<sandbox pid>/ns/...`), and
///   that pid may now be any process of this machine;
/// - rlimits above what this process may grant are lowered to its hard limit.
///
/// cgroupsPath is left for the caller (Ctx::prepare puts it under the run's parent).
/// Returns one note per change, for the scenario's log.
pub fn adapt(cfg: &mut Value, bundle: &Path) -> io::Result<Vec<String>> {
    let mut notes = Vec::new();
    if cfg.pointer("/root/path").and_then(Value::as_str) != Some("rootfs") {
        cfg["root"]["path"] = Value::from("rootfs");
        notes.push("root.path".to_string());
    }
    if let Some(hooks) = cfg.as_object_mut().and_then(|o| o.remove("hooks")) {
        let kinds: Vec<String> = hooks
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k} x{}", v.as_array().map_or(0, Vec::len)))
            .collect();
        notes.push(format!("hooks dropped ({})", kinds.join(", ")));
    }
    let hostname = cfg["hostname"].as_str().unwrap_or("container").to_string();
    let mut stand_ins = 0;
    for (i, m) in cfg["mounts"]
        .as_array_mut()
        .into_iter()
        .flatten()
        .enumerate()
    {
        if !is_bind(m) {
            continue;
        }
        let src = m["source"].as_str().unwrap_or_default();
        if Path::new(src).exists() {
            continue;
        }
        let dest = m["destination"].as_str().unwrap_or_default().to_string();
        let stand_in = bundle.join("binds").join(format!("{i}"));
        std::fs::create_dir_all(bundle.join("binds"))?;
        if FILE_DESTINATIONS.contains(&dest.as_str()) {
            std::fs::write(&stand_in, stand_in_text(&dest, &hostname))?;
        } else {
            std::fs::create_dir_all(&stand_in)?;
            if dest == "/dev/shm" {
                shm_tmpfs(&stand_in)?;
            }
        }
        m["source"] = Value::from(stand_in.display().to_string());
        stand_ins += 1;
    }
    if stand_ins > 0 {
        notes.push(format!(
            "{stand_ins} bind sources from the engine's storage"
        ));
    }
    for ns in cfg
        .pointer_mut("/linux/namespaces")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        let gone = ns["path"]
            .as_str()
            .is_some_and(|p| p.starts_with("/proc/") || !Path::new(p).exists());
        if gone {
            if let Some(o) = ns.as_object_mut() {
                o.remove("path");
            }
            notes.push(format!(
                "{} namespace path",
                ns["type"].as_str().unwrap_or("?")
            ));
        }
    }
    for r in cfg
        .pointer_mut("/process/rlimits")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        let Some(max) = r["type"].as_str().and_then(hard_limit) else {
            continue;
        };
        for k in ["hard", "soft"] {
            if r[k].as_u64().is_some_and(|v| v > max) {
                r[k] = Value::from(max);
                notes.push(format!("{} {k} lowered to {max}", r["type"]));
            }
        }
    }
    Ok(notes)
}

/// An engine that binds a directory at /dev/shm has mounted a tmpfs on it first
/// (Podman's `userdata/shm`, Docker's shareable IPC mode): the stand-in gets one too.
/// The bundle's removal detaches it.
fn shm_tmpfs(dir: &Path) -> io::Result<()> {
    use nix::mount::{mount, MsFlags};
    mount(
        Some("shm"),
        dir,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=1777,size=65536k"),
    )
    .map_err(|e| io::Error::other(format!("mount tmpfs on {}: {e}", dir.display())))
}

fn is_bind(m: &Value) -> bool {
    m["type"] == "bind"
        || m["options"]
            .as_array()
            .is_some_and(|o| o.iter().any(|x| x == "bind" || x == "rbind"))
}

/// What an engine would have written into the file it binds at `dest`.
fn stand_in_text(dest: &str, hostname: &str) -> String {
    match dest {
        "/etc/hostname" => format!("{hostname}\n"),
        "/etc/hosts" => format!("127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.1.1\t{hostname}\n"),
        _ => String::new(),
    }
}

/// This process's hard limit for an RLIMIT_* name, when it is finite.
fn hard_limit(name: &str) -> Option<u64> {
    let res = match name {
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        _ => return None,
    };
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only into the rlimit struct we pass.
    if unsafe { libc::getrlimit(res, &mut lim) } != 0 || lim.rlim_max == libc::RLIM_INFINITY {
        return None;
    }
    Some(lim.rlim_max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn adapt_rewrites_only_what_names_the_engine_s_run() {
        let dir = std::env::temp_dir().join(format!("berth-replay-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let mut cfg = json!({
            "root": {"path": "/var/lib/engine/merged"},
            "hostname": "abc",
            "hooks": {"prestart": [{"path": "/proc/1/exe"}]},
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/etc/hostname", "type": "bind", "source": "/nonexistent/h",
                 "options": ["rbind"]},
                {"destination": "/var/cache", "type": "bind", "source": "/nonexistent/c"},
                {"destination": "/data", "type": "bind", "source": "/etc"}
            ],
            "linux": {"namespaces": [
                {"type": "network", "path": "/nonexistent/ns"},
                {"type": "pid"},
                {"type": "ipc", "path": "/proc/self/ns/ipc"}
            ]}
        });
        let notes = adapt(&mut cfg, &dir).expect("adapt");
        assert_eq!(cfg["root"]["path"], "rootfs");
        assert!(cfg.get("hooks").is_none());
        let h = cfg["mounts"][1]["source"].as_str().expect("source");
        assert_eq!(std::fs::read_to_string(h).expect("stand-in"), "abc\n");
        assert!(Path::new(cfg["mounts"][2]["source"].as_str().expect("src")).is_dir());
        assert_eq!(cfg["mounts"][3]["source"], "/etc");
        assert_eq!(cfg["linux"]["namespaces"][0], json!({"type": "network"}));
        assert_eq!(cfg["linux"]["namespaces"][2], json!({"type": "ipc"}));
        assert_eq!(notes.len(), 5, "{notes:?}");
        crate::bundle::remove_tree(&dir).expect("cleanup");
    }
}
