//! `berth features`: the OCI runtime features document (runtime-spec features.md) for
//! this build on this host, with berth's own annotations.

use anyhow::Context;
use serde_json::{json, Value};
use std::io::Write;

/// `features` (no flags).
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Prints the document, indented as runc does.
pub fn run(globals: &crate::cli::Globals, _args: Args) -> anyhow::Result<()> {
    let doc = document(&globals.criu)?;
    let mut out = std::io::stdout().lock();
    let text = serde_json::to_string_pretty(&doc).context("serialize features")?;
    out.write_all(text.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .context("write features to stdout")
}

/// The library's features plus what only the binary knows: its version, commit, and
/// whether a `criu` binary is there for checkpoint/restore.
pub fn document(criu: &str) -> anyhow::Result<Value> {
    let mut doc = serde_json::to_value(berth_runtime::features()).context("serialize features")?;
    drop_nulls(&mut doc);
    if let Some(linux) = doc.get_mut("linux").and_then(Value::as_object_mut) {
        linux
            .entry("mountExtensions")
            .or_insert_with(|| json!({ "idmap": { "enabled": false } }));
    }
    let annotations = doc
        .as_object_mut()
        .context("features document is not an object")?
        .entry("annotations")
        .or_insert_with(|| json!({}));
    if let Some(a) = annotations.as_object_mut() {
        a.insert("org.berth.version".into(), env!("CARGO_PKG_VERSION").into());
        a.insert("org.berth.commit".into(), env!("BERTH_COMMIT").into());
        let criu_found = berth_runtime::criu::find(criu).is_some();
        a.insert(
            "org.berth.checkpoint.enabled".into(),
            criu_found.to_string().into(),
        );
    }
    Ok(doc)
}

/// Leaves out fields without a value (the spec's optional fields are omitted, not null).
fn drop_nulls(v: &mut Value) {
    if let Value::Object(map) = v {
        map.retain(|_, v| !v.is_null());
        map.values_mut().for_each(drop_nulls);
    }
}
