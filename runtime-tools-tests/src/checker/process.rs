//! Process checks: args, env, cwd, user, umask, rlimits, capabilities, no_new_privs, oom.

use serde_json::Value;

use crate::caps;
use crate::tap::Tap;

pub fn check(t: &mut Tap, p: &Value, cwd_blocked: bool) {
    args(t, p);
    env(t, p);
    if cwd_blocked {
        t.skip("process.cwd", "getcwd is blocked by the seccomp profile");
    } else if let Some(cwd) = p["cwd"].as_str() {
        let got = std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|e| format!("<getcwd: {e}>"));
        t.eq("process.cwd", got.as_str(), cwd);
    }
    user(t, &p["user"]);
    rlimits(t, &p["rlimits"]);
    capabilities(t, &p["capabilities"]);
    // SAFETY: PR_GET_NO_NEW_PRIVS takes no pointers.
    let nnp = unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) };
    let want = p["noNewPrivileges"].as_bool().unwrap_or(false);
    t.eq("process.noNewPrivileges", nnp == 1, want);
    if let Some(profile) = p["apparmorProfile"].as_str() {
        apparmor(t, profile);
    }
    if let Some(v) = p["oomScoreAdj"].as_i64() {
        let got = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap_or_default();
        t.eq("process.oomScoreAdj", got.trim(), v.to_string().as_str());
    }
}

fn args(t: &mut Tap, p: &Value) {
    let Some(want) = p["args"].as_array() else {
        return;
    };
    let raw = std::fs::read("/proc/self/cmdline").unwrap_or_default();
    let got: Vec<String> = raw
        .split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    let got = &got[..got.len().saturating_sub(1)];
    let want: Vec<String> = want
        .iter()
        .map(|a| a.as_str().unwrap_or("").to_string())
        .collect();
    t.check("process.args", got == want.as_slice(), || {
        format!("got {got:?} want {want:?}")
    });
}

fn env(t: &mut Tap, p: &Value) {
    for e in p["env"].as_array().into_iter().flatten() {
        let Some((k, v)) = e.as_str().and_then(|e| e.split_once('=')) else {
            continue;
        };
        let got = std::env::var(k).unwrap_or_else(|_| "<unset>".into());
        t.eq(&format!("process.env {k}"), got.as_str(), v);
    }
}

fn user(t: &mut Tap, u: &Value) {
    // SAFETY: getuid/getgid cannot fail and take no arguments.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    if let Some(w) = u["uid"].as_u64() {
        t.eq("process.user.uid", uid as u64, w);
    }
    if let Some(w) = u["gid"].as_u64() {
        t.eq("process.user.gid", gid as u64, w);
    }
    let groups = nix::unistd::getgroups().unwrap_or_default();
    let groups: Vec<u32> = groups.iter().map(|g| g.as_raw()).collect();
    let extra: Vec<u32> = u["additionalGids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_u64)
        .map(|g| g as u32)
        .collect();
    for g in &extra {
        t.check(
            &format!("process.user.additionalGids {g}"),
            groups.contains(g),
            || format!("getgroups() is {groups:?}"),
        );
    }
    // The runtime's own supplementary groups must not leak into the container.
    let stray: Vec<u32> = groups
        .iter()
        .copied()
        .filter(|g| !extra.contains(g) && *g != gid)
        .collect();
    t.check(
        "process.user: no supplementary groups beyond additionalGids",
        stray.is_empty(),
        || format!("getgroups() also has {stray:?}"),
    );
    if let Some(m) = u["umask"].as_u64() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let got = status
            .lines()
            .find_map(|l| l.strip_prefix("Umask:"))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| "<no Umask line>".into());
        t.eq(
            "process.user.umask",
            got.as_str(),
            format!("{m:04o}").as_str(),
        );
    }
}

fn rlimit_resource(name: &str) -> Option<libc::__rlimit_resource_t> {
    Some(match name {
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        _ => return None,
    })
}

fn rlimits(t: &mut Tap, r: &Value) {
    for l in r.as_array().into_iter().flatten() {
        let name = l["type"].as_str().unwrap_or("");
        let Some(res) = rlimit_resource(name) else {
            t.skip(&format!("process.rlimits {name}"), "unknown to the checker");
            continue;
        };
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: rl is a valid, writable rlimit struct.
        if unsafe { libc::getrlimit(res, &mut rl) } != 0 {
            t.not_ok(
                &format!("process.rlimits {name}"),
                &format!("getrlimit: {}", std::io::Error::last_os_error()),
            );
            continue;
        }
        let (soft, hard) = (
            l["soft"].as_u64().unwrap_or(0),
            l["hard"].as_u64().unwrap_or(0),
        );
        t.check(
            &format!("process.rlimits {name}"),
            rl.rlim_cur == soft && rl.rlim_max == hard,
            || format!("got {}/{} want {soft}/{hard}", rl.rlim_cur, rl.rlim_max),
        );
    }
}

fn capabilities(t: &mut Tap, c: &Value) {
    if !c.is_object() {
        return;
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    for (set, key) in caps::SETS {
        let what = format!("process.capabilities.{set}");
        let Some(bits) = caps::status_bits(&status, key) else {
            t.not_ok(&what, &format!("no {key} line in /proc/self/status"));
            continue;
        };
        let mut want = 0u64;
        let mut unknown = Vec::new();
        for n in c[*set]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            match caps::number(n) {
                Some(b) if b <= last => want |= 1 << b,
                _ => unknown.push(n),
            }
        }
        let mask = if last >= 63 {
            u64::MAX
        } else {
            (1u64 << (last + 1)) - 1
        };
        let got = bits & mask;
        t.check(&what, got == want, || {
            let extra: Vec<&str> = (0..=last)
                .filter(|b| got & (1 << b) != 0 && want & (1 << b) == 0)
                .map(|b| caps::NAMES.get(b as usize).copied().unwrap_or("?"))
                .collect();
            let missing: Vec<&str> = (0..=last)
                .filter(|b| want & (1 << b) != 0 && got & (1 << b) == 0)
                .map(|b| caps::NAMES.get(b as usize).copied().unwrap_or("?"))
                .collect();
            format!("{key} {got:016x} want {want:016x} (extra {extra:?}, missing {missing:?})")
        });
        if !unknown.is_empty() {
            t.skip(
                &format!("{what} unknown names"),
                &format!("ignored {unknown:?}"),
            );
        }
    }
}

/// With AppArmor enabled, the process runs confined by the configured profile.
fn apparmor(t: &mut Tap, profile: &str) {
    let enabled =
        std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").unwrap_or_default();
    if enabled.trim() != "Y" {
        t.skip("process.apparmorProfile", "AppArmor is not enabled");
        return;
    }
    let cur = std::fs::read_to_string("/proc/self/attr/current").unwrap_or_default();
    // "name (enforce)" or "unconfined".
    let label = cur
        .trim()
        .trim_end_matches('\0')
        .split(" (")
        .next()
        .unwrap_or("")
        .to_string();
    t.eq("process.apparmorProfile", label.as_str(), profile);
}
