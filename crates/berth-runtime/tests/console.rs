//! `process.terminal` with `--console-socket`: the pty master arrives over the socket
//! with SCM_RIGHTS, and the container's stdio is the pty's slave.

use berth_runtime::{CreateOptions, ExitStatus, Runtime};
use std::io::Read;
use std::path::Path;

use std::os::unix::net::UnixListener;

mod support;

/// A bundle in `dir/bundle` whose rootfs holds busybox with `applets` linked, running
/// `process` (with the pid, mount, uts and ipc namespaces) and mounting a devpts with
/// `pts_options`.
fn terminal_bundle(
    dir: &Path,
    id: &str,
    applets: &[&str],
    process: serde_json::Value,
    pts_options: &[&str],
) {
    let rootfs = dir.join("bundle/rootfs");
    for d in ["bin", "proc", "dev"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    // Copied by cp, not in this process: a write fd of ours could reach a
    // concurrent test's forked child and fail its execve with ETXTBSY.
    assert!(std::process::Command::new("cp")
        .arg("/bin/busybox")
        .arg(rootfs.join("bin/busybox"))
        .status()
        .unwrap()
        .success());
    for a in applets {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
    }
    let cfg = serde_json::json!({
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs"},
        "process": process,
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": pts_options}
        ],
        "linux": {"cgroupsPath": format!("/berth-{id}"),
                  "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "ipc"}]}
    });
    std::fs::write(
        dir.join("bundle/config.json"),
        serde_json::to_vec(&cfg).unwrap(),
    )
    .unwrap();
}

/// Creates `id` from `dir/bundle` with a console socket, runs it to exit 0 and
/// deletes it; returns the pty's name as the socket got it and what the process wrote
/// to the terminal.
fn run_on_console_socket(dir: &Path, id: &str) -> (String, String) {
    let sock = dir.join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let receiver = support::accept_fd(listener);
    let runtime = Runtime::new(dir.join("root")).unwrap();
    let opts = CreateOptions {
        console: Some(berth_runtime::Console::Socket(sock)),
        ..Default::default()
    };
    let mut c = runtime.create(id, &dir.join("bundle"), &opts).unwrap();
    let (name, master) = receiver.join().unwrap();
    c.start().unwrap();
    assert_eq!(c.wait().unwrap(), ExitStatus::Exited(0));
    let mut out = Vec::new();
    let mut f = std::fs::File::from(master);
    // Reading the master after the slave closed ends with EIO: take what came.
    let mut buf = [0u8; 512];
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    runtime.load(id).unwrap().delete(false).unwrap();
    (
        String::from_utf8_lossy(&name).into_owned(),
        String::from_utf8_lossy(&out).into_owned(),
    )
}

const PTS_OPTIONS: [&str; 5] = [
    "nosuid",
    "noexec",
    "newinstance",
    "ptmxmode=0666",
    "mode=0620",
];

#[test]
fn pty_master_reaches_the_console_socket() {
    let id = format!("console-{}", std::process::id());
    let dir = std::env::temp_dir().join(format!("berth-{id}"));
    let _cleanup = Cleanup(dir.clone());
    let process = serde_json::json!({
        "terminal": true, "args": ["sh", "-c", "tty; [ -c /dev/console ] && echo console-ok"],
        "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}});
    terminal_bundle(
        &dir,
        &id,
        &["sh", "tty", "echo", "["],
        process,
        &PTS_OPTIONS,
    );
    let (name, out) = run_on_console_socket(&dir, &id);
    assert!(name.starts_with("/dev/pts/"), "{name}");
    assert!(
        out.contains("/dev/pts/0") && out.contains("console-ok"),
        "{out:?}"
    );
}

/// tty.bats "[tty owner] ({u,g}id != 0)" and process.consoleSize: the slave belongs
/// to the process's uid and keeps devpts' `gid=5`, and the pty has the asked size
/// before the process starts.
#[test]
fn pty_belongs_to_the_process_user_and_has_the_console_size() {
    let id = format!("console-owner-{}", std::process::id());
    let dir = std::env::temp_dir().join(format!("berth-{id}"));
    let _cleanup = Cleanup(dir.clone());
    let process = serde_json::json!({
        "terminal": true, "consoleSize": {"height": 10, "width": 110},
        "args": ["sh", "-c", "stat -c owner=%u:%g $(tty); stty size"],
        "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 1000, "gid": 100}});
    let mut pts = PTS_OPTIONS.to_vec();
    pts.push("gid=5");
    terminal_bundle(&dir, &id, &["sh", "tty", "stat", "stty"], process, &pts);
    let (_, out) = run_on_console_socket(&dir, &id);
    assert!(out.contains("owner=1000:5"), "{out:?}");
    assert!(out.contains("10 110"), "{out:?}");
}

/// CVE-2025-52565: the console is bound only onto a plain file (or character device)
/// of the container's own /dev: never over a directory, never over a mount point (a
/// bind of some other file onto /dev/console).
#[test]
fn console_is_not_bound_over_a_directory_or_a_mount_point() {
    for (case, dev_tmpfs) in [("dir", false), ("mount", true)] {
        let id = format!("console-{case}-{}", std::process::id());
        let dir = std::env::temp_dir().join(format!("berth-{id}"));
        let _cleanup = Cleanup(dir.clone());
        let rootfs = dir.join("bundle/rootfs");
        for d in ["bin", "proc", "dev"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        // Copied by cp, not in this process: a write fd of ours could reach a
        // concurrent test's forked child and fail its execve with ETXTBSY.
        assert!(std::process::Command::new("cp")
            .arg("/bin/busybox")
            .arg(rootfs.join("bin/busybox"))
            .status()
            .unwrap()
            .success());
        std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).unwrap();
        let victim = dir.join("victim");
        std::fs::write(&victim, "untouched").unwrap();
        let mut mounts =
            vec![serde_json::json!({"destination": "/proc", "type": "proc", "source": "proc"})];
        if dev_tmpfs {
            mounts.push(serde_json::json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]}));
            mounts.push(
                serde_json::json!({"destination": "/dev/console", "type": "bind",
                                           "source": victim, "options": ["bind"]}),
            );
        } else {
            std::fs::create_dir_all(rootfs.join("dev/console")).unwrap();
        }
        mounts.push(
            serde_json::json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
        );
        let cfg = serde_json::json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "process": {"terminal": true, "args": ["sh", "-c", "true"], "cwd": "/",
                        "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}},
            "mounts": mounts,
            "linux": {"cgroupsPath": format!("/berth-{id}"),
                      "namespaces": [{"type": "pid"}, {"type": "mount"}]}
        });
        std::fs::write(
            dir.join("bundle/config.json"),
            serde_json::to_vec(&cfg).unwrap(),
        )
        .unwrap();
        let sock = dir.join("console.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let _receiver = support::accept_fd(listener);
        let runtime = Runtime::new(dir.join("root")).unwrap();
        let opts = CreateOptions {
            console: Some(berth_runtime::Console::Socket(sock)),
            ..Default::default()
        };
        let err = match runtime.create(&id, &dir.join("bundle"), &opts) {
            Ok(c) => {
                let _ = c.delete(true);
                panic!("{case}: the console was bound over a bad /dev/console");
            }
            Err(e) => e.to_string(),
        };
        let want = if dev_tmpfs {
            "is a mount point"
        } else {
            "is not a file"
        };
        assert!(err.contains(want), "{case}: {err}");
        assert!(
            runtime.load(&id).is_err(),
            "{case}: a failed create left state"
        );
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
    }
}

struct Cleanup(std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let id = self
            .0
            .file_name()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("berth-")
            .to_string();
        if let Ok(r) = Runtime::new(self.0.join("root")) {
            if let Ok(c) = r.load(&id) {
                let _ = c.delete(true);
            }
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
