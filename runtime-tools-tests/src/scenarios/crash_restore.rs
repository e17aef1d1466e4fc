//! Crash safety of `restore`: the runtime SIGKILLed at points of a restore (by step,
//! at sampled system calls under ptrace, and by time), then `delete --force`, must
//! leave nothing of the container: no cgroup in any hierarchy, no mount (the rootfs
//! bind CRIU restores into included), no state entry, no process (CRIU itself, or a
//! tree CRIU went on restoring after the runtime died: found by cgroup, by the id on
//! a command line, or by a marker in the container's environment and argv); the
//! rootfs is intact, an id whose state file is there is listed, and the same id
//! restores again afterwards.
//!
//! Only the runtime's main process is traced: CRIU, its child, runs untraced and may
//! finish restoring after the runtime died, as in a real crash. CRIU works only in the
//! VM lane's guest (`conformance checkpoint strict`); elsewhere this skips with CRIU's
//! reason. Each restore costs seconds there (15-40x slower than the host), so the
//! syscall points are sampled (about 20, spread over the whole restore, with the
//! points around its fork of CRIU, its "go" to CRIU and its wait for CRIU always in)
//! and the time points are a few fractions of a full restore.

use std::collections::BTreeMap;
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::json;

use super::checkpoint::{count, wait_count};
use super::contract_checkpoint::need_criu;
use super::crash_create::{clean_up, leftovers_of, live_processes, processes_of};
use super::crash_syscalls::points;
use crate::bundle::{mounts_under, Bundle};
use crate::ctx::Ctx;
use crate::ptrace_kill::{self, Ending, Traced};
use crate::spec::{default_config, push};
use crate::verdict::{Res, Verdict};
use crate::{cgroup, ensure, fail, skip};

/// One traced restore may take this long (seconds under emulation) before it is
/// killed with its process group (CRIU too).
const RUN_LIMIT: Duration = Duration::from_secs(120);
/// About this many syscall kill points ([`points`]), plus those around the fork,
/// the "go" and the wait.
const SYSCALL_POINTS: usize = 16;
/// Kills by time: these percentages of a whole traced restore's duration (an
/// untraced one is shorter).
const TIME_POINTS: [u32; 4] = [5, 20, 40, 60];
/// After every this many kill points, the id is restored to its end (and deleted).
const RESTORE_AGAIN_EVERY: usize = 7;
/// The whole sweep must end within this (the guest's conformance step has 600 s for
/// every checkpoint scenario), and its runtime commands get this budget.
const SWEEP_LIMIT: Duration = Duration::from_secs(420);
/// How long the processes of a deleted container get to be gone (the guest is slow).
const DYING: Duration = Duration::from_secs(10);
/// The environment variable carrying the container's marker.
const MARK_VAR: &str = "BERTH_RESTORE_MARK";
/// A file the sweep puts in the rootfs: still there after every delete, or the
/// rootfs was emptied through a bind left in the state directory.
const CANARY: &str = "restore-kill-canary";

/// Mount id -> (mount point, filesystem type, source), from /proc/self/mountinfo.
fn mount_table() -> BTreeMap<u64, String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let id = l.split(' ').next()?.parse().ok()?;
            let point = crate::bundle::unescape(l.split(' ').nth(4)?);
            let (_, after) = l.split_once(" - ")?;
            let mut f = after.split(' ');
            let (fstype, source) = (f.next()?, f.next()?);
            Some((id, format!("{point} ({fstype} {source})")))
        })
        .collect()
}

/// The mount point of mount `id` now, if it is still mounted.
fn mount_point_of(id: u64) -> Option<std::path::PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(' ');
        if f.next()?.parse::<u64>().ok()? != id {
            return None;
        }
        Some(std::path::PathBuf::from(crate::bundle::unescape(f.nth(3)?)))
    })
}

/// Live (not zombie) processes carrying `mark` in their environment or command line.
fn marked_processes(mark: &str) -> Vec<i32> {
    let needle = mark.as_bytes();
    let has = |hay: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    live_processes(|dir| {
        let env = std::fs::read(dir.join("environ")).unwrap_or_default();
        let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
        has(&env) || has(&cmdline)
    })
}

/// Whether syscall `nr` is one around which a kill leaves something new: the fork of
/// CRIU, the "go" sent to it, the wait for it.
fn pivotal(nr: u64) -> bool {
    const CALLS: &[i64] = &[
        libc::SYS_clone,
        libc::SYS_clone3,
        libc::SYS_wait4,
        libc::SYS_waitid,
        libc::SYS_sendto,
        libc::SYS_sendmsg,
    ];
    #[cfg(target_arch = "x86_64")]
    const LEGACY: &[i64] = &[libc::SYS_fork, libc::SYS_vfork];
    #[cfg(not(target_arch = "x86_64"))]
    const LEGACY: &[i64] = &[];
    CALLS.iter().chain(LEGACY).any(|c| *c as u64 == nr)
}

/// The kill points for a restore whose run to its end entered `profile`: about
/// `cap` spread over all of it ([`points`]), and the entry of every pivotal syscall
/// and the one after it (the call not run, and run).
fn restore_points(profile: &[u64], cap: usize) -> Vec<u64> {
    let total = profile.len() as u64;
    let mut all = points(profile, cap);
    for (i, nr) in profile.iter().enumerate() {
        if pivotal(*nr) {
            all.extend([i as u64 + 1, i as u64 + 2]);
        }
    }
    all.retain(|n| (1..=total).contains(n));
    all.sort_unstable();
    all.dedup();
    all
}

/// What the sweep checks after each kill, for one container.
struct Sweep<'c, 's> {
    c: &'c Ctx<'s>,
    id: &'c str,
    b: &'c Bundle,
    mark: &'c str,
    args: Vec<String>,
    mounts_before: BTreeMap<u64, String>,
    /// The counter's value at checkpoint time: a restore goes on from there.
    before: u64,
}

impl Sweep<'_, '_> {
    fn argv(&self) -> Vec<&str> {
        self.args.iter().map(String::as_str).collect()
    }

    /// After a kill: an id whose state file is on disk is listed.
    fn listed(&self) -> Option<String> {
        let state_file = self.c.suite.rt.root.join(self.id).join("state.json");
        if !state_file.exists() {
            return None;
        }
        let out = self.c.rt(&["list", "-q"]);
        (!out.stdout.lines().any(|l| l == self.id)).then(|| {
            format!(
                "{} on disk but `list -q` omits it ({})",
                state_file.display(),
                out.describe()
            )
        })
    }

    /// Everything of the container still there, one line each.
    fn leftovers(&self) -> Vec<String> {
        let hierarchies = cgroup::hierarchies();
        let mut found = leftovers_of(self.c, &hierarchies, self.id, &self.b.rootfs());
        for pid in marked_processes(self.mark) {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            found.push(format!("marked process {pid} ({})", cmd.trim()));
        }
        for (id, m) in mount_table() {
            if !self.mounts_before.contains_key(&id) {
                found.push(format!("new mount {m}"));
            }
        }
        if !self.b.rootfs().join(CANARY).exists() || !self.b.rootfs().join("bin/sh").exists() {
            found.push(format!(
                "the rootfs {} was emptied",
                self.b.rootfs().display()
            ));
        }
        found
    }

    /// `delete --force` must succeed without a warning and leave nothing (processes
    /// get [`DYING`] to go). What is left is cleaned up, so the next point starts
    /// clean.
    fn delete_and_check(&self) -> Vec<String> {
        let mut found = Vec::new();
        let del = self.c.rt(&["delete", "--force", self.id]);
        if !del.ok() {
            found.push(del.describe());
        } else if !del.stderr.trim().is_empty() {
            found.push(format!("delete --force warned: {}", del.stderr.trim()));
        }
        let t = Instant::now();
        let mut left = self.leftovers();
        let dying = |l: &[String]| l.iter().any(|f| f.contains("process "));
        while dying(&left) && t.elapsed() < DYING {
            sleep(Duration::from_millis(100));
            left = self.leftovers();
        }
        if !left.is_empty() {
            self.clean_up();
        }
        found.extend(left);
        found
    }

    /// Removes whatever a failed point left: processes, cgroups, mounts in the state
    /// directory, the state directory.
    fn clean_up(&self) {
        let _ = self.c.rt(&["delete", "--force", self.id]);
        for pid in marked_processes(self.mark)
            .into_iter()
            .chain(processes_of(self.id, &self.b.rootfs()))
        {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        crate::reaper::reap_orphans();
        clean_up(&cgroup::hierarchies(), self.id);
        let dir = self.c.suite.rt.root.join(self.id);
        for m in mounts_under(&dir) {
            let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
        }
        // Mounts made since the sweep began (CRIU's cgroup yard in the image
        // directory, left by a CRIU killed in our namespace), newest first.
        for (id, _) in mount_table().iter().rev() {
            if self.mounts_before.contains_key(id) {
                continue;
            }
            if let Some(point) = mount_point_of(*id) {
                let _ = nix::mount::umount2(&point, nix::mount::MntFlags::MNT_DETACH);
            }
        }
        if let Err(e) = crate::bundle::remove_tree(&dir) {
            eprintln!("# cleanup {}: {e}", dir.display());
        }
    }

    /// A restore of the id run to its end: running, pid 1 the counter, counting on
    /// from the checkpoint; then deleted, leaving nothing.
    fn restore_again(&self) -> Vec<String> {
        let out = self.c.rt(&self.argv());
        if !out.ok() {
            let mut bad = vec![format!("the id does not restore again: {}", out.describe())];
            bad.extend(self.delete_and_check());
            return bad;
        }
        let mut bad = Vec::new();
        if let Err(e) = self.restored_runs() {
            bad.push(format!("restored again: {e}"));
        }
        bad.extend(self.delete_and_check());
        bad
    }

    /// The restored container runs the counter as pid 1, from where it was.
    fn restored_runs(&self) -> Res {
        let st = self.c.status(self.id)?;
        ensure!(st == "running", "status after restore is {st:?}");
        let init = self
            .c
            .must(&["exec", self.id, "cat", "/proc/1/cmdline"])?
            .stdout;
        ensure!(
            init.contains(self.mark),
            "pid 1 after restore is not the counter: {init:?}"
        );
        let now = count(self.c, self.id)?;
        ensure!(
            now >= self.before,
            "the count started again: {now} < {}",
            self.before
        );
        Ok(())
    }
}

/// `restore --detach` of a checkpointed counter SIGKILLed at sampled syscalls (under
/// ptrace) and at fractions of its duration, each followed by `delete --force`:
/// nothing left, the id listed while its state is on disk, and restorable again.
pub fn checkpoint_restore_killed_midway(c: &mut Ctx) -> Res {
    need_criu()?;
    if let Some(why) = ptrace_kill::unsupported() {
        skip!("{why}");
    }
    ensure!(
        !cgroup::hierarchies().is_empty(),
        "no cgroup hierarchy mounted: cannot check what a killed restore leaves"
    );
    c.suite
        .rt
        .start_budget_for(SWEEP_LIMIT + Duration::from_secs(60));
    let started = Instant::now();
    let mark = format!(
        "berth-restore-kill-{}-{}",
        std::process::id(),
        c.suite.counter.get()
    );
    // The counter with its stdio on the container's own /dev/null (files of the
    // driver's namespace could not be restored); the marker in its argv (a comment)
    // and its environment, which a restored process keeps.
    let script = format!(
        "exec </dev/null >/dev/null 2>&1; i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.2; done # {mark}"
    );
    let mut cfg = default_config(&["/bin/sh", "-c", &script], "/placeholder");
    push(&mut cfg, "process/env", json!(format!("{MARK_VAR}={mark}")));
    let (id, b) = c.prepare(cfg, false)?;
    let c: &Ctx = c;
    std::fs::write(b.rootfs().join(CANARY), "canary\n")?;
    c.must_create(&b, &id)?;
    c.must(&["start", &id])?;
    c.wait_status(&id, "running", Duration::from_secs(30))?;
    let before = wait_count(c, &id, 3)?;
    let image = b.dir.join("image").display().to_string();
    let out = c.rt(&["checkpoint", "--image-path", &image, &id]);
    ensure!(out.ok(), "checkpoint: {}", out.describe());
    ensure!(
        !c.rt(&["state", &id]).ok(),
        "the container still exists after checkpoint"
    );
    let bp = b.path_str();
    let sweep = Sweep {
        c,
        id: &id,
        b: &b,
        mark: &mark,
        args: [
            "restore",
            "--detach",
            "--bundle",
            &bp,
            "--image-path",
            &image,
            &id,
        ]
        .map(String::from)
        .to_vec(),
        mounts_before: mount_table(),
        before,
    };
    let argv = sweep.argv();

    // A restore traced to its end: its syscalls, and how long a whole one takes.
    let t0 = Instant::now();
    let prof = ptrace_kill::run(&c.suite.rt, &argv, None, RUN_LIMIT).map_err(Verdict::Fail)?;
    let full = t0.elapsed();
    if prof.ending != Ending::Finished(Some(0)) {
        sweep.clean_up();
        fail!(
            "restore traced to its end: {:?} after {} syscalls; stderr: {}",
            prof.ending,
            prof.syscalls.len(),
            prof.stderr.trim()
        );
    }
    let mut left = Vec::new();
    if let Err(e) = sweep.restored_runs() {
        left.push(format!("restore run to its end: {e}"));
    }
    let found = sweep.delete_and_check();
    if !found.is_empty() {
        left.push(format!(
            "delete of a restore run to its end left: {}",
            found.join("; ")
        ));
    }
    let pts = restore_points(&prof.syscalls, SYSCALL_POINTS);
    println!(
        "# restore: {} syscalls, {} kill points, a whole traced restore {full:.1?}",
        prof.syscalls.len(),
        pts.len()
    );
    let mut killed = 0;
    for (i, n) in pts.iter().enumerate() {
        if started.elapsed() > SWEEP_LIMIT {
            fail!(
                "{i} of {} kill points took over {SWEEP_LIMIT:?}; left so far: {left:?}",
                pts.len()
            );
        }
        let t: Traced =
            ptrace_kill::run(&c.suite.rt, &argv, Some(*n), RUN_LIMIT).map_err(Verdict::Fail)?;
        let mut bad = Vec::new();
        match t.ending {
            Ending::Killed { .. } => killed += 1,
            Ending::TimedOut => bad.push("timed out".to_string()),
            // The run made fewer syscalls than the profile: it restored.
            Ending::Finished(Some(0)) => {}
            Ending::Finished(e) => bad.push(format!(
                "restore failed on its own ({e:?}): {}",
                t.stderr.trim()
            )),
        }
        bad.extend(sweep.listed());
        bad.extend(sweep.delete_and_check());
        if i % RESTORE_AGAIN_EVERY == RESTORE_AGAIN_EVERY - 1 {
            bad.extend(sweep.restore_again());
        }
        one(t.describe_kill(), bad, &mut left);
    }
    let mut by_time = 0;
    for pct in TIME_POINTS {
        let delay = full * pct / 100;
        let mut bg = c.suite.rt.spawn(&argv).map_err(Verdict::Fail)?;
        sleep(delay);
        // The runtime alone: CRIU, in its process group, goes on as after a crash.
        let _ = kill(Pid::from_raw(bg.pid()), Signal::SIGKILL);
        let code = bg
            .wait_exit(Duration::from_secs(30))
            .map_err(Verdict::Fail)?;
        drop(bg);
        if code != Some(0) {
            by_time += 1;
        }
        let mut bad: Vec<String> = sweep.listed().into_iter().collect();
        bad.extend(sweep.delete_and_check());
        one(
            format!("killed {delay:.1?} after it started"),
            bad,
            &mut left,
        );
    }
    // The same id restores once more, and nothing is left after its delete.
    one("last restore".into(), sweep.restore_again(), &mut left);
    println!(
        "# restore: {} syscall points ({killed} killed mid-run), {} time points ({by_time} killed mid-run) in {:.1?}",
        pts.len(),
        TIME_POINTS.len(),
        started.elapsed()
    );
    ensure!(
        killed > 0,
        "no restore was killed before its end: the sweep interrupted nothing"
    );
    if !left.is_empty() {
        let shown: Vec<&str> = left.iter().take(8).map(String::as_str).collect();
        fail!(
            "{} of {} restore kill points left something or failed: {}{}",
            left.len(),
            pts.len() + TIME_POINTS.len() + 2,
            shown.join(" | "),
            if left.len() > 8 { " | ..." } else { "" }
        );
    }
    Ok(())
}

/// Adds one point's findings to `left`, if there are any.
fn one(what: String, bad: Vec<String>, left: &mut Vec<String>) {
    if !bad.is_empty() {
        left.push(format!("{what}: {}", bad.join("; ")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    fn restore_points_keep_the_fork_and_the_wait() {
        let mut prof = vec![libc::SYS_read as u64; 400];
        prof[200] = libc::SYS_clone as u64;
        prof[210] = libc::SYS_sendto as u64;
        prof[211] = libc::SYS_wait4 as u64;
        let p = restore_points(&prof, 16);
        for n in [201, 202, 211, 212, 213] {
            assert!(p.contains(&n), "{n} missing from {p:?}");
        }
        assert!(p.len() < 40, "{}", p.len());
        assert!(p.windows(2).all(|w| w[0] < w[1]));
        assert!(p.iter().all(|n| (1..=400).contains(n)));
    }

    #[test]
    fn a_marker_in_the_environment_is_found() {
        // This test process carries none: the marker is made up here.
        assert!(marked_processes("berth-no-such-marker-xyzzy").is_empty());
        assert!(!mount_table().is_empty());
    }
}
