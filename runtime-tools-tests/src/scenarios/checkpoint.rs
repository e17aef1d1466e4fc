//! `checkpoint` / `restore` through CRIU: argument errors, and the real checkpoint when
//! CRIU can work on this host (skipped with CRIU's reason otherwise).

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
            "i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done",
        ],
        |_| {},
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
    let out = c.rt(&["checkpoint", "--leave-running", "--image-path", &img, &id]);
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
    c.must(&["delete", "--force", &id])?;
    Ok(())
}
