//! The published runtime CVEs as attacks: each scenario tries one class of attack on
//! the runtime under test and fails if it works (docs/security.md lists them with the
//! scenario for each).

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::hooks::cfg_sh;
use super::seccomp_agent::Agent;
use crate::ctx::Ctx;
use crate::spec::{push, set};
use crate::verdict::Res;
use crate::{ensure, fail};

/// The path the exec'd process is started with; the agent holds its `execve`.
const HELD: &str = "/held/sleep";

/// How long the agent holds each exec'd process in its `execve`.
const HOLD: Duration = Duration::from_millis(1500);

/// Runs a container whose init scans `/proc` for a process of the runtime (one whose
/// argv[0] is an absolute path outside the container's /bin: the runtime's own binary) and runs `probes` on it (shell, `$d`
/// its /proc directory; each appends `REACHED ...` to /log when it gets through),
/// while three `exec`s are held in their `execve` by a seccomp agent: the window in
/// which the exec'd process is in the container's pid namespace but still the
/// runtime's image. A probe counts only if the process is still the runtime's image
/// (same argv[0]) after it: once execve is through, the process is the user's and
/// open to the container by design. Returns the log.
fn probe_held_exec(c: &mut Ctx, probes: &str) -> Result<String, crate::verdict::Verdict> {
    probe_held_exec_with(c, probes, "", |_| {})
}

/// [`probe_held_exec`] with `tweak` applied to the config and `tail` run by the init
/// after its scan (once the driver has written `/stop`, every exec having returned).
pub(super) fn probe_held_exec_with(
    c: &mut Ctx,
    probes: &str,
    tail: &str,
    tweak: impl FnOnce(&mut Value),
) -> Result<String, crate::verdict::Verdict> {
    let agent = Agent::start(c)?;
    agent.hold_execve(HELD, HOLD);
    let script = format!(
        "while [ ! -e /stop ]; do for d in /proc/[0-9]*; do \
           set -- $(head -c 300 $d/cmdline 2>/dev/null | tr '\\0' ' '); \
           case \"$1\" in /bin/*|{HELD}) continue;; /*) ;; *) continue;; esac; \
           echo \"seen ${{d#/proc/}} $1\" >> /log; r=''; {probes} \
           set -- $(head -c 300 $d/cmdline 2>/dev/null | tr '\\0' ' '); \
           case \"$1\" in /bin/*|{HELD}|'') ;; /*) [ -n \"$r\" ] && echo \"REACHED ${{d#/proc/}}:$r\" >> /log;; esac; \
         done; done; {tail}"
    );
    let mut cfg = cfg_sh(&script);
    tweak(&mut cfg);
    set(
        &mut cfg,
        "linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": agent.listener_path,
               "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_X86_64"],
               "syscalls": [{"names": ["execve"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    let (id, b) = c.prepare(cfg, false)?;
    std::fs::create_dir_all(b.rootfs().join("held"))?;
    std::os::unix::fs::symlink("/bin/busybox", b.rootfs().join("held/sleep"))?;
    c.must_create(&b, &id)?;
    c.must(&["start", &id])?;
    let mut execs = Vec::new();
    for _ in 0..3 {
        execs.push(c.rt(&["exec", &id, HELD, "0"]));
    }
    std::fs::write(b.rootfs().join("stop"), "")?;
    c.wait_stopped(&id)?;
    agent.check_errors()?;
    for e in &execs {
        ensure!(
            e.ok(),
            "exec under the held execve failed: {}",
            e.describe()
        );
    }
    Ok(b.read("rootfs/log"))
}

/// Judges a probe log: the runtime's process was seen (or the attack was never
/// tried) and no probe got through.
fn judge_probes(log: &str, what: &str) -> Res {
    ensure!(
        log.lines().any(|l| l.starts_with("seen ")),
        "the container never saw the exec'd process while its execve was held: the attack was not tried (log {log:?})"
    );
    let reached: Vec<&str> = log.lines().filter(|l| l.starts_with("REACHED")).collect();
    ensure!(
        reached.is_empty(),
        "the container reached {what} of the runtime's exec'd process before it ran the user's program: {}",
        reached.join("; ")
    );
    Ok(())
}

/// CVE-2019-5736: from inside the container, the exec'd process's `/proc/<pid>/exe`
/// (the runtime's host binary until execve) can be neither resolved nor opened, so
/// the container cannot keep a handle on the host binary to overwrite it later.
pub fn cve_2019_5736_runtime_exe_unreachable(c: &mut Ctx) -> Res {
    let log = probe_held_exec(
        c,
        "readlink $d/exe >/dev/null 2>&1 && r=\"$r readlink-exe\"; \
         head -c 1 $d/exe >/dev/null 2>&1 && r=\"$r open-exe\";",
    )?;
    judge_probes(&log, "the host binary (/proc/<pid>/exe)")
}

/// CVE-2016-9962: the exec'd process is not ptrace-accessible from the container
/// before it runs the user's program: its fds (still open then: namespace and cgroup
/// directory fds of the host), root, cwd and environment cannot be followed or read (they would hand the container the runtime's host fds and paths).
pub fn cve_2016_9962_exec_not_ptraceable(c: &mut Ctx) -> Res {
    let log = probe_held_exec(
        c,
        "for f in $d/fd/*; do readlink $f >/dev/null 2>&1 && r=\"$r ${f##*/}\"; done; \
         ls $d/root/ >/dev/null 2>&1 && r=\"$r root\"; \
         ls $d/cwd/ >/dev/null 2>&1 && r=\"$r cwd\"; \
         head -c 1 $d/environ >/dev/null 2>&1 && r=\"$r environ\";",
    )?;
    judge_probes(&log, "the fds, root, cwd or environment")
}

/// CVE-2021-30465 and CVE-2023-27561: a mount destination that is (or, racing, becomes)
/// a symlink to a host path never mounts outside the rootfs. The host directory is
/// also bound (recursively) at /visible after the attacked mount, so a mount that
/// escaped onto it shows under /visible in the container. 30 containers run while a
/// thread swaps the destination's parent between a directory and that symlink.
pub fn cve_2021_30465_mount_destination_swap(c: &mut Ctx) -> Res {
    let outside = c.suite.bundles.join(format!("outside-{}", c.new_id()));
    c.own_dir(&outside);
    std::fs::create_dir_all(outside.join("m"))?;
    let mut bad = Vec::new();
    let mut ran = 0;
    for round in 0..30 {
        let mut cfg = cfg_sh(
            "awk '$5 ~ \"^/visible/\" {print \"ESCAPED\", $5}' /proc/self/mountinfo; echo done",
        );
        push(
            &mut cfg,
            "mounts",
            json!({"destination": "/swap/m", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}),
        );
        push(
            &mut cfg,
            "mounts",
            json!({"destination": "/visible", "type": "bind", "source": outside, "options": ["rbind"]}),
        );
        let (id, b) = c.prepare(cfg, false)?;
        let root = b.rootfs();
        std::fs::create_dir_all(root.join("swap/m"))?;
        std::fs::create_dir_all(root.join("visible"))?;
        std::os::unix::fs::symlink(&outside, root.join("swap.alt"))?;
        if round == 0 {
            // At rest: the destination's parent is the symlink.
            swap(&root.join("swap"), &root.join("swap.alt"))?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let racer = (round > 0).then(|| {
            let (a, z, stop) = (root.join("swap"), root.join("swap.alt"), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let _ = swap(&a, &z);
                }
            })
        });
        let out = c.rt(&["run", "--bundle", &b.path_str(), &id]);
        stop.store(true, Ordering::Relaxed);
        if let Some(t) = racer {
            let _ = t.join();
        }
        if out.ok() {
            ran += 1;
            if out.stdout.contains("ESCAPED") || !out.stdout.contains("done") {
                bad.push(format!("round {round}: {}", out.stdout.trim()));
            }
        }
        let _ = c.rt(&["delete", "--force", &id]);
        if !crate::bundle::mounts_under(&outside).is_empty() {
            bad.push(format!(
                "round {round}: mounts left on the host under {}",
                outside.display()
            ));
        }
    }
    ensure!(
        bad.is_empty(),
        "a mount escaped the rootfs: {}",
        bad.join(" | ")
    );
    ensure!(
        ran > 0,
        "no container ran in 30 rounds: the attack was never completed"
    );
    Ok(())
}

/// Exchanges two paths atomically (renameat2 RENAME_EXCHANGE).
fn swap(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let ca = std::ffi::CString::new(a.as_os_str().as_bytes())?;
    let cb = std::ffi::CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: two NUL-terminated paths that live across the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// CVE-2019-16884: a volume mounted over /proc (after the proc mount) must not replace
/// procfs for the runtime's writes or the container: the create is refused, or the
/// container's /proc is still procfs; the volume's files are never written.
pub fn cve_2019_16884_volume_over_proc(c: &mut Ctx) -> Res {
    let vol = c.suite.bundles.join(format!("fakeproc-{}", c.new_id()));
    c.own_dir(&vol);
    std::fs::create_dir_all(vol.join("self/attr"))?;
    std::fs::write(vol.join("self/attr/exec"), "untouched")?;
    std::fs::write(vol.join("self/oom_score_adj"), "untouched")?;
    let mut cfg = cfg_sh("stat -f -c 'fs=%T' /proc");
    set(&mut cfg, "process/oomScoreAdj", json!(100));
    push(
        &mut cfg,
        "mounts",
        json!({"destination": "/proc", "type": "bind", "source": vol, "options": ["rbind"]}),
    );
    let (id, b) = c.prepare(cfg, false)?;
    let out = c.rt(&["run", "--bundle", &b.path_str(), &id]);
    let _ = c.rt(&["delete", "--force", &id]);
    for f in ["self/attr/exec", "self/oom_score_adj"] {
        let now = std::fs::read_to_string(vol.join(f)).unwrap_or_default();
        ensure!(
            now == "untouched",
            "the runtime wrote {now:?} into the volume's {f} (mounted over /proc)"
        );
    }
    if out.ok() {
        ensure!(
            out.stdout.contains("fs=proc"),
            "the container ran with a volume over /proc: {}",
            out.stdout.trim()
        );
    }
    Ok(())
}

/// CVE-2025-52881: a sysctl write redirected by a mount inside /proc/sys (a host file
/// bound over the sysctl's file, or a host directory over its directory) never lands in
/// the mounted file: create is refused, or the host file is unchanged.
pub fn cve_2025_52881_sysctl_write_redirected(c: &mut Ctx) -> Res {
    let decoy = c.suite.bundles.join(format!("decoy-{}", c.new_id()));
    c.own_dir(&decoy);
    std::fs::create_dir_all(&decoy)?;
    std::fs::write(decoy.join("shmmax"), "untouched")?;
    let cases = [
        ("file", decoy.join("shmmax"), "/proc/sys/kernel/shmmax"),
        ("directory", decoy.clone(), "/proc/sys/kernel"),
    ];
    for (what, source, dest) in cases {
        let mut cfg = cfg_sh("cat /proc/sys/kernel/shmmax");
        set(
            &mut cfg,
            "linux/sysctl",
            json!({"kernel.shmmax": "123456789"}),
        );
        push(
            &mut cfg,
            "mounts",
            json!({"destination": dest, "type": "bind", "source": source, "options": ["bind"]}),
        );
        let (id, b) = c.prepare(cfg, false)?;
        let _ = c.rt(&["run", "--bundle", &b.path_str(), &id]);
        let _ = c.rt(&["delete", "--force", &id]);
        let now = std::fs::read_to_string(decoy.join("shmmax")).unwrap_or_default();
        ensure!(
            now == "untouched",
            "a host {what} bound at {dest}: the sysctl write landed in it ({now:?})"
        );
    }
    Ok(())
}

/// The host's /dev/null keeps its owner and mode whatever the container's user and
/// stdio: it is every stdio of `run` and `exec` for a process of uid 1000, and of a
/// container in a user namespace.
pub fn host_dev_null_unchanged(c: &mut Ctx) -> Res {
    let before = std::fs::metadata("/dev/null")?;
    let was = (before.uid(), before.gid(), before.mode());
    let null = Path::new("/dev/null");
    let check = |when: &str| -> Res {
        let m = std::fs::metadata("/dev/null")?;
        ensure!(
            (m.uid(), m.gid(), m.mode()) == was,
            "the host's /dev/null changed {when}: uid {} gid {} mode {:o}, was uid {} gid {} mode {:o}",
            m.uid(),
            m.gid(),
            m.mode(),
            was.0,
            was.1,
            was.2
        );
        Ok(())
    };
    for userns in [false, true] {
        let mut cfg = cfg_sh("ls -l /proc/self/fd/ >/dev/null; exec sleep 30");
        set(&mut cfg, "process/user", json!({"uid": 1000, "gid": 1000}));
        if userns {
            push(&mut cfg, "linux/namespaces", json!({"type": "user"}));
            let map = json!([{"hostID": 100000, "containerID": 0, "size": 65534}]);
            set(&mut cfg, "linux/uidMappings", map.clone());
            set(&mut cfg, "linux/gidMappings", map);
        }
        let cfg: Value = cfg;
        let (id, b) = c.prepare(cfg, false)?;
        let bp = b.path_str();
        let out = c
            .suite
            .rt
            .run_to(&["run", "-d", "--bundle", &bp, &id], null, null);
        ensure!(
            out.ok(),
            "run -d with /dev/null as stdio (user namespace {userns}): {}",
            out.describe()
        );
        check(&format!(
            "after run -d as uid 1000 (user namespace {userns})"
        ))?;
        let ex = c.suite.rt.run_to(
            &[
                "exec",
                "--user",
                "1000:1000",
                &id,
                "/bin/sh",
                "-c",
                "echo x >/dev/stdout",
            ],
            null,
            null,
        );
        if !ex.ok() {
            fail!("exec as 1000 with /dev/null as stdio: {}", ex.describe());
        }
        check(&format!("after exec as uid 1000 (user namespace {userns})"))?;
        c.must(&["delete", "--force", &id])?;
        check(&format!("after delete (user namespace {userns})"))?;
    }
    Ok(())
}
