//! Process security (issue 3): capabilities as /proc/self/status shows them, ambient
//! capabilities after exec for a non-root user, capabilities and rlimits that cannot be
//! granted, no_new_privs both ways, every seccomp action seen from inside (NOTIFY with a
//! listener run by the driver), argument filters, the Podman default profile, the
//! scheduling knobs read back, and bad inputs refused by field name.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;

use serde_json::{json, Value};

use crate::bundle::Bundle;
use crate::ctx::Ctx;
use crate::runtime::CmdOut;
use crate::spec::{caps_all_sets, default_config, push, set, sh, DEFAULT_CAPS};
use crate::verdict::{Res, Verdict};
use crate::{cgroup, ensure, fail, skip};

const CAP_CHOWN: u32 = 0;
const CAP_SYS_RESOURCE: u32 = 24;

/// A config running `script` under busybox sh, with a 1777 tmpfs on /tmp.
pub(super) fn script_cfg(script: &str) -> Value {
    let args = sh(script);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cfg = default_config(&args, "/placeholder");
    push(
        &mut cfg,
        "mounts",
        json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["mode=1777"]}),
    );
    cfg
}

/// Links more busybox applets into a prepared bundle's rootfs.
fn applets(b: &Bundle, names: &[&str]) -> Res {
    for a in names {
        let link = b.rootfs().join("bin").join(a);
        if !link.exists() {
            std::os::unix::fs::symlink("busybox", &link)?;
        }
    }
    Ok(())
}

/// create, start, wait for stopped, delete; the container's stdout.
pub(super) fn run_script(
    c: &mut Ctx,
    cfg: Value,
    extra_applets: &[&str],
) -> Result<String, Verdict> {
    let (id, b) = c.prepare(cfg, false)?;
    applets(&b, extra_applets)?;
    c.must_create(&b, &id)?;
    c.must(&["start", &id])?;
    c.wait_stopped(&id)?;
    let out = b.read("container.out");
    c.must(&["delete", &id])?;
    Ok(out)
}

/// The checker run with `cfg`: every `ok`, no `not ok`.
fn run_checker(c: &mut Ctx, cfg: Value) -> Res {
    c.run_inside(cfg).map(|_| ())
}

fn checker_cfg() -> Value {
    default_config(&["/runtimetest"], "/placeholder")
}

/// create must fail with one line on stderr naming `needle`, and leave no state
/// entry, cgroup or mount behind.
pub(super) fn refused(c: &mut Ctx, cfg: Value, needle: &str) -> Res {
    refused_all(c, cfg, &[needle])
}

/// [`refused`], the one line naming every one of `needles`.
pub(super) fn refused_all(c: &mut Ctx, cfg: Value, needles: &[&str]) -> Res {
    let (id, b) = c.prepare(cfg, false)?;
    let cg = format!("/{}/{id}", c.suite.cg_parent);
    let out = c.create(&b, &id);
    for needle in needles {
        one_line_error(&out, needle)?;
    }
    let mounts = crate::bundle::mounts_under(&b.dir);
    ensure!(mounts.is_empty(), "mounts left behind: {mounts:?}");
    ensure!(
        !c.state_entry_exists(&id),
        "state entry of {id} left behind"
    );
    let left = cgroup::existing(&cg);
    ensure!(left.is_empty(), "cgroup left behind: {left:?}");
    Ok(())
}

fn one_line_error(out: &CmdOut, needle: &str) -> Res {
    ensure!(
        !out.ok(),
        "`{}` succeeded; want an error naming {needle}",
        out.argv
    );
    ensure!(!out.timed_out, "`{}` timed out", out.argv);
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    ensure!(
        lines.len() == 1,
        "want a one-line error, got {} lines: {:?}",
        lines.len(),
        out.stderr.trim()
    );
    ensure!(
        lines[0].contains(needle),
        "error does not name {needle}: {}",
        lines[0]
    );
    Ok(())
}

fn host_bounding_has(cap: u32) -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    crate::caps::status_bits(&status, "CapBnd").is_some_and(|b| b & (1 << cap) != 0)
}

fn hard_limit(res: libc::__rlimit_resource_t) -> u64 {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: rl is a valid, writable rlimit struct.
    unsafe { libc::getrlimit(res, &mut rl) };
    rl.rlim_max
}

/// Different bounding, inheritable and ambient sets, each checked by the checker
/// against /proc/self/status. (Permitted and effective equal the bounding set: for
/// root, execve recomputes them from it.)
pub fn security_capabilities_sets(c: &mut Ctx) -> Res {
    let mut cfg = checker_cfg();
    set(
        &mut cfg,
        "process/capabilities",
        json!({
            "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SETUID", "CAP_SETGID", "CAP_SYS_NICE"],
            "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SETUID", "CAP_SETGID", "CAP_SYS_NICE"],
            "effective": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SETUID", "CAP_SETGID", "CAP_SYS_NICE"],
            "inheritable": ["CAP_CHOWN", "CAP_NET_RAW"],
            "ambient": ["CAP_CHOWN"]
        }),
    );
    run_checker(c, cfg)
}

/// uid 1000 with CAP_CHOWN ambient: after execve it is still effective and chown works;
/// without the ambient set it is gone.
pub fn security_ambient_nonroot(c: &mut Ctx) -> Res {
    let script = "grep -E '^Cap(Eff|Amb)' /proc/self/status; touch /tmp/f && chown 0 /tmp/f && echo chown=ok; true";
    let mut cfg = script_cfg(script);
    set(&mut cfg, "process/user", json!({"uid": 1000, "gid": 1000}));
    set(
        &mut cfg,
        "process/capabilities",
        caps_all_sets(&["CAP_CHOWN"]),
    );
    let out = run_script(c, cfg.clone(), &["chown"])?;
    let want = 1u64 << CAP_CHOWN;
    ensure!(
        crate::caps::status_bits(&out, "CapAmb") == Some(want)
            && crate::caps::status_bits(&out, "CapEff") == Some(want),
        "want CapAmb and CapEff {want:016x}: {out}"
    );
    ensure!(
        out.contains("chown=ok"),
        "chown failed with ambient CAP_CHOWN: {out}"
    );
    set(&mut cfg, "process/capabilities/ambient", json!([]));
    let out = run_script(c, cfg, &["chown"])?;
    ensure!(
        crate::caps::status_bits(&out, "CapEff") == Some(0) && !out.contains("chown=ok"),
        "without ambient caps the non-root process kept capabilities: {out}"
    );
    Ok(())
}

/// CAP_SYS_RESOURCE is outside this machine's bounding set: create names it.
pub fn security_capabilities_ungrantable(c: &mut Ctx) -> Res {
    if host_bounding_has(CAP_SYS_RESOURCE) {
        skip!("CAP_SYS_RESOURCE is in this machine's bounding set: it can be granted");
    }
    let mut caps: Vec<&str> = DEFAULT_CAPS.to_vec();
    caps.push("CAP_SYS_RESOURCE");
    let mut cfg = script_cfg("true");
    set(&mut cfg, "process/capabilities", caps_all_sets(&caps));
    refused(c, cfg, "CAP_SYS_RESOURCE")
}

/// An unknown capability name is a warning naming it (in --log), and the container runs.
pub fn security_capabilities_unknown_warns(c: &mut Ctx) -> Res {
    let mut cfg = script_cfg("echo ran");
    push(
        &mut cfg,
        "process/capabilities/bounding",
        json!("CAP_BERTH_TEST"),
    );
    let (id, b) = c.prepare(cfg, false)?;
    let log = b.dir.join("berth.log");
    let (bp, lp) = (b.path_str(), log.display().to_string());
    let out = c.rt(&["--log", &lp, "create", "--bundle", &bp, &id]);
    ensure!(out.ok(), "create failed: {}", out.describe());
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    ensure!(
        text.lines()
            .any(|l| l.contains("level=warn") && l.contains("CAP_BERTH_TEST")),
        "no warning naming CAP_BERTH_TEST in --log: {text:?}"
    );
    c.must(&["start", &id])?;
    c.wait_stopped(&id)?;
    c.must(&["delete", &id])?;
    Ok(())
}

/// Every RLIMIT_* the host lets us set without CAP_SYS_RESOURCE, seen by the checker.
pub fn security_rlimits_all(c: &mut Ctx) -> Res {
    let mut lims = vec![];
    for (name, res) in [
        ("RLIMIT_AS", libc::RLIMIT_AS),
        ("RLIMIT_CORE", libc::RLIMIT_CORE),
        ("RLIMIT_CPU", libc::RLIMIT_CPU),
        ("RLIMIT_DATA", libc::RLIMIT_DATA),
        ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE),
        ("RLIMIT_LOCKS", libc::RLIMIT_LOCKS),
        ("RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK),
        ("RLIMIT_MSGQUEUE", libc::RLIMIT_MSGQUEUE),
        ("RLIMIT_NICE", libc::RLIMIT_NICE),
        ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE),
        ("RLIMIT_NPROC", libc::RLIMIT_NPROC),
        ("RLIMIT_RSS", libc::RLIMIT_RSS),
        ("RLIMIT_RTPRIO", libc::RLIMIT_RTPRIO),
        ("RLIMIT_RTTIME", libc::RLIMIT_RTTIME),
        ("RLIMIT_SIGPENDING", libc::RLIMIT_SIGPENDING),
        ("RLIMIT_STACK", libc::RLIMIT_STACK),
    ] {
        // Well under the host's hard limit and big enough for the checker to run.
        let hard = hard_limit(res).min(1 << 40);
        let soft = match name {
            "RLIMIT_NOFILE" => hard.min(1024),
            "RLIMIT_NICE" | "RLIMIT_RTPRIO" => hard.min(1),
            _ => hard.min(1 << 30).max(hard / 2),
        };
        lims.push(json!({"type": name, "soft": soft, "hard": hard}));
    }
    let mut cfg = checker_cfg();
    set(&mut cfg, "process/rlimits", Value::Array(lims));
    run_checker(c, cfg)
}

/// Raising a hard limit above berth's own needs CAP_SYS_RESOURCE: the error says so.
pub fn security_rlimits_raise_fails(c: &mut Ctx) -> Res {
    if host_bounding_has(CAP_SYS_RESOURCE) {
        skip!("CAP_SYS_RESOURCE is in this machine's bounding set: the raise would work");
    }
    let hard = hard_limit(libc::RLIMIT_NOFILE);
    let mut cfg = script_cfg("true");
    set(
        &mut cfg,
        "process/rlimits",
        json!([{"type": "RLIMIT_NOFILE", "soft": 64, "hard": hard + 1}]),
    );
    refused(c, cfg, "CAP_SYS_RESOURCE")
}

/// noNewPrivileges false: the checker sees NoNewPrivs 0 (the default config has true).
pub fn security_no_new_privileges_off(c: &mut Ctx) -> Res {
    let mut cfg = checker_cfg();
    set(&mut cfg, "process/noNewPrivileges", json!(false));
    run_checker(c, cfg)?;
    let mut cfg = script_cfg("grep NoNewPrivs /proc/self/status");
    set(&mut cfg, "process/noNewPrivileges", json!(true));
    let out = run_script(c, cfg, &[])?;
    ensure!(out.contains("NoNewPrivs:\t1"), "want NoNewPrivs 1: {out}");
    Ok(())
}

fn seccomp_cfg(script: &str, seccomp: Value) -> Value {
    let mut cfg = script_cfg(script);
    set(&mut cfg, "linux/seccomp", seccomp);
    cfg
}

fn allow_but(names: &[&str], action: &str, errno: Option<u32>) -> Value {
    let mut rule = json!({"names": names, "action": action});
    if let Some(e) = errno {
        rule["errnoRet"] = json!(e);
    }
    json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]})
}

/// Each action seen from inside: ERRNO's value, TRAP/KILL/KILL_THREAD/KILL_PROCESS end
/// the caller with SIGSYS (exit 159 as its shell sees it), TRACE without a tracer is
/// ENOSYS, LOG and LOG lets the call through.
pub fn security_seccomp_actions(c: &mut Ctx) -> Res {
    let mkdir = "mkdir /tmp/d 2>&1; echo rc=$?";
    let out = run_script(
        c,
        seccomp_cfg(
            mkdir,
            allow_but(&["mkdir", "mkdirat"], "SCMP_ACT_ERRNO", Some(122)),
        ),
        &[],
    )?;
    ensure!(
        out.contains("Disk quota exceeded") && out.contains("rc=1"),
        "ERRNO 122 (EDQUOT) not seen: {out}"
    );
    for action in [
        "SCMP_ACT_TRAP",
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_KILL_PROCESS",
    ] {
        let out = run_script(
            c,
            seccomp_cfg(
                "sh -c sync; echo child=$?",
                allow_but(&["sync"], action, None),
            ),
            &["sync"],
        )?;
        ensure!(
            out.trim() == format!("child={}", 128 + libc::SIGSYS),
            "{action}: want the child killed by SIGSYS: {out}"
        );
    }
    let out = run_script(
        c,
        seccomp_cfg(
            mkdir,
            allow_but(&["mkdir", "mkdirat"], "SCMP_ACT_TRACE", None),
        ),
        &[],
    )?;
    ensure!(
        out.contains("Function not implemented"),
        "TRACE without a tracer must be ENOSYS: {out}"
    );
    // ALLOW is the default action here and the rule action of the default profile.
    let out = run_script(
        c,
        seccomp_cfg(
            mkdir,
            allow_but(&["mkdir", "mkdirat"], "SCMP_ACT_LOG", None),
        ),
        &[],
    )?;
    ensure!(out.trim() == "rc=0", "SCMP_ACT_LOG: mkdir must work: {out}");
    Ok(())
}

/// kill(pid, sig) filtered on the signal with every operator.
pub fn security_seccomp_arguments(c: &mut Ctx) -> Res {
    let script = "trap '' 10 12 14; for s in 0 10 12 14; do kill -$s $$ 2>/dev/null; echo -n \"$s:$? \"; done";
    for (op, value, value_two, refused) in [
        ("SCMP_CMP_EQ", 12, 0, &[12][..]),
        ("SCMP_CMP_NE", 12, 0, &[0, 10, 14]),
        ("SCMP_CMP_LT", 12, 0, &[0, 10]),
        ("SCMP_CMP_LE", 12, 0, &[0, 10, 12]),
        ("SCMP_CMP_GE", 12, 0, &[12, 14]),
        ("SCMP_CMP_GT", 12, 0, &[14]),
        ("SCMP_CMP_MASKED_EQ", 2, 2, &[10, 14]),
    ] {
        let sc = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"],
            "action": "SCMP_ACT_ERRNO", "args": [
            {"index": 1, "value": value, "valueTwo": value_two, "op": op}]}]});
        let out = run_script(c, seccomp_cfg(script, sc), &[])?;
        let want: String = [0, 10, 12, 14]
            .iter()
            .map(|s| format!("{s}:{} ", u8::from(refused.contains(s))))
            .collect();
        ensure!(out == want, "{op}: got {out:?} want {want:?}");
    }
    Ok(())
}

/// Receives the notify fd and the state over the socket, answers one notification with
/// EROFS, and returns the JSON payload.
fn notify_listener(listener: UnixListener) -> Result<String, String> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    listener
        .set_nonblocking(false)
        .map_err(|e| format!("listener: {e}"))?;
    let (conn, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
    let mut payload = vec![0u8; 64 * 1024];
    let mut iov = [IoSliceMut::new(&mut payload)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 4]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .map_err(|e| format!("recvmsg: {e}"))?;
    let n = msg.bytes;
    let fd = msg
        .cmsgs()
        .map_err(|e| format!("cmsgs: {e}"))?
        .find_map(|c| match c {
            ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        })
        .ok_or("no fd in the listener message")?;
    // SAFETY: the fd was just received over SCM_RIGHTS and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let json = String::from_utf8_lossy(&payload[..n]).into_owned();
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd; 15 s bound.
    if unsafe { libc::poll(&mut pfd, 1, 15_000) } != 1 {
        return Err(format!("no notification within 15 s; payload {json}"));
    }
    // SAFETY: seccomp_notif is plain data; zeroed is what the kernel wants on input.
    let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: the ioctl fills `req`, a live struct of the right type.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) } != 0 {
        return Err(format!("NOTIF_RECV: {}", std::io::Error::last_os_error()));
    }
    let mut resp = libc::seccomp_notif_resp {
        id: req.id,
        val: 0,
        error: -libc::EROFS,
        flags: 0,
    };
    // SAFETY: the ioctl reads `resp`, a live struct of the right type.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) } != 0 {
        return Err(format!("NOTIF_SEND: {}", std::io::Error::last_os_error()));
    }
    Ok(json)
}

/// SCMP_ACT_NOTIFY: the driver is the listener; its EROFS answer is seen inside, and
/// the payload carries the state, the metadata and the fd name.
pub fn security_seccomp_notify(c: &mut Ctx) -> Res {
    let dir = c.suite.bundles.join(format!("{}-listener", c.new_id()));
    c.own_dir(&dir);
    std::fs::create_dir_all(&dir)?;
    let sock = dir.join("l.sock");
    let listener = UnixListener::bind(&sock)?;
    let agent = std::thread::spawn(move || notify_listener(listener));
    let sc = json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": sock,
        "listenerMetadata": "conformance", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]});
    let result = run_script(c, seccomp_cfg("mkdir /tmp/n 2>&1; echo rc=$?", sc), &[]);
    if result.is_err() {
        // Unblock the agent if the runtime never connected.
        let _ = std::os::unix::net::UnixStream::connect(&sock);
    }
    let out = result?;
    let json = match agent.join() {
        Ok(Ok(j)) => j,
        Ok(Err(e)) => fail!("listener: {e}"),
        Err(_) => fail!("listener thread panicked"),
    };
    let v: Value = serde_json::from_str(&json)
        .map_err(|e| Verdict::Fail(format!("listener payload is not JSON ({e}): {json}")))?;
    ensure!(v["fds"] == json!(["seccompFd"]), "fds: {v}");
    ensure!(v["metadata"] == "conformance", "metadata: {v}");
    ensure!(
        v["state"]["id"].is_string() && v["pid"].as_i64().unwrap_or(0) > 0,
        "state: {v}"
    );
    ensure!(
        out.contains("Read-only file system") && out.contains("rc=1"),
        "the listener's EROFS was not seen inside: {out}"
    );
    Ok(())
}

/// containers-common's default profile (this host's /usr/share/containers/seccomp.json
/// or the copy in berth's tests), converted for x86_64 and `caps` as Podman does.
fn default_profile(caps: &[&str]) -> Value {
    const COPY: &str = include_str!(
        "../../../crates/berth-runtime/tests/security_support/containers-seccomp.json"
    );
    let text = std::fs::read_to_string("/usr/share/containers/seccomp.json")
        .unwrap_or_else(|_| COPY.to_string());
    let p: Value = serde_json::from_str(&text)
        .unwrap_or_else(|_| serde_json::from_str(COPY).unwrap_or_default());
    let mut archs = vec![];
    for m in p["archMap"].as_array().into_iter().flatten() {
        if m["architecture"] == "SCMP_ARCH_X86_64" {
            archs.push(m["architecture"].clone());
            archs.extend(
                m["subArchitectures"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            );
        }
    }
    let has = |list: &Value, item: &str| {
        list.as_array()
            .is_some_and(|l| l.iter().any(|v| v.as_str() == Some(item)))
    };
    let mut rules = vec![];
    for s in p["syscalls"].as_array().into_iter().flatten() {
        let (inc, exc) = (&s["includes"], &s["excludes"]);
        let arches = inc["arches"].as_array().is_some_and(|a| !a.is_empty());
        if (arches && !has(&inc["arches"], "amd64")) || has(&exc["arches"], "amd64") {
            continue;
        }
        let needs = inc["caps"].as_array().cloned().unwrap_or_default();
        if !needs
            .iter()
            .all(|n| caps.contains(&n.as_str().unwrap_or("")))
        {
            continue;
        }
        if caps.iter().any(|cap| has(&exc["caps"], cap)) {
            continue;
        }
        let mut r = json!({"names": s["names"], "action": s["action"]});
        if let Some(args) = s["args"].as_array().filter(|a| !a.is_empty()) {
            r["args"] = Value::Array(args.clone());
        }
        if let Some(e) = s.get("errnoRet") {
            r["errnoRet"] = e.clone();
        }
        rules.push(r);
    }
    json!({"defaultAction": p["defaultAction"], "defaultErrnoRet": p["defaultErrnoRet"],
           "architectures": archs, "syscalls": rules})
}

/// Under the default profile a busybox session works, and unshare, mount and swapon
/// are refused.
pub fn security_seccomp_default_profile(c: &mut Ctx) -> Res {
    let script = "set -e; ls / > /dev/null; cat /etc/passwd > /dev/null; ps > /dev/null; \
                  id -u; echo hi | grep -q hi; mkdir -p /tmp/a/b; echo data > /tmp/a/b/f; \
                  wc -c < /tmp/a/b/f; uname -s; chown 10 /tmp/a/b/f; mkdir -p /mnt; set +e; \
                  for c in 'unshare -m true' 'mount -t tmpfs t /mnt' 'swapon /tmp/a/b/f'; do \
                  $c 2>/dev/null; echo \"rc=$?\"; done";
    let cfg = seccomp_cfg(script, default_profile(DEFAULT_CAPS));
    let out = run_script(
        c,
        cfg,
        &["ps", "uname", "chown", "unshare", "mount", "swapon"],
    )?;
    ensure!(
        out == "0\n5\nLinux\nrc=1\nrc=1\nrc=1\n",
        "busybox session under the default profile: {out:?}"
    );
    // swapon is refused by the profile itself: EPERM even with CAP_SYS_ADMIN.
    let mut caps = DEFAULT_CAPS.to_vec();
    caps.push("CAP_SYS_ADMIN");
    let mut cfg = seccomp_cfg(
        "touch /tmp/s; swapon /tmp/s 2>&1; echo rc=$?",
        default_profile(&caps),
    );
    set(&mut cfg, "process/capabilities", caps_all_sets(&caps));
    let out = run_script(c, cfg, &["swapon"])?;
    ensure!(
        out.contains("Operation not permitted"),
        "swapon under the default profile: {out}"
    );
    Ok(())
}

/// Scheduler, I/O priority and the final CPU affinity read back from /proc.
pub fn security_scheduling(c: &mut Ctx) -> Res {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (initial, last) = if cpus > 1 { ("1", "0") } else { ("0", "0") };
    let mut cfg =
        script_cfg("cat /proc/$$/stat; ionice -p $$; grep Cpus_allowed_list /proc/$$/status");
    set(
        &mut cfg,
        "process/scheduler",
        json!({"policy": "SCHED_BATCH", "nice": 5}),
    );
    set(
        &mut cfg,
        "process/ioPriority",
        json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0}),
    );
    set(
        &mut cfg,
        "process/execCPUAffinity",
        json!({"initial": initial, "final": last}),
    );
    let out = run_script(c, cfg, &["ionice"])?;
    let stat = out.lines().next().unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    // proc(5): field 19 is nice, 41 is policy; `fields` starts at field 3.
    ensure!(
        fields.get(16) == Some(&"5") && fields.get(38) == Some(&"3"),
        "want nice 5 and SCHED_BATCH (3): {stat}"
    );
    ensure!(out.contains("idle"), "want the idle I/O class: {out}");
    ensure!(
        out.contains(&format!("Cpus_allowed_list:\t{last}\n")),
        "want final affinity {last}: {out}"
    );
    Ok(())
}

/// linux.memoryPolicy MPOL_INTERLEAVE on node 0: the process's mappings say so.
pub fn security_memory_policy(c: &mut Ctx) -> Res {
    if !std::path::Path::new("/proc/self/numa_maps").exists() {
        skip!("this kernel has no NUMA support (/proc/self/numa_maps)");
    }
    let mut cfg = script_cfg("grep -c interleave:0 /proc/$$/numa_maps");
    set(
        &mut cfg,
        "linux/memoryPolicy",
        json!({"mode": "MPOL_INTERLEAVE", "nodes": "0"}),
    );
    let out = run_script(c, cfg, &[])?;
    ensure!(
        out.trim().parse::<u32>().unwrap_or(0) > 0,
        "no interleave:0 mapping in numa_maps: {out}"
    );
    Ok(())
}

/// linux.personality LINUX32: uname -m says i686 on x86_64.
pub fn security_personality(c: &mut Ctx) -> Res {
    if std::env::consts::ARCH != "x86_64" {
        skip!("LINUX32 is checked on x86_64 only");
    }
    let mut cfg = script_cfg("uname -m");
    set(&mut cfg, "linux/personality", json!({"domain": "LINUX32"}));
    let out = run_script(c, cfg, &["uname"])?;
    ensure!(out.trim() == "i686", "want i686 under LINUX32: {out}");
    Ok(())
}

/// Where AppArmor or SELinux is off, a named profile or label is refused by name and
/// an empty one is ignored (runc's rules).
pub fn security_lsm_disabled(c: &mut Ctx) -> Res {
    let apparmor = crate::ctx::read_trim(std::path::Path::new(
        "/sys/module/apparmor/parameters/enabled",
    )) == "Y";
    let selinux = std::path::Path::new("/sys/fs/selinux/enforce").exists();
    if apparmor && selinux {
        skip!("AppArmor and SELinux are both enabled here");
    }
    let mut cfg = script_cfg("true");
    set(&mut cfg, "process/apparmorProfile", json!(""));
    set(&mut cfg, "process/selinuxLabel", json!(""));
    run_script(c, cfg, &[])?;
    if !apparmor {
        let mut cfg = script_cfg("true");
        set(
            &mut cfg,
            "process/apparmorProfile",
            json!("berth-conformance"),
        );
        refused(c, cfg, "apparmorProfile")?;
    }
    if !selinux {
        let mut cfg = script_cfg("true");
        set(
            &mut cfg,
            "process/selinuxLabel",
            json!("system_u:system_r:container_t:s0"),
        );
        refused(c, cfg, "selinuxLabel")?;
    }
    Ok(())
}

/// Bad inputs: one-line errors naming the field, nothing left behind.
pub fn security_bad_inputs(c: &mut Ctx) -> Res {
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "process/rlimits",
            json!([{"type": "RLIMIT_BERTH", "soft": 1, "hard": 1}]),
            "process.rlimits[0]",
        ),
        (
            "linux/seccomp",
            json!({"defaultAction": "SCMP_ACT_PERHAPS"}),
            "linux.seccomp.defaultAction",
        ),
        (
            "linux/seccomp",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_PERHAPS"}]}),
            "linux.seccomp.syscalls[0]",
        ),
        (
            "linux/seccomp",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                   "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_ROUGHLY"}]}]}),
            "linux.seccomp.syscalls[0].args[0]",
        ),
        (
            "linux/seccomp",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]}),
            "linux.seccomp.architectures[0]",
        ),
        (
            "linux/seccomp",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": "everything"}),
            "linux.seccomp",
        ),
        (
            "process/scheduler",
            json!({"policy": "SCHED_FIFO", "priority": 500}),
            "process.scheduler",
        ),
        (
            "process/ioPriority",
            json!({"class": "IOPRIO_CLASS_BE", "priority": 99}),
            "process.ioPriority",
        ),
    ];
    for (path, value, field) in cases {
        let mut cfg = script_cfg("true");
        set(&mut cfg, path, value);
        refused(c, cfg, field)?;
    }
    Ok(())
}
