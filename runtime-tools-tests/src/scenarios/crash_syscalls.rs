//! Crash safety by step, not by time: the runtime runs under ptrace and is SIGKILLed
//! at the entry of its N-th system call (`ptrace_kill.rs`), for N over the syscalls
//! the verb makes, then `delete --force` must succeed and leave nothing of the
//! container (no cgroup in any hierarchy, no mount, no state entry, no process).
//! Unlike a kill after a delay, each point is the same step on every machine.

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::crash_create::{clean_up, leftovers_of, processes_of};
use super::hooks::cfg_sh;
use crate::bundle::Bundle;
use crate::ctx::Ctx;
use crate::ptrace_kill::{self, Ending, Traced};
use crate::spec::default_config;
use crate::verdict::{Res, Verdict};
use crate::{cgroup, ensure, fail, skip};

/// Longest one traced run may take before it is killed with its process group.
const RUN_LIMIT: Duration = Duration::from_secs(5);

/// At most this many kill points per sweep (create sweeps twice: two configs); a verb
/// that makes more syscalls is sampled (see [`points`]).
const CREATE_POINTS: usize = 500;
const EXEC_POINTS: usize = 300;
const DELETE_POINTS: usize = 300;

/// For create, the id is created again (and deleted) after every this many kills.
const RECREATE_EVERY: usize = 10;

/// The kill points (1-based syscall indices) for a verb whose run to its end entered
/// the syscalls `profile`: all of them when there are at most `cap`. Otherwise the
/// first, the last, the point right after every syscall that may act outside the
/// process (a kill after a read or an mmap leaves what a kill before it leaves), and
/// every k-th of the rest, thinned evenly to about `cap`.
pub(crate) fn points(profile: &[u64], cap: usize) -> Vec<u64> {
    let total = profile.len() as u64;
    if profile.len() <= cap {
        return (1..=total).collect();
    }
    let mut acting: Vec<u64> = profile
        .iter()
        .enumerate()
        .filter(|(_, nr)| !ptrace_kill::is_local(**nr))
        .map(|(i, _)| i as u64 + 2)
        .filter(|n| *n <= total)
        .collect();
    if acting.len() > cap * 3 / 4 {
        acting = thin(&acting, cap * 3 / 4);
    }
    let rest = (cap - acting.len()).max(1) as u64;
    let k = total.div_ceil(rest).max(1);
    let mut all: Vec<u64> = acting
        .into_iter()
        .chain((1..=total).step_by(k as usize))
        .chain([1, total])
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// How many syscalls of `profile` may act outside the process.
fn acting(profile: &[u64]) -> usize {
    profile
        .iter()
        .filter(|nr| !ptrace_kill::is_local(**nr))
        .count()
}

/// About `n` of `v`, evenly spread.
fn thin(v: &[u64], n: usize) -> Vec<u64> {
    let step = v.len().div_ceil(n.max(1));
    v.iter().step_by(step.max(1)).copied().collect()
}

/// The id a sweep is working on: deleted (and its cgroups removed) if the sweep stops
/// early, since only the sweep's stem id is registered with the context.
struct InHand<'c, 's> {
    c: &'c Ctx<'s>,
    id: Option<String>,
}

impl Drop for InHand<'_, '_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let _ = self.c.rt(&["delete", "--force", &id]);
            for pid in processes_of(&id, std::path::Path::new("/nonexistent")) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            clean_up(&cgroup::hierarchies(), &id);
        }
    }
}

/// One line for a point: which syscall the kill stopped and what was left.
fn at(t: &Traced, what: &str) -> String {
    format!("{}: {what}", t.describe_kill())
}

/// `delete --force` after a kill: must succeed without a warning, and leave nothing
/// (processes get up to 2 s to die with their cgroup). Cleans up what is left.
fn follow_up_delete(c: &Ctx, id: &str, b: &Bundle) -> Vec<String> {
    let hierarchies = cgroup::hierarchies();
    let mut found = Vec::new();
    let del = c.rt(&["delete", "--force", id]);
    if !del.ok() {
        found.push(del.describe());
    } else if !del.stderr.trim().is_empty() {
        found.push(format!("delete --force warned: {}", del.stderr.trim()));
    }
    let t = Instant::now();
    let mut left = leftovers_of(c, &hierarchies, id, &b.rootfs());
    let dying = |l: &[String]| l.iter().any(|f| f.starts_with("process "));
    while dying(&left) && t.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(50));
        left = leftovers_of(c, &hierarchies, id, &b.rootfs());
    }
    if !left.is_empty() {
        let _ = c.rt(&["delete", "--force", id]);
        // What no cgroup holds (an intermediate that outlived its runtime) too.
        for pid in processes_of(id, &b.rootfs()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        clean_up(&hierarchies, id);
    }
    found.extend(left);
    found
}

/// The verdict of a sweep: every point clean, and at least one kill landed.
fn judge(verb: &str, tried: usize, killed: usize, left: &[String], took: Duration) -> Res {
    println!("# {verb}: {tried} syscall kill points ({killed} killed mid-run) in {took:.1?}");
    ensure!(
        killed > 0,
        "no {verb} was killed before its end: the sweep interrupted nothing"
    );
    if !left.is_empty() {
        let shown: Vec<&str> = left.iter().take(8).map(String::as_str).collect();
        fail!(
            "{} of {tried} {verb} kill points left something or failed: {}{}",
            left.len(),
            shown.join(" | "),
            if left.len() > 8 { " | ..." } else { "" }
        );
    }
    Ok(())
}

/// Runs the verb once traced to its end; its syscalls, or why it failed.
fn profile(c: &Ctx, args: &[&str]) -> Result<Vec<u64>, Verdict> {
    let t = ptrace_kill::run(&c.suite.rt, args, None, RUN_LIMIT).map_err(Verdict::Fail)?;
    match t.ending {
        Ending::Finished(Some(0)) => Ok(t.syscalls),
        e => fail!(
            "`{}` traced to its end: {e:?} after {} syscalls; stderr: {}",
            args.join(" "),
            t.syscalls.len(),
            t.stderr.trim()
        ),
    }
}

/// `create` SIGKILLed at each of its syscalls (sampled to [`CREATE_POINTS`] per
/// config), for a container with the default cgroup path and one whose cgroupsPath
/// has a parent that does not exist yet; then `delete --force` succeeds and leaves
/// nothing, an id whose state file is on disk is listed, and every
/// [`RECREATE_EVERY`] points the id is created again and deleted.
pub fn crash_create_syscall_kill_then_delete(c: &mut Ctx) -> Res {
    if let Some(why) = ptrace_kill::unsupported() {
        skip!("{why}");
    }
    ensure!(
        !cgroup::hierarchies().is_empty(),
        "no cgroup hierarchy mounted: cannot check what a killed create leaves"
    );
    let started = Instant::now();
    let mut base = default_config(&["/bin/sleep", "3600"], "/placeholder");
    if let Some(linux) = base.get_mut("linux").and_then(|l| l.as_object_mut()) {
        linux.remove("cgroupsPath");
    }
    // The ids of a sweep are `<stem>-<n>`; only the stem is registered with the
    // context (each point is deleted and checked here).
    let mut sweeps = Vec::new();
    for nested in [false, true] {
        let stem = c.new_id();
        let b = c.bundle(&stem, false)?;
        sweeps.push((nested, stem, b));
    }
    let c: &Ctx = c;
    let mut hand = InHand { c, id: None };
    let (mut tried, mut killed) = (0, 0);
    let mut left = Vec::new();
    for (nested, stem, b) in &sweeps {
        let kind = if *nested {
            "nested cgroupsPath"
        } else {
            "default cgroup"
        };
        // The nested path's parent, named for the id, does not exist before create.
        let write_cfg = |id: &str| {
            let mut cfg = base.clone();
            if *nested {
                let rel = format!("/{}/{id}/ctr", c.suite.cg_parent);
                crate::spec::set(
                    &mut cfg,
                    "linux/cgroupsPath",
                    serde_json::Value::String(rel),
                );
            }
            b.write_config(&cfg)
        };
        let bp = b.path_str();
        let id = format!("{stem}-0");
        hand.id = Some(id.clone());
        write_cfg(&id)?;
        let prof = profile(c, &["create", "--bundle", &bp, &id])?;
        let found = follow_up_delete(c, &id, b);
        hand.id = None;
        if !found.is_empty() {
            left.push(format!(
                "{kind}: delete of a create run to its end left: {}",
                found.join("; ")
            ));
        }
        let pts = points(&prof, CREATE_POINTS);
        println!(
            "# create ({kind}): {} syscalls ({} acting), {} kill points",
            prof.len(),
            acting(&prof),
            pts.len()
        );
        for (i, n) in pts.iter().enumerate() {
            let id = format!("{stem}-{n}");
            hand.id = Some(id.clone());
            write_cfg(&id)?;
            let t = ptrace_kill::run(
                &c.suite.rt,
                &["create", "--bundle", &bp, &id],
                Some(*n),
                RUN_LIMIT,
            )
            .map_err(Verdict::Fail)?;
            tried += 1;
            let mut bad = Vec::new();
            match t.ending {
                Ending::Killed { .. } => killed += 1,
                Ending::TimedOut => bad.push("timed out".to_string()),
                Ending::Finished(_) => {}
            }
            let state_file = c.suite.rt.root.join(&id).join("state.json");
            if state_file.exists() {
                let out = c.rt(&["list", "-q"]);
                if !out.stdout.lines().any(|l| l == id) {
                    bad.push(format!(
                        "{} on disk but `list -q` omits it",
                        state_file.display()
                    ));
                }
            }
            bad.extend(follow_up_delete(c, &id, b));
            if i % RECREATE_EVERY == RECREATE_EVERY - 1 {
                let again = c.create(b, &id);
                if !again.ok() {
                    bad.push(format!(
                        "create again after the delete failed: {}",
                        again.describe()
                    ));
                }
                let found = follow_up_delete(c, &id, b);
                if !found.is_empty() {
                    bad.push(format!(
                        "delete of the re-created id left: {}",
                        found.join("; ")
                    ));
                }
            }
            hand.id = None;
            if !bad.is_empty() {
                left.push(format!("{kind}: {}", at(&t, &bad.join("; "))));
            }
        }
    }
    judge("create", tried, killed, &left, started.elapsed())
}

/// Starts container `id` (`sleep`, in a cgroup of this run) from bundle `b`, whose
/// config is rewritten for the id.
fn running(c: &Ctx, b: &Bundle, id: &str) -> Res {
    let mut cfg = cfg_sh("exec sleep 600");
    let rel = format!("/{}/{id}", c.suite.cg_parent);
    crate::spec::set(
        &mut cfg,
        "linux/cgroupsPath",
        serde_json::Value::String(rel),
    );
    b.write_config(&cfg)?;
    c.must_create(b, id)?;
    c.must(&["start", id])?;
    Ok(())
}

/// A sweep over a verb run on a running container: `args_of(id)` is profiled once,
/// then SIGKILLed at each point on a fresh container, followed by `delete --force` and
/// the leftover checks. The ids are `<stem>-<n>` from one bundle; only the stem is
/// registered with the context (each point is deleted and checked here).
fn sweep_running(c: &mut Ctx, verb: &str, cap: usize, args_of: fn(&str) -> Vec<String>) -> Res {
    if let Some(why) = ptrace_kill::unsupported() {
        skip!("{why}");
    }
    let started = Instant::now();
    let stem = c.new_id();
    let b = c.bundle(&stem, false)?;
    let c: &Ctx = c;
    let mut hand = InHand { c, id: None };
    let id = format!("{stem}-0");
    hand.id = Some(id.clone());
    running(c, &b, &id)?;
    let args = args_of(&id);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let prof = profile(c, &argv)?;
    let found = follow_up_delete(c, &id, &b);
    hand.id = None;
    ensure!(
        found.is_empty(),
        "delete after a {verb} run to its end left: {}",
        found.join("; ")
    );
    let pts = points(&prof, cap);
    println!(
        "# {verb}: {} syscalls ({} acting), {} kill points",
        prof.len(),
        acting(&prof),
        pts.len()
    );
    let (mut killed, mut left) = (0, Vec::new());
    for n in &pts {
        let id = format!("{stem}-{n}");
        hand.id = Some(id.clone());
        running(c, &b, &id)?;
        let args = args_of(&id);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let t = ptrace_kill::run(&c.suite.rt, &argv, Some(*n), RUN_LIMIT).map_err(Verdict::Fail)?;
        match t.ending {
            Ending::Killed { .. } => killed += 1,
            Ending::TimedOut => left.push(at(&t, "timed out")),
            Ending::Finished(_) => {}
        }
        let found = follow_up_delete(c, &id, &b);
        hand.id = None;
        if !found.is_empty() {
            left.push(at(&t, &found.join("; ")));
        }
    }
    judge(verb, pts.len(), killed, &left, started.elapsed())
}

/// `exec --detach` of a long sleep into a running container (as engines exec: the
/// runtime returns once the process runs), SIGKILLed at each of its syscalls (sampled to [`EXEC_POINTS`]), each on a fresh container; then `delete
/// --force` succeeds and leaves nothing (no exec'd process or intermediate either).
pub fn crash_exec_syscall_kill_then_delete(c: &mut Ctx) -> Res {
    sweep_running(c, "exec", EXEC_POINTS, |id| {
        ["exec", "--detach", id, "/bin/sleep", "601"]
            .map(String::from)
            .to_vec()
    })
}

/// `delete --force` of a running container SIGKILLed at each of its syscalls (sampled
/// to [`DELETE_POINTS`]); a second `delete --force` succeeds and leaves nothing.
pub fn crash_delete_syscall_kill_then_delete(c: &mut Ctx) -> Res {
    sweep_running(c, "delete", DELETE_POINTS, |id| {
        ["delete", "--force", id].map(String::from).to_vec()
    })
}

#[cfg(test)]
mod tests {
    use super::points;

    #[test]
    fn all_points_when_few() {
        let p = points(&[0; 50], 100);
        assert_eq!(p, (1..=50).collect::<Vec<_>>());
    }

    #[test]
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    fn sampled_points_keep_those_after_acting_syscalls() {
        // 1000 syscalls: reads but for a mkdirat at index 500 (syscall #501).
        let mut prof = vec![libc::SYS_read as u64; 1000];
        prof[500] = libc::SYS_mkdirat as u64;
        let p = points(&prof, 100);
        assert!(p.contains(&502), "the point right after the mkdir");
        assert!(p.contains(&1) && p.contains(&1000));
        assert!(p.len() <= 110, "{}", p.len());
        assert!(p.windows(2).all(|w| w[0] < w[1]));
    }
}
