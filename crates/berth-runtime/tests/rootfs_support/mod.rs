//! Shared harness of the rootfs integration tests: a busybox rootfs in a unique
//! temp dir, spec builders, and a forked child in a new mount namespace that runs
//! prepare/pivot/finalize and reports failed expectations over a pipe. The child's
//! mounts die with its namespace; temp dirs are removed on drop.

#![allow(dead_code)]

pub use berth_runtime::rootfs::{RootfsOptions, RootfsPlan};
pub use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{kill, Signal};
pub use nix::sys::stat::{stat, SFlag};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, pipe, ForkResult, Pid};
use oci_spec::runtime::{LinuxBuilder, LinuxDeviceBuilder, MountBuilder, RootBuilder, Spec};
pub use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
pub use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn unique(tag: &str) -> String {
    format!(
        "berth-rootfs-{tag}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

pub fn is_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("skipped: needs root");
    false
}

/// A temp dir removed on drop (the child's mounts die with its namespace).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(unique(tag));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `<dir>/rootfs` with /bin/busybox and a few applets.
pub fn busybox_rootfs(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    // Copied by cp, not in this process: a write fd of ours could reach a
    // concurrent test's forked child and fail its execve with ETXTBSY.
    assert!(std::process::Command::new("cp")
        .arg("/bin/busybox")
        .arg(rootfs.join("bin/busybox"))
        .status()
        .unwrap()
        .success());
    for applet in ["sh", "cat", "ls", "stat", "mount", "test", "touch"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    rootfs
}

pub fn mnt(dest: &str, typ: &str, src: &str, opts: &[&str]) -> Mount {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(src)
        .options(opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .unwrap()
}

pub fn device(
    path: &str,
    typ: LinuxDeviceType,
    major: i64,
    minor: i64,
    mode: u32,
    uid: u32,
    gid: u32,
) -> LinuxDevice {
    LinuxDeviceBuilder::default()
        .path(path)
        .typ(typ)
        .major(major)
        .minor(minor)
        .file_mode(mode)
        .uid(uid)
        .gid(gid)
        .build()
        .unwrap()
}

pub fn spec(
    mounts: Vec<Mount>,
    devices: Vec<LinuxDevice>,
    masked: &[&str],
    readonly: &[&str],
    root_ro: bool,
) -> Spec {
    let mut spec = Spec::default();
    spec.set_mounts(Some(mounts));
    spec.set_root(Some(
        RootBuilder::default()
            .path("rootfs")
            .readonly(root_ro)
            .build()
            .unwrap(),
    ));
    let linux = LinuxBuilder::default()
        .devices(devices)
        .masked_paths(masked.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .readonly_paths(readonly.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .unwrap();
    spec.set_linux(Some(linux));
    spec
}

/// Collects failed expectations in the child and sends them to the parent.
pub struct Report {
    out: std::fs::File,
    failed: bool,
}

impl Report {
    pub fn check(&mut self, ok: bool, what: impl std::fmt::Display) {
        if !ok {
            self.failed = true;
            let _ = writeln!(self.out, "{what}");
        }
    }
}

/// Forks a child in a new mount namespace that runs `body` (which returns an error
/// string for setup failures), and returns the child's report; panics on failure
/// or a 30 s timeout.
pub fn in_child(body: impl FnOnce(&mut Report) -> Result<(), String>) {
    let (r, w): (OwnedFd, OwnedFd) = pipe().unwrap();
    // SAFETY: the child only runs this test's code and leaves with _exit.
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            drop(r);
            let mut report = Report {
                out: std::fs::File::from(w),
                failed: false,
            };
            // Never touch the host's mount table: without a namespace, stop here.
            if let Err(e) = unshare(CloneFlags::CLONE_NEWNS) {
                report.check(false, format!("unshare: {e}"));
                // SAFETY: _exit ends the forked child without running the parent's destructors.
                unsafe { libc::_exit(3) };
            }
            let result =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&mut report)));
            let code = match result {
                Ok(Ok(())) if !report.failed => 0,
                Ok(Ok(())) => 1,
                Ok(Err(e)) => {
                    report.check(false, format!("setup failed: {e}"));
                    2
                }
                Err(_) => {
                    report.check(false, "child panicked");
                    4
                }
            };
            drop(report);
            // SAFETY: as above.
            unsafe { libc::_exit(code) };
        }
        ForkResult::Parent { child } => {
            drop(w);
            let status = wait_bounded(child, Duration::from_secs(30));
            let mut messages = String::new();
            let _ = std::fs::File::from(r).read_to_string(&mut messages);
            assert_eq!(status, Some(0), "child failed:\n{messages}");
        }
    }
}

pub fn wait_bounded(child: Pid, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    loop {
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return Some(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => panic!("child killed by {sig}"),
            Ok(_) if start.elapsed() < limit => std::thread::sleep(Duration::from_millis(20)),
            Ok(_) => {
                let _ = kill(child, Signal::SIGKILL);
                let _ = waitpid(child, None);
                panic!("child timed out");
            }
            Err(e) => panic!("waitpid: {e}"),
        }
    }
}

pub fn run_plan(plan: &RootfsPlan) -> Result<(), String> {
    plan.prepare().map_err(|e| format!("prepare: {e}"))?;
    plan.pivot().map_err(|e| format!("pivot: {e}"))?;
    plan.finalize().map_err(|e| format!("finalize: {e}"))
}

/// Mount points from /proc/self/mountinfo with their optional (propagation)
/// fields, in order.
pub fn mount_propagation() -> Vec<(String, String)> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            Some((f.get(4)?.to_string(), f.get(6..sep)?.join(" ")))
        })
        .collect()
}

/// Mount points from /proc/self/mountinfo with their types, in order.
pub fn mount_points() -> Vec<(String, String)> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            Some((f.get(4)?.to_string(), f.get(sep + 1)?.to_string()))
        })
        .collect()
}

pub fn errno_of(r: std::io::Result<impl Sized>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

pub fn check_device(
    rep: &mut Report,
    path: &str,
    kind: SFlag,
    (major, minor): (u64, u64),
    mode: u32,
    owner: (u32, u32),
) {
    match stat(path) {
        Ok(st) => {
            let t = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
            rep.check(t == kind, format!("{path}: type {t:?}, want {kind:?}"));
            if kind != SFlag::S_IFIFO {
                let (ma, mi) = (
                    nix::sys::stat::major(st.st_rdev),
                    nix::sys::stat::minor(st.st_rdev),
                );
                rep.check(
                    (ma, mi) == (major, minor),
                    format!("{path}: {ma}:{mi}, want {major}:{minor}"),
                );
            }
            rep.check(
                st.st_mode & 0o7777 == mode,
                format!("{path}: mode {:o}, want {mode:o}", st.st_mode & 0o7777),
            );
            rep.check(
                (st.st_uid, st.st_gid) == owner,
                format!("{path}: owner {}:{}", st.st_uid, st.st_gid),
            );
        }
        Err(e) => rep.check(false, format!("{path}: {e}")),
    }
}

/// Enters a new user and mount namespace mapping only root to root, as a
/// rootless-style container would be: inherited mounts are locked, mknod, sysfs and
/// proc are refused.
pub fn enter_user_namespace() -> Result<(), String> {
    unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS)
        .map_err(|e| format!("unshare user: {e}"))?;
    for (file, line) in [
        ("/proc/self/setgroups", "deny"),
        ("/proc/self/uid_map", "0 0 1"),
        ("/proc/self/gid_map", "0 0 1"),
    ] {
        std::fs::write(file, line).map_err(|e| format!("write {file}: {e}"))?;
    }
    Ok(())
}
