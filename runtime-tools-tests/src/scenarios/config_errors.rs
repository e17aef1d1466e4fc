//! A config.json that does not parse is refused with one line that names the JSON path
//! of the wrong field and the reason, not just its section; a hook `timeout` that is
//! not a positive number of seconds (runtime spec: "MUST be greater than zero") is
//! refused at create, naming `hooks.<kind>[i].timeout`, before any hook runs.
//!
//! For comparison, runc 1.1.5 names the Go struct field (`Process.process.args`,
//! `LinuxDevice.linux.devices.type`: no index), and runs a hook whose timeout is 0
//! until the timer fires at once ("hook ran past specified timeout of 0.0s").

use serde_json::{json, Value};

use crate::ctx::Ctx;
use crate::spec::{default_config, push, set};
use crate::verdict::Res;
use crate::{ensure, fail};

/// Creates `cfg` and checks the failure: one line on stderr holding `want`, no state.
fn refused(c: &mut Ctx, cfg: Value, want: &str, what: &str) -> Res {
    let (id, b) = c.prepare(cfg, false)?;
    let out = c.create(&b, &id);
    if out.ok() {
        fail!("{what}: create succeeded; it must be refused");
    }
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    ensure!(
        lines.len() == 1 && lines[0].contains(want),
        "{what}: want one error line naming {want:?}, got {:?}",
        out.stderr.trim()
    );
    ensure!(!c.state_entry_exists(&id), "{what}: a state entry was left");
    Ok(())
}

pub fn config_errors_name_the_field(c: &mut Ctx) -> Res {
    let cases: Vec<(&str, Value, &str)> = vec![
        ("process/args", json!("/bin/true"), "process.args"),
        ("process/env", json!("PATH=/bin"), "process.env"),
        ("mounts", json!({"destination": "/x"}), "mounts"),
        (
            "linux/devices",
            json!([{"path": "/dev/fuse", "type": 99, "major": 10, "minor": 229}]),
            "linux.devices[0].type",
        ),
        (
            "linux/resources/cpu",
            json!({"quota": "100000"}),
            "linux.resources.cpu.quota",
        ),
        (
            "process/rlimits",
            json!([{"type": "RLIMIT_NOFILE", "hard": 10, "soft": 10},
                   {"type": "RLIMIT_NOFILE", "hard": "many", "soft": 10}]),
            "process.rlimits[1].hard",
        ),
    ];
    for (at, value, want) in cases {
        let mut cfg = default_config(&["/bin/true"], "/placeholder");
        set(&mut cfg, at, value.clone());
        refused(c, cfg, want, &format!("{at} = {value}"))?;
    }
    Ok(())
}

pub fn hooks_timeout_not_positive(c: &mut Ctx) -> Res {
    for (kind, timeout) in [("prestart", 0), ("poststop", -1)] {
        let id_probe = c.new_id();
        let b = c.bundle(&id_probe, false)?;
        let marker = b.dir.join("hook-ran");
        let mut cfg = default_config(&["/bin/true"], "/placeholder");
        let hook = |t: i64| {
            json!({"path": "/bin/sh",
                   "args": ["sh", "-c", format!("touch {}", marker.display())],
                   "timeout": t})
        };
        push(&mut cfg, &format!("hooks/{kind}"), hook(5));
        push(&mut cfg, &format!("hooks/{kind}"), hook(timeout));
        let want = format!("hooks.{kind}[1].timeout");
        refused(c, cfg, &want, &format!("{kind} hook timeout {timeout}"))?;
        ensure!(
            !marker.exists(),
            "a {kind} hook ran although the config was refused"
        );
    }
    Ok(())
}
