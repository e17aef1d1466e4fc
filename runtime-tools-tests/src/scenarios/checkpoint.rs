//! `checkpoint` / `restore` through CRIU: argument errors, then, where CRIU can work on
//! this host (skipped with CRIU's reason otherwise; the VM lane's kernel can), a full
//! checkpoint of a counting shell, its restore, and the count going on from where it
//! was: same process (pid 1 inside is still the counter), same memory.

use super::running::start_with;
use crate::ctx::Ctx;
use crate::ensure;
use crate::verdict::{Res, Verdict};

pub fn checkpoint_restore(c: &mut Ctx) -> Res {
    let (id, b) = start_with(
        c,
        &[
            "/bin/sh",
            "-c",
            // stdio on the container's own /dev/null: files of the driver's mount
            // namespace could not be restored.
            "exec </dev/null >/dev/null 2>&1; i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done",
        ],
        |cfg| {
            // A file bound in from the host, as engines bind /etc/hosts: an external
            // mount CRIU must be told about at dump and at restore.
            crate::spec::push(
                cfg,
                "mounts",
                serde_json::json!({"destination": "/etc/hosts", "type": "bind",
                                   "source": "/etc/hosts", "options": ["rbind", "ro"]}),
            );
        },
    )?;
    let image = b.dir.join("image");
    let img = image.display().to_string();
    c.must_fail(
        &[
            "checkpoint",
            "--manage-cgroups-mode",
            "bogus",
            "--image-path",
            &img,
            &id,
        ],
        "bad cgroups mode",
    )?;
    c.must_fail(
        &["checkpoint", "--image-path", &img, "no-such-container-x"],
        "unknown id",
    )?;
    c.must_fail(
        &[
            "restore",
            "--bundle",
            &b.path_str(),
            "--image-path",
            &img,
            &id,
        ],
        "id in use",
    )?;
    // Counting for a while first, so a restart from zero cannot pass for a restore.
    let before = wait_count(c, &id, 20)?;
    // A pre-dump first (memory only, the container runs on), then the dump on top of
    // it (--parent-path is relative to the image directory, as CRIU wants).
    let pre = b.dir.join("pre").display().to_string();
    let out = c.rt(&["checkpoint", "--pre-dump", "--image-path", &pre, &id]);
    if out.ok() {
        let st = c.status(&id)?;
        ensure!(st == "running", "status after --pre-dump is {st:?}");
    }
    let out = if out.ok() {
        c.rt(&[
            "checkpoint",
            "--parent-path",
            "../pre",
            "--image-path",
            &img,
            &id,
        ])
    } else {
        out
    };
    if !out.ok() {
        let reason = out.stderr.trim().to_string();
        ensure!(
            reason.contains("criu"),
            "checkpoint failed without naming criu: {reason}"
        );
        ensure!(
            c.status(&id)? == "running",
            "a failed checkpoint stopped the container"
        );
        c.must(&["delete", "--force", &id])?;
        return Err(Verdict::Skip(format!(
            "CRIU cannot checkpoint here: {reason}"
        )));
    }
    ensure!(
        image.join("inventory.img").exists(),
        "no inventory.img in {img}"
    );
    ensure!(
        !c.rt(&["state", &id]).ok(),
        "the container still exists after checkpoint (without --leave-running)"
    );
    // Mount points the original create made are gone, as in a rootfs copied
    // elsewhere: restore makes them again (a file for the bound file, a directory).
    for gone in ["etc/hosts", "sys"] {
        let p = b.rootfs().join(gone);
        let _ = std::fs::remove_file(&p).or_else(|_| std::fs::remove_dir(&p));
        ensure!(!p.exists(), "could not remove {}", p.display());
    }
    c.must(&[
        "restore",
        "--detach",
        "--bundle",
        &b.path_str(),
        "--image-path",
        &img,
        &id,
    ])?;
    let st = c.status(&id)?;
    ensure!(st == "running", "status after restore is {st:?}");
    let after = count(c, &id)?;
    ensure!(
        after >= before,
        "the count started again after restore: {after} < {before}"
    );
    // Still counting.
    wait_count(c, &id, after + 3)?;
    let init = c.must(&["exec", &id, "cat", "/proc/1/cmdline"])?.stdout;
    ensure!(
        init.contains("while"),
        "pid 1 after restore is not the counter: {init:?}"
    );
    c.must(&["delete", "--force", &id])?;
    ensure!(
        !c.rt(&["state", &id]).ok(),
        "the restored container is still there after delete --force"
    );
    Ok(())
}

/// The counter's current value, read with `exec`. The counter rewrites the file with
/// `echo $i > /tmp/count` (truncate, then write), so a read can fall between the two
/// and see it empty: such a torn read is read again (10 tries, 50 ms apart), never
/// taken as the value.
pub(super) fn count(c: &Ctx, id: &str) -> Result<u64, Verdict> {
    let mut last = String::new();
    for _ in 0..10 {
        let out = c.must(&["exec", id, "cat", "/tmp/count"])?;
        last = out.stdout.trim().to_string();
        if let Ok(n) = last.parse() {
            return Ok(n);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Err(Verdict::Fail(format!(
        "/tmp/count holds {last:?} in 10 reads 50 ms apart"
    )))
}

/// Polls the counter until it reaches `at_least` (30 s at most).
pub(super) fn wait_count(c: &Ctx, id: &str, at_least: u64) -> Result<u64, Verdict> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Ok(n) = count(c, id) {
            if n >= at_least {
                return Ok(n);
            }
        }
        if std::time::Instant::now() > deadline {
            return Err(Verdict::Fail(format!(
                "the counter did not reach {at_least} within 30 s"
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
