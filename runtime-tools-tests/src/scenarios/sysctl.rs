//! `linux.sysctl` against the container's namespaces (runc's validator): a key that is
//! not namespaced, or whose namespace the container shares with the host, would change
//! the host kernel's setting, so `create` refuses it with an error naming the key, and
//! the host's value stays as it was. Keys whose namespace the container has are set.

use serde_json::{json, Value};

use crate::ctx::{read_trim, Ctx};
use crate::spec::{default_config, ns, set, sh};
use crate::verdict::{Res, Verdict};
use crate::{ensure, fail};

/// The host's value of a sysctl (dotted key), or a skip when this kernel lacks it.
fn host_value(key: &str) -> Result<String, Verdict> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    match std::fs::read_to_string(&path) {
        Ok(v) => Ok(v.trim().to_string()),
        Err(e) => Err(Verdict::Skip(format!("{path}: {e}"))),
    }
}

/// Puts the host's value back if a runtime under test changed it.
struct Restore {
    path: String,
    value: String,
}

impl Drop for Restore {
    fn drop(&mut self) {
        if read_trim(std::path::Path::new(&self.path)) != self.value {
            let _ = std::fs::write(&self.path, &self.value);
        }
    }
}

/// Each refused case: create fails with one line naming the key, leaves nothing, and
/// the host's value is unchanged. `kernel.randomize_va_space` asks for a value other
/// than the host's (the change would show); the others ask for the host's own value,
/// so that a runtime that wrongly writes them does no harm.
pub fn linux_sysctl_refused(c: &mut Ctx) -> Res {
    let aslr = host_value("kernel.randomize_va_space")?;
    let other_aslr = if aslr == "2" { "1" } else { "2" };
    let _restore = Restore {
        path: "/proc/sys/kernel/randomize_va_space".into(),
        value: aslr.clone(),
    };
    let our_net = format!("/proc/{}/ns/net", std::process::id());
    let all = ["pid", "network", "ipc", "uts", "mount"];
    let without = |gone: &str| -> Value {
        ns(&all
            .iter()
            .copied()
            .filter(|t| *t != gone)
            .collect::<Vec<_>>())
    };
    let mut joined_host_net = without("network");
    if let Some(list) = joined_host_net.as_array_mut() {
        list.push(json!({"type": "network", "path": our_net}));
    }
    let cases: Vec<(&str, String, Value, &str)> = vec![
        (
            "kernel.randomize_va_space",
            other_aslr.to_string(),
            ns(&all),
            "not namespaced",
        ),
        (
            "vm.overcommit_memory",
            host_value("vm.overcommit_memory")?,
            ns(&all),
            "not namespaced",
        ),
        (
            "net.ipv4.ip_forward",
            host_value("net.ipv4.ip_forward")?,
            without("network"),
            "no network namespace",
        ),
        (
            "net.ipv4.ip_forward",
            host_value("net.ipv4.ip_forward")?,
            joined_host_net,
            "the runtime's own network namespace joined by path",
        ),
        (
            "kernel.shmmni",
            host_value("kernel.shmmni")?,
            without("ipc"),
            "no ipc namespace",
        ),
        (
            "fs.mqueue.msg_max",
            host_value("fs.mqueue.msg_max")?,
            without("ipc"),
            "no ipc namespace",
        ),
        (
            "kernel.domainname",
            host_value("kernel.domainname")?,
            without("uts"),
            "no uts namespace",
        ),
        (
            "kernel.hostname",
            "sysctl-host".to_string(),
            ns(&all),
            "the hostname field sets it",
        ),
    ];
    for (key, value, namespaces, why) in cases {
        let host_before = host_value(key)?;
        let mut cfg = default_config(&["/bin/true"], "/placeholder");
        set(&mut cfg, "linux/namespaces", namespaces);
        if !all_have(&cfg, "uts") {
            crate::spec::remove(&mut cfg, "hostname");
        }
        set(&mut cfg, "linux/sysctl", json!({ key: value }));
        let (id, b) = c.prepare(cfg, false)?;
        let out = c.create(&b, &id);
        let after = host_value(key)?;
        ensure!(
            after == host_before,
            "{key}={value} ({why}): the host's value changed from {host_before} to {after}"
        );
        if out.ok() {
            fail!("{key}={value} ({why}): create succeeded; it must be refused (it would set the host's value)");
        }
        let lines: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        ensure!(
            lines.len() == 1 && lines[0].contains(key),
            "{key} ({why}): want one error line naming the key, got {:?}",
            out.stderr.trim()
        );
        ensure!(
            !c.state_entry_exists(&id),
            "{key} ({why}): a state entry was left"
        );
    }
    Ok(())
}

fn all_have(cfg: &Value, typ: &str) -> bool {
    cfg.pointer("/linux/namespaces")
        .and_then(Value::as_array)
        .is_some_and(|l| l.iter().any(|n| n["type"] == json!(typ)))
}

/// Keys whose namespace the container has are set there, in either separator form:
/// `kernel.domainname` (uts), `fs.mqueue.msg_max` and `kernel/shmmni` (ipc),
/// `net.ipv4.ip_forward` (network).
pub fn linux_sysctl_namespaced(c: &mut Ctx) -> Res {
    let msg_max = host_value("fs.mqueue.msg_max")?;
    let want_msg_max = if msg_max == "9" { "8" } else { "9" };
    let script = "cat /proc/sys/kernel/domainname /proc/sys/fs/mqueue/msg_max \
                  /proc/sys/kernel/shmmni /proc/sys/net/ipv4/ip_forward";
    let args = sh(script);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cfg = default_config(&args, "/placeholder");
    set(
        &mut cfg,
        "linux/sysctl",
        json!({
            "kernel.domainname": "sysctl.example",
            "fs.mqueue.msg_max": want_msg_max,
            "kernel/shmmni": "4000",
            "net.ipv4.ip_forward": "1"
        }),
    );
    let (id, b) = c.prepare(cfg, false)?;
    c.must_create(&b, &id)?;
    c.must(&["start", &id])?;
    c.wait_stopped(&id)?;
    c.must(&["delete", &id])?;
    let got: Vec<String> = std::fs::read_to_string(b.stdout_path())
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    let want = ["sysctl.example", want_msg_max, "4000", "1"];
    ensure!(
        got == want,
        "the container saw {got:?}, want {want:?} (domainname, fs.mqueue.msg_max, kernel.shmmni, net.ipv4.ip_forward)"
    );
    ensure!(
        host_value("fs.mqueue.msg_max")? == msg_max,
        "the host's fs.mqueue.msg_max changed"
    );
    Ok(())
}
