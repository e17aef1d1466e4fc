//! runc's seccomp contract (seccomp.bats, seccomp-notify.bats): what a container sees
//! under ERRNO and KILL rules when the profile lists only the 32-bit x86 architectures
//! (the native one is always filtered too), how argument conditions combine, and
//! SCMP_ACT_NOTIFY with a real agent (`seccomp_agent.rs`): the agent's answers seen
//! inside for `run` and `exec`, with and without noNewPrivileges; the message the
//! agent receives (one fd, the state); the calls the runtime itself makes after the
//! filter (execve, read, close...) going through the agent; listener paths (none,
//! empty, abstract); an agent that dies (ENOSYS inside, no hang); a startContainer
//! hook that must not inherit the notify fd.

use serde_json::{json, Value};

use super::seccomp::{syscalls_inside, CHECKER};
use super::seccomp_agent::Agent;
use super::security::script_cfg;
use crate::ctx::Ctx;
use crate::runtime::CmdOut;
use crate::spec::{push, set};
use crate::verdict::{Res, Verdict};
use crate::{ensure, fail, skip};

/// `run` in the foreground (the container's stdio is the runtime's): the result.
fn run_fg(c: &mut Ctx, cfg: Value) -> Result<(String, String, CmdOut), Verdict> {
    let (id, b) = c.prepare(cfg, false)?;
    let bp = b.path_str();
    let out = c.rt(&["run", "--bundle", &bp, &id]);
    ensure!(!out.timed_out, "`{}` timed out", out.argv);
    Ok((id, bp, out))
}

/// stdout and stderr of a command, for matching messages wherever they went.
fn both(out: &CmdOut) -> String {
    format!("{}{}", out.stdout, out.stderr)
}

/// A profile allowing everything but `names`, which get `action` (and `errnoRet`),
/// listing only the 32-bit x86 architectures as runc's tests do.
fn rule_profile(names: &[&str], action: &str, errno: Option<i64>) -> Value {
    let mut rule = json!({"names": names, "action": action});
    if let Some(e) = errno {
        rule["errnoRet"] = json!(e);
    }
    json!({"defaultAction": "SCMP_ACT_ALLOW",
           "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"],
           "syscalls": [rule]})
}

/// ERRNO without errnoRet is EPERM, with errnoRet 100 ENETDOWN, KILL kills the shell:
/// `run` exits non-zero each time with the shell's message, although the profile
/// names only SCMP_ARCH_X86 and SCMP_ARCH_X32 (the native x86_64 is always added).
pub fn contract_seccomp_errno_kill_actions(c: &mut Ctx) -> Res {
    if std::env::consts::ARCH != "x86_64" {
        skip!("the profile lists the x86 sub-architectures of x86_64");
    }
    for (action, errno, want, code) in [
        ("SCMP_ACT_ERRNO", None, Some("Operation not permitted"), 1),
        ("SCMP_ACT_ERRNO", Some(100), Some("Network is down"), 1),
        ("SCMP_ACT_KILL", None, None, 128 + libc::SIGSYS),
    ] {
        let mut cfg = script_cfg("mkdir /dev/shm/foo");
        set(&mut cfg, "process/noNewPrivileges", json!(false));
        set(
            &mut cfg,
            "linux/seccomp",
            rule_profile(&["mkdir", "mkdirat"], action, errno),
        );
        let (_, _, out) = run_fg(c, cfg)?;
        ensure!(
            out.code == Some(code),
            "{action} {errno:?}: run exited {:?}, want {code}: {}",
            out.code,
            out.describe()
        );
        if let Some(w) = want {
            let text = both(&out);
            ensure!(
                text.contains("mkdir:") && text.contains("/dev/shm/foo") && text.contains(w),
                "{action} {errno:?}: want mkdir's message with {w:?}: {text:?}"
            );
        }
    }
    Ok(())
}

const NR_WRITE: i64 = 1;
const NR_SOCKET: i64 = 41;
const NR_UNSHARE: i64 = 272;
const NR_DUP3: i64 = 292;
const NR_SETNS: i64 = 308;
const NR_PROCESS_VM_READV: i64 = 310;
const NR_PROCESS_VM_WRITEV: i64 = 311;
const NR_KCMP: i64 = 312;

/// Argument conditions as runc combines them, under a deny-by-default profile: two
/// conditions on the same argument are alternatives (OR), on different arguments both
/// must hold (AND); two rules for one syscall each allow; MASKED_EQ compares
/// `arg & value` with `valueTwo`; an ERRNO rule with conditions answers its errno only
/// when they hold; known calls left out get EPERM, a number past the table ENOSYS.
pub fn contract_seccomp_syscall_rules(c: &mut Ctx) -> Res {
    if std::env::consts::ARCH != "x86_64" {
        skip!("the syscall numbers here are x86_64's");
    }
    let eq = |index: u32, value: i64| json!({"index": index, "value": value, "op": "SCMP_CMP_EQ"});
    let sc = json!({"defaultAction": "SCMP_ACT_ERRNO",
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "syscalls": [
        {"names": CHECKER, "action": "SCMP_ACT_ALLOW"},
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 2, "value": 0xF00, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["process_vm_readv"], "action": "SCMP_ACT_ALLOW",
         "args": [eq(0, 100), eq(0, 9001)]},
        {"names": ["process_vm_writev"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOANO,
         "args": [eq(0, 1337), eq(0, 2020)]},
        {"names": ["kcmp"], "action": "SCMP_ACT_ALLOW", "args": [eq(0, 0), eq(1, 1337)]},
        {"names": ["dup3"], "action": "SCMP_ACT_ALLOW", "args": [eq(0, 1)]},
        {"names": ["dup3"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_GT"}]}
    ]});
    // (call, errno wanted); -1 for ~0 flags; AF_UNIX 1, SOCK_STREAM 1.
    let cases: Vec<(String, i32)> = vec![
        (format!("{NR_WRITE},-1,0,0"), libc::EBADF),
        (format!("{NR_SOCKET},1,1,0"), 0),
        (format!("{NR_SOCKET},1,1,255"), libc::EPROTONOSUPPORT),
        (format!("{NR_SOCKET},1,1,256"), libc::EPERM),
        (format!("{NR_SOCKET},1,1,3072"), libc::EPERM),
        (
            format!("{NR_PROCESS_VM_READV},100,0,0,0,0,-1"),
            libc::EINVAL,
        ),
        (
            format!("{NR_PROCESS_VM_READV},9001,0,0,0,0,-1"),
            libc::EINVAL,
        ),
        (format!("{NR_PROCESS_VM_READV},0,0,0,0,0,-1"), libc::EPERM),
        (
            format!("{NR_PROCESS_VM_WRITEV},1337,0,0,0,0,-1"),
            libc::ENOANO,
        ),
        (
            format!("{NR_PROCESS_VM_WRITEV},2020,0,0,0,0,-1"),
            libc::ENOANO,
        ),
        (format!("{NR_PROCESS_VM_WRITEV},0,0,0,0,0,-1"), libc::EPERM),
        (format!("{NR_KCMP},0,1337,0,0,0"), libc::ESRCH),
        (format!("{NR_KCMP},0,0,0,0,0"), libc::EPERM),
        (format!("{NR_KCMP},500,1337,0,0,0"), libc::EPERM),
        (format!("{NR_DUP3},0,-100,65535"), libc::EPERM),
        (format!("{NR_DUP3},1,-100,65535"), libc::EINVAL),
        (format!("{NR_DUP3},2,-100,65535"), libc::EPERM),
        (format!("{NR_DUP3},3,-100,65535"), libc::EINVAL),
        (format!("{NR_UNSHARE},0"), libc::EPERM),
        (format!("{NR_SETNS},0,0"), libc::EPERM),
        ("1000,3735928559,3405709037,4919".to_string(), libc::ENOSYS),
    ];
    let calls: Vec<&str> = cases.iter().map(|(s, _)| s.as_str()).collect();
    let out = syscalls_inside(c, sc, &calls)?;
    let got: Vec<&str> = out.split_whitespace().collect();
    ensure!(
        got.len() == cases.len(),
        "{} answers for {} calls: {out:?}",
        got.len(),
        cases.len()
    );
    let mut bad = Vec::new();
    for ((call, want), g) in cases.iter().zip(&got) {
        let errno = g.split_once('=').map(|(_, e)| e).unwrap_or("");
        if errno != want.to_string() {
            bad.push(format!("{call}: errno {errno}, want {want}"));
        }
    }
    ensure!(bad.is_empty(), "{}", bad.join("; "));
    Ok(())
}

/// A config running `script` under a profile that notifies `names`, with runc's
/// test metadata "bar" (the agent appends `-bar` to the directories it makes).
fn notify_cfg(script: &str, nnp: bool, names: &[&str], listener: &str) -> Value {
    let mut cfg = script_cfg(script);
    set(&mut cfg, "process/noNewPrivileges", json!(nnp));
    set(
        &mut cfg,
        "annotations",
        json!({"org.berth.conformance": "notify"}),
    );
    set(
        &mut cfg,
        "linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": listener,
               "listenerMetadata": "bar",
               "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_X86_64"],
               "syscalls": [{"names": names, "action": "SCMP_ACT_NOTIFY"}]}),
    );
    cfg
}

/// Checks the one message the agent received for a process: one fd, `fds` naming it,
/// the metadata, and the container state (`status`, the init's pid, id, bundle,
/// annotations). `pid` is the process that registered the filter.
fn check_message(
    agent: &Agent,
    id: &str,
    bundle: &str,
    status: &str,
    init_pid: Option<i64>,
) -> Result<i64, Verdict> {
    agent.check_errors()?;
    let got = agent.received();
    ensure!(
        got.len() == 1,
        "the agent received {} connections, want 1: {got:?}",
        got.len()
    );
    let m = &got[0];
    ensure!(m.fds == 1, "the agent received {} fds, want 1", m.fds);
    let v: Value = serde_json::from_str(&m.payload)
        .map_err(|e| Verdict::Fail(format!("payload is not JSON ({e}): {}", m.payload)))?;
    let pid = v["pid"].as_i64().unwrap_or(0);
    let st = &v["state"];
    ensure!(
        v["ociVersion"].as_str().is_some_and(|s| !s.is_empty())
            && v["fds"] == json!(["seccompFd"])
            && v["metadata"] == "bar"
            && pid > 0,
        "the message's ociVersion, fds, metadata or pid: {v}"
    );
    ensure!(
        st["id"] == id
            && st["status"] == status
            && st["bundle"] == bundle
            && st["annotations"]["org.berth.conformance"] == "notify"
            && st["ociVersion"].as_str().is_some_and(|s| !s.is_empty()),
        "the state in the message (want id {id}, status {status}, bundle {bundle}, the \
         annotation): {st}"
    );
    let want_init = init_pid.unwrap_or(pid);
    ensure!(
        st["pid"].as_i64() == Some(want_init),
        "state.pid is {}, want the container's init {want_init} (the process is {pid})",
        st["pid"]
    );
    Ok(pid)
}

/// SCMP_ACT_NOTIFY on mkdir for the container's process, with and without
/// noNewPrivileges: the agent's answer (it made `foo-bar` instead of `foo`) is what
/// the process sees, and the agent got one message with the state as `creating`.
pub fn contract_seccomp_notify_run(c: &mut Ctx) -> Res {
    for nnp in [false, true] {
        let mut agent = Agent::start(c)?;
        let cfg = notify_cfg(
            "mkdir /dev/shm/foo && stat /dev/shm/foo-bar >/dev/null && ! test -e /dev/shm/foo",
            nnp,
            &["mkdir", "mkdirat"],
            &agent.listener_path,
        );
        let (id, bundle, out) = run_fg(c, cfg)?;
        agent.stop();
        ensure!(
            out.ok(),
            "noNewPrivileges {nnp}: the agent's mkdir was not what the process saw: {}",
            out.describe()
        );
        check_message(&agent, &id, &bundle, "creating", None)
            .map_err(|v| Verdict::Fail(format!("noNewPrivileges {nnp}: {v}")))?;
        ensure!(
            agent.answered().iter().any(|a| a == "mkdir"),
            "noNewPrivileges {nnp}: the agent answered no mkdir: {:?}",
            agent.answered()
        );
    }
    Ok(())
}

/// The same for a process added by `exec` (the container runs `sleep`): the exec'd
/// process's filter reaches the agent with the state `running`, whose pid is the
/// container's init while the message's pid is the exec'd process.
pub fn contract_seccomp_notify_exec(c: &mut Ctx) -> Res {
    for nnp in [false, true] {
        let mut agent = Agent::start(c)?;
        let cfg = notify_cfg("sleep 60", nnp, &["mkdir", "mkdirat"], &agent.listener_path);
        let (id, b) = c.prepare(cfg, false)?;
        c.must_create(&b, &id)?;
        c.must(&["start", &id])?;
        let init = c.pid(&id)?;
        // The init's own message came at create.
        check_message(&agent, &id, &b.path_str(), "creating", None)
            .map_err(|v| Verdict::Fail(format!("noNewPrivileges {nnp}, the init: {v}")))?;
        let before = agent.received().len();
        let out = c.rt(&[
            "exec",
            &id,
            "/bin/sh",
            "-c",
            "mkdir /dev/shm/foo && stat /dev/shm/foo-bar >/dev/null && ! test -e /dev/shm/foo",
        ]);
        agent.stop();
        ensure!(
            out.ok(),
            "noNewPrivileges {nnp}: exec did not see the agent's mkdir: {}",
            out.describe()
        );
        let got = agent.received();
        ensure!(
            got.len() == before + 1,
            "noNewPrivileges {nnp}: exec sent {} messages to the agent, want 1",
            got.len() - before
        );
        let m = &got[before];
        ensure!(m.fds == 1, "exec's message carried {} fds, want 1", m.fds);
        let v: Value = serde_json::from_str(&m.payload).unwrap_or_default();
        ensure!(
            v["fds"] == json!(["seccompFd"])
                && v["metadata"] == "bar"
                && v["state"]["status"] == "running"
                && v["state"]["id"] == id.as_str()
                && v["state"]["pid"].as_i64() == Some(i64::from(init))
                && v["pid"]
                    .as_i64()
                    .is_some_and(|p| p > 0 && p != i64::from(init)),
            "noNewPrivileges {nnp}: exec's message (want status running, state.pid the \
             init {init}, pid the exec'd process): {v}"
        );
        c.must(&["kill", &id, "KILL"])?;
        c.wait_stopped(&id)?;
        c.must(&["delete", &id])?;
    }
    Ok(())
}

/// NOTIFY on the calls every runtime makes after its filter is in (execve, openat,
/// open, read, close): with an agent that lets them go on, `run` of /bin/true works,
/// with and without noNewPrivileges; the agent saw at least the execve.
pub fn contract_seccomp_notify_important_syscalls(c: &mut Ctx) -> Res {
    for nnp in [false, true] {
        let mut agent = Agent::start(c)?;
        let mut cfg = notify_cfg(
            "true",
            nnp,
            &["execve", "openat", "open", "read", "close"],
            &agent.listener_path,
        );
        set(&mut cfg, "process/args", json!(["/bin/true"]));
        let (_, _, out) = run_fg(c, cfg)?;
        agent.stop();
        agent.check_errors()?;
        ensure!(
            out.ok(),
            "noNewPrivileges {nnp}: run with execve, openat, open, read and close notified: {}",
            out.describe()
        );
        let execve = format!("continue:{}", libc::SYS_execve);
        ensure!(
            agent.answered().contains(&execve),
            "noNewPrivileges {nnp}: the agent never saw the execve: {:?}",
            agent.answered()
        );
    }
    Ok(())
}

/// listenerPath without any NOTIFY rule is not used (the container runs; the agent is
/// never called); NOTIFY with an empty listenerPath fails; an abstract listenerPath
/// (`@name`) reaches an agent listening there, and fails when none does.
pub fn contract_seccomp_notify_listener_paths(c: &mut Ctx) -> Res {
    let mut agent = Agent::start(c)?;
    let mut cfg = script_cfg("mkdir /dev/shm/foo && stat /dev/shm/foo >/dev/null");
    set(
        &mut cfg,
        "linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": agent.listener_path,
               "listenerMetadata": "bar"}),
    );
    let (_, _, out) = run_fg(c, cfg)?;
    agent.stop();
    ensure!(
        out.ok(),
        "a listenerPath without NOTIFY rules: {}",
        out.describe()
    );
    ensure!(
        agent.received().is_empty(),
        "the agent was called although no rule notifies: {:?}",
        agent.received()
    );

    let cfg = notify_cfg("true", false, &["mkdir"], "");
    let (_, _, out) = run_fg(c, cfg)?;
    ensure!(
        !out.ok(),
        "NOTIFY with an empty listenerPath: run succeeded"
    );

    let name = format!("berth-conformance-{}-{}", std::process::id(), c.new_id());
    let cfg = notify_cfg("true", false, &["mkdir"], &format!("@{name}"));
    let (_, _, out) = run_fg(c, cfg)?;
    ensure!(
        !out.ok() && both(&out).contains("failed to connect with seccomp agent"),
        "NOTIFY with an abstract listenerPath nobody listens on: want a failure to connect: {}",
        out.describe()
    );
    let mut agent = Agent::start_abstract(&name)?;
    let cfg = notify_cfg(
        "mkdir /dev/shm/foo && stat /dev/shm/foo-bar >/dev/null",
        false,
        &["mkdir", "mkdirat"],
        &agent.listener_path,
    );
    let (_, _, out) = run_fg(c, cfg)?;
    agent.stop();
    agent.check_errors()?;
    ensure!(
        out.ok() && agent.received().len() == 1,
        "an agent at the abstract address @{name} was not used ({} messages): {}",
        agent.received().len(),
        out.describe()
    );
    Ok(())
}

/// An agent that goes away while the container runs must not leave it blocked: the
/// next notified mkdir fails with ENOSYS, and the foreground `run` (which must not
/// hold a copy of the notify fd) returns.
pub fn contract_seccomp_notify_agent_killed(c: &mut Ctx) -> Res {
    let mut agent = Agent::start(c)?;
    // The first mkdir is answered; the agent stops as soon as it has answered it.
    agent.stop_after(1);
    let cfg = notify_cfg(
        "mkdir /dev/shm/a && stat /dev/shm/a-bar >/dev/null && sleep 1 && mkdir /dev/shm/foo",
        false,
        &["mkdir", "mkdirat"],
        &agent.listener_path,
    );
    let (_, _, out) = run_fg(c, cfg)?;
    agent.stop();
    agent.check_errors()?;
    let text = both(&out);
    ensure!(
        out.code == Some(1)
            && text.contains("mkdir:")
            && text.contains("/dev/shm/foo")
            && text.contains("Function not implemented"),
        "after the agent went away mkdir must fail with ENOSYS: {}",
        out.describe()
    );
    Ok(())
}

/// Errors answered by the agent reach the process: chmod, fchmod and fchmodat get
/// ENOMEDIUM ("No medium found"); runc's example config (mkdir and the chmod family
/// notified, metadata naming the suffix) gives both answers in one script.
pub fn contract_seccomp_notify_agent_errno(c: &mut Ctx) -> Res {
    let mut agent = Agent::start(c)?;
    let cfg = notify_cfg(
        "touch /dev/shm/foo && chmod 777 /dev/shm/foo",
        false,
        &["chmod", "fchmod", "fchmodat", "fchmodat2"],
        &agent.listener_path,
    );
    let (_, _, out) = run_fg(c, cfg)?;
    agent.stop();
    agent.check_errors()?;
    let text = both(&out);
    ensure!(
        !out.ok()
            && text.contains("chmod:")
            && text.contains("/dev/shm/foo")
            && text.contains("No medium found"),
        "want chmod failing with the agent's ENOMEDIUM: {}",
        out.describe()
    );

    let mut agent = Agent::start(c)?;
    let mut cfg = notify_cfg(
        "cd /dev/shm; mkdir test-dir; touch test-file; chmod 777 test-file; \
         stat /dev/shm/test-dir-foo >/dev/null && echo example-done",
        false,
        &[
            "chmod",
            "fchmod",
            "fchmodat",
            "fchmodat2",
            "mkdir",
            "mkdirat",
        ],
        &agent.listener_path,
    );
    set(&mut cfg, "linux/seccomp/listenerMetadata", json!("foo"));
    let (_, _, out) = run_fg(c, cfg)?;
    agent.stop();
    agent.check_errors()?;
    let text = both(&out);
    ensure!(
        out.ok()
            && text.contains("example-done")
            && text.contains("chmod:")
            && text.contains("test-file")
            && text.contains("No medium found"),
        "runc's example: want test-dir-foo made and chmod refused: {}",
        out.describe()
    );
    Ok(())
}

/// A startContainer hook runs in the container with only its stdio: the notify fd
/// (and anything else of the runtime's) is not passed on. runc's test counts the
/// entries of /proc/self/fd as `ls` lists them: 0, 1, 2 and ls's own directory fd.
pub fn contract_seccomp_notify_start_container_hook(c: &mut Ctx) -> Res {
    let mut agent = Agent::start(c)?;
    let mut cfg = notify_cfg("true", false, &["mkdir"], &agent.listener_path);
    set(&mut cfg, "process/args", json!(["/bin/true"]));
    push(
        &mut cfg,
        "hooks/startContainer",
        json!({"path": "/bin/sh", "args": ["sh", "-c",
            "n=$(ls /proc/self/fd/ | wc -l); if [ $n -ne 4 ]; then echo \"the hook has $n fds:\"; ls -l /proc/self/fd/; exit 1; fi"]}),
    );
    let (_, _, out) = run_fg(c, cfg)?;
    agent.stop();
    agent.check_errors()?;
    if !out.ok() {
        fail!(
            "a startContainer hook under a NOTIFY profile saw more than its stdio: {}",
            out.describe()
        );
    }
    Ok(())
}
