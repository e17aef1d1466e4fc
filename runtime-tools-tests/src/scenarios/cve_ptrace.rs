//! CVE-2019-5736 for a container granted CAP_SYS_PTRACE without a user namespace:
//! non-dumpable is no defence then (the capability passes the kernel's check), so a
//! container process can open `/proc/<pid>/exe` of the runtime's process while it sits
//! in the container, keep the fd, and write the binary once the runtime has exited.
//! What the fd reaches must not be the host's runtime binary, or at least not one it
//! can open for writing (runc and crun run from a read-only bind of it, berth from a
//! sealed memfd copy). Probes never write a byte: they open for appending and write
//! nothing.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::cve::probe_held_exec_with;
use super::hooks::cfg_sh;
use crate::ctx::Ctx;
use crate::spec::{caps_all_sets, set, DEFAULT_CAPS};
use crate::verdict::{Res, Verdict};
use crate::{ensure, fail, skip};

/// The default capabilities and CAP_SYS_PTRACE, in every set.
fn grant_ptrace(cfg: &mut Value) {
    let mut caps = DEFAULT_CAPS.to_vec();
    caps.push("CAP_SYS_PTRACE");
    set(cfg, "process/capabilities", caps_all_sets(&caps));
}

/// `dev:inode` of the runtime binary the driver runs, as busybox's `stat -c %d:%i`
/// prints them.
fn host_binary(c: &Ctx) -> Result<String, Verdict> {
    let m = std::fs::metadata(&c.suite.rt.path)?;
    Ok(format!("{}:{}", m.dev(), m.ino()))
}

/// Shell for a probe that holds fd 3 on `$exe`, a `/proc/<pid>/exe`: logs
/// `held <who> <dev:inode> <link>` to `$log`, waits for the file `$go`, then opens the
/// fd's file for appending (writing nothing) and logs `append <who> ok` or
/// `append <who> refused: <why>`. `command exec` keeps a failed open from ending the
/// shell: a process that has gone or cannot be opened is simply not held.
fn holder(exe: &str, who: &str, log: &str, go: &str) -> String {
    format!(
        "command exec 3<{exe} 2>/dev/null || exit 0; \
         echo \"held {who} $(stat -L -c %d:%i /proc/self/fd/3) $(readlink /proc/self/fd/3)\" >> {log}; \
         while [ ! -e {go} ]; do usleep 20000; done; \
         if msg=$( {{ : >>/proc/self/fd/3; }} 2>&1 ); then echo \"append {who} ok\" >> {log}; \
         else echo \"append {who} refused: $msg\" >> {log}; fi"
    )
}

/// Judges the `held`/`append` lines: a probe that held the host binary (its
/// `dev:inode`) fails the scenario if it could then open it for writing, or was
/// refused only because it was still being executed (`Text file busy`: an attacker
/// keeps the fd and tries again later).
fn judge_holds(log: &str, host: &str, what: &str) -> Res {
    ensure!(
        log.lines().any(|l| l.starts_with("held ")),
        "no probe kept an fd on the runtime's exe through {what}: the attack was not tried (log {log:?})"
    );
    let mut bad = Vec::new();
    for line in log.lines() {
        let mut f = line.split_whitespace();
        let (Some("held"), Some(who), Some(devino)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if devino != host {
            continue;
        }
        let append = format!("append {who} ");
        let result = log
            .lines()
            .find_map(|l| l.strip_prefix(&append))
            .unwrap_or("(no result)");
        if !result.starts_with("refused") || result.contains("busy") {
            bad.push(format!("{who}: write-open {result}"));
        }
    }
    let probes: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("held ") || l.starts_with("append "))
        .collect();
    ensure!(
        bad.is_empty(),
        "the container kept an fd on the host's runtime binary ({host}) through {what} and could open it for writing: {} (probes: {})",
        bad.join("; "),
        probes.join(" | ")
    );
    Ok(())
}

/// Polls `path` until it holds a line starting with one of `want`; returns the text.
fn wait_for_line(path: &Path, want: &[&str], limit: Duration) -> Result<String, Verdict> {
    let t = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.lines().any(|l| want.iter().any(|w| l.starts_with(w))) {
            return Ok(text);
        }
        if t.elapsed() > limit {
            fail!(
                "no {want:?} line in {} within {limit:?}: {text:?}",
                path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The init of a created container, granted CAP_SYS_PTRACE, waits for `start` as the
/// runtime's image: a probe exec'd into the container holds `/proc/1/exe`, and once
/// `start` has run the container's program (no process of the runtime left), opens
/// the held file for writing.
pub fn cve_2019_5736_ptrace_created_init_exe(c: &mut Ctx) -> Res {
    let host = host_binary(c)?;
    let mut cfg = cfg_sh("sleep 30");
    grant_ptrace(&mut cfg);
    let (id, b) = c.prepare(cfg, false)?;
    c.must_create(&b, &id)?;
    let probe = format!(
        "( {} ); echo done >> /probe.log",
        holder("/proc/1/exe", "1", "/probe.log", "/go")
    );
    c.must(&["exec", "-d", &id, "/bin/sh", "-c", &probe])?;
    let log_path = b.rootfs().join("probe.log");
    // `done` first: /proc/1/exe could not be opened at all.
    wait_for_line(&log_path, &["held", "done"], Duration::from_secs(10))?;
    c.must(&["start", &id])?;
    std::fs::write(b.rootfs().join("go"), "")?;
    let log = wait_for_line(&log_path, &["done"], Duration::from_secs(10))?;
    c.must(&["delete", "--force", &id])?;
    judge_holds(&log, &host, "/proc/1/exe of the created init")
}

/// An exec'd process of a container granted CAP_SYS_PTRACE, held in its `execve` by a
/// seccomp agent (still the runtime's image): the container holds its
/// `/proc/<pid>/exe`, and after every exec has returned, opens it for writing.
pub fn cve_2019_5736_ptrace_held_exec_exe(c: &mut Ctx) -> Res {
    let host = host_binary(c)?;
    // Once per process (`$held` lists those already taken), in the background: the
    // scan goes on while the holder waits for /stop.
    let hold = holder("$d/exe", "$p", "/log", "/stop");
    let probes = format!(
        "p=${{d#/proc/}}; case \" $held \" in *\" $p \"*) ;; *) held=\"$held $p\"; ( {hold} ) & ;; esac;"
    );
    let log = probe_held_exec_with(c, &probes, "wait", grant_ptrace)?;
    ensure!(
        log.lines().any(|l| l.starts_with("seen ")),
        "the container never saw the exec'd process while its execve was held: the attack was not tried (log {log:?})"
    );
    judge_holds(&log, &host, "/proc/<pid>/exe of an exec'd process")
}

/// berth's own rule: the sealed copy is made only for a container that needs it. With
/// `--debug`, `create` and `exec` log "re-executing from a sealed copy" exactly when
/// they make one, and a created init's `/proc/<pid>/exe` (read from the host) is the
/// binary itself or the `/memfd:` copy. Without CAP_SYS_PTRACE: no copy, for `create`
/// and `exec`; with it in the config: a copy for both; `exec --cap CAP_SYS_PTRACE` into
/// a container without it: a copy, and for every later exec into that container.
pub fn cve_2019_5736_sealed_copy_only_when_needed(c: &mut Ctx) -> Res {
    if c.suite.rt.path.file_name().is_none_or(|n| n != "berth") {
        skip!("berth's own rule for when to copy its binary");
    }
    let binary = std::fs::canonicalize(&c.suite.rt.path)?;
    let logs = c.suite.bundles.join(format!("sealed-logs-{}", c.new_id()));
    c.own_dir(&logs);
    std::fs::create_dir_all(&logs)?;
    let mut n = 0;
    // Runs a verb with --debug and its own log file; (ok, copied).
    let mut logged = |c: &Ctx, args: &[&str], stdout: &Path| -> Result<bool, Verdict> {
        n += 1;
        let log = logs.join(format!("{n}.log"));
        let log_s = log.display().to_string();
        let mut argv = vec!["--debug", "--log", &log_s];
        argv.extend_from_slice(args);
        let err = logs.join(format!("{n}.err"));
        let out = c.suite.rt.run_to(&argv, stdout, &err);
        if !out.ok() {
            fail!("{}", out.describe());
        }
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        Ok(text.contains("re-executing from a sealed copy"))
    };
    let exe_of = |c: &Ctx, id: &str| -> Result<String, Verdict> {
        let pid = c.pid(id)?;
        Ok(std::fs::read_link(format!("/proc/{pid}/exe"))?
            .display()
            .to_string())
    };

    let (plain, b) = c.prepare(cfg_sh("sleep 30"), false)?;
    let bp = b.path_str();
    let copied = logged(c, &["create", "--bundle", &bp, &plain], &b.stdout_path())?;
    ensure!(
        !copied,
        "create of a container without CAP_SYS_PTRACE made a sealed copy"
    );
    let exe = exe_of(c, &plain)?;
    ensure!(
        Path::new(&exe) == binary,
        "the created init of a container without CAP_SYS_PTRACE runs from {exe}, not {}",
        binary.display()
    );
    let out = b.stdout_path();
    let copied = logged(c, &["exec", &plain, "true"], &out)?;
    ensure!(
        !copied,
        "exec into a container without CAP_SYS_PTRACE made a sealed copy"
    );

    let mut cfg = cfg_sh("sleep 30");
    grant_ptrace(&mut cfg);
    let (traced, tb) = c.prepare(cfg, false)?;
    let tbp = tb.path_str();
    let copied = logged(c, &["create", "--bundle", &tbp, &traced], &tb.stdout_path())?;
    ensure!(
        copied,
        "create of a container granted CAP_SYS_PTRACE made no sealed copy"
    );
    let exe = exe_of(c, &traced)?;
    ensure!(
        exe.starts_with("/memfd:"),
        "the created init of a container granted CAP_SYS_PTRACE runs from {exe}, not a memfd copy"
    );
    let copied = logged(c, &["exec", &traced, "true"], &tb.stdout_path())?;
    ensure!(
        copied,
        "exec into a container granted CAP_SYS_PTRACE made no sealed copy"
    );

    let copied = logged(
        c,
        &["exec", "--cap", "CAP_SYS_PTRACE", &plain, "true"],
        &out,
    )?;
    ensure!(copied, "exec --cap CAP_SYS_PTRACE made no sealed copy");
    let copied = logged(c, &["exec", &plain, "true"], &out)?;
    ensure!(
        copied,
        "exec into a container where an earlier exec was given CAP_SYS_PTRACE made no sealed copy"
    );
    c.must(&["delete", "--force", &plain])?;
    c.must(&["delete", "--force", &traced])?;
    Ok(())
}
