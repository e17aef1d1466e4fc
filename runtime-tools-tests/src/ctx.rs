//! Per-scenario context: unique ids, bundles, lifecycle helpers, and a cleanup guard.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::bundle::{self, Bundle};
use crate::runtime::{CmdOut, Runtime};
use crate::verdict::{Res, Verdict};
use crate::{cgroup, fail, reaper};

/// What all scenarios share: the runtime, the checker, the work area.
pub struct Suite {
    pub rt: Runtime,
    pub checker: Option<PathBuf>,
    pub bundles: PathBuf,
    /// Parent cgroup (relative to each hierarchy) for every container of this run.
    pub cg_parent: String,
    pub counter: Cell<u64>,
}

/// One scenario's resources; dropping it kills and deletes its containers and removes
/// its bundles, cgroups and helper processes.
pub struct Ctx<'a> {
    pub suite: &'a Suite,
    pub name: &'static str,
    ids: Vec<String>,
    /// Containers kept in another state directory (`--root`), with that directory.
    alt_ids: Vec<(PathBuf, String)>,
    bundles: Vec<PathBuf>,
    cgroups: Vec<String>,
    helpers: Vec<i32>,
}

impl<'a> Ctx<'a> {
    pub fn new(suite: &'a Suite, name: &'static str) -> Ctx<'a> {
        suite.rt.start_budget();
        Ctx {
            suite,
            name,
            ids: Vec::new(),
            alt_ids: Vec::new(),
            bundles: Vec::new(),
            cgroups: Vec::new(),
            helpers: Vec::new(),
        }
    }

    /// A fresh id `<scenario>-<pid>-<counter>`, registered for cleanup.
    pub fn new_id(&mut self) -> String {
        let n = self.suite.counter.get() + 1;
        self.suite.counter.set(n);
        let id = format!("{}-{}-{}", self.name, std::process::id(), n);
        self.ids.push(id.clone());
        id
    }

    /// A fresh id (as `new_id`) for a container kept under the state directory
    /// `root`, registered for cleanup there.
    pub fn new_id_in(&mut self, root: &Path) -> String {
        let id = self.new_id();
        self.ids.retain(|i| i != &id);
        self.alt_ids.push((root.to_path_buf(), id.clone()));
        id
    }

    /// The cgroupsPath for a container of this run (under the run's parent cgroup).
    pub fn cgroups_path(&mut self, id: &str) -> String {
        let p = format!("/{}/{}", self.suite.cg_parent, id);
        self.cgroups.push(p.clone());
        p
    }

    /// Registers an extra cgroup path (relative to each hierarchy) for removal.
    pub fn own_cgroup(&mut self, rel: &str) {
        self.cgroups.push(rel.to_string());
    }

    /// Registers a scratch directory for removal.
    pub fn own_dir(&mut self, dir: &Path) {
        self.bundles.push(dir.to_path_buf());
    }

    /// Registers a helper process to be killed and reaped at cleanup.
    pub fn own_helper(&mut self, pid: i32) {
        reaper::protect(pid);
        self.helpers.push(pid);
    }

    /// A bundle directory named after the id, with or without the checker.
    pub fn bundle(&mut self, id: &str, with_checker: bool) -> Result<Bundle, Verdict> {
        let checker = if with_checker {
            match &self.suite.checker {
                Some(c) => Some(c.as_path()),
                None => return Err(Verdict::Skip("no checker binary found".into())),
            }
        } else {
            None
        };
        let b = Bundle::create(&self.suite.bundles, id, checker)?;
        self.bundles.push(b.dir.clone());
        Ok(b)
    }

    /// A new id, a bundle holding `cfg` (with the id's cgroupsPath filled in when the
    /// config has one), ready for `create`.
    pub fn prepare(
        &mut self,
        mut cfg: Value,
        with_checker: bool,
    ) -> Result<(String, Bundle), Verdict> {
        let id = self.new_id();
        if cfg.pointer("/linux/cgroupsPath").is_some() {
            let p = self.cgroups_path(&id);
            crate::spec::set(&mut cfg, "linux/cgroupsPath", Value::String(p));
        }
        let b = self.bundle(&id, with_checker)?;
        b.write_config(&cfg)?;
        Ok((id, b))
    }

    pub fn rt(&self, args: &[&str]) -> CmdOut {
        self.suite.rt.run(args)
    }

    /// `create --bundle B id`, with the container's stdout and stderr sent to files.
    pub fn create(&self, b: &Bundle, id: &str) -> CmdOut {
        self.create_with(b, id, &[])
    }

    pub fn create_with(&self, b: &Bundle, id: &str, extra: &[&str]) -> CmdOut {
        let bp = b.path_str();
        let mut args = vec!["create", "--bundle", bp.as_str()];
        args.extend_from_slice(extra);
        args.push(id);
        self.suite
            .rt
            .run_to(&args, &b.stdout_path(), &b.stderr_path())
    }

    /// create, failing the scenario with the runtime's words if it fails.
    pub fn must_create(&self, b: &Bundle, id: &str) -> Res {
        let out = self.create(b, id);
        if !out.ok() {
            fail!("create failed: {}", out.describe());
        }
        Ok(())
    }

    pub fn must(&self, args: &[&str]) -> Result<CmdOut, Verdict> {
        let out = self.rt(args);
        if !out.ok() {
            fail!("{}", out.describe());
        }
        Ok(out)
    }

    pub fn must_fail(&self, args: &[&str], why: &str) -> Result<CmdOut, Verdict> {
        let out = self.rt(args);
        if out.ok() {
            fail!("`{}` succeeded but must fail ({why})", out.argv);
        }
        if out.timed_out {
            fail!("`{}` timed out ({why})", out.argv);
        }
        if out.stderr.trim().is_empty() {
            fail!("`{}` failed without an error message on stderr", out.argv);
        }
        Ok(out)
    }

    /// `state id` parsed, or the failure.
    pub fn state(&self, id: &str) -> Result<Value, Verdict> {
        let out = self.must(&["state", id])?;
        serde_json::from_str(&out.stdout).map_err(|e| {
            Verdict::Fail(format!(
                "state {id}: output is not JSON ({e}): {}",
                out.stdout.trim()
            ))
        })
    }

    pub fn status(&self, id: &str) -> Result<String, Verdict> {
        let st = self.state(id)?;
        Ok(st["status"].as_str().unwrap_or("").to_string())
    }

    pub fn pid(&self, id: &str) -> Result<i32, Verdict> {
        let st = self.state(id)?;
        match st["pid"].as_i64() {
            Some(p) if p > 0 => Ok(p as i32),
            _ => fail!("state {id}: no positive pid in {st}"),
        }
    }

    /// Polls `state` (reaping orphans meanwhile) until the status is `want`.
    pub fn wait_status(&self, id: &str, want: &str, limit: Duration) -> Result<Value, Verdict> {
        self.poll_status(id, want, limit, true)
    }

    /// Polls `state` until the status is `want`; reaps orphans only if `reap`.
    pub fn poll_status(
        &self,
        id: &str,
        want: &str,
        limit: Duration,
        reap: bool,
    ) -> Result<Value, Verdict> {
        let t = Instant::now();
        // Without reaping, the runtime's own commands must not reap either.
        self.suite.rt.set_reaping(reap);
        let res = self.poll_status_inner(id, want, limit, reap, t);
        self.suite.rt.set_reaping(true);
        res
    }

    fn poll_status_inner(
        &self,
        id: &str,
        want: &str,
        limit: Duration,
        reap: bool,
        t: Instant,
    ) -> Result<Value, Verdict> {
        loop {
            if reap {
                reaper::reap_orphans();
            }
            let st = self.state(id)?;
            if st["status"].as_str() == Some(want) {
                return Ok(st);
            }
            if t.elapsed() > limit {
                fail!("{id} did not reach `{want}` within {limit:?}; last state {st}");
            }
            sleep(Duration::from_millis(20));
        }
    }

    pub fn wait_stopped(&self, id: &str) -> Result<Value, Verdict> {
        self.wait_status(id, "stopped", Duration::from_secs(10))
    }

    /// The "inside" lifecycle: create, start, wait for `stopped`, read stdout, delete.
    /// Fails on any `not ok` in the checker's output or a missing final plan line.
    pub fn run_inside(&mut self, cfg: Value) -> Result<String, Verdict> {
        let (id, b) = self.prepare(cfg, true)?;
        self.must_create(&b, &id)?;
        self.must(&["start", &id])?;
        self.wait_stopped(&id)?;
        let out = std::fs::read_to_string(b.stdout_path()).unwrap_or_default();
        let err = std::fs::read_to_string(b.stderr_path()).unwrap_or_default();
        self.must(&["delete", &id])?;
        verbose_dump(&out);
        judge_tap(&out, &err)?;
        Ok(out)
    }

    /// True if the runtime's state dir still has an entry for `id`.
    pub fn state_entry_exists(&self, id: &str) -> bool {
        self.suite.rt.root.join(id).exists()
    }
}

/// With BERTH_CONFORMANCE_VERBOSE set, echoes the checker's TAP as comments.
pub fn verbose_dump(out: &str) {
    if std::env::var_os("BERTH_CONFORMANCE_VERBOSE").is_some() {
        for l in out.lines() {
            println!("#   {l}");
        }
    }
}

/// Judges checker TAP: any `not ok` fails, and the last line must be the `1..N` plan.
pub fn judge_tap(out: &str, err: &str) -> Res {
    let bad: Vec<&str> = out.lines().filter(|l| l.starts_with("not ok")).collect();
    if !bad.is_empty() {
        let n = bad.len();
        let first: Vec<&str> = bad.into_iter().take(4).collect();
        fail!("{n} checks failed: {}", first.join(" ; "));
    }
    let last = out
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    if !last.starts_with("1..") {
        let e: String = err.trim().chars().take(300).collect();
        fail!("checker output truncated (last line {last:?}); container stderr: {e}");
    }
    Ok(())
}

impl Drop for Ctx<'_> {
    fn drop(&mut self) {
        self.suite.rt.end_budget();
        for id in self.ids.iter().rev() {
            let _ = self.suite.rt.run(&["kill", id, "KILL"]);
            let _ = self.suite.rt.run(&["delete", "--force", id]);
        }
        for (root, id) in self.alt_ids.iter().rev() {
            if let Ok(rt) = self.suite.rt.with_root(root) {
                let _ = rt.run(&["kill", id, "KILL"]);
                let _ = rt.run(&["delete", "--force", id]);
            }
        }
        for pid in self.helpers.drain(..) {
            let p = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(p, None);
            reaper::unprotect(pid);
        }
        reaper::reap_orphans();
        for b in &self.bundles {
            if let Err(e) = bundle::remove_tree(b) {
                eprintln!("# cleanup {}: {e}", self.name);
            }
        }
        for c in &self.cgroups {
            cgroup::remove_everywhere(c);
        }
    }
}

/// Reads a file as a trimmed string, or empty.
pub fn read_trim(p: &Path) -> String {
    std::fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judge_tap_needs_plan_and_no_failures() {
        assert!(judge_tap("ok 1 - a\nok 2 - b\n1..2\n", "").is_ok());
        assert!(judge_tap("ok 1 - a\nnot ok 2 - b: got 1 want 2\n1..2\n", "").is_err());
        assert!(judge_tap("ok 1 - a\n", "").is_err());
        assert!(judge_tap("", "").is_err());
    }
}
