//! The optional modes: a full state directory (`--state-entries`), the smallest
//! memory limit `run` works under (`--min-memory`), and many lives at once (`--burst`).

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::bundle::{self, Extra};
use crate::life::{self, Runtime};
use crate::memory::MemCg;

/// Fills each runtime's state directory with `n` created, never started containers,
/// each with a bundle and a cgroup of its own (so the measured lives' cgroup stays
/// theirs alone). Returns the ids made per runtime, for [`empty_state`].
pub fn fill_state(runtimes: &[Runtime], n: usize) -> Result<Vec<Vec<String>>, String> {
    let mut made = Vec::new();
    if n == 0 {
        return Ok(made);
    }
    let pid = std::process::id();
    for rt in runtimes {
        let mut ids = Vec::with_capacity(n);
        let work = rt.bundle.parent().unwrap_or(Path::new("/tmp"));
        let rootfs = work.join("rootfs");
        for i in 0..n {
            let name = format!("{}-fill-{i}", rt.name);
            let cg = format!("/berth-bench-{pid}/{}-fill/{i}", rt.name);
            let b = bundle::make_bundle(work, &rootfs, &name, &cg, Extra::default())?;
            let id = format!("fill-{pid}-{}-{i}", rt.name);
            let filler = Runtime {
                name: rt.name.clone(),
                path: rt.path.clone(),
                root: rt.root.clone(),
                bundle: b,
                log: rt.log.clone(),
                mem: None,
            };
            filler.create_only(&id)?;
            ids.push(id);
            if (i + 1) % 250 == 0 {
                eprintln!(
                    "berth-bench: {}: {} containers in the state directory",
                    rt.name,
                    i + 1
                );
            }
        }
        made.push(ids);
    }
    Ok(made)
}

/// Deletes (forced) what [`fill_state`] made.
pub fn empty_state(runtimes: &[Runtime], made: &Result<Vec<Vec<String>>, String>) {
    let Ok(made) = made else { return };
    for (rt, ids) in runtimes.iter().zip(made) {
        for id in ids {
            rt.force_delete(id);
        }
    }
}

/// Halving from 16 MiB: the smallest limit of the runtime's memory cgroup under which
/// `run` of /bin/true still exits 0 (the container's own cgroup has no limit).
pub fn min_memory(runtimes: &[Runtime], mem_parent: &str) -> Result<(), String> {
    println!("smallest memory limit of the runtime's cgroup for `run` of /bin/true (halving from 16 MiB):");
    let pid = std::process::id();
    for rt in runtimes {
        let mut limit: u64 = 16 << 20;
        let mut smallest = None;
        while limit >= 16 << 10 {
            let cg = MemCg::new(mem_parent, &format!("{}-limit-{limit}", rt.name))?;
            cg.set_limit(limit)?;
            let id = format!("limit-{pid}-{}-{limit}", rt.name);
            let ok = rt.run_limited(&id, cg.tasks())?;
            if !ok {
                rt.force_delete(&id);
            }
            life::reap_strays();
            cg.remove();
            if !ok {
                break;
            }
            smallest = Some(limit);
            limit /= 2;
        }
        match smallest {
            Some(s) if s == limit => println!("  {:<8} works down to {} KiB", rt.name, s >> 10),
            Some(s) => println!(
                "  {:<8} works under {} KiB, fails under {} KiB",
                rt.name,
                s >> 10,
                limit >> 10
            ),
            None => println!("  {:<8} fails already under 16384 KiB", rt.name),
        }
    }
    Ok(())
}

/// `n` `run`s of /bin/true started at once per runtime (each with its own bundle and
/// cgroup), one runtime after the other: lives per second, CPU per life, and what was
/// left behind (state entries, cgroup directories, stray processes).
pub fn burst(
    runtimes: &[Runtime],
    work: &Path,
    rootfs: &Path,
    cg_parent: &str,
    n: usize,
    extra: Extra,
) -> Result<(), String> {
    println!("{n} `run`s of /bin/true started at once:");
    let pid = std::process::id();
    for rt in runtimes {
        let mut bundles = Vec::with_capacity(n);
        for i in 0..n {
            let cg = format!("{cg_parent}/{}-burst/{i}", rt.name);
            bundles.push(bundle::make_bundle(
                work,
                rootfs,
                &format!("{}-burst-{i}", rt.name),
                &cg,
                extra,
            )?);
        }
        let log = fs::File::options()
            .create(true)
            .append(true)
            .open(&rt.log)
            .map_err(|e| format!("open {}: {e}", rt.log.display()))?;
        let cpu0 = life::children_cpu()?;
        let t0 = Instant::now();
        let mut children = Vec::with_capacity(n);
        for (i, b) in bundles.iter().enumerate() {
            let child = Command::new(&rt.path)
                .arg("--root")
                .arg(&rt.root)
                .args(["run", "--bundle"])
                .arg(b)
                .arg(format!("burst-{pid}-{}-{i}", rt.name))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log.try_clone().map_err(|e| format!("dup log: {e}"))?)
                .spawn()
                .map_err(|e| format!("{}: spawn: {e}", rt.name))?;
            children.push(child);
        }
        let deadline = t0 + Duration::from_secs(120);
        let mut failed = 0;
        for mut c in children {
            loop {
                match c.try_wait() {
                    Ok(Some(st)) => {
                        if !st.success() {
                            failed += 1;
                        }
                        break;
                    }
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(1))
                    }
                    _ => {
                        let _ = c.kill();
                        let _ = c.wait();
                        failed += 1;
                        break;
                    }
                }
            }
        }
        let elapsed = t0.elapsed();
        life::reap_strays();
        let cpu = life::children_cpu()?.saturating_sub(cpu0);
        let entries = fs::read_dir(&rt.root)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("burst-"))
                    .count()
            })
            .unwrap_or(0);
        let cgroups = fs::read_dir(format!(
            "/sys/fs/cgroup/memory{cg_parent}/{}-burst",
            rt.name
        ))
        .map(|d| d.flatten().filter(|e| e.path().is_dir()).count())
        .unwrap_or(0);
        println!(
            "  {:<8} {:>7.1} lives/s ({n} in {:.0} ms), cpu {:.2} ms per life, {failed} failed; \
             left behind: {entries} state entries, {cgroups} memory cgroups",
            rt.name,
            n as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64() * 1000.0,
            cpu.as_secs_f64() * 1000.0 / n as f64
        );
    }
    Ok(())
}
