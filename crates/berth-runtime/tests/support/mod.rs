//! Shared fixtures of the library's integration tests (as root): a busybox bundle with
//! a private state root and a unique container id, removed on drop together with any
//! container left in it; receiving an fd sent with SCM_RIGHTS.

#![allow(dead_code)] // each test file uses a part

use berth_runtime::{Container, CreateOptions, Runtime};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

static N: AtomicUsize = AtomicUsize::new(0);

/// A bundle in a temporary directory and a runtime rooted beside it.
pub struct Fixture {
    pub dir: PathBuf,
    pub runtime: Runtime,
    pub id: String,
}

impl Fixture {
    /// `<dir>/bundle/rootfs` with busybox, the given applets, the usual empty
    /// directories and /etc/passwd; `<dir>/out` for bind mounts the test reads.
    pub fn new(name: &str, applets: &[&str]) -> Self {
        let n = N.fetch_add(1, Ordering::SeqCst);
        let id = format!("{name}-{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(format!("berth-{id}"));
        let rootfs = dir.join("bundle/rootfs");
        for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "out"] {
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
        for applet in applets {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        let runtime = Runtime::new(dir.join("root")).unwrap();
        Fixture { dir, runtime, id }
    }

    pub fn bundle(&self) -> PathBuf {
        self.dir.join("bundle")
    }

    /// The host directory `<dir>/out`.
    pub fn out(&self) -> PathBuf {
        self.dir.join("out")
    }

    /// A cgroupsPath of this fixture's own.
    pub fn cgroup(&self) -> String {
        format!("/berth-{}", self.id)
    }

    pub fn write_config(&self, config: &serde_json::Value) {
        std::fs::write(
            self.bundle().join("config.json"),
            serde_json::to_vec_pretty(config).unwrap(),
        )
        .unwrap();
    }

    pub fn read_config(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.bundle().join("config.json")).unwrap()).unwrap()
    }

    pub fn create(&self) -> berth_runtime::Result<Container> {
        self.create_with(&CreateOptions::default())
    }

    pub fn create_with(&self, options: &CreateOptions) -> berth_runtime::Result<Container> {
        self.runtime.create(&self.id, &self.bundle(), options)
    }

    pub fn state_dir_exists(&self) -> bool {
        self.runtime.root().join(&self.id).exists()
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

/// Receives one message with one fd (SCM_RIGHTS): (payload, fd).
pub fn recv_fd(socket: RawFd) -> (Vec<u8>, OwnedFd) {
    let mut payload = vec![0u8; 64 * 1024];
    let mut iov = [IoSliceMut::new(&mut payload)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(socket, &mut iov, Some(&mut space), MsgFlags::empty()).unwrap();
    let fd = msg
        .cmsgs()
        .unwrap()
        .find_map(|c| match c {
            ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        })
        .expect("no fd in the message");
    let n = msg.bytes;
    payload.truncate(n);
    // SAFETY: the fd was just received and is owned by nobody else.
    (payload, unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Accepts one connection on `listener` and receives its fd, in a thread.
pub fn accept_fd(
    listener: std::os::unix::net::UnixListener,
) -> std::thread::JoinHandle<(Vec<u8>, OwnedFd)> {
    std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        recv_fd(conn.as_raw_fd())
    })
}

/// Whether each of `controllers` is a cgroup v1 hierarchy mounted at
/// /sys/fs/cgroup/<controller> (possibly co-mounted, e.g. cpu,cpuacct), as the tests
/// that read those files expect; prints which is missing when not (a v2-only host, or
/// a kernel without the controller).
pub fn v1_hierarchies(test: &str, controllers: &[&str]) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let missing: Vec<&str> = controllers
        .iter()
        .copied()
        .filter(|c| {
            !info.lines().any(|l| {
                let Some((pre, post)) = l.split_once(" - ") else {
                    return false;
                };
                let mut post = post.split(' ');
                post.next() == Some("cgroup")
                    && post.nth(1).is_some_and(|o| o.split(',').any(|o| o == *c))
                    && pre
                        .split(' ')
                        .nth(4)
                        .is_some_and(|mp| mp.starts_with("/sys/fs/cgroup/"))
            })
        })
        .collect();
    if !missing.is_empty() {
        eprintln!("skipped {test}: no cgroup v1 hierarchy for {missing:?} under /sys/fs/cgroup");
    }
    missing.is_empty()
}
