//! Crash safety of `create`: SIGKILL to the runtime at many points of a create, then
//! `delete --force`, must leave nothing of the container: no cgroup directory in any
//! hierarchy, no mount, no state entry, no process.

use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::bundle::{mounts_under, Bundle};
use crate::ctx::Ctx;
use crate::spec::default_config;
use crate::verdict::{Res, Verdict};
use crate::{cgroup, ensure, fail};

/// Delays from the start of `create` to the SIGKILL: dense over the first 8 ms
/// (0.1 ms steps, where the state directory and the cgroups are made), then 1 ms
/// steps to 40 ms (namespaces, mounts, the init, hooks).
const STEPS: u32 = 112;

fn delay_of(step: u32) -> Duration {
    if step < 80 {
        Duration::from_micros(100 * u64::from(step))
    } else {
        Duration::from_millis(8 + u64::from(step - 80))
    }
}
/// After this many kills, the same id is created again (and deleted) once.
const RECREATE_EVERY: u32 = 10;

/// `create` killed 0-40 ms after it starts (112 points), then `delete --force`: nothing
/// of the container is left, an id whose create died is listed while its state is on
/// disk, and the id can be created again once deleted.
pub fn crash_create_kill_then_delete(c: &mut Ctx) -> Res {
    let hierarchies = cgroup::hierarchies();
    ensure!(
        !hierarchies.is_empty(),
        "no cgroup hierarchy mounted: cannot check what a killed create leaves"
    );
    let mut cfg = default_config(&["/bin/sleep", "3600"], "/placeholder");
    // The runtime's default cgroup (<caller's cgroup>/<id>), as an engine without a
    // cgroupsPath gets.
    if let Some(linux) = cfg.get_mut("linux").and_then(|l| l.as_object_mut()) {
        linux.remove("cgroupsPath");
    }
    let first = c.new_id();
    let b = c.bundle(&first, false)?;
    b.write_config(&cfg)?;
    // Every other kill uses a cgroupsPath whose parent (named for the id) does not
    // exist yet: the runtime makes it, and must record it before it does.
    let nested_id = c.new_id();
    let nested = c.bundle(&nested_id, false)?;
    let started = Instant::now();
    let mut left = Vec::new();
    let mut reached_created = 0;
    for step in 0..STEPS {
        let id = if step == 0 { first.clone() } else { c.new_id() };
        let delay = delay_of(step);
        let b = if step % 2 == 1 {
            let rel = format!("/{}/{id}/ctr", c.suite.cg_parent);
            c.own_cgroup(&rel);
            c.own_cgroup(&format!("/{}/{id}", c.suite.cg_parent));
            let mut cfg = cfg.clone();
            crate::spec::set(
                &mut cfg,
                "linux/cgroupsPath",
                serde_json::Value::String(rel),
            );
            nested.write_config(&cfg)?;
            &nested
        } else {
            &b
        };
        let outcome = kill_create_at(c, b, &id, delay)?;
        if outcome.created {
            reached_created += 1;
        }
        if let Some(listed_bug) = outcome.not_listed {
            left.push(format!("{delay:?}: {listed_bug}"));
        }
        let del = c.rt(&["delete", "--force", &id]);
        if !del.ok() {
            left.push(format!("{delay:?}: {}", del.describe()));
        } else if !del.stderr.trim().is_empty() {
            left.push(format!(
                "{delay:?}: delete --force warned: {}",
                del.stderr.trim()
            ));
        }
        let found = leftovers_of(c, &hierarchies, &id, &b.rootfs());
        if !found.is_empty() {
            left.push(format!("{delay:?}: {}", found.join("; ")));
            clean_up(&hierarchies, &id);
        }
        if step % RECREATE_EVERY == RECREATE_EVERY - 1 {
            let again = c.create(b, &id);
            if !again.ok() {
                left.push(format!(
                    "{delay:?}: second create of {id} after delete failed: {}",
                    again.describe()
                ));
            }
            let _ = c.rt(&["delete", "--force", &id]);
            let found = leftovers_of(c, &hierarchies, &id, &b.rootfs());
            if !found.is_empty() {
                clean_up(&hierarchies, &id);
            }
        }
        if started.elapsed() > Duration::from_secs(90) {
            fail!("{step} kills took over 90 s; left so far: {left:?}");
        }
    }
    // Every kill landed before the end of create, or the sweep tested nothing late.
    ensure!(
        reached_created < STEPS,
        "every create finished before its kill: the sweep did not interrupt any create"
    );
    ensure!(
        left.is_empty(),
        "{} of {STEPS} kills left something after delete --force: {}",
        left.len(),
        left.join(" | ")
    );
    Ok(())
}

struct Outcome {
    /// The create finished before the kill.
    created: bool,
    /// Why the id was not listed although its state file was on disk.
    not_listed: Option<String>,
}

/// Starts `create`, SIGKILLs the runtime process (not its group: what it forked is
/// left as a crash leaves it) after `delay`, and checks `list` for the id.
fn kill_create_at(c: &Ctx, b: &Bundle, id: &str, delay: Duration) -> Result<Outcome, Verdict> {
    let bp = b.path_str();
    let mut bg = c
        .suite
        .rt
        .spawn(&["create", "--bundle", &bp, id])
        .map_err(Verdict::Fail)?;
    sleep(delay);
    let _ = kill(Pid::from_raw(bg.pid()), Signal::SIGKILL);
    let code = bg
        .wait_exit(Duration::from_secs(10))
        .map_err(Verdict::Fail)?;
    drop(bg);
    let created = code == Some(0);
    let state_file = c.suite.rt.root.join(id).join("state.json");
    let mut not_listed = None;
    if state_file.exists() {
        let out = c.rt(&["list", "-q"]);
        if !out.stdout.lines().any(|l| l == id) {
            not_listed = Some(format!(
                "{id} has {} but `list -q` does not show it ({})",
                state_file.display(),
                out.describe()
            ));
        }
    }
    Ok(Outcome {
        created,
        not_listed,
    })
}

/// What is left of container `id` (rootfs `rootfs`) after its delete, one line per
/// thing: its cgroups in every hierarchy, mounts, state entry and processes.
pub(super) fn leftovers_of(
    c: &Ctx,
    hierarchies: &[PathBuf],
    id: &str,
    rootfs: &Path,
) -> Vec<String> {
    let root = c.suite.rt.root.as_path();
    crate::reaper::reap_orphans();
    let mut found = Vec::new();
    for h in hierarchies {
        for dir in dirs_named(h, id, 8) {
            found.push(format!("cgroup {}", dir.display()));
        }
    }
    for dir in [rootfs.to_path_buf(), root.join(id)] {
        for m in mounts_under(&dir) {
            found.push(format!("mount {}", m.display()));
        }
    }
    if root.join(id).exists() {
        found.push(format!("state directory {}", root.join(id).display()));
    }
    let out = c.rt(&["list", "-q"]);
    if out.stdout.lines().any(|l| l == id) {
        found.push(format!("`list` still shows {id}"));
    }
    for pid in processes_of(id, rootfs) {
        found.push(format!("process {pid}"));
    }
    found
}

/// Directories named `name` at most `depth` levels below `dir` (no symlinks).
fn dirs_named(dir: &Path, name: &str, depth: u32) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let Ok(t) = e.file_type() else { continue };
        if !t.is_dir() {
            continue;
        }
        let p = e.path();
        if e.file_name() == name {
            out.push(p.clone());
        }
        if depth > 1 {
            out.extend(dirs_named(&p, name, depth - 1));
        }
    }
    out
}

/// Live (not zombie) processes of container `id`: in a cgroup named for it, run from
/// a command line naming it (the runtime's forks keep berth's), or with their cwd or
/// root in `rootfs`.
pub(super) fn processes_of(id: &str, rootfs: &Path) -> Vec<i32> {
    live_processes(|dir| {
        let cg = std::fs::read_to_string(dir.join("cgroup")).unwrap_or_default();
        let in_cgroup = cg.lines().any(|l| {
            l.rsplit(':')
                .next()
                .is_some_and(|p| p.split('/').any(|c| c == id))
        });
        let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
        let named = cmdline.split(|b| *b == 0).any(|a| a == id.as_bytes());
        in_cgroup || named || has_cwd_or_root_under(dir, rootfs)
    })
}

/// Whether the process at `/proc/<pid>` (`dir`) has its cwd or root under `under`.
pub(super) fn has_cwd_or_root_under(dir: &Path, under: &Path) -> bool {
    ["cwd", "root"]
        .iter()
        .any(|l| std::fs::read_link(dir.join(l)).is_ok_and(|p| p.starts_with(under)))
}

/// The live processes (neither zombie nor dead), other than this one, whose
/// `/proc/<pid>` directory `keep` accepts.
pub(super) fn live_processes(mut keep: impl FnMut(&Path) -> bool) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let dir = e.path();
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
        match stat.rsplit_once(") ") {
            Some((_, rest)) if !rest.starts_with('Z') && !rest.starts_with('X') => {}
            _ => continue,
        }
        if keep(&dir) {
            out.push(pid);
        }
    }
    out
}

/// Kills what a failed delete left and removes its cgroups, so the host stays clean.
pub(super) fn clean_up(hierarchies: &[PathBuf], id: &str) {
    for h in hierarchies {
        let mut dirs = Vec::new();
        for top in dirs_named(h, id, 8) {
            dirs.extend(subdirs(&top));
            dirs.push(top);
        }
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for d in dirs {
            let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            let t = Instant::now();
            while std::fs::remove_dir(&d).is_err() && t.elapsed() < Duration::from_secs(2) {
                crate::reaper::reap_orphans();
                sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Every directory below `dir` (no symlinks).
fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(subdirs(&e.path()));
            out.push(e.path());
        }
    }
    out
}
