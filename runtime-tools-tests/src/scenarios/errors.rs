//! Bad inputs: each must fail with a one-line error on stderr and leave nothing behind.

use serde_json::json;

use crate::ctx::Ctx;
use crate::runtime::CmdOut;
use crate::spec::default_config;
use crate::verdict::{Res, Verdict};
use crate::{cgroup, ensure};

/// The error is one non-empty line on stderr and the exit status is non-zero.
fn one_line_error(out: &CmdOut, what: &str) -> Res {
    ensure!(!out.ok(), "{what}: `{}` succeeded", out.argv);
    ensure!(!out.timed_out, "{what}: `{}` timed out", out.argv);
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    ensure!(
        lines.len() == 1,
        "{what}: want a one-line error on stderr, got {} lines: {:?}",
        lines.len(),
        out.stderr.trim()
    );
    Ok(())
}

/// No state entry, no cgroup and no mount under the bundle remain for `id`.
fn nothing_left(c: &Ctx, id: &str, cg: &str, bundle: &std::path::Path, what: &str) -> Res {
    let mounts = crate::bundle::mounts_under(bundle);
    ensure!(
        mounts.is_empty(),
        "{what}: mounts left in the host's namespace: {mounts:?}"
    );
    ensure!(
        !c.state_entry_exists(id),
        "{what}: state entry {} left",
        c.suite.rt.root.join(id).display()
    );
    ensure!(
        c.rt(&["state", id]).code != Some(0),
        "{what}: state {id} works after a failed create"
    );
    let left = cgroup::existing(cg);
    ensure!(left.is_empty(), "{what}: cgroup left behind: {left:?}");
    Ok(())
}

/// create with the bundle in a bad shape; asserts the failure and the clean slate.
fn bad_create(
    c: &mut Ctx,
    what: &str,
    shape: impl FnOnce(&crate::bundle::Bundle) -> std::io::Result<()>,
) -> Res {
    let (id, b) = c.prepare(default_config(&["/bin/true"], "/placeholder"), false)?;
    let cg = format!("/{}/{id}", c.suite.cg_parent);
    shape(&b)?;
    let out = c.create(&b, &id);
    one_line_error(&out, what)?;
    nothing_left(c, &id, &cg, &b.dir, what)
}

pub fn bad_missing_config(c: &mut Ctx) -> Res {
    bad_create(c, "missing config.json", |b| {
        std::fs::remove_file(b.dir.join("config.json"))
    })
}

pub fn bad_malformed_config(c: &mut Ctx) -> Res {
    bad_create(c, "malformed config.json", |b| {
        b.write_raw_config("{\"ociVersion\": \"1.0.2\", \"process\": {")
    })
}

pub fn bad_missing_rootfs(c: &mut Ctx) -> Res {
    bad_create(c, "missing rootfs", |b| {
        crate::bundle::remove_tree(&b.rootfs())
    })
}

/// start, state, kill and delete of an unknown id fail with one line; `delete --force`
/// of an unknown id succeeds (runc's behaviour: forced delete is idempotent for engines).
pub fn bad_unknown_id(c: &mut Ctx) -> Res {
    let id = c.new_id();
    for verb in [vec!["start"], vec!["state"], vec!["kill"], vec!["delete"]] {
        let mut args = verb.clone();
        args.push(&id);
        if verb == ["kill"] {
            args.push("KILL");
        }
        let out = c.rt(&args);
        one_line_error(&out, &format!("{} of an unknown id", verb.join(" ")))?;
    }
    let forced = c.rt(&["delete", "--force", &id]);
    ensure!(
        forced.ok(),
        "delete --force of an unknown id must succeed like runc: {}",
        forced.describe()
    );
    ensure!(
        !c.state_entry_exists(&id),
        "a state entry appeared for unknown id {id}"
    );
    Ok(())
}

/// A second create with a live id fails and leaves the first container intact.
pub fn bad_duplicate_id(c: &mut Ctx) -> Res {
    let (id, b) = c.prepare(default_config(&["/bin/sleep", "30"], "/placeholder"), false)?;
    c.must_create(&b, &id)?;
    let pid = c.pid(&id)?;
    let b2 = c.bundle(&format!("{id}-second"), false)?;
    b2.write_config(&default_config(
        &["/bin/true"],
        &format!("/{}/{id}-second", c.suite.cg_parent),
    ))?;
    c.own_cgroup(&format!("/{}/{id}-second", c.suite.cg_parent));
    let out = c.create(&b2, &id);
    one_line_error(&out, "duplicate id")?;
    let st = c.state(&id)?;
    ensure!(
        st["pid"] == json!(pid) && st["status"] == json!("created"),
        "first container changed: {st}"
    );
    ensure!(
        st["bundle"] == json!(b.path_str()),
        "state bundle now {} want {}",
        st["bundle"],
        b.path_str()
    );
    let second = crate::cgroup::existing(&format!("/{}/{id}-second", c.suite.cg_parent));
    ensure!(
        second.is_empty(),
        "the refused duplicate create left cgroups: {second:?}"
    );
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// kill with a bad signal name fails and the container keeps running.
pub fn bad_signal(c: &mut Ctx) -> Res {
    let (id, b) = c.prepare(default_config(&["/bin/sleep", "30"], "/placeholder"), false)?;
    c.must_create(&b, &id)?;
    c.must(&["start", &id])?;
    for sig in ["NOSUCHSIG", "SIGFOO", "99999"] {
        let out = c.rt(&["kill", &id, sig]);
        one_line_error(&out, &format!("signal {sig}"))?;
    }
    ensure!(
        c.status(&id)? == "running",
        "container stopped after bad kills"
    );
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// Ids that are path tricks, empty or longer than a file name (255 bytes) are refused,
/// and nothing is created for them.
pub fn bad_invalid_id(c: &mut Ctx) -> Res {
    let (id, b) = c.prepare(default_config(&["/bin/true"], "/placeholder"), false)?;
    let root = c.suite.rt.root.clone();
    let escape = root.parent().map(|p| p.join("x"));
    let long = "x".repeat(256);
    for bad in ["../x", "", "a/b", ".", long.as_str()] {
        let out = c.create(&b, bad);
        if out.ok() {
            let _ = c.rt(&["delete", "--force", bad]);
            return Err(Verdict::Fail(format!("create accepted invalid id {bad:?}")));
        }
        let lines = out.stderr.lines().filter(|l| !l.trim().is_empty()).count();
        ensure!(
            lines == 1,
            "invalid id {bad:?}: want a one-line error, got {:?}",
            out.stderr.trim()
        );
    }
    if let Some(e) = escape {
        ensure!(!e.exists(), "create with id ../x wrote {}", e.display());
    }
    ensure!(
        !root.join("a").exists(),
        "create with id a/b wrote under {}",
        root.display()
    );
    let left = cgroup::existing(&format!("/{}/{id}", c.suite.cg_parent));
    ensure!(left.is_empty(), "cgroups left by invalid ids: {left:?}");
    Ok(())
}

/// A config edit applied to the default config before create.
fn bad_config(c: &mut Ctx, what: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Res {
    let mut cfg = default_config(&["/bin/true"], "/placeholder");
    edit(&mut cfg);
    let (id, b) = c.prepare(cfg, false)?;
    let cg = format!("/{}/{id}", c.suite.cg_parent);
    let out = c.create(&b, &id);
    if out.ok() {
        // Some runtimes only notice at start; the lifecycle must still fail.
        let st = c.rt(&["start", &id]);
        ensure!(!st.ok(), "{what}: create and start both succeeded");
        return Ok(());
    }
    one_line_error(&out, what)?;
    nothing_left(c, &id, &cg, &b.dir, what)
}

/// process.args must not be empty.
pub fn bad_empty_args(c: &mut Ctx) -> Res {
    bad_config(c, "empty process.args", |cfg| {
        crate::spec::set(cfg, "process/args", json!([]))
    })
}

/// process.cwd must be absolute.
pub fn bad_relative_cwd(c: &mut Ctx) -> Res {
    bad_config(c, "relative process.cwd", |cfg| {
        crate::spec::set(cfg, "process/cwd", json!("relative/dir"))
    })
}

/// An unknown namespace type is an error.
pub fn bad_namespace_type(c: &mut Ctx) -> Res {
    bad_config(c, "namespace type foo", |cfg| {
        crate::spec::push(cfg, "linux/namespaces", json!({"type": "foo"}))
    })
}

/// runtime-spec: a namespace type given twice is an error.
pub fn bad_duplicate_namespace(c: &mut Ctx) -> Res {
    bad_config(c, "namespace type given twice", |cfg| {
        crate::spec::push(cfg, "linux/namespaces", json!({"type": "network"}))
    })
}

/// A hook whose binary does not exist fails create, leaving nothing behind.
pub fn bad_hook_path(c: &mut Ctx) -> Res {
    bad_config(c, "missing hook binary", |cfg| {
        crate::spec::push(
            cfg,
            "hooks/createRuntime",
            json!({"path": "/nonexistent/berth-hook"}),
        )
    })
}

/// A process uid or gid that the container's user namespace does not map is refused
/// (runc: "cannot set uid to unmapped user in user namespace"), leaving nothing.
pub fn bad_unmapped_process_user(c: &mut Ctx) -> Res {
    for (field, uid, gid) in [("uid", 70000, 0), ("gid", 0, 70000)] {
        bad_config(
            c,
            &format!("process.user.{field} 70000, not mapped by the user namespace"),
            |cfg| {
                crate::spec::push(cfg, "linux/namespaces", json!({"type": "user"}));
                let map = json!([{"hostID": 100000, "containerID": 0, "size": 65536}]);
                crate::spec::set(cfg, "linux/uidMappings", map.clone());
                crate::spec::set(cfg, "linux/gidMappings", map);
                crate::spec::set(cfg, "process/user", json!({"uid": uid, "gid": gid}));
            },
        )?;
    }
    Ok(())
}
