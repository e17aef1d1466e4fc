//! The environment of a hook, as runc 1.1.5 gives it. A hook with an `env` key gets
//! exactly that list (`[]` is an empty environment). A hook without one inherits, as
//! Go's exec does with a nil Env: the hooks the runtime runs itself (prestart,
//! createRuntime, poststart, poststop) get the runtime's environment (crun's
//! test-hook-env-inherit checks PATH), and the two that runc runs from its init
//! (createContainer, startContainer) get the container process's `process.env`, which
//! runc's init has made its own environment by then.

use serde_json::{json, Value};

use crate::ctx::Ctx;
use crate::spec::{push, set};
use crate::verdict::Res;
use crate::{ensure, skip};

use super::hooks::cfg_sh;

/// A variable set in `process.env` only.
const PROCESS_VAR: &str = "BERTH_HOOK_PROBE";
const PROCESS_VALUE: &str = "from-process-env";

/// A variable of the driver's environment (which the runtime inherits) that no shell
/// rewrites and that is not in `process.env`: (name, value).
fn runtime_var() -> Option<(String, String)> {
    const SHELL_OWNED: &[&str] = &["PWD", "OLDPWD", "SHLVL", "_", "IFS", "PATH", "TERM"];
    std::env::vars().find(|(k, v)| {
        !v.is_empty()
            && !v.contains(['\n', '\''])
            && !SHELL_OWNED.contains(&k.as_str())
            && k.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// Hook kinds and whether the runtime (not the init) runs them.
const KINDS: &[(&str, bool)] = &[
    ("prestart", true),
    ("createRuntime", true),
    ("createContainer", false),
    ("startContainer", false),
    ("poststart", true),
    ("poststop", true),
];

/// One hook of every kind records `<runtime var>|<process var>` (`unset` for either
/// when absent); `env` is the hooks' env key (None: no key). Returns each kind's line.
fn record(
    c: &mut Ctx,
    env: Option<Value>,
    var: &str,
) -> Result<Vec<(String, String)>, crate::verdict::Verdict> {
    let mut cfg = cfg_sh("true");
    let mut penv = cfg["process"]["env"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    penv.push(json!(format!("{PROCESS_VAR}={PROCESS_VALUE}")));
    set(&mut cfg, "process/env", Value::Array(penv));
    let id = c.new_id();
    let cg = c.cgroups_path(&id);
    set(&mut cfg, "linux/cgroupsPath", json!(cg));
    let b = c.bundle(&id, false)?;
    for (kind, _) in KINDS {
        // startContainer runs inside the container: its /bin/sh, its paths.
        let file = if *kind == "startContainer" {
            format!("/hook-env-{kind}.txt")
        } else {
            b.dir
                .join(format!("hook-env-{kind}.txt"))
                .display()
                .to_string()
        };
        let script = format!("echo \"${{{var}-unset}}|${{{PROCESS_VAR}-unset}}\" > {file}");
        let mut hook = json!({"path": "/bin/sh", "args": ["sh", "-c", script], "timeout": 5});
        if let Some(e) = &env {
            hook["env"] = e.clone();
        }
        push(&mut cfg, &format!("hooks/{kind}"), hook);
    }
    b.write_config(&cfg)?;
    c.must_create(&b, &id)?;
    c.must(&["start", &id])?;
    c.wait_stopped(&id)?;
    c.must(&["delete", &id])?;
    Ok(KINDS
        .iter()
        .map(|(kind, _)| {
            let rel = if *kind == "startContainer" {
                format!("rootfs/hook-env-{kind}.txt")
            } else {
                format!("hook-env-{kind}.txt")
            };
            (kind.to_string(), b.read(&rel).trim().to_string())
        })
        .collect())
}

/// No `env` key: the runtime's hooks see the runtime's environment, the init's hooks
/// the process's.
pub fn hooks_env_inherit(c: &mut Ctx) -> Res {
    let Some((var, value)) = runtime_var() else {
        skip!("the driver's environment has no variable to look for in the hooks");
    };
    let got = record(c, None, &var)?;
    let mut wrong = Vec::new();
    for ((kind, line), (_, by_runtime)) in got.iter().zip(KINDS) {
        let want = if *by_runtime {
            format!("{value}|unset")
        } else {
            format!("unset|{PROCESS_VALUE}")
        };
        if *line != want {
            wrong.push(format!("{kind} saw {line:?}, want {want:?}"));
        }
    }
    ensure!(
        wrong.is_empty(),
        "hooks without env ({var} in the runtime's environment, {PROCESS_VAR} in process.env): {}",
        wrong.join("; ")
    );
    Ok(())
}

/// `"env": [...]` is the whole environment of every kind, and `[]` an empty one.
pub fn hooks_env_given(c: &mut Ctx) -> Res {
    let var = runtime_var().map_or_else(|| "BERTH_HOOK_RUNTIME".to_string(), |(k, _)| k);
    for (env, want) in [
        (json!([]), "unset|unset".to_string()),
        (json!([format!("{var}=given")]), "given|unset".to_string()),
    ] {
        let got = record(c, Some(env.clone()), &var)?;
        let wrong: Vec<String> = got
            .iter()
            .filter(|(_, line)| *line != want)
            .map(|(kind, line)| format!("{kind} saw {line:?}"))
            .collect();
        ensure!(
            wrong.is_empty(),
            "hooks with \"env\": {env} must see only it ({want:?}): {}",
            wrong.join("; ")
        );
    }
    Ok(())
}
