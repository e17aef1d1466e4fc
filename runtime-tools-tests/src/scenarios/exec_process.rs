//! `exec --process`: a process.json that leaves fields out gets runc 1.1.5's defaults
//! (uid 0 and gid 0 without `user`; the container's capabilities without
//! `capabilities`; no rlimits without `rlimits`; the container's oom_score_adj), and
//! what runc refuses is refused with runc's words (no `cwd`, no `args`); `exec --cap`
//! with a name that is no capability runs with a warning, as runc ignores it.

use serde_json::{json, Value};

use super::running::start_with;
use crate::ctx::Ctx;
use crate::ensure;
use crate::spec::set;
use crate::verdict::{Res, Verdict};

/// Writes `process` as a process.json next to the bundle and returns its path.
fn process_file(c: &Ctx, id: &str, name: &str, process: &Value) -> Result<String, Verdict> {
    let path = c.suite.bundles.join(id).join(name);
    std::fs::write(&path, process.to_string())?;
    Ok(path.display().to_string())
}

fn cap_bnd(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

pub fn exec_process_json_defaults(c: &mut Ctx) -> Res {
    // Raising oom_score_adj needs no privilege; the container's value is above ours.
    let ours: i32 = crate::ctx::read_trim(std::path::Path::new("/proc/self/oom_score_adj"))
        .parse()
        .unwrap_or(0);
    let adj = (ours + 100).min(1000);
    let (id, _b) = start_with(c, &["/bin/sleep", "60"], |cfg| {
        set(
            cfg,
            "process/rlimits",
            json!([{"type": "RLIMIT_FSIZE", "hard": 1048576, "soft": 1048576}]),
        );
        set(cfg, "process/oomScoreAdj", json!(adj));
    })?;
    let script = "/bin/id -u; /bin/id -g; ulimit -f; /bin/cat /proc/self/oom_score_adj; \
                  /bin/grep CapBnd /proc/self/status";
    // No user, env, capabilities, rlimits, terminal.
    let pj = process_file(
        c,
        &id,
        "minimal.json",
        &json!({"args": ["/bin/sh", "-c", script], "cwd": "/"}),
    )?;
    let out = c.must(&["exec", "--process", &pj, &id])?;
    let lines: Vec<&str> = out.stdout.lines().collect();
    ensure!(
        lines.len() == 5 && lines[0] == "0" && lines[1] == "0",
        "want uid 0 and gid 0 without `user`, got {:?}",
        out.stdout
    );
    // runc 1.1.5 applies the process's rlimits only: none here, so the caller's.
    let mut fsize = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct it is given.
    let unlimited = unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut fsize) } == 0
        && fsize.rlim_cur == libc::RLIM_INFINITY;
    ensure!(
        !unlimited || lines[2] == "unlimited",
        "RLIMIT_FSIZE {} (in 512-byte blocks) without `rlimits`; runc applies none, so the caller's (unlimited)",
        lines[2]
    );
    ensure!(
        lines[3] == adj.to_string(),
        "oom_score_adj {} in the exec'd process; want the container's {adj}",
        lines[3]
    );
    let own = c.must(&["exec", &id, "/bin/grep", "CapBnd", "/proc/self/status"])?;
    ensure!(
        cap_bnd(&out.stdout).is_some() && cap_bnd(&out.stdout) == cap_bnd(&own.stdout),
        "bounding set without `capabilities`: {:?}, want the container's {:?}",
        lines[4],
        own.stdout.trim()
    );
    // runc refuses these with the words of its validateProcessSpec.
    for (name, process, want) in [
        (
            "no-cwd.json",
            json!({"args": ["/bin/true"]}),
            "Cwd property must not be empty",
        ),
        (
            "no-args.json",
            json!({"cwd": "/"}),
            "args must not be empty",
        ),
        (
            "relative-cwd.json",
            json!({"args": ["/bin/true"], "cwd": "tmp"}),
            "Cwd must be an absolute path",
        ),
    ] {
        let pj = process_file(c, &id, name, &process)?;
        let out = c.must_fail(&["exec", "--process", &pj, &id], name)?;
        ensure!(
            out.stderr.contains(want),
            "{name}: want {want:?} in {:?}",
            out.stderr.trim()
        );
    }
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

pub fn exec_cap_unknown_warns(c: &mut Ctx) -> Res {
    let (id, b) = start_with(c, &["/bin/sleep", "60"], |_| {})?;
    let log = b.dir.join("exec.log").display().to_string();
    let out = c.rt(&[
        "--log",
        &log,
        "exec",
        "--cap",
        "CAP_BERTH_NOPE",
        &id,
        "/bin/echo",
        "ran",
    ]);
    ensure!(
        out.ok() && out.stdout == "ran\n",
        "exec --cap CAP_BERTH_NOPE must run (runc 1.1.5 ignores unknown capabilities): {}",
        out.describe()
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    ensure!(
        text.lines()
            .any(|l| l.contains("level=warn") && l.contains("CAP_BERTH_NOPE")),
        "no warning naming CAP_BERTH_NOPE in --log: {text:?}"
    );
    c.must(&["delete", "--force", &id])?;
    Ok(())
}
