//! seccomp as engines use it (issue 9): a deny-by-default profile that allows only what
//! the container's busybox needs (plus the few calls runc itself makes after loading
//! the filter) runs with and without noNewPrivileges, for run, create+start and exec;
//! a syscall the profile cannot know is ENOSYS inside, not the default errno; NOTIFY
//! on write is refused; a missing seccomp agent is named; startContainer hooks run
//! under the filter.

use std::os::unix::net::UnixListener;

use serde_json::{json, Value};

use super::security::{refused, run_script, script_cfg};
use crate::bundle::Bundle;
use crate::ctx::Ctx;
use crate::spec::{caps_all_sets, default_config, push, set, DEFAULT_CAPS};
use crate::verdict::{Res, Verdict};
use crate::{ensure, fail};

/// What the static busybox needs for `echo` and `sleep` (traced with strace: glibc's
/// static start-up, the applet, exit), and nothing else.
const BUSYBOX: &[&str] = &[
    "arch_prctl",
    "brk",
    "clock_nanosleep",
    "exit",
    "exit_group",
    "getrandom",
    "getuid",
    "mprotect",
    "prctl",
    "prlimit64",
    "readlink",
    "rseq",
    "set_robust_list",
    "set_tid_address",
    "write",
];

/// What any runtime must be allowed after its filter is in: execve; and without
/// no_new_privs, where the filter goes in before the privileges are dropped, the
/// capability and id changes (as runc makes them) and the wait for `start` (a read;
/// runc writes its fifo instead). prctl and write are in BUSYBOX already.
const RUNTIME: &[&str] = &["execve"];
const RUNTIME_WITHOUT_NNP: &[&str] = &["capget", "capset", "setgroups", "setgid", "setuid", "read"];

/// The deny-by-default profile for a process with or without no_new_privs.
fn deny_by_default(no_new_privileges: bool) -> Value {
    let mut names: Vec<&str> = BUSYBOX.iter().chain(RUNTIME).copied().collect();
    if !no_new_privileges {
        names.extend(RUNTIME_WITHOUT_NNP);
    }
    json!({"defaultAction": "SCMP_ACT_ERRNO",
           "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
           "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]})
}

fn restricted_cfg(args: &[&str], no_new_privileges: bool) -> Value {
    let mut cfg = default_config(args, "/placeholder");
    set(
        &mut cfg,
        "process/noNewPrivileges",
        json!(no_new_privileges),
    );
    set(
        &mut cfg,
        "linux/seccomp",
        deny_by_default(no_new_privileges),
    );
    cfg
}

/// Under a profile that allows only busybox's syscalls, `run` and create+start run
/// the process to completion, with and without noNewPrivileges: nothing of the
/// runtime's own (close_range, umask, signal resets, sendto, statx) may run after the
/// filter is loaded.
pub fn seccomp_deny_default_run(c: &mut Ctx) -> Res {
    for nnp in [true, false] {
        let cfg = restricted_cfg(&["/bin/echo", "seccomp-ok"], nnp);
        let (id, b) = c.prepare(cfg.clone(), false)?;
        let out = c.create(&b, &id);
        ensure!(
            out.ok(),
            "noNewPrivileges {nnp}: create under a deny-by-default profile: {}",
            out.describe()
        );
        let out = c.rt(&["start", &id]);
        ensure!(
            out.ok(),
            "noNewPrivileges {nnp}: start under a deny-by-default profile: {}",
            out.describe()
        );
        c.wait_stopped(&id)?;
        let said = b.read("container.out");
        c.must(&["delete", &id])?;
        ensure!(
            said == "seccomp-ok\n",
            "noNewPrivileges {nnp}: the process printed {said:?}; its stderr: {:?}",
            b.read("container.err").trim()
        );
        let (id, b) = c.prepare(cfg, false)?;
        let bp = b.path_str();
        let out = c.rt(&["run", "--bundle", &bp, &id]);
        ensure!(
            out.ok() && out.stdout == "seccomp-ok\n",
            "noNewPrivileges {nnp}: run under a deny-by-default profile: stdout {:?}; {}",
            out.stdout,
            out.describe()
        );
        // `run` deletes the container when its process is done.
    }
    Ok(())
}

/// A process.json for `exec -p`, complete (the container's defaults spelled out).
fn exec_process(b: &Bundle, args: &[&str], no_new_privileges: bool) -> Result<String, Verdict> {
    let p = json!({"args": args, "cwd": "/", "user": {"uid": 0, "gid": 0},
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "capabilities": caps_all_sets(DEFAULT_CAPS), "noNewPrivileges": no_new_privileges});
    let path = b.dir.join(format!("process-{no_new_privileges}.json"));
    std::fs::write(&path, p.to_string())?;
    Ok(path.display().to_string())
}

/// `exec` into a container whose profile allows only busybox's syscalls (and what a
/// runtime needs without no_new_privs: the exec'd process may go without), with and
/// without noNewPrivileges (the container's own, and a process.json's).
pub fn seccomp_deny_default_exec(c: &mut Ctx) -> Res {
    for container_nnp in [true, false] {
        let mut cfg = restricted_cfg(&["/bin/sleep", "60"], container_nnp);
        set(&mut cfg, "linux/seccomp", deny_by_default(false));
        let (id, b) = c.prepare(cfg, false)?;
        let out = c.create(&b, &id);
        ensure!(
            out.ok(),
            "container noNewPrivileges {container_nnp}: create: {}",
            out.describe()
        );
        c.must(&["start", &id])?;
        c.wait_status(&id, "running", std::time::Duration::from_secs(10))?;
        let out = c.rt(&["exec", &id, "/bin/echo", "exec-ok"]);
        ensure!(
            out.ok() && out.stdout == "exec-ok\n",
            "exec with the container's noNewPrivileges {container_nnp}: stdout {:?}; {}",
            out.stdout,
            out.describe()
        );
        for nnp in [true, false] {
            let pj = exec_process(&b, &["/bin/echo", "exec-p-ok"], nnp)?;
            let out = c.rt(&["exec", "-p", &pj, &id]);
            ensure!(
                out.ok() && out.stdout == "exec-p-ok\n",
                "exec -p with noNewPrivileges {nnp} (container's {container_nnp}): stdout {:?}; {}",
                out.stdout,
                out.describe()
            );
        }
        c.must(&["kill", &id, "KILL"])?;
        c.wait_stopped(&id)?;
        c.must(&["delete", &id])?;
    }
    Ok(())
}

/// Raw syscalls made by the checker inside, as `NR=ERRNO` words.
pub(super) fn syscalls_inside(
    c: &mut Ctx,
    seccomp: Value,
    calls: &[&str],
) -> Result<String, Verdict> {
    let mut args = vec!["/runtimetest", "syscall"];
    args.extend_from_slice(calls);
    let mut cfg = default_config(&args, "/placeholder");
    set(&mut cfg, "linux/seccomp", seccomp);
    let (id, b) = c.prepare(cfg, true)?;
    c.must_create(&b, &id)?;
    c.must(&["start", &id])?;
    c.wait_stopped(&id)?;
    let out = b.read("container.out");
    let err = b.read("container.err");
    c.must(&["delete", &id])?;
    ensure!(
        !out.trim().is_empty(),
        "the checker printed nothing; stderr: {err:?}"
    );
    Ok(out.trim().to_string())
}

/// The static checker's own needs (Rust's start-up and output), and what runc (with
/// its CVE-2024-21626 fd closing) makes after its filter, so that runc can be compared
/// on the ENOSYS rule alone; all numbered below rseq (334 on x86_64), the newest call
/// this profile names.
pub(super) const CHECKER: &[&str] = &[
    "arch_prctl",
    "brk",
    "close",
    "epoll_ctl",
    "execve",
    "exit",
    "exit_group",
    "fcntl",
    "fstatfs",
    "getdents64",
    "getpid",
    "fstat",
    "futex",
    "getrandom",
    "gettid",
    "ioctl",
    "madvise",
    "mmap",
    "mprotect",
    "munmap",
    "newfstatat",
    "openat",
    "poll",
    "prlimit64",
    "read",
    "readlink",
    "rseq",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sched_getaffinity",
    "set_robust_list",
    "set_tid_address",
    "sigaltstack",
    "statx",
    "write",
];

/// A syscall the profile cannot know (numbered past the table, or newer than the
/// newest syscall the profile names) fails with ENOSYS, so libc falls back; a known
/// one the profile leaves out gets the default errno (defaultErrnoRet). With a
/// permissive default action nothing changes: clone3 is the kernel's to answer.
pub fn seccomp_enosys_unknown_syscalls(c: &mut Ctx) -> Res {
    if std::env::consts::ARCH != "x86_64" {
        crate::skip!("the syscall numbers here are x86_64's");
    }
    // 1000: past the table; 435: clone3 (NULL, size 0: EINVAL if it ran); 162: sync.
    let calls = ["1000", "435,0,0", "162"];
    let sc = json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": libc::ENXIO,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": CHECKER, "action": "SCMP_ACT_ALLOW"}]});
    let out = syscalls_inside(c, sc, &calls)?;
    let want = format!("1000={e} 435={e} 162={}", libc::ENXIO, e = libc::ENOSYS);
    ensure!(
        out == want,
        "deny-by-default with defaultErrnoRet {}: got {out:?}, want {want:?} (ENOSYS {})",
        libc::ENXIO,
        libc::ENOSYS
    );
    // Without defaultErrnoRet: EPERM for the known one, ENOSYS still for the others.
    let sc = json!({"defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": CHECKER, "action": "SCMP_ACT_ALLOW"}]});
    let out = syscalls_inside(c, sc, &calls)?;
    let want = format!("1000={e} 435={e} 162={}", libc::EPERM, e = libc::ENOSYS);
    ensure!(out == want, "deny-by-default: got {out:?}, want {want:?}");
    let sc = json!({"defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["sync"], "action": "SCMP_ACT_ERRNO"}]});
    let out = syscalls_inside(c, sc, &calls)?;
    let want = format!(
        "1000={} 435={} 162={}",
        libc::ENOSYS,
        libc::EINVAL,
        libc::EPERM
    );
    ensure!(out == want, "allow-by-default: got {out:?}, want {want:?}");
    Ok(())
}

/// A listening socket nobody answers, for profiles that must be refused before the
/// runtime ever connects.
fn silent_listener(c: &mut Ctx) -> Result<(UnixListener, std::path::PathBuf), Verdict> {
    let dir = c.suite.bundles.join(format!("{}-agent", c.new_id()));
    c.own_dir(&dir);
    std::fs::create_dir_all(&dir)?;
    let sock = dir.join("agent.sock");
    Ok((UnixListener::bind(&sock)?, sock))
}

/// SCMP_ACT_NOTIFY on write, or as the default action, is refused at create with
/// runc's words: the runtime itself writes after the filter is in.
pub fn seccomp_notify_write_refused(c: &mut Ctx) -> Res {
    let (_listener, sock) = silent_listener(c)?;
    for nnp in [true, false] {
        let mut cfg = script_cfg("true");
        set(&mut cfg, "process/noNewPrivileges", json!(nnp));
        set(
            &mut cfg,
            "linux/seccomp",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": sock,
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
                             {"names": ["read", "write"], "action": "SCMP_ACT_NOTIFY"}]}),
        );
        refused(
            c,
            cfg,
            "SCMP_ACT_NOTIFY cannot be used for the write syscall",
        )?;
    }
    let mut cfg = script_cfg("true");
    set(
        &mut cfg,
        "linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": sock}),
    );
    refused(c, cfg, "SCMP_ACT_NOTIFY cannot be used as default action")
}

/// With no agent at linux.seccomp.listenerPath (no socket there, or one nobody
/// listens on), create fails with one line that says so and names the path.
pub fn seccomp_notify_no_agent(c: &mut Ctx) -> Res {
    let dir = c.suite.bundles.join(format!("{}-agent", c.new_id()));
    c.own_dir(&dir);
    std::fs::create_dir_all(&dir)?;
    let stale = dir.join("stale.sock");
    drop(UnixListener::bind(&stale)?);
    for (nnp, path) in [(true, dir.join("missing.sock")), (false, stale)] {
        let mut cfg = script_cfg("true");
        set(&mut cfg, "process/noNewPrivileges", json!(nnp));
        set(
            &mut cfg,
            "linux/seccomp",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": path,
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]}),
        );
        let (id, b) = c.prepare(cfg, false)?;
        let out = c.create(&b, &id);
        ensure!(
            !out.ok() && !out.timed_out,
            "create with no agent at {}: {}",
            path.display(),
            out.describe()
        );
        let lines: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        ensure!(
            lines.len() == 1
                && lines[0].contains("failed to connect with seccomp agent")
                && lines[0].contains(&path.display().to_string()),
            "want one line saying no seccomp agent is at {}: {:?}",
            path.display(),
            out.stderr.trim()
        );
        ensure!(
            !c.state_entry_exists(&id),
            "state entry of {id} left behind"
        );
    }
    Ok(())
}

/// startContainer hooks run under the container's seccomp filter, as runc runs them,
/// with and without noNewPrivileges: mkdir denied by the profile fails in the hook.
pub fn seccomp_start_container_hook_filtered(c: &mut Ctx) -> Res {
    for nnp in [true, false] {
        let mut cfg = script_cfg("cat /tmp/hook.out");
        set(&mut cfg, "process/noNewPrivileges", json!(nnp));
        set(
            &mut cfg,
            "linux/seccomp",
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                              "errnoRet": libc::EDQUOT}]}),
        );
        push(
            &mut cfg,
            "hooks/startContainer",
            json!({"path": "/bin/sh", "args": ["sh", "-c",
                "mkdir /tmp/hook-dir 2>/tmp/hook.err; echo \"rc=$? $(cat /tmp/hook.err)\" > /tmp/hook.out"]}),
        );
        let out = run_script(c, cfg, &[])?;
        ensure!(
            out.starts_with("rc=1") && out.contains("Disk quota exceeded"),
            "noNewPrivileges {nnp}: the hook's mkdir was not refused by the filter: {out:?}"
        );
    }
    // A hook the filter kills fails `run` (as in runc's own test), naming the hook.
    // (runc's `start` returns before its init runs the startContainer hooks, berth's
    // once the process is executed: `run` sees the failure with both.)
    let mut cfg = script_cfg("true");
    set(
        &mut cfg,
        "linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL"}]}),
    );
    push(
        &mut cfg,
        "hooks/startContainer",
        json!({"path": "/bin/sh", "args": ["sh", "-c", "mkdir /tmp/hook-dir"]}),
    );
    let (id, b) = c.prepare(cfg, false)?;
    let bp = b.path_str();
    let out = c.rt(&["run", "--bundle", &bp, &id]);
    if out.ok() || out.timed_out {
        fail!(
            "run did not fail although the filter killed the startContainer hook: {}",
            out.describe()
        );
    }
    ensure!(
        out.stderr.contains("hook"),
        "the run error does not name the hook: {:?}",
        out.stderr.trim()
    );
    Ok(())
}
