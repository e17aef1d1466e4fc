//! `--preserve-fds N`: fds 3..3+N of the caller reach the container process (and
//! nothing else does).

use std::os::unix::process::CommandExt;
use std::process::Command;

#[test]
fn preserved_fd_reaches_the_process() {
    let id = format!("preserve-{}", std::process::id());
    let dir = std::env::temp_dir().join(format!("berth-{id}"));
    let bundle = dir.join("bundle");
    let bin = bundle.join("rootfs/bin");
    std::fs::create_dir_all(&bin).unwrap();
    for d in ["proc", "dev", "sys", "tmp"] {
        std::fs::create_dir_all(bundle.join("rootfs").join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    for a in ["sh", "ls"] {
        std::os::unix::fs::symlink("busybox", bin.join(a)).unwrap();
    }
    let berth = env!("CARGO_BIN_EXE_berth");
    let root = dir.join("root");
    let cleanup = || {
        let _ = Command::new(berth)
            .arg("--root")
            .arg(&root)
            .args(["delete", "-f", &id])
            .output();
        let _ = std::fs::remove_dir_all(&dir);
    };
    let out = Command::new(berth)
        .arg("spec")
        .current_dir(&bundle)
        .output()
        .unwrap();
    assert!(out.status.success());
    let path = bundle.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    cfg["process"]["terminal"] = false.into();
    // Writes to fd 3, and lists its fds: only 0-3 (plus ls's own directory fd).
    cfg["process"]["args"] =
        serde_json::json!(["sh", "-c", "echo through-fd-3 >&3; ls /proc/self/fd >&3"]);
    std::fs::write(&path, serde_json::to_vec(&cfg).unwrap()).unwrap();

    let target = dir.join("fd3");
    let file = std::fs::File::create(&target).unwrap();
    let raw = std::os::fd::AsRawFd::as_raw_fd(&file);
    let mut cmd = Command::new(berth);
    cmd.arg("--root")
        .arg(&root)
        .args(["run", "--preserve-fds", "1", "-b"])
        .arg(&bundle)
        .arg(&id);
    // SAFETY: dup2 in the child between fork and exec only.
    unsafe {
        cmd.pre_exec(move || {
            // dup2(3, 3) would leave close-on-exec set: clear it instead.
            let r = if raw == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(raw, 3)
            };
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    drop(file);
    let text = std::fs::read_to_string(&target).unwrap_or_default();
    cleanup();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("through-fd-3"), "{text}");
    let fds: Vec<u32> = lines.filter_map(|l| l.trim().parse().ok()).collect();
    assert!(
        fds.iter().all(|&fd| fd <= 4),
        "unexpected fds in the container: {fds:?}"
    );
    assert!(fds.contains(&3), "{fds:?}");
}
