//! CVE-2019-5736 as attacks on the runtime binary. In its original form the
//! container's own program is `/proc/self/exe`: the kernel runs the host's runtime
//! binary inside the container, dumpable, and a container process can open its
//! `/proc/<pid>/exe`, keep the fd, and write the binary once the runtime has exited; no
//! capability is needed. A container granted CAP_SYS_PTRACE without a user namespace
//! can also open `/proc/<pid>/exe` of a runtime process in setup (non-dumpable is no
//! defence against the capability). What the fd reaches must not be the host's
//! runtime binary, or at least not one it can open for writing (runc and crun run from
//! a read-only bind of it, berth from a read-only detached bind or a sealed memfd
//! copy). Probes never write a byte: they open for appending and write nothing.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::cve::probe_held_exec_with;
use super::hooks::cfg_sh;
use crate::ctx::Ctx;
use crate::spec::{caps_all_sets, ns, push, set, DEFAULT_CAPS};
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
         {}",
        append_attempt(who, log)
    )
}

/// Shell that opens fd 3's file for appending (writing nothing) and logs
/// `append <who> ok` or `append <who> refused: <why>` to `log`. `Text file busy` (a
/// process, such as the driver's own `state` polls, still executes the binary) is
/// retried for up to 4 s, as an attacker would: it hides whether the file is writable.
fn append_attempt(who: &str, log: &str) -> String {
    format!(
        "n=0; while :; do \
           if msg=$( {{ : >>/proc/self/fd/3; }} 2>&1 ); then echo \"append {who} ok\" >> {log}; break; fi; \
           case \"$msg\" in *busy*) if [ $n -lt 200 ]; then n=$((n+1)); usleep 20000; continue; fi;; esac; \
           echo \"append {who} refused: $msg\" >> {log}; break; \
         done"
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

/// berth's own rule: it re-executes from a protected image of its binary exactly when
/// a container process could write the binary. With `--debug`, `create` and `exec` log
/// "re-executing from a protected image" exactly when they do, and a created init's
/// `/proc/<pid>/exe` (read from the host) is then on a read-only mount or a `/memfd:`
/// copy, else the binary itself. Without a user namespace (the default config): a
/// protected image for `create` and `exec`; a new user namespace that does not map the
/// binary's owner: none when the caller can not write the binary (rootless), a
/// protected image when it can (root); one that maps it (identity map): a protected
/// image.
pub fn cve_2019_5736_protected_only_when_needed(c: &mut Ctx) -> Res {
    if c.suite.rt.path.file_name().is_none_or(|n| n != "berth") {
        skip!("berth's own rule for when to protect its binary");
    }
    let binary = std::fs::canonicalize(&c.suite.rt.path)?;
    let owner = std::fs::metadata(&binary)?.uid();
    let unmapped_base: u32 = 100_000;
    if (unmapped_base..unmapped_base + 65536).contains(&owner) {
        skip!("the runtime binary's owner {owner} lies in the test's user namespace mapping");
    }
    let logs = c.suite.bundles.join(format!("protect-logs-{}", c.new_id()));
    c.own_dir(&logs);
    std::fs::create_dir_all(&logs)?;
    let mut n = 0;
    // Runs a verb with --debug and its own log file; whether it re-executed.
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
        Ok(text.contains("re-executing from a protected image"))
    };
    // Whether the created init runs from a protected image, and what its exe shows.
    let init_protected = |c: &Ctx, id: &str| -> Result<(bool, String), Verdict> {
        let pid = c.pid(id)?;
        let exe = format!("/proc/{pid}/exe");
        let link = std::fs::read_link(&exe)?.display().to_string();
        let ro = nix::sys::statvfs::statvfs(exe.as_str())
            .map_err(std::io::Error::from)?
            .flags()
            .contains(nix::sys::statvfs::FsFlags::ST_RDONLY);
        Ok((ro || link.starts_with("/memfd:"), link))
    };

    // The default config: no user namespace.
    let (plain, b) = c.prepare(cfg_sh("sleep 30"), false)?;
    let bp = b.path_str();
    let out = b.stdout_path();
    let copied = logged(c, &["create", "--bundle", &bp, &plain], &out)?;
    ensure!(
        copied,
        "create of a container without a user namespace did not re-execute from a protected image"
    );
    let (protected, link) = init_protected(c, &plain)?;
    ensure!(
        protected,
        "the created init of a container without a user namespace runs from {link}, neither read-only nor sealed"
    );
    let copied = logged(c, &["exec", &plain, "true"], &out)?;
    ensure!(
        copied,
        "exec into a container without a user namespace did not re-execute from a protected image"
    );
    c.must(&["delete", "--force", &plain])?;

    // A user namespace mapping 100000-165535: not the binary's owner. It belongs to
    // the caller, though: a caller that can write the binary (root, or its owner)
    // protects it even then, since the caller's uid outside the container is fully
    // capable in the namespace; only another user's (rootless) berth does not.
    let euid = nix::unistd::geteuid().as_raw();
    let owner_can_write = euid == 0 || euid == owner;
    for (host_id, want) in [(unmapped_base, owner_can_write), (0, true)] {
        let mut cfg = cfg_sh("sleep 30");
        push(&mut cfg, "linux/namespaces", json!({"type": "user"}));
        let map = json!([{"hostID": host_id, "containerID": 0, "size": 65536}]);
        set(&mut cfg, "linux/uidMappings", map.clone());
        set(&mut cfg, "linux/gidMappings", map);
        let (id, b) = c.prepare(cfg, false)?;
        let bp = b.path_str();
        let out = b.stdout_path();
        let copied = logged(c, &["create", "--bundle", &bp, &id], &out)?;
        ensure!(
            copied == want,
            "create of a container whose user namespace maps host uids {host_id}-{} (the binary's owner is {owner}): re-executed {copied}, expected {want}",
            host_id + 65535
        );
        let (protected, link) = init_protected(c, &id)?;
        if want {
            ensure!(
                protected,
                "the created init of a container whose user namespace maps the binary's owner runs from {link}, neither read-only nor sealed"
            );
        } else {
            ensure!(
                Path::new(&link) == binary,
                "the created init of a container whose user namespace does not map the binary's owner runs from {link}, not {}",
                binary.display()
            );
        }
        let copied = logged(c, &["exec", &id, "true"], &out)?;
        ensure!(
            copied == want,
            "exec into a container whose user namespace maps host uids {host_id}-{}: re-executed {copied}, expected {want}",
            host_id + 65535
        );
        c.must(&["delete", "--force", &id])?;
    }
    Ok(())
}

/// The runtime binary's ELF interpreter and libraries (as `ldd` lists them), copied
/// into `rootfs` at the same paths: the container can then run the host's binary. A
/// static binary needs none (`ldd` lists nothing).
fn copy_runtime_libraries(binary: &Path, rootfs: &Path) -> Res {
    let out = std::process::Command::new("ldd").arg(binary).output()?;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
        // "/lib64/ld-linux-x86-64.so.2 (0x...)".
        let rest = line.split_once("=>").map_or(line, |(_, r)| r);
        let Some(path) = rest
            .split_whitespace()
            .next()
            .filter(|p| p.starts_with('/'))
        else {
            continue;
        };
        let dest = rootfs.join(path.trim_start_matches('/'));
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::copy(path, &dest)?;
    }
    Ok(())
}

/// The bundle of a `/proc/self/exe` attack: the runtime's libraries in the rootfs and
/// the FIFO `/probe.fifo` its `--log` blocks on.
fn attack_bundle(c: &mut Ctx, cfg: Value) -> Result<(String, crate::bundle::Bundle), Verdict> {
    let binary = std::fs::canonicalize(&c.suite.rt.path)?;
    let (id, b) = c.prepare(cfg, false)?;
    copy_runtime_libraries(&binary, &b.rootfs())?;
    nix::unistd::mkfifo(
        &b.rootfs().join("probe.fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .map_err(std::io::Error::from)?;
    Ok((id, b))
}

/// What the container runs to get the host's runtime binary running inside it: the
/// process's `execve` of `/proc/self/exe` while it is still the runtime's image. The
/// runtime opens its `--log` file for writing first, and blocks there on the FIFO.
const SELF_EXE: [&str; 5] = ["/proc/self/exe", "--log", "/probe.fifo", "state", "nothing"];

/// Shell for the probe of a `/proc/self/exe` attack: finds the process whose argv[0] is
/// `/proc/self/exe` (the runtime's binary, blocked opening `/probe.fifo`), holds fd 3 on
/// its `/proc/<pid>/exe` and logs `held <pid> <dev:inode> <link>` (or `unopened <pid>`,
/// or `unseen` after 10 s) to /probe.log, opens the FIFO for reading so the runtime
/// goes on and exits, waits for the file `/go` (the driver: no runtime process is left),
/// then opens the held file for appending, writing nothing, and logs
/// `append <pid> ok` or `append <pid> refused: <why>`, then `done`.
fn self_exe_probe() -> String {
    format!(
        "n=0; pid=''; \
     while [ -z \"$pid\" ] && [ $n -lt 500 ]; do \
       for d in /proc/[0-9]*; do \
         case \"$(head -c 15 $d/cmdline 2>/dev/null | tr '\\0' ' ')\" in '/proc/self/exe '*) pid=${{d#/proc/}};; esac; \
       done; n=$((n+1)); [ -z \"$pid\" ] && usleep 20000; \
     done; \
     if [ -z \"$pid\" ]; then echo unseen >> /probe.log; \
     elif command exec 3</proc/$pid/exe 2>/dev/null; then \
       echo \"held $pid $(stat -L -c %d:%i /proc/self/fd/3) $(readlink /proc/self/fd/3)\" >> /probe.log; \
     else echo \"unopened $pid\" >> /probe.log; fi; \
     cat /probe.fifo > /probe.out & \
     n=0; while [ ! -e /go ] && [ $n -lt 1500 ]; do usleep 20000; n=$((n+1)); done; \
     if [ -n \"$pid\" ]; then {}; fi; \
     echo done >> /probe.log",
        append_attempt("$pid", "/probe.log")
    )
}

/// Judges a `/proc/self/exe` attack: it was tried (the runtime's binary was seen
/// running in the container), and the probe could not open the host's binary for
/// writing through the fd it held.
fn judge_self_exe(log: &str, host: &str, what: &str, extra: &str) -> Res {
    if std::env::var_os("BERTH_CONFORMANCE_VERBOSE").is_some() {
        for l in log.lines() {
            println!("# {l}");
        }
    }
    ensure!(
        log.lines()
            .any(|l| l.starts_with("held ") || l.starts_with("unopened ")),
        "the runtime's binary was never seen running in the container: the attack was not tried (log {log:?}){extra}"
    );
    judge_holds(log, host, what)
}

/// CVE-2019-5736 in its original form: the container's program is `/proc/self/exe`,
/// so the init's `execve` runs the host's runtime binary inside the container (with
/// the container's loader and libraries: the bundle carries copies of the host's). No
/// capability beyond the defaults. The container shares the host's pid namespace, so
/// the probe (`exec -d` into the created container) outlives that init: it holds the
/// binary's `/proc/<pid>/exe`, lets it exit, and once no process of the runtime is
/// left, opens the held file for appending (writing nothing).
pub fn cve_2019_5736_proc_self_exe_overwrite(c: &mut Ctx) -> Res {
    let host = host_binary(c)?;
    let mut cfg = cfg_sh("true");
    set(&mut cfg, "process/args", json!(SELF_EXE));
    set(
        &mut cfg,
        "linux/namespaces",
        ns(&["network", "ipc", "uts", "mount"]),
    );
    let (id, b) = attack_bundle(c, cfg)?;
    c.must_create(&b, &id)?;
    c.must(&["exec", "-d", &id, "/bin/sh", "-c", &self_exe_probe()])?;
    c.must(&["start", &id])?;
    let log_path = b.rootfs().join("probe.log");
    wait_for_line(
        &log_path,
        &["held", "unopened", "unseen"],
        Duration::from_secs(15),
    )?;
    // The init (the runtime's image) has exited once the probe read the FIFO.
    c.wait_stopped(&id)?;
    std::fs::write(b.rootfs().join("go"), "")?;
    let log = wait_for_line(&log_path, &["done"], Duration::from_secs(15))?;
    c.must(&["delete", "--force", &id])?;
    judge_self_exe(
        &log,
        &host,
        "/proc/<pid>/exe of the init running /proc/self/exe",
        "",
    )
}

/// The same through `exec`: the exec'd process's program is `/proc/self/exe`, so its
/// `execve` runs the host's runtime binary in the container; the container's init is
/// the probe.
pub fn cve_2019_5736_proc_self_exe_overwrite_exec(c: &mut Ctx) -> Res {
    let host = host_binary(c)?;
    let cfg = cfg_sh(&self_exe_probe());
    let (id, b) = attack_bundle(c, cfg)?;
    c.must_create(&b, &id)?;
    c.must(&["start", &id])?;
    // Returns once the probe has read the FIFO and the runtime inside has exited.
    let mut argv = vec!["exec", &id];
    argv.extend_from_slice(&SELF_EXE);
    let exec = c.rt(&argv);
    let log_path = b.rootfs().join("probe.log");
    wait_for_line(
        &log_path,
        &["held", "unopened", "unseen"],
        Duration::from_secs(15),
    )?;
    std::fs::write(b.rootfs().join("go"), "")?;
    let log = wait_for_line(&log_path, &["done"], Duration::from_secs(15))?;
    c.wait_stopped(&id)?;
    c.must(&["delete", "--force", &id])?;
    judge_self_exe(
        &log,
        &host,
        "/proc/<pid>/exe of an exec'd process running /proc/self/exe",
        &format!(" (exec: {})", exec.describe()),
    )
}
