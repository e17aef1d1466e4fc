//! `berth checkpoint` and `restore`, as root: argument handling, runc's errors for a
//! missing CRIU or image, and a real checkpoint when CRIU can take one.

mod support;

use std::process::Command;

use support::{
    berth_root, run_bounded, start, status, stderr, unique_id, usable, Guard, TempDir, BERTH,
};

#[test]
fn checkpoint_and_restore_argument_handling_and_criu_errors() {
    if !usable() {
        return;
    }
    let dir = TempDir::new("cr");
    let root = TempDir::new("cr-root");
    let mut guard = Guard::new(&root, "cr");
    let id = start(
        &dir,
        &mut guard,
        "cr",
        &[
            "sh",
            "-c",
            "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.1; done",
        ],
    );
    let image = dir.path().join("image");
    let image_s = image.to_str().expect("utf-8");
    let out = berth_root(
        &root,
        &[
            "checkpoint",
            "--manage-cgroups-mode",
            "bogus",
            "--image-path",
            image_s,
            &id,
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("Invalid manage cgroups mode"),
        "{}",
        stderr(&out)
    );
    let out = berth_root(
        &root,
        &[
            "checkpoint",
            "--empty-ns",
            "pid",
            "--image-path",
            image_s,
            &id,
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not supported"),
        "{}",
        stderr(&out)
    );
    // runc's checkpoint.bats "--pre-dump (bad --parent-path)": refused before CRIU
    // runs (so on a host where CRIU cannot work too), naming the flag.
    let parent_abs = dir.path().join("parent-dir");
    for parent in [parent_abs.to_str().expect("utf-8"), "./parent-dir"] {
        let out = berth_root(
            &root,
            &[
                "checkpoint",
                "--parent-path",
                parent,
                "--image-path",
                image_s,
                &id,
            ],
        );
        assert_eq!(out.status.code(), Some(1), "{parent}");
        assert!(stderr(&out).contains("--parent-path"), "{}", stderr(&out));
    }
    assert_eq!(status(&root, &id), "running");
    let out = berth_root(&root, &["checkpoint", "nosuch"]);
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    let out = run_bounded(Command::new(BERTH).arg("--root").arg(root.path()).args([
        "--criu",
        "/nonexistent/criu",
        "checkpoint",
        "--image-path",
        image_s,
        &id,
    ]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("criu binary \\\"/nonexistent/criu\\\" not found"),
        "{}",
        stderr(&out)
    );
    let out = berth_root(&root, &["restore", "--image-path", image_s, &id]);
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    let bundle_dir = dir.path().join(format!("bundle-{id}"));
    let new_id = unique_id("cr-restored");
    guard.ids.push(new_id.clone());
    let out = berth_root(
        &root,
        &[
            "restore",
            "-b",
            bundle_dir.to_str().expect("utf-8"),
            "--image-path",
            image_s,
            &new_id,
        ],
    );
    assert!(
        stderr(&out).contains("inventory.img is missing"),
        "{}",
        stderr(&out)
    );

    // The real checkpoint: CRIU decides.
    let out = berth_root(
        &root,
        &[
            "checkpoint",
            "--leave-running",
            "--image-path",
            image_s,
            "--work-path",
            image_s,
            &id,
        ],
    );
    if !out.status.success() {
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("criu"), "{err}");
        eprintln!("skipped: real checkpoint/restore: {}", err.trim());
        assert_eq!(
            status(&root, &id),
            "running",
            "a failed checkpoint changes nothing"
        );
        return;
    }
    assert!(image.join("inventory.img").exists());
    assert!(image.join("descriptors.json").exists());
    assert_eq!(status(&root, &id), "running");
}
