//! Root and mount checks: readonly root, config mounts in mountinfo order, default
//! filesystems, and the rootfsPropagation probe.

use std::path::Path;

use serde_json::Value;

use crate::tap::Tap;

/// One /proc/self/mountinfo line.
pub struct MountInfo {
    pub root: String,
    pub point: String,
    pub opts: String,
    pub fstype: String,
    pub source: String,
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 4]).unwrap_or(""), 8)
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn mountinfo() -> Vec<MountInfo> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let f: Vec<&str> = pre.split(' ').collect();
            let g: Vec<&str> = post.split(' ').collect();
            Some(MountInfo {
                root: unescape(f.get(3)?),
                point: unescape(f.get(4)?),
                opts: f.get(5)?.to_string(),
                fstype: g.first()?.to_string(),
                source: unescape(g.get(1)?),
            })
        })
        .collect()
}

fn basename(p: &str) -> &str {
    p.trim_end_matches('/').rsplit('/').next().unwrap_or("")
}

fn statvfs_readonly(p: &str) -> Option<bool> {
    nix::sys::statvfs::statvfs(p)
        .ok()
        .map(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

pub fn check(t: &mut Tap, cfg: &Value) {
    root_readonly(t, cfg);
    let mi = mountinfo();
    config_mounts(t, cfg, &mi);
    for (point, fstype) in [
        ("/proc", "proc"),
        ("/sys", "sysfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
    ] {
        let found = mi.iter().any(|m| m.point == point && m.fstype == fstype);
        t.check(
            &format!("default filesystem {point} ({fstype})"),
            found,
            || "not mounted".into(),
        );
    }
    if let Some(p) = cfg
        .pointer("/linux/rootfsPropagation")
        .and_then(Value::as_str)
    {
        propagation(t, p);
    }
}

fn root_readonly(t: &mut Tap, cfg: &Value) {
    let want = cfg
        .pointer("/root/readonly")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let ro = statvfs_readonly("/");
    t.check("root.readonly (statvfs)", ro == Some(want), || {
        format!("statvfs(/) readonly is {ro:?} want {want}")
    });
    if want {
        let r = std::fs::File::create("/.readonly-probe");
        t.check(
            "root.readonly: creating /.readonly-probe fails",
            r.is_err(),
            || "file created".into(),
        );
        let _ = std::fs::remove_file("/.readonly-probe");
    }
}

fn config_mounts(t: &mut Tap, cfg: &Value, mi: &[MountInfo]) {
    let mut from = 0usize;
    for m in cfg["mounts"].as_array().into_iter().flatten() {
        let dest = m["destination"].as_str().unwrap_or("");
        let dest_norm = if dest.len() > 1 {
            dest.trim_end_matches('/')
        } else {
            dest
        };
        let what = format!("mount {dest}");
        let opts: Vec<&str> = m["options"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let typ = m["type"].as_str().unwrap_or("");
        let bind = typ == "bind" || opts.iter().any(|o| *o == "bind" || *o == "rbind");
        let Some(pos) = mi
            .iter()
            .skip(from)
            .position(|x| x.point == dest_norm)
            .map(|p| p + from)
        else {
            let anywhere = mi.iter().any(|x| x.point == dest_norm);
            t.not_ok(
                &what,
                if anywhere {
                    "mounted out of config order"
                } else {
                    "not in mountinfo"
                },
            );
            continue;
        };
        from = pos + 1;
        let info = &mi[pos];
        if typ == "cgroup" && info.fstype == "tmpfs" {
            cgroup_v1_form(t, &what, dest_norm, &opts, mi);
            continue;
        }
        if bind {
            // mountinfo's root is the path inside the source's filesystem: "/" when the
            // source is that filesystem's mount point (Podman's tmpfs for /dev/shm).
            let src = m["source"].as_str().unwrap_or("");
            let root = basename(&info.root);
            t.check(
                &format!("{what} bind root basename"),
                root == basename(src) || info.root == "/",
                || format!("got {root} want {}", basename(src)),
            );
        } else {
            if !typ.is_empty() {
                t.eq(&format!("{what} type"), info.fstype.as_str(), typ);
            }
            if let Some(src) = m["source"].as_str() {
                t.eq(&format!("{what} source"), info.source.as_str(), src);
            }
        }
        let per_mount: Vec<&str> = info.opts.split(',').collect();
        for flag in ["ro", "nosuid", "nodev", "noexec"] {
            if opts.contains(&flag) {
                t.check(
                    &format!("{what} option {flag}"),
                    per_mount.contains(&flag),
                    || format!("mount options are {}", info.opts),
                );
            }
        }
    }
}

/// A `cgroup` mount on a cgroup v1 host, as runtimes make it: a tmpfs at the
/// destination with each hierarchy mounted below it; the options that restrict access
/// (ro, nosuid, nodev, noexec) must hold on every hierarchy, where the cgroup files are.
fn cgroup_v1_form(t: &mut Tap, what: &str, dest: &str, opts: &[&str], mi: &[MountInfo]) {
    let below = format!("{dest}/");
    let subs: Vec<&MountInfo> = mi
        .iter()
        .filter(|x| x.fstype == "cgroup" && x.point.starts_with(&below))
        .collect();
    t.check(
        &format!("{what} type cgroup (v1: hierarchies under a tmpfs)"),
        !subs.is_empty(),
        || "a tmpfs with no cgroup hierarchy under it".into(),
    );
    for flag in ["ro", "nosuid", "nodev", "noexec"] {
        if !opts.contains(&flag) {
            continue;
        }
        let bad: Vec<&str> = subs
            .iter()
            .filter(|x| !x.opts.split(',').any(|o| o == flag))
            .map(|x| x.point.as_str())
            .collect();
        t.check(
            &format!("{what} option {flag} on every hierarchy"),
            bad.is_empty(),
            || format!("missing on {}", bad.join(" ")),
        );
    }
}

/// Bind `/` recursively onto a new directory, then mount something new under `/`: it
/// shows up in the copy only if `/` is shared. With unbindable the bind must fail.
fn propagation(t: &mut Tap, want: &str) {
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    let copy = "/prop-copy";
    let probe = "/prop-probe";
    let what = format!("linux.rootfsPropagation {want}");
    if let Err(e) = std::fs::create_dir_all(copy).and_then(|_| std::fs::create_dir_all(probe)) {
        t.not_ok(&what, &format!("mkdir probe dirs: {e}"));
        return;
    }
    let r = mount(
        Some("/"),
        copy,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    );
    if want == "unbindable" || want == "runbindable" {
        t.check(&what, r == Err(nix::errno::Errno::EINVAL), || {
            format!("bind of / gave {r:?} want EINVAL")
        });
        if r.is_ok() {
            let _ = umount2(copy, MntFlags::MNT_DETACH);
        }
        return;
    }
    if let Err(e) = r {
        t.not_ok(&what, &format!("bind mount of / onto {copy}: {e}"));
        return;
    }
    if let Err(e) = mount(
        Some("tmpfs"),
        probe,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("size=16k"),
    ) {
        t.not_ok(&what, &format!("mount tmpfs on {probe}: {e}"));
        let _ = umount2(copy, MntFlags::MNT_DETACH);
        return;
    }
    let seen = mountinfo()
        .iter()
        .any(|m| m.point == format!("{copy}{probe}"));
    let shared = want == "shared" || want == "rshared";
    t.check(&what, seen == shared, || {
        format!(
            "a new mount under / {} in the recursive copy",
            if seen { "appeared" } else { "did not appear" }
        )
    });
    let _ = umount2(probe, MntFlags::MNT_DETACH);
    let _ = umount2(Path::new(copy), MntFlags::MNT_DETACH);
}
