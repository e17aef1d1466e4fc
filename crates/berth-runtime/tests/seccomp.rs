//! seccomp observed from inside: ERRNO returns the configured errno, KILL_PROCESS
//! kills, and NOTIFY hands the listener fd (with the container process state) to the
//! listener, whose answer the process sees.

use berth_runtime::ExitStatus;
use libseccomp::{ScmpNotifReq, ScmpNotifResp, ScmpNotifRespFlags};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;

mod support;
use support::Fixture;

/// Runs `script` under `seccomp` and returns (exit status, contents of /out/log).
fn run(f: &Fixture, script: &str, seccomp: serde_json::Value) -> (ExitStatus, String) {
    f.write_config(&serde_json::json!({
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs"},
        "process": {"args": ["sh", "-c", script], "cwd": "/", "env": ["PATH=/bin"],
                    "user": {"uid": 0, "gid": 0}, "noNewPrivileges": true},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/out", "type": "bind", "source": f.out(), "options": ["rbind", "rw"]}
        ],
        "linux": {"cgroupsPath": f.cgroup(),
                  "namespaces": [{"type": "pid"}, {"type": "mount"}], "seccomp": seccomp}
    }));
    let mut c = f.create().unwrap();
    c.start().unwrap();
    let status = c.wait().unwrap();
    c.delete(false).unwrap();
    (
        status,
        std::fs::read_to_string(f.out().join("log")).unwrap_or_default(),
    )
}

fn fixture(name: &str) -> Fixture {
    Fixture::new(
        &format!("sc-{name}"),
        &["sh", "mkdir", "sync", "echo", "cat", "sleep"],
    )
}

#[test]
fn errno_action_returns_the_configured_errno() {
    let f = fixture("errno");
    let (status, log) = run(
        &f,
        "mkdir /tmp/x 2>> /out/log; echo rc=$? >> /out/log",
        serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}),
    );
    assert_eq!(status, ExitStatus::Exited(0));
    assert!(
        log.contains("Function not implemented") && log.contains("rc=1"),
        "{log}"
    );
}

#[test]
fn kill_process_action_kills() {
    let f = fixture("kill");
    // The container process itself calls sync(2) and must die of SIGSYS.
    let (status, log) = run(
        &f,
        "echo before >> /out/log; exec sync",
        serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["sync"], "action": "SCMP_ACT_KILL_PROCESS"}]}),
    );
    assert_eq!(status, ExitStatus::Signaled(libc::SIGSYS));
    assert_eq!(log, "before\n");
}

#[test]
fn argument_conditions_filter() {
    let f = fixture("args");
    // kill(pid, sig): two conditions on the same argument are ORed (runc's rule), so
    // USR1 and USR2 are refused; signal 0 still works. A filter that let USR1 through
    // would kill the shell.
    let (status, log) = run(&f,
        "kill -USR1 $$ 2>/dev/null; echo usr1=$? >> /out/log; kill -USR2 $$ 2>/dev/null; echo usr2=$? >> /out/log; kill -0 $$; echo zero=$? >> /out/log",
        serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [
                {"index": 1, "value": 10, "op": "SCMP_CMP_EQ"},
                {"index": 1, "value": 12, "op": "SCMP_CMP_EQ"}]}]}),
    );
    assert_eq!(status, ExitStatus::Exited(0));
    assert_eq!(log, "usr1=1\nusr2=1\nzero=0\n");
}

#[test]
fn notify_reaches_the_listener() {
    let f = fixture("notify");
    let sock = f.dir.join("listener.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let agent = std::thread::spawn(move || -> String {
        let (conn, _) = listener.accept().unwrap();
        let (payload, fd) = support::recv_fd(conn.as_raw_fd());
        // Answer one notification: fail the mkdir with EROFS.
        let req = ScmpNotifReq::receive(fd.as_raw_fd()).unwrap();
        ScmpNotifResp::new_error(req.id, -libc::EROFS, ScmpNotifRespFlags::empty())
            .respond(fd.as_raw_fd())
            .unwrap();
        String::from_utf8_lossy(&payload).into_owned()
    });
    let (_, log) = run(
        &f,
        "mkdir /tmp/n 2>> /out/log; echo rc=$? >> /out/log",
        serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": sock,
            "listenerMetadata": "berth-test", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    let json: serde_json::Value = serde_json::from_str(&agent.join().unwrap()).unwrap();
    assert_eq!(json["fds"], serde_json::json!(["seccompFd"]));
    assert_eq!(json["metadata"], "berth-test");
    assert_eq!(json["state"]["id"], f.id.as_str());
    assert!(json["pid"].as_i64().unwrap() > 0);
    assert!(
        log.contains("Read-only file system") && log.contains("rc=1"),
        "{log}"
    );
}

#[test]
fn notify_for_an_exec_process_reaches_the_listener() {
    let f = fixture("notify-exec");
    let sock = f.dir.join("listener.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let agent = std::thread::spawn(move || -> Vec<String> {
        let mut docs = Vec::new();
        // First the init's listener (at create), then the exec'd process's.
        for i in 0..2 {
            let (conn, _) = listener.accept().unwrap();
            let (payload, fd) = support::recv_fd(conn.as_raw_fd());
            docs.push(String::from_utf8_lossy(&payload).into_owned());
            if i == 1 {
                let req = ScmpNotifReq::receive(fd.as_raw_fd()).unwrap();
                ScmpNotifResp::new_error(req.id, -libc::EROFS, ScmpNotifRespFlags::empty())
                    .respond(fd.as_raw_fd())
                    .unwrap();
            }
        }
        docs
    });
    f.write_config(&serde_json::json!({
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs"},
        "process": {"args": ["sleep", "30"], "cwd": "/", "env": ["PATH=/bin"],
                    "user": {"uid": 0, "gid": 0}, "noNewPrivileges": true},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/out", "type": "bind", "source": f.out(), "options": ["rbind", "rw"]}
        ],
        "linux": {"cgroupsPath": f.cgroup(), "namespaces": [{"type": "pid"}, {"type": "mount"}],
                  "seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": sock,
                              "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]}}
    }));
    let mut c = f.create().unwrap();
    c.start().unwrap();
    let p: oci_spec::runtime::Process = serde_json::from_value(serde_json::json!({
        "args": ["sh", "-c", "mkdir /tmp/e 2>> /out/log; echo rc=$? >> /out/log"],
        "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}, "noNewPrivileges": true
    }))
    .unwrap();
    let e = c.exec(&p, &berth_runtime::ExecOptions::default()).unwrap();
    assert_eq!(e.wait().unwrap(), ExitStatus::Exited(0));
    let docs = agent.join().unwrap();
    let second: serde_json::Value = serde_json::from_str(&docs[1]).unwrap();
    assert_eq!(second["pid"].as_i64().unwrap(), e.pid() as i64);
    assert_eq!(second["state"]["status"], "running");
    let log = std::fs::read_to_string(f.out().join("log")).unwrap();
    assert!(
        log.contains("Read-only file system") && log.contains("rc=1"),
        "{log}"
    );
}
