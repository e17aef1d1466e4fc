//! Config handling: the config is a snapshot taken at create; unknown properties are
//! accepted; an invalid ociVersion is refused.

use serde_json::{json, Value};

use crate::ctx::{judge_tap, verbose_dump, Ctx};
use crate::ensure;
use crate::spec::{default_config, push, set};
use crate::verdict::Res;

fn checker_cfg() -> Value {
    default_config(&["/runtimetest"], "/placeholder")
}

/// config.json replaced by `{"ociVersion":"1.0.0"}` after create: start, exit and delete
/// still work, and the container was set up from the original (the checker judges it).
pub fn config_updates_without_affect(c: &mut Ctx) -> Res {
    let mut cfg = checker_cfg();
    set(
        &mut cfg,
        "linux/sysctl",
        json!({"net.ipv4.ip_forward": "1"}),
    );
    set(&mut cfg, "process/oomScoreAdj", json!(200));
    // slave rather than shared: runc before 1.2 does not apply shared (runc#1755), and
    // this scenario is about the config snapshot, not propagation.
    set(&mut cfg, "linux/rootfsPropagation", json!("slave"));
    for s in ["bounding", "effective", "permitted"] {
        push(
            &mut cfg,
            &format!("process/capabilities/{s}"),
            json!("CAP_SYS_ADMIN"),
        );
    }
    let (id, b) = c.prepare(cfg, true)?;
    c.must_create(&b, &id)?;
    b.write_raw_config("{\"ociVersion\":\"1.0.0\"}")?;
    c.must(&["start", &id])?;
    c.wait_stopped(&id)?;
    let st = c.state(&id)?;
    ensure!(
        st["bundle"] == json!(b.path_str()),
        "state bundle changed: {}",
        st["bundle"]
    );
    let out = b.read("container.out");
    let err = b.read("container.err");
    c.must(&["delete", &id])?;
    verbose_dump(&out);
    judge_tap(&out, &err)
}

/// An unknown annotation and an unknown top-level property are accepted.
pub fn misc_props(c: &mut Ctx) -> Res {
    let mut cfg = checker_cfg();
    set(
        &mut cfg,
        "annotations",
        json!({"org.berth.conformance.unknown": "anything", "x": ""}),
    );
    c.run_inside(cfg)?;
    let mut cfg = checker_cfg();
    set(
        &mut cfg,
        "berthUnknownProperty",
        json!({"nested": [1, 2, 3]}),
    );
    set(&mut cfg, "process/unknownProcessProperty", json!(true));
    c.run_inside(cfg).map(|_| ())
}

/// runtime-spec: ociVersion is SemVer 2.0.0; a runtime MUST error on a version it
/// cannot support. `invalid` is no version at all, so create must fail.
pub fn misc_props_invalid_version(c: &mut Ctx) -> Res {
    let mut cfg = default_config(&["/bin/true"], "/placeholder");
    set(&mut cfg, "ociVersion", json!("invalid"));
    let (id, b) = c.prepare(cfg, false)?;
    let out = c.create(&b, &id);
    ensure!(
        !out.ok(),
        "create accepted ociVersion \"invalid\" (the spec requires an error)"
    );
    ensure!(
        c.rt(&["state", &id]).code != Some(0),
        "state works after the refused create"
    );
    Ok(())
}
