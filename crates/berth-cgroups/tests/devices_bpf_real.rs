//! The cgroup v2 device filter (eBPF) for real, on this host's cgroup2 mount (the
//! unified hierarchy of a hybrid host works the same as a v2-only host's): a shell in
//! the cgroup may open what the rules allow and nothing else, and a second set of
//! rules replaces the first.

use std::path::PathBuf;
use std::process::Command;

fn cgroup2_root() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mounts.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        if !post.starts_with("cgroup2 ") {
            return None;
        }
        pre.split(' ').nth(4).map(PathBuf::from)
    })
}

struct Guard(PathBuf);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Runs the probes in a shell that first moves itself into `dir`.
fn probe(dir: &std::path::Path) -> String {
    let script = format!(
        "echo $$ > {}/cgroup.procs || exit 9; \
         head -c1 /dev/null && echo null-ok; \
         head -c1 /dev/zero > /dev/null 2>&1 && echo zero-ok || echo zero-denied; \
         head -c1 /dev/urandom > /dev/null 2>&1 && echo urandom-read-ok; \
         (echo x > /dev/urandom) 2>/dev/null && echo urandom-write-ok || echo urandom-write-denied",
        dir.display()
    );
    let out = Command::new("/bin/sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn device_filter_allows_only_the_rules_and_is_replaced() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let Some(root) = cgroup2_root() else {
        eprintln!("skipped: no cgroup2 mount on this host");
        return;
    };
    let dir = root.join(format!("berth-bpf-test-{}", std::process::id()));
    std::fs::create_dir(&dir).unwrap();
    let _guard = Guard(dir.clone());
    let rules: Vec<oci_spec::runtime::LinuxDeviceCgroup> =
        serde_json::from_value(serde_json::json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "r"}
        ]))
        .unwrap();
    berth_cgroups::apply_device_filter(&dir, &rules).unwrap();
    assert_eq!(
        probe(&dir),
        "null-ok\nzero-denied\nurandom-read-ok\nurandom-write-denied\n"
    );

    // Replacing: attached programs are ANDed, so allow-all only works if the old one
    // was detached.
    let all: Vec<oci_spec::runtime::LinuxDeviceCgroup> =
        serde_json::from_value(serde_json::json!([{"allow": true, "access": "rwm"}])).unwrap();
    berth_cgroups::apply_device_filter(&dir, &all).unwrap();
    assert_eq!(
        probe(&dir),
        "null-ok\nzero-ok\nurandom-read-ok\nurandom-write-ok\n"
    );
}
