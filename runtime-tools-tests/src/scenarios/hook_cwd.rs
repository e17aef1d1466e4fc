//! The working directory of each hook kind, as runc 1.1.5 gives it (the spec says
//! nothing; hooks written for runc use relative paths against it): the bundle for
//! prestart, createRuntime and poststart (runc runs them from `create`, which works in
//! the bundle), the rootfs for createContainer (runc's init changes into it first),
//! the process's cwd for startContainer, and for poststop the directory of whoever
//! runs `delete` (the bundle under `run`, which works there).

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::ctx::Ctx;
use crate::spec::{push, set};
use crate::verdict::{Res, Verdict};
use crate::{ensure, fail};

use super::hooks::cfg_sh;

/// Where the hook of `kind` must run, given the bundle.
enum Want {
    Bundle,
    Rootfs,
    /// The process's cwd, seen from inside the container.
    Inside(&'static str),
    /// The directory the runtime command was started in.
    Caller,
}

/// Creates a container with one `kind` hook that records `pwd -P`, takes it through
/// its life (with `run` in the foreground when `use_run`), and compares.
fn hook_cwd(c: &mut Ctx, kind: &str, want: Want, use_run: bool) -> Res {
    let mut cfg = cfg_sh("true");
    // A process cwd other than "/" so that startContainer's is told apart from the root.
    set(&mut cfg, "process/cwd", json!("/tmp"));
    let id = c.new_id();
    let cg = c.cgroups_path(&id);
    set(&mut cfg, "linux/cgroupsPath", json!(cg));
    let b = c.bundle(&id, false)?;
    let record = match want {
        // startContainer runs inside the container: its /bin/sh, its paths.
        Want::Inside(_) => "/hook-cwd.txt".to_string(),
        _ => b.dir.join("hook-cwd.txt").display().to_string(),
    };
    push(
        &mut cfg,
        &format!("hooks/{kind}"),
        json!({"path": "/bin/sh", "args": ["sh", "-c", format!("pwd -P > {record}")], "timeout": 5}),
    );
    b.write_config(&cfg)?;
    if use_run {
        let bp = b.path_str();
        let out = c.rt(&["run", "--bundle", &bp, &id]);
        ensure!(out.ok(), "run failed: {}", out.describe());
    } else {
        c.must_create(&b, &id)?;
        c.must(&["start", &id])?;
        c.wait_stopped(&id)?;
        c.must(&["delete", &id])?;
    }
    let text = match want {
        Want::Inside(_) => b.read("rootfs/hook-cwd.txt"),
        _ => b.read("hook-cwd.txt"),
    };
    let got = text.trim();
    if got.is_empty() {
        fail!("the {kind} hook recorded no working directory");
    }
    let expected = match want {
        Want::Bundle => canonical(&b.dir)?,
        Want::Rootfs => canonical(&b.rootfs())?,
        Want::Inside(p) => PathBuf::from(p),
        Want::Caller => canonical(&std::env::current_dir()?)?,
    };
    ensure!(
        Path::new(got) == expected,
        "the {kind} hook ran in {got}, want {} (runc's working directory for {kind}{})",
        expected.display(),
        if use_run { " under run" } else { "" }
    );
    Ok(())
}

fn canonical(p: &Path) -> Result<PathBuf, Verdict> {
    std::fs::canonicalize(p).map_err(|e| Verdict::Fail(format!("{}: {e}", p.display())))
}

pub fn hooks_cwd_prestart(c: &mut Ctx) -> Res {
    hook_cwd(c, "prestart", Want::Bundle, false)
}

pub fn hooks_cwd_create_runtime(c: &mut Ctx) -> Res {
    hook_cwd(c, "createRuntime", Want::Bundle, false)
}

pub fn hooks_cwd_create_container(c: &mut Ctx) -> Res {
    hook_cwd(c, "createContainer", Want::Rootfs, false)
}

pub fn hooks_cwd_start_container(c: &mut Ctx) -> Res {
    hook_cwd(c, "startContainer", Want::Inside("/tmp"), false)
}

pub fn hooks_cwd_poststart(c: &mut Ctx) -> Res {
    hook_cwd(c, "poststart", Want::Bundle, false)
}

pub fn hooks_cwd_poststop(c: &mut Ctx) -> Res {
    hook_cwd(c, "poststop", Want::Caller, false)
}

pub fn hooks_cwd_poststop_run(c: &mut Ctx) -> Res {
    hook_cwd(c, "poststop", Want::Bundle, true)
}
