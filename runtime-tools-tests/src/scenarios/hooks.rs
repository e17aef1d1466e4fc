//! Hook scenarios: order per the current runtime-spec, state on stdin, env and args,
//! timeouts, and what each failing hook kind does to the lifecycle.

use serde_json::{json, Value};

use crate::bundle::Bundle;
use crate::ctx::Ctx;
use crate::ensure;
use crate::spec::{default_config, push, sh};
use crate::verdict::Res;

/// Hook kinds run in the runtime namespace (host paths) and in the container's.
const HOST_KINDS: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "poststart",
    "poststop",
];

pub(super) fn cfg_sh(script: &str) -> Value {
    let a = sh(script);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    default_config(&a, "/placeholder")
}

/// A hook that appends `line` to `log` using the host's /bin/sh.
pub(super) fn append_hook(log: &str, line: &str) -> Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo {line} >> {log}")]})
}

fn lines(b: &Bundle, rel: &str) -> Vec<String> {
    b.read(rel).lines().map(str::to_string).collect()
}

/// Two hooks of every kind append to one log; checks each phase's lines in order.
pub fn hooks(c: &mut Ctx) -> Res {
    let id_probe = c.new_id();
    let mut cfg = cfg_sh("echo process >> /hooks.log");
    // The host path of the log is only known once the bundle exists: build it first.
    let b = c.bundle(&id_probe, false)?;
    let log = b.rootfs().join("hooks.log").display().to_string();
    for kind in HOST_KINDS {
        for n in 1..=2 {
            push(
                &mut cfg,
                &format!("hooks/{kind}"),
                append_hook(&log, &format!("{kind}{n}")),
            );
        }
    }
    for n in 1..=2 {
        // startContainer resolves and runs in the container: its /bin/sh and /hooks.log.
        push(
            &mut cfg,
            "hooks/startContainer",
            append_hook("/hooks.log", &format!("startContainer{n}")),
        );
    }
    let cg = c.cgroups_path(&id_probe);
    crate::spec::set(&mut cfg, "linux/cgroupsPath", json!(cg));
    b.write_config(&cfg)?;
    let id = id_probe;
    c.must_create(&b, &id)?;
    let after_create = lines(&b, "rootfs/hooks.log");
    let want_create = [
        "prestart1",
        "prestart2",
        "createRuntime1",
        "createRuntime2",
        "createContainer1",
        "createContainer2",
    ];
    ensure!(
        after_create == want_create,
        "after create the hook log is {after_create:?} want {want_create:?} (runtime-spec: prestart, createRuntime, createContainer during create)"
    );
    c.must(&["start", &id])?;
    let after_start = lines(&b, "rootfs/hooks.log");
    c.wait_stopped(&id)?;
    let after_exit = lines(&b, "rootfs/hooks.log");
    let tail: Vec<&str> = after_exit
        .iter()
        .skip(want_create.len())
        .map(String::as_str)
        .collect();
    ensure!(
        tail.len() == 5 && tail[..2] == ["startContainer1", "startContainer2"],
        "after exit the log continues {tail:?}; want startContainer1, startContainer2, then the process and poststart1, poststart2"
    );
    let ps: Vec<&str> = tail[2..]
        .iter()
        .copied()
        .filter(|l| l.starts_with("poststart"))
        .collect();
    ensure!(
        ps == ["poststart1", "poststart2"],
        "poststart hooks ran as {ps:?}"
    );
    ensure!(
        tail[2..].contains(&"process"),
        "the process line is missing: {tail:?}"
    );
    ensure!(
        after_start
            .iter()
            .filter(|l| l.starts_with("poststart"))
            .count()
            == 2,
        "poststart hooks had not finished when start returned: {after_start:?}"
    );
    ensure!(
        !after_exit.iter().any(|l| l.starts_with("poststop")),
        "poststop ran before delete: {after_exit:?}"
    );
    c.must(&["delete", &id])?;
    let end = lines(&b, "rootfs/hooks.log");
    let last: Vec<&str> = end
        .iter()
        .skip(after_exit.len())
        .map(String::as_str)
        .collect();
    ensure!(
        last == ["poststop1", "poststop2"],
        "delete appended {last:?} want poststop1, poststop2"
    );
    Ok(())
}

/// Each hook kind receives the state on stdin (`cat > file`, 2 s timeout: a stdin left
/// open would hang it). Statuses asserted are runc 1.1's: `creating` for prestart,
/// createRuntime and createContainer, `created` for startContainer, `running` for
/// poststart, `stopped` for poststop.
pub fn hooks_stdin(c: &mut Ctx) -> Res {
    let id = c.new_id();
    let b = c.bundle(&id, false)?;
    let mut cfg = cfg_sh("true");
    let annotations = json!({"org.berth.test": "hooks_stdin", "second": "value with spaces"});
    crate::spec::set(&mut cfg, "annotations", annotations.clone());
    let dir = b.rootfs();
    for kind in HOST_KINDS {
        let f = dir.join(format!("state-{kind}.json")).display().to_string();
        push(
            &mut cfg,
            &format!("hooks/{kind}"),
            json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {f}")], "timeout": 2}),
        );
    }
    push(
        &mut cfg,
        "hooks/startContainer",
        json!({"path": "/bin/sh", "args": ["sh", "-c", "cat > /state-startContainer.json"], "timeout": 2}),
    );
    let cg = c.cgroups_path(&id);
    crate::spec::set(&mut cfg, "linux/cgroupsPath", json!(cg));
    b.write_config(&cfg)?;
    c.must_create(&b, &id)?;
    let pid = c.pid(&id)?;
    c.must(&["start", &id])?;
    c.wait_stopped(&id)?;
    c.must(&["delete", &id])?;
    let bundle = b.path_str();
    let mut problems = Vec::new();
    for (kind, status) in [
        ("prestart", "creating"),
        ("createRuntime", "creating"),
        ("createContainer", "creating"),
        ("startContainer", "created"),
        ("poststart", "running"),
        ("poststop", "stopped"),
    ] {
        let text = b.read(&format!("rootfs/state-{kind}.json"));
        let st: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("{kind}: stdin is not state JSON ({e}): {text:?}"));
                continue;
            }
        };
        let mut want = |what: &str, ok: bool, got: &Value| {
            if !ok {
                problems.push(format!("{kind}: {what} (got {got})"));
            }
        };
        want(&format!("id {id}"), st["id"] == json!(id), &st["id"]);
        want(
            &format!("bundle {bundle}"),
            st["bundle"] == json!(bundle),
            &st["bundle"],
        );
        want(
            "identical annotations",
            st["annotations"] == annotations,
            &st["annotations"],
        );
        want(
            "an ociVersion",
            st["ociVersion"].is_string(),
            &st["ociVersion"],
        );
        want(
            &format!("status {status}"),
            st["status"] == json!(status),
            &st["status"],
        );
        match kind {
            // Hooks run in the container's namespaces may see the pid from inside (runc: 1).
            "createContainer" | "startContainer" => want(
                &format!("pid {pid} or 1"),
                st["pid"] == json!(pid) || st["pid"] == json!(1),
                &st["pid"],
            ),
            "poststop" => {}
            _ => want(&format!("pid {pid}"), st["pid"] == json!(pid), &st["pid"]),
        }
    }
    ensure!(problems.is_empty(), "hook state: {}", problems.join("; "));
    Ok(())
}

/// args (including argv[0]) and env reach the hook exactly.
pub fn hooks_env_args(c: &mut Ctx) -> Res {
    let id = c.new_id();
    let b = c.bundle(&id, false)?;
    let out = b.dir.join("hook-env.txt").display().to_string();
    let mut cfg = cfg_sh("true");
    // busybox picks its applet from argv[0]: "sh" only works if args[0] is passed as is.
    let busybox = b.rootfs().join("bin/busybox").display().to_string();
    push(
        &mut cfg,
        "hooks/createRuntime",
        json!({
            "path": busybox,
            "args": ["sh", "-c", format!("echo \"$0|$1|$FOO|$BAR|${{HOME:-nohome}}\" > {out}"), "first", "second"],
            "env": ["FOO=foo value", "BAR=bar"]
        }),
    );
    let cg = c.cgroups_path(&id);
    crate::spec::set(&mut cfg, "linux/cgroupsPath", json!(cg));
    b.write_config(&cfg)?;
    c.must_create(&b, &id)?;
    c.must(&["delete", "--force", &id])?;
    let got = b.read("hook-env.txt");
    ensure!(
        got.trim() == "first|second|foo value|bar|nohome",
        "hook saw {:?} want \"first|second|foo value|bar|nohome\" (args, env, and nothing of the runtime's env)",
        got.trim()
    );
    Ok(())
}

/// One hook of `kind` and the process append to one log; returns the bundle, id and
/// the log after create.
fn timing_setup(
    c: &mut Ctx,
    kind: &str,
) -> Result<(String, Bundle, Vec<String>), crate::verdict::Verdict> {
    let id = c.new_id();
    let b = c.bundle(&id, false)?;
    let log = b.rootfs().join("timing.log").display().to_string();
    let mut cfg = cfg_sh("echo process >> /timing.log");
    push(&mut cfg, &format!("hooks/{kind}"), append_hook(&log, kind));
    let cg = c.cgroups_path(&id);
    crate::spec::set(&mut cfg, "linux/cgroupsPath", json!(cg));
    b.write_config(&cfg)?;
    c.must_create(&b, &id)?;
    let after_create = lines(&b, "rootfs/timing.log");
    Ok((id, b, after_create))
}

/// runtime-spec 1.0.2+: prestart runs during create; the hook line precedes the process's.
pub fn prestart(c: &mut Ctx) -> Res {
    let (id, b, after_create) = timing_setup(c, "prestart")?;
    ensure!(
        after_create == ["prestart"],
        "after create the log is {after_create:?} want [\"prestart\"]"
    );
    c.must(&["start", &id])?;
    c.wait_stopped(&id)?;
    let all = lines(&b, "rootfs/timing.log");
    ensure!(
        all == ["prestart", "process"],
        "after exit the log is {all:?}"
    );
    c.must(&["delete", &id])?;
    Ok(())
}

/// poststart runs after the process is started and before start returns, not at create.
pub fn poststart(c: &mut Ctx) -> Res {
    let (id, b, after_create) = timing_setup(c, "poststart")?;
    ensure!(
        after_create.is_empty(),
        "after create the log is {after_create:?}: poststart ran during create"
    );
    c.must(&["start", &id])?;
    let after_start = lines(&b, "rootfs/timing.log");
    ensure!(
        after_start.contains(&"poststart".to_string()),
        "poststart had not run when start returned: {after_start:?}"
    );
    c.wait_stopped(&id)?;
    let mut all = lines(&b, "rootfs/timing.log");
    all.sort();
    ensure!(
        all == ["poststart", "process"],
        "after exit the log is {all:?}"
    );
    c.must(&["delete", &id])?;
    Ok(())
}

/// poststop runs at delete, after the process, and not before.
pub fn poststop(c: &mut Ctx) -> Res {
    let (id, b, after_create) = timing_setup(c, "poststop")?;
    ensure!(
        after_create.is_empty(),
        "after create the log is {after_create:?}"
    );
    c.must(&["start", &id])?;
    c.wait_stopped(&id)?;
    let before = lines(&b, "rootfs/timing.log");
    ensure!(
        before == ["process"],
        "before delete the log is {before:?} want only the process line"
    );
    c.must(&["delete", &id])?;
    let after = lines(&b, "rootfs/timing.log");
    ensure!(
        after == ["process", "poststop"],
        "after delete the log is {after:?}"
    );
    Ok(())
}

/// createRuntime, poststart and poststop hooks run in the runtime's namespaces;
/// createContainer and startContainer hooks run in the container's (runtime-spec).
pub fn hooks_namespaces(c: &mut Ctx) -> Res {
    let id = c.new_id();
    let b = c.bundle(&id, false)?;
    let mut cfg = cfg_sh("true");
    let report = |file: &str| {
        format!("for n in mnt net uts ipc; do readlink /proc/self/ns/$n; done > {file}")
    };
    for kind in ["createRuntime", "createContainer", "poststart", "poststop"] {
        let f = b.rootfs().join(format!("ns-{kind}")).display().to_string();
        push(
            &mut cfg,
            &format!("hooks/{kind}"),
            json!({"path": "/bin/sh", "args": ["sh", "-c", report(&f)]}),
        );
    }
    push(
        &mut cfg,
        "hooks/startContainer",
        json!({"path": "/bin/sh", "args": ["sh", "-c", report("/ns-startContainer")]}),
    );
    let cg = c.cgroups_path(&id);
    crate::spec::set(&mut cfg, "linux/cgroupsPath", json!(cg));
    b.write_config(&cfg)?;
    c.must_create(&b, &id)?;
    let pid = c.pid(&id)?.to_string();
    let me = std::process::id().to_string();
    let links = |p: &str| -> Vec<String> {
        ["mnt", "net", "uts", "ipc"]
            .iter()
            .map(|n| crate::nshelper::link(p, n))
            .collect()
    };
    let (host, container) = (links(&me), links(&pid));
    c.must(&["start", &id])?;
    c.wait_stopped(&id)?;
    c.must(&["delete", &id])?;
    let mut problems = Vec::new();
    for (kind, want, whose) in [
        ("createRuntime", &host, "runtime"),
        ("createContainer", &container, "container"),
        ("startContainer", &container, "container"),
        ("poststart", &host, "runtime"),
        ("poststop", &host, "runtime"),
    ] {
        let got = lines(&b, &format!("rootfs/ns-{kind}"));
        if &got != want {
            problems.push(format!(
                "{kind} ran in {got:?}, want the {whose}'s {want:?}"
            ));
        }
    }
    ensure!(problems.is_empty(), "{}", problems.join("; "));
    Ok(())
}
