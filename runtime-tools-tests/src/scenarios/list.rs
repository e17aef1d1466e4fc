//! `list` with 100 created containers: every one listed, in bounded time.

use std::time::{Duration, Instant};

use crate::ctx::Ctx;
use crate::ensure;
use crate::spec::default_config;
use crate::verdict::{Res, Verdict};

pub fn list_many(c: &mut Ctx) -> Res {
    let mut ids = Vec::new();
    for _ in 0..100 {
        let (id, b) = c.prepare(default_config(&["/bin/sleep", "60"], "/placeholder"), false)?;
        c.must_create(&b, &id)?;
        ids.push(id);
    }
    let t = Instant::now();
    let out = c.must(&["list", "--format", "json"])?;
    let took = t.elapsed();
    let list: serde_json::Value = serde_json::from_str(out.stdout.trim())
        .map_err(|e| Verdict::Fail(format!("list json: {e}")))?;
    let listed: Vec<&str> = list
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["id"].as_str()).collect())
        .unwrap_or_default();
    let missing: Vec<&String> = ids
        .iter()
        .filter(|i| !listed.contains(&i.as_str()))
        .collect();
    ensure!(
        missing.is_empty(),
        "{} containers not listed, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    ensure!(
        took < Duration::from_secs(2),
        "list of 100 containers took {took:?}"
    );
    let out = c.must(&["list", "-q"])?;
    ensure!(
        ids.iter().all(|i| out.stdout.lines().any(|l| l == i)),
        "list -q misses ids"
    );
    for id in &ids {
        c.must(&["delete", "--force", id])?;
    }
    Ok(())
}
