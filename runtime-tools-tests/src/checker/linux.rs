//! Linux checks: id maps, sysctl, devices, default devices and /dev symlinks, masked and
//! readonly paths, hostname.

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use serde_json::Value;

use crate::tap::Tap;

pub fn check(t: &mut Tap, cfg: &Value) {
    let l = &cfg["linux"];
    id_map(
        t,
        &l["uidMappings"],
        "/proc/self/uid_map",
        "linux.uidMappings",
    );
    id_map(
        t,
        &l["gidMappings"],
        "/proc/self/gid_map",
        "linux.gidMappings",
    );
    if let Some(s) = l["sysctl"].as_object() {
        for (k, v) in s {
            let p = format!("/proc/sys/{}", k.replace('.', "/"));
            // The kernel prints vectors tab-separated ("0\t2147483647" for ping_group_range);
            // configs write them with spaces.
            let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
            let got = std::fs::read_to_string(&p)
                .map(|s| words(&s))
                .unwrap_or_else(|e| format!("<{e}>"));
            t.eq(
                &format!("linux.sysctl {k}"),
                got.as_str(),
                words(v.as_str().unwrap_or("")).as_str(),
            );
        }
    }
    devices(t, &l["devices"]);
    default_devices(t);
    for p in l["maskedPaths"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        masked(t, p);
    }
    for p in l["readonlyPaths"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        readonly(t, p);
    }
    if let Some(h) = cfg["hostname"].as_str() {
        let got = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        t.eq("hostname", got.as_str(), h);
    }
}

fn id_map(t: &mut Tap, want: &Value, file: &str, what: &str) {
    let Some(want) = want.as_array() else { return };
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let got: Vec<Vec<u64>> = text
        .lines()
        .map(|l| {
            l.split_whitespace()
                .filter_map(|f| f.parse().ok())
                .collect()
        })
        .collect();
    t.eq(&format!("{what} count"), got.len(), want.len());
    for m in want {
        let triple = vec![
            m["containerID"].as_u64().unwrap_or(0),
            m["hostID"].as_u64().unwrap_or(0),
            m["size"].as_u64().unwrap_or(0),
        ];
        t.check(&format!("{what} {triple:?}"), got.contains(&triple), || {
            format!("{file} is {:?}", text.trim())
        });
    }
}

fn devices(t: &mut Tap, devs: &Value) {
    for d in devs.as_array().into_iter().flatten() {
        let path = d["path"].as_str().unwrap_or("");
        let what = format!("linux.devices {path}");
        let md = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) => {
                t.not_ok(&what, &format!("lstat: {e}"));
                continue;
            }
        };
        let ft = md.file_type();
        let typ = d["type"].as_str().unwrap_or("");
        let type_ok = match typ {
            "c" | "u" => ft.is_char_device(),
            "b" => ft.is_block_device(),
            "p" => ft.is_fifo(),
            _ => false,
        };
        t.check(&format!("{what} type {typ}"), type_ok, || {
            format!("file type is {ft:?}")
        });
        if typ != "p" {
            let (maj, min) = (libc::major(md.rdev()) as i64, libc::minor(md.rdev()) as i64);
            let (wmaj, wmin) = (
                d["major"].as_i64().unwrap_or(-1),
                d["minor"].as_i64().unwrap_or(-1),
            );
            t.check(
                &format!("{what} {wmaj}:{wmin}"),
                (maj, min) == (wmaj, wmin),
                || format!("got {maj}:{min}"),
            );
        }
        if let Some(mode) = d["fileMode"].as_u64() {
            t.eq(
                &format!("{what} mode"),
                format!("{:o}", md.mode() & 0o7777),
                format!("{mode:o}"),
            );
        }
        if let Some(u) = d["uid"].as_u64() {
            t.eq(&format!("{what} uid"), md.uid() as u64, u);
        }
        if let Some(g) = d["gid"].as_u64() {
            t.eq(&format!("{what} gid"), md.gid() as u64, g);
        }
    }
}

fn default_devices(t: &mut Tap) {
    for (p, maj, min) in [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
        ("/dev/ptmx", 5, 2),
    ] {
        let what = format!("default device {p}");
        match std::fs::metadata(p) {
            Ok(md) => {
                let got = (libc::major(md.rdev()), libc::minor(md.rdev()));
                t.check(
                    &what,
                    md.file_type().is_char_device() && got == (maj, min),
                    || {
                        format!(
                            "char={} {}:{} want char {maj}:{min}",
                            md.file_type().is_char_device(),
                            got.0,
                            got.1
                        )
                    },
                );
            }
            Err(e) => t.not_ok(&what, &format!("stat: {e}")),
        }
    }
    for (p, target) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
        ("/dev/ptmx", "pts/ptmx"),
    ] {
        let got = std::fs::read_link(p)
            .map(|l| l.display().to_string())
            .unwrap_or_else(|e| format!("<{e}>"));
        t.eq(&format!("dev symlink {p}"), got.as_str(), target);
    }
}

fn masked(t: &mut Tap, p: &str) {
    let what = format!("linux.maskedPaths {p}");
    let md = match std::fs::symlink_metadata(p) {
        Ok(m) => m,
        Err(_) => {
            t.skip(&what, "path does not exist");
            return;
        }
    };
    let ft = md.file_type();
    if ft.is_fifo() {
        t.skip(&what, "fifo not probed");
    } else if ft.is_dir() {
        let entries = std::fs::read_dir(p).map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        });
        match entries {
            Err(_) => t.ok(&what),
            Ok(v) => t.check(&what, v.is_empty(), || {
                format!(
                    "directory lists {} entries, first {:?}",
                    v.len(),
                    &v[..v.len().min(5)]
                )
            }),
        }
    } else {
        match std::fs::File::open(p) {
            Err(_) => t.ok(&what),
            Ok(mut f) => {
                let mut buf = [0u8; 64];
                let n = f.read(&mut buf);
                t.check(&what, matches!(n, Ok(0) | Err(_)), || {
                    format!("read returned {n:?}")
                });
            }
        }
    }
}

fn readonly(t: &mut Tap, p: &str) {
    let what = format!("linux.readonlyPaths {p}");
    let md = match std::fs::symlink_metadata(p) {
        Ok(m) => m,
        Err(_) => {
            t.skip(&what, "path does not exist");
            return;
        }
    };
    let ro = nix::sys::statvfs::statvfs(p)
        .map(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY));
    t.check(
        &format!("{what} is on a read-only mount"),
        matches!(ro, Ok(true)),
        || format!("statvfs gives {ro:?}"),
    );
    if md.is_dir() {
        let probe = format!("{}/.ro-probe", p.trim_end_matches('/'));
        let r = std::fs::File::create(&probe);
        t.check(&format!("{what} refuses new files"), r.is_err(), || {
            format!("created {probe}")
        });
        let _ = std::fs::remove_file(&probe);
    } else if md.is_file() {
        let r = std::fs::OpenOptions::new().append(true).open(p);
        t.check(&format!("{what} refuses writes"), r.is_err(), || {
            "opened for writing".into()
        });
    }
}
