//! runc's command-line contract (list.bats, root.bats, spec.bats, and the `--log`
//! half of debug.bats): list output engines parse, state directories kept apart by
//! `--root`, the runtime's own `spec` run as it is, and log lines as JSON.

use std::path::Path;

use serde_json::{json, Value};

use super::contract::{cfg, expect_gone, expect_status, full_busybox, prepare, run_detached};
use crate::ctx::Ctx;
use crate::runtime::{Opts, Runtime};
use crate::spec::set;
use crate::verdict::{Res, Verdict};
use crate::{ensure, fail};

/// A private state directory for this scenario, removed at the end.
fn alt_root(c: &mut Ctx) -> Result<(std::path::PathBuf, Runtime), Verdict> {
    let dir = c
        .suite
        .bundles
        .join(format!("{}-{}-root", c.name, std::process::id()));
    std::fs::create_dir_all(&dir)?;
    c.own_dir(&dir);
    let rt = c.suite.rt.with_root(&dir)?;
    Ok((dir, rt))
}

/// `run -d` of `sleep 60` with the runtime `rt` for an id kept under `root`.
fn run_in_root(
    c: &mut Ctx,
    root: &Path,
    rt: &Runtime,
) -> Result<(String, crate::bundle::Bundle), Verdict> {
    let id = c.new_id_in(root);
    let mut config = cfg(&["sleep", "60"]);
    set(&mut config, "linux/cgroupsPath", json!(c.cgroups_path(&id)));
    let b = c.bundle(&id, false)?;
    b.write_config(&config)?;
    let bp = b.path_str();
    let out = rt.run_to(
        &["run", "-d", "--bundle", &bp, &id],
        &b.stdout_path(),
        &b.stderr_path(),
    );
    ensure!(out.ok(), "run -d in {}: {}", root.display(), out.describe());
    Ok((id, b))
}

/// A table row: id, pid, status, bundle, created (then owner), as runc prints them.
fn check_row(line: &str, id: &str, bundle: &str) -> Res {
    let f: Vec<&str> = line.split_whitespace().collect();
    ensure!(
        f.len() >= 5
            && f[0] == id
            && f[1].parse::<u32>().is_ok_and(|p| p > 0)
            && f[2] == "running"
            && f[3] == bundle
            && f[4].starts_with(|ch: char| ch.is_ascii_digit()),
        "list row {line:?}: want {id}, a pid, running, {bundle}, a creation time"
    );
    Ok(())
}

/// Three running containers in a state directory of their own: `list` and `list
/// --format table` print the header and one row each, sorted by id; `list -q` the
/// ids alone; `list --format json` one line, an array of state objects whose keys come
/// in runc's order (ociVersion, id, pid, status, bundle, rootfs, created).
pub fn contract_list_formats(c: &mut Ctx) -> Res {
    let (root, rt) = alt_root(c)?;
    let mut boxes = Vec::new();
    for _ in 0..3 {
        let (id, b) = run_in_root(c, &root, &rt)?;
        boxes.push((id, b.path_str()));
    }
    boxes.sort();
    for args in [&["list"][..], &["list", "--format", "table"][..]] {
        let out = rt.run(args);
        ensure!(out.ok(), "{}", out.describe());
        let lines: Vec<&str> = out.stdout.lines().collect();
        let head: Vec<&str> = lines
            .first()
            .map(|l| l.split_whitespace().collect())
            .unwrap_or_default();
        ensure!(
            head.len() >= 5 && head[..5] == ["ID", "PID", "STATUS", "BUNDLE", "CREATED"],
            "`{}` header {:?}",
            args.join(" "),
            lines.first()
        );
        ensure!(
            lines.len() == 4,
            "`{}` wants a header and 3 rows: {:?}",
            args.join(" "),
            out.stdout
        );
        for (line, (id, bundle)) in lines[1..].iter().zip(&boxes) {
            check_row(line, id, bundle)?;
        }
    }
    let out = rt.run(&["list", "-q"]);
    ensure!(out.ok(), "{}", out.describe());
    let ids: Vec<&str> = boxes.iter().map(|(i, _)| i.as_str()).collect();
    ensure!(
        out.stdout.lines().collect::<Vec<_>>() == ids,
        "list -q printed {:?}, want {ids:?}",
        out.stdout
    );
    let out = rt.run(&["list", "--format", "json"]);
    ensure!(out.ok(), "{}", out.describe());
    ensure!(
        out.stdout.trim_end().lines().count() == 1,
        "list --format json is not one line: {:?}",
        out.stdout
    );
    let list: Value = serde_json::from_str(out.stdout.trim())
        .map_err(|e| Verdict::Fail(format!("list --format json ({e}): {}", out.stdout)))?;
    let arr = list.as_array().cloned().unwrap_or_default();
    ensure!(
        arr.len() == 3,
        "list --format json has {} entries",
        arr.len()
    );
    for (entry, (id, bundle)) in arr.iter().zip(&boxes) {
        ensure!(
            entry["id"] == json!(id)
                && entry["status"] == "running"
                && entry["bundle"] == json!(bundle)
                && entry["pid"].as_u64().is_some_and(|p| p > 0)
                && entry["ociVersion"].is_string()
                && entry["rootfs"].is_string()
                && entry["created"].is_string(),
            "list --format json entry {entry}"
        );
    }
    // Key order as runc writes it (its tests match the raw line).
    for (id, _) in &boxes {
        let at = out
            .stdout
            .find(&format!("\"id\":\"{id}\""))
            .and_then(|i| out.stdout[..i].rfind('{').map(|s| (s, i)));
        let Some((start, _)) = at else {
            fail!(
                "list --format json has no \"id\":\"{id}\" member: {}",
                out.stdout
            );
        };
        let end = out.stdout[start..]
            .find('}')
            .map_or(out.stdout.len(), |e| start + e);
        let obj = &out.stdout[start..end];
        let keys = [
            "ociVersion",
            "id",
            "pid",
            "status",
            "bundle",
            "rootfs",
            "created",
        ];
        let pos: Vec<Option<usize>> = keys
            .iter()
            .map(|k| obj.find(&format!("\"{k}\":")))
            .collect();
        ensure!(
            pos.iter().all(Option::is_some) && pos.windows(2).all(|w| w[0] < w[1]),
            "list --format json keys are not in runc's order {keys:?}: {obj}"
        );
    }
    // The default state directory does not list them.
    let main = c.must(&["list", "-q"])?;
    ensure!(
        !ids.iter().any(|i| main.stdout.lines().any(|l| l == *i)),
        "the default --root lists containers of another root: {:?}",
        main.stdout
    );
    for (id, _) in &boxes {
        let out = rt.run(&["delete", "--force", id]);
        ensure!(out.ok(), "{}", out.describe());
    }
    Ok(())
}

/// Two state directories: each container is seen (running) under its own --root
/// only, and is killed and deleted there.
pub fn contract_global_root(c: &mut Ctx) -> Res {
    let (root, rt) = alt_root(c)?;
    let (alt_id, _alt_b) = run_in_root(c, &root, &rt)?;
    let (id, b) = prepare(c, cfg(&["sleep", "60"]))?;
    run_detached(c, &b, &id)?;
    expect_status(c, &id, "running")?;
    let st = rt.run(&["state", &alt_id]);
    ensure!(
        st.ok() && st.stdout.contains("running"),
        "state in the other root: {}",
        st.describe()
    );
    ensure!(
        !rt.run(&["state", &id]).ok(),
        "the other root sees {id} of the default root"
    );
    expect_gone(c, &alt_id, "in the default root (it lives in another)")?;
    c.must(&["kill", &id, "KILL"])?;
    c.wait_stopped(&id)?;
    c.must(&["delete", &id])?;
    let k = rt.run(&["kill", &alt_id, "KILL"]);
    ensure!(k.ok(), "{}", k.describe());
    let stopped = super::contract::wait_until(std::time::Duration::from_secs(10), || {
        crate::reaper::reap_orphans();
        rt.run(&["state", &alt_id]).stdout.contains("\"stopped\"")
    });
    ensure!(stopped, "{alt_id} did not stop in its root");
    let d = rt.run(&["delete", &alt_id]);
    ensure!(d.ok(), "{}", d.describe());
    Ok(())
}

/// The runtime's own `spec` (run in an empty bundle holding only the rootfs), with
/// just the process changed, runs from the bundle as the cwd without --bundle, and
/// from elsewhere with --bundle.
pub fn contract_spec_then_run(c: &mut Ctx) -> Res {
    let id = c.new_id();
    let b = c.bundle(&id, false)?;
    full_busybox(&b)?;
    let here = Opts {
        cwd: Some(b.dir.as_path()),
        stdin: None,
    };
    let out = c.suite.rt.run_opts(&["spec"], here);
    ensure!(out.ok(), "spec: {}", out.describe());
    let text = b.read("config.json");
    let mut config: Value = serde_json::from_str(&text)
        .map_err(|e| Verdict::Fail(format!("spec wrote no JSON config ({e}): {text:?}")))?;
    set(
        &mut config,
        "process/args",
        json!(["/bin/echo", "Hello World"]),
    );
    // No terminal: the driver has no controlling terminal to bridge.
    set(&mut config, "process/terminal", json!(false));
    set(&mut config, "linux/cgroupsPath", json!(c.cgroups_path(&id)));
    b.write_raw_config(&serde_json::to_string_pretty(&config).unwrap_or_default())?;
    let out = c.suite.rt.run_opts(&["run", &id], here);
    ensure!(
        out.ok() && out.stdout.contains("Hello World"),
        "run from the bundle without --bundle: {}; stdout {:?}",
        out.describe(),
        out.stdout
    );
    let id2 = c.new_id();
    set(
        &mut config,
        "linux/cgroupsPath",
        json!(c.cgroups_path(&id2)),
    );
    b.write_raw_config(&serde_json::to_string_pretty(&config).unwrap_or_default())?;
    let bp = b.path_str();
    let out = c.rt(&["run", "--bundle", &bp, &id2]);
    ensure!(
        out.ok() && out.stdout.contains("Hello World"),
        "run --bundle: {}; stdout {:?}",
        out.describe(),
        out.stdout
    );
    Ok(())
}

/// Every line of a `--log-format json` file is an object with level, msg and time.
fn json_lines(text: &str) -> Result<Vec<Value>, Verdict> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l)
                .map_err(|e| Verdict::Fail(format!("log line is not JSON ({e}): {l}")))?;
            ensure!(
                v["level"].is_string() && v["msg"].is_string() && v["time"].is_string(),
                "log line lacks level, msg or time: {l}"
            );
            Ok(v)
        })
        .collect()
}

/// `--log FILE --log-format json`, as containerd passes it: a failing run leaves an
/// error line whose msg says why (and the message on stderr too); an unknown id's
/// error is logged the same way; with --debug the debug lines go to the file as JSON,
/// never to stderr.
pub fn contract_log_json(c: &mut Ctx) -> Res {
    let log = c
        .suite
        .bundles
        .join(format!("{}-{}.log.json", c.name, std::process::id()));
    c.own_dir(&log);
    let logs = log.display().to_string();
    let (id, b) = prepare(c, cfg(&["/nonexistent-binary"]))?;
    let bp = b.path_str();
    let out = c.rt(&[
        "--log",
        &logs,
        "--log-format",
        "json",
        "run",
        "--bundle",
        &bp,
        &id,
    ]);
    ensure!(!out.ok(), "run of a missing binary succeeded");
    let lines = json_lines(&std::fs::read_to_string(&log).unwrap_or_default())?;
    ensure!(
        lines.iter().any(|l| l["level"] == "error"
            && l["msg"]
                .as_str()
                .is_some_and(|m| m.contains("/nonexistent-binary"))),
        "no error line naming /nonexistent-binary in the log: {lines:?}"
    );
    ensure!(
        out.stderr.contains("/nonexistent-binary"),
        "stderr does not carry the error: {:?}",
        out.stderr
    );
    std::fs::remove_file(&log)?;
    let out = c.rt(&[
        "--log",
        &logs,
        "--log-format",
        "json",
        "state",
        &format!("{id}-unknown"),
    ]);
    ensure!(!out.ok(), "state of an unknown id succeeded");
    let lines = json_lines(&std::fs::read_to_string(&log).unwrap_or_default())?;
    ensure!(
        lines.iter().any(|l| l["level"] == "error"
            && l["msg"]
                .as_str()
                .is_some_and(|m| m.contains("does not exist"))),
        "no error line saying the container does not exist: {lines:?}"
    );
    std::fs::remove_file(&log)?;
    let (id, b) = prepare(c, cfg(&["/bin/echo", "Hello World"]))?;
    let bp = b.path_str();
    let out = c.rt(&[
        "--log",
        &logs,
        "--log-format",
        "json",
        "--debug",
        "run",
        "--bundle",
        &bp,
        &id,
    ]);
    ensure!(out.ok(), "--debug run: {}", out.describe());
    ensure!(
        !out.stderr.contains("debug"),
        "debug output reached stderr although --log was given: {:?}",
        out.stderr
    );
    let lines = json_lines(&std::fs::read_to_string(&log).unwrap_or_default())?;
    ensure!(
        lines.iter().all(|l| l["level"] != "error"),
        "a successful run logged an error: {lines:?}"
    );
    Ok(())
}
