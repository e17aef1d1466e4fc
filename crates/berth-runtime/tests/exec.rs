//! `exec` into a running container: same namespaces and cgroup as the init, the
//! process's own user and environment, exit status back to the caller.

use berth_runtime::{CreateOptions, ExecOptions, ExitStatus, Runtime, Status};
use std::path::PathBuf;

struct Fixture {
    dir: PathBuf,
    runtime: Runtime,
    id: String,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Ok(c) = self.runtime.load(&self.id) {
            let _ = c.delete(true);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn fixture(name: &str) -> Fixture {
    let id = format!("exec-{name}-{}", std::process::id());
    let dir = std::env::temp_dir().join(format!("berth-{id}"));
    let rootfs = dir.join("bundle/rootfs");
    for d in ["bin", "proc", "dev", "out"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::create_dir_all(dir.join("out")).unwrap();
    // Copied by cp, not in this process: a write fd of ours could reach a
    // concurrent test's forked child and fail its execve with ETXTBSY.
    assert!(std::process::Command::new("cp")
        .arg("/bin/busybox")
        .arg(rootfs.join("bin/busybox"))
        .status()
        .unwrap()
        .success());
    for a in ["sh", "sleep", "id", "hostname", "cat", "readlink"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
    }
    let cfg = serde_json::json!({
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs"},
        "hostname": "exec-host",
        "process": {"args": ["sleep", "30"], "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
            {"destination": "/out", "type": "bind", "source": dir.join("out"), "options": ["rbind", "rw"]}
        ],
        "linux": {"cgroupsPath": format!("/berth-{id}"),
                  "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "ipc"}, {"type": "network"}]}
    });
    std::fs::write(
        dir.join("bundle/config.json"),
        serde_json::to_vec(&cfg).unwrap(),
    )
    .unwrap();
    let runtime = Runtime::new(dir.join("root")).unwrap();
    Fixture { dir, runtime, id }
}

fn process(args: &[&str], uid: u32) -> oci_spec::runtime::Process {
    serde_json::from_value(serde_json::json!({
        "args": args, "cwd": "/", "env": ["PATH=/bin", "EXECVAR=yes"], "user": {"uid": uid, "gid": uid}
    }))
    .unwrap()
}

#[test]
fn exec_joins_the_container() {
    let f = fixture("join");
    let mut c = f
        .runtime
        .create(&f.id, &f.dir.join("bundle"), &CreateOptions::default())
        .unwrap();
    c.start().unwrap();
    assert_eq!(c.state().unwrap().status, Status::Running);
    let script = "echo \"$(hostname) $(id -u) $EXECVAR $(readlink /proc/1/exe)\" > /out/r; readlink /proc/self/ns/net >> /out/r";
    let p = c
        .exec(&process(&["sh", "-c", script], 0), &ExecOptions::default())
        .unwrap();
    let init_net = std::fs::read_link(format!("/proc/{}/ns/net", c.pid())).unwrap();
    let cgroup = std::fs::read_to_string(format!("/proc/{}/cgroup", p.pid())).unwrap_or_default();
    assert_eq!(p.wait().unwrap(), ExitStatus::Exited(0));
    let out = std::fs::read_to_string(f.dir.join("out/r")).unwrap();
    let mut lines = out.lines();
    assert_eq!(lines.next().unwrap(), "exec-host 0 yes /bin/busybox");
    assert_eq!(lines.next().unwrap(), init_net.display().to_string());
    assert!(
        cgroup.is_empty() || cgroup.contains(&format!("/berth-{}", f.id)),
        "{cgroup}"
    );
}

#[test]
fn exec_exit_status_user_and_errors() {
    let f = fixture("status");
    let mut c = f
        .runtime
        .create(&f.id, &f.dir.join("bundle"), &CreateOptions::default())
        .unwrap();
    c.start().unwrap();
    let p = c
        .exec(
            &process(&["sh", "-c", "[ $(id -u) = 1000 ] && exit 42"], 1000),
            &ExecOptions::default(),
        )
        .unwrap();
    assert_eq!(p.wait().unwrap(), ExitStatus::Exited(42));
    let err = c
        .exec(&process(&["nope"], 0), &ExecOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("executable file not found"), "{err}");
    c.kill(nix::sys::signal::Signal::SIGKILL, false).unwrap();
    c.wait().unwrap();
    let err = c
        .exec(&process(&["true"], 0), &ExecOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("not running"), "{err}");
}
