//! seccomp observed from inside: ERRNO returns the configured errno, KILL_PROCESS
//! kills, and NOTIFY hands the listener fd (with the container process state) to the
//! listener, whose answer the process sees.

use berth_runtime::{CreateOptions, ExitStatus, Runtime};
use libseccomp::{ScmpNotifReq, ScmpNotifResp, ScmpNotifRespFlags};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

static N: AtomicUsize = AtomicUsize::new(0);

struct Fixture {
    dir: PathBuf,
    runtime: Runtime,
    id: String,
}

impl Fixture {
    fn new(name: &str) -> Self {
        let n = N.fetch_add(1, Ordering::SeqCst);
        let id = format!("sc-{name}-{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(format!("berth-{id}"));
        let rootfs = dir.join("bundle/rootfs");
        for d in ["bin", "proc", "dev", "tmp", "out"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::create_dir_all(dir.join("out")).unwrap();
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        for a in ["sh", "mkdir", "sync", "echo", "cat"] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
        }
        let runtime = Runtime::new(dir.join("root")).unwrap();
        Fixture { dir, runtime, id }
    }

    /// Runs `script` under `seccomp` and returns (exit status, contents of /out/log).
    fn run(&self, script: &str, seccomp: serde_json::Value) -> (ExitStatus, String) {
        let cfg = serde_json::json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "process": {"args": ["sh", "-c", script], "cwd": "/", "env": ["PATH=/bin"],
                        "user": {"uid": 0, "gid": 0}, "noNewPrivileges": true},
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/out", "type": "bind", "source": self.dir.join("out"), "options": ["rbind", "rw"]}
            ],
            "linux": {"cgroupsPath": format!("/berth-{}", self.id),
                      "namespaces": [{"type": "pid"}, {"type": "mount"}], "seccomp": seccomp}
        });
        std::fs::write(
            self.dir.join("bundle/config.json"),
            serde_json::to_vec(&cfg).unwrap(),
        )
        .unwrap();
        let mut c = self
            .runtime
            .create(
                &self.id,
                &self.dir.join("bundle"),
                &CreateOptions::default(),
            )
            .unwrap();
        c.start().unwrap();
        let status = c.wait().unwrap();
        c.delete(false).unwrap();
        (
            status,
            std::fs::read_to_string(self.dir.join("out/log")).unwrap_or_default(),
        )
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Ok(c) = self.runtime.load(&self.id) {
            let _ = c.delete(true);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn errno_action_returns_the_configured_errno() {
    let f = Fixture::new("errno");
    let (status, log) = f.run(
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
    let f = Fixture::new("kill");
    // The container process itself calls sync(2) and must die of SIGSYS.
    let (status, log) = f.run(
        "echo before >> /out/log; exec sync",
        serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["sync"], "action": "SCMP_ACT_KILL_PROCESS"}]}),
    );
    assert_eq!(status, ExitStatus::Signaled(libc::SIGSYS));
    assert_eq!(log, "before\n");
}

#[test]
fn argument_conditions_filter() {
    let f = Fixture::new("args");
    // kill(pid, sig): two conditions on the same argument are ORed (runc's rule), so
    // USR1 and USR2 are refused; signal 0 still works. A filter that let USR1 through
    // would kill the shell.
    let (status, log) = f.run(
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
    let f = Fixture::new("notify");
    let sock = f.dir.join("listener.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let agent = std::thread::spawn(move || -> String {
        let (conn, _) = listener.accept().unwrap();
        let mut payload = vec![0u8; 64 * 1024];
        let mut iov = [IoSliceMut::new(&mut payload)];
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
        let n = msg.bytes;
        // SAFETY: just received, owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let json = String::from_utf8_lossy(&payload[..n]).into_owned();
        // Answer one notification: fail the mkdir with EROFS.
        let req = ScmpNotifReq::receive(fd.as_raw_fd()).unwrap();
        ScmpNotifResp::new_error(req.id, -libc::EROFS, ScmpNotifRespFlags::empty())
            .respond(fd.as_raw_fd())
            .unwrap();
        json
    });
    let (_, log) = f.run(
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
