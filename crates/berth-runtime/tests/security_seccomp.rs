//! seccomp seen from inside, beyond tests/seccomp.rs: TRAP, KILL, TRACE, LOG and
//! default-errno actions, every argument operator, the filter flags, bad profiles
//! refused by field name with nothing left behind, and the Podman/Docker default
//! profile (containers-common's seccomp.json, converted as Podman does) allowing a
//! busybox shell session while blocking what it should.

mod security_support;

use berth_runtime::ExitStatus;
use security_support::{set, Fixture};
use serde_json::{json, Value};

fn with_seccomp(f: &Fixture, script: &str, seccomp: Value) -> Value {
    let mut cfg = f.config(script);
    set(&mut cfg, "linux/seccomp", seccomp);
    cfg
}

fn allow_but(names: &[&str], action: &str) -> Value {
    json!({"defaultAction": "SCMP_ACT_ALLOW",
           "syscalls": [{"names": names, "action": action}]})
}

#[test]
fn trap_and_kill_end_the_process_with_sigsys() {
    let f = Fixture::new("trap");
    for action in ["SCMP_ACT_TRAP", "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"] {
        let cfg = with_seccomp(
            &f,
            "echo before >> /out/log; exec sync",
            allow_but(&["sync"], action),
        );
        let r = f.run(&cfg);
        assert_eq!(
            r.status,
            ExitStatus::Signaled(libc::SIGSYS),
            "{action}: {r:?}"
        );
        assert_eq!(r.log, "before\n", "{action}");
    }
}

#[test]
fn trace_without_a_tracer_fails_with_enosys_and_log_allows() {
    let f = Fixture::new("trace");
    let script = "mkdir /tmp/d 2>> /out/log; echo rc=$? >> /out/log";
    let r = f.run(&with_seccomp(
        &f,
        script,
        allow_but(&["mkdir", "mkdirat"], "SCMP_ACT_TRACE"),
    ));
    assert!(
        r.log.contains("Function not implemented") && r.log.contains("rc=1"),
        "{r:?}"
    );
    let r = f.run(&with_seccomp(
        &f,
        script,
        allow_but(&["mkdir", "mkdirat"], "SCMP_ACT_LOG"),
    ));
    assert_eq!(r.log, "rc=0\n");
}

#[test]
fn errno_without_errno_ret_is_eperm_and_default_errno_ret_applies() {
    let f = Fixture::new("errno");
    let script = "mkdir /tmp/d 2>> /out/log; echo rc=$? >> /out/log";
    let r = f.run(&with_seccomp(
        &f,
        script,
        allow_but(&["mkdir", "mkdirat"], "SCMP_ACT_ERRNO"),
    ));
    assert!(r.log.contains("Operation not permitted"), "{r:?}");
    // A deny-by-default filter with defaultErrnoRet, allowing what sh and echo need.
    let mut allowed: Vec<&str> = DEFAULT_ALLOW.to_vec();
    allowed.retain(|n| *n != "mkdir" && *n != "mkdirat");
    let r = f.run(&with_seccomp(
        &f,
        script,
        json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
               "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"}]}),
    ));
    assert!(
        r.log.contains("Function not implemented") && r.log.contains("rc=1"),
        "{r:?}"
    );
}

/// Without no_new_privs the filter goes in before the privileges are dropped; after it
/// berth makes only the calls runc makes there (prctl, capget/capset, setgroups, setgid,
/// setuid, the ready write, the fifo read, execve), nothing like close_range or umask,
/// which older deny-by-default profiles do not list.
#[test]
fn without_no_new_privs_the_profile_needs_only_what_runc_needs() {
    let f = Fixture::new("nonnp");
    let mut names = DEFAULT_ALLOW.to_vec();
    names.extend(["prctl", "capget", "capset", "setgroups", "setgid", "setuid"]);
    let mut cfg = with_seccomp(
        &f,
        "echo ran >> /out/log",
        json!({"defaultAction": "SCMP_ACT_ERRNO",
               "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]}),
    );
    set(&mut cfg, "process/noNewPrivileges", json!(false));
    let r = f.run(&cfg);
    assert_eq!(r.status, ExitStatus::Exited(0), "{r:?}");
    assert_eq!(r.log, "ran\n");
}

/// Enough for busybox sh, echo and mkdir: with no_new_privs berth loads the filter
/// as its very last step before execve, so the profile needs nothing of berth's.
const DEFAULT_ALLOW: &[&str] = &[
    "execve",
    "brk",
    "arch_prctl",
    "set_tid_address",
    "set_robust_list",
    "rseq",
    "mmap",
    "munmap",
    "mprotect",
    "getpid",
    "getppid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "open",
    "openat",
    "close",
    "read",
    "write",
    "fstat",
    "newfstatat",
    "stat",
    "lstat",
    "fcntl",
    "dup2",
    "dup3",
    "ioctl",
    "clone",
    "clone3",
    "fork",
    "vfork",
    "wait4",
    "exit",
    "exit_group",
    "getcwd",
    "uname",
    "mkdir",
    "mkdirat",
    "prlimit64",
    "statx",
];

#[test]
fn every_argument_operator_filters() {
    let f = Fixture::new("ops");
    // kill(pid, sig) with sig in {0, 10, 12, 14}; the rule refuses with EPERM when
    // `sig <op> 12` (or, for MASKED_EQ, `sig & 2 == 2`). The shell ignores the signals.
    let script = "trap '' 10 12 14; for s in 0 10 12 14; do kill -$s $$ 2>/dev/null; \
                  echo -n \"$s:$? \" >> /out/log; done";
    for (op, value, value_two, refused) in [
        ("SCMP_CMP_EQ", 12, 0, vec![12]),
        ("SCMP_CMP_NE", 12, 0, vec![0, 10, 14]),
        ("SCMP_CMP_LT", 12, 0, vec![0, 10]),
        ("SCMP_CMP_LE", 12, 0, vec![0, 10, 12]),
        ("SCMP_CMP_GE", 12, 0, vec![12, 14]),
        ("SCMP_CMP_GT", 12, 0, vec![14]),
        ("SCMP_CMP_MASKED_EQ", 2, 2, vec![10, 14]),
    ] {
        let r = f.run(&with_seccomp(
            &f,
            script,
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"],
                   "action": "SCMP_ACT_ERRNO", "args": [
                   {"index": 1, "value": value, "valueTwo": value_two, "op": op}]}]}),
        ));
        let want: String = [0, 10, 12, 14]
            .iter()
            .map(|s| format!("{s}:{} ", u8::from(refused.contains(s))))
            .collect();
        assert_eq!(r.log, want, "{op}");
    }
}

#[test]
fn filter_flags_are_accepted() {
    let f = Fixture::new("flags");
    let mut sc = allow_but(&["mkdir", "mkdirat"], "SCMP_ACT_ERRNO");
    sc["flags"] = json!([
        "SECCOMP_FILTER_FLAG_TSYNC",
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW"
    ]);
    let r = f.run(&with_seccomp(
        &f,
        "mkdir /tmp/d; echo rc=$? >> /out/log",
        sc,
    ));
    assert_eq!(r.log, "rc=1\n");
}

#[test]
fn bad_profiles_are_one_line_errors_naming_the_field() {
    let f = Fixture::new("bad");
    for (seccomp, field) in [
        (
            json!({"defaultAction": "SCMP_ACT_MAYBE"}),
            "linux.seccomp.defaultAction",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_SOMETIMES"}]}),
            "linux.seccomp.syscalls[0]",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                   "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_ABOUT"}]}]}),
            "linux.seccomp.syscalls[0].args[0]",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]}),
            "linux.seccomp.architectures[0]",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_FAST"]}),
            "linux.seccomp.flags[0]",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": {"names": ["kill"]}}),
            "linux.seccomp",
        ),
    ] {
        let e = f.create_fails(&with_seccomp(&f, "true", seccomp));
        assert!(e.contains(field), "want {field} in: {e}");
    }
}

/// containers-common's profile for x86_64 and the given capabilities, converted as
/// Podman does (arch and capability includes/excludes resolved, extras dropped).
fn default_profile(caps: &[&str]) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/security_support/containers-seccomp.json");
    let p: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let mut archs = vec![];
    for m in p["archMap"].as_array().unwrap() {
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
    for s in p["syscalls"].as_array().unwrap() {
        let inc = &s["includes"];
        let exc = &s["excludes"];
        if inc["arches"].as_array().is_some_and(|a| !a.is_empty()) && !has(&inc["arches"], "amd64")
        {
            continue;
        }
        if has(&exc["arches"], "amd64") {
            continue;
        }
        let inc_caps = inc["caps"].as_array().cloned().unwrap_or_default();
        if !inc_caps
            .iter()
            .all(|c| caps.contains(&c.as_str().unwrap_or("")))
        {
            continue;
        }
        if caps.iter().any(|c| has(&exc["caps"], c)) {
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

const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

fn with_caps(cfg: &mut Value, caps: &[&str]) {
    for s in ["bounding", "effective", "permitted"] {
        set(cfg, &format!("process/capabilities/{s}"), json!(caps));
    }
}

#[test]
fn default_profile_allows_a_shell_session() {
    let f = Fixture::new("dflt-ok");
    let script = "set -e; ls / > /dev/null; cat /etc/passwd > /dev/null; ps > /dev/null; \
                  id -u >> /out/log; echo hi | grep -q hi; mkdir -p /tmp/a/b; \
                  echo data > /tmp/a/b/f; wc -c < /tmp/a/b/f >> /out/log; \
                  (sleep 0.01 &) ; wait; uname -s >> /out/log; date +%Y > /dev/null; \
                  chown 1000 /tmp/a/b/f; echo done >> /out/log";
    let mut cfg = with_seccomp(&f, script, default_profile(DEFAULT_CAPS));
    with_caps(&mut cfg, DEFAULT_CAPS);
    let r = f.run(&cfg);
    assert_eq!(r.status, ExitStatus::Exited(0), "{r:?}");
    assert_eq!(r.log, "0\n5\nLinux\ndone\n");
}

#[test]
fn default_profile_blocks_what_it_should() {
    let f = Fixture::new("dflt-block");
    let script = "for c in 'unshare -m true' 'mount -t tmpfs t /mnt' 'swapon /tmp/swap'; do \
                  $c 2>> /out/log; echo \"rc=$?\" >> /out/log; done";
    // With the default capabilities: namespaces and mounts need CAP_SYS_ADMIN.
    let mut cfg = with_seccomp(
        &f,
        &format!("touch /tmp/swap; mkdir /mnt; {script}"),
        default_profile(DEFAULT_CAPS),
    );
    with_caps(&mut cfg, DEFAULT_CAPS);
    let r = f.run(&cfg);
    assert_eq!(r.log.matches("rc=1").count(), 3, "{}", r.log);
    assert!(
        r.log.contains("unshare(0x20000): Operation not permitted"),
        "{}",
        r.log
    );
    assert!(r.log.contains("mount: permission denied"), "{}", r.log);

    // With CAP_SYS_ADMIN too, swapon is still refused, by the profile's EPERM rule:
    // without the profile the kernel gets to look at the (bad) swap file.
    let caps: Vec<&str> = DEFAULT_CAPS
        .iter()
        .copied()
        .chain(["CAP_SYS_ADMIN"])
        .collect();
    let probe = "touch /tmp/swap; swapon /tmp/swap 2>> /out/log; echo rc=$? >> /out/log";
    let mut cfg = with_seccomp(&f, probe, default_profile(&caps));
    with_caps(&mut cfg, &caps);
    let r = f.run(&cfg);
    assert!(r.log.contains("Operation not permitted"), "{}", r.log);
    let mut cfg = f.config(probe);
    with_caps(&mut cfg, &caps);
    let r = f.run(&cfg);
    assert!(
        !r.log.contains("Operation not permitted") && r.log.contains("rc=1"),
        "{}",
        r.log
    );
}

/// SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (which oci-spec cannot parse) is accepted and
/// the NOTIFY filter still reaches the listener, whose answer is seen inside.
#[test]
fn notify_with_wait_killable_recv() {
    use libseccomp::{ScmpNotifReq, ScmpNotifResp, ScmpNotifRespFlags};
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    let f = Fixture::new("waitkill");
    let sock = f.dir.join("listener.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let agent = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut payload = vec![0u8; 64 * 1024];
        let mut iov = [std::io::IoSliceMut::new(&mut payload)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::empty(),
        )
        .unwrap();
        let fd = msg
            .cmsgs()
            .unwrap()
            .find_map(|c| match c {
                ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
                _ => None,
            })
            .expect("no notify fd");
        // SAFETY: just received over SCM_RIGHTS, owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let req = ScmpNotifReq::receive(fd.as_raw_fd()).unwrap();
        ScmpNotifResp::new_error(req.id, -libc::EROFS, ScmpNotifRespFlags::empty())
            .respond(fd.as_raw_fd())
            .unwrap();
    });
    let seccomp = json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": sock,
        "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]});
    let r = f.run(&with_seccomp(
        &f,
        "mkdir /tmp/n 2>> /out/log; echo rc=$? >> /out/log",
        seccomp,
    ));
    agent.join().unwrap();
    assert!(
        r.log.contains("Read-only file system") && r.log.contains("rc=1"),
        "{r:?}"
    );
}
