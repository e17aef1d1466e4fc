//! berth-conformance: drives an OCI runtime through its CLI and judges it against the spec.

mod bundle;
#[path = "checker/caps.rs"]
#[allow(dead_code)]
mod caps;
mod cgroup;
mod cli;
mod configs;
mod ctx;
mod hostcheck;
mod nshelper;
mod ptrace_kill;
mod reaper;
mod runtime;
mod scenarios;
mod spec;
mod verdict;
mod view;

use std::cell::Cell;
use std::io::Write;
use std::path::{Path, PathBuf};

use ctx::{Ctx, Suite};
use verdict::Verdict;

fn main() {
    let args = match cli::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let selected: Vec<&scenarios::Scenario> = scenarios::ALL
        .iter()
        .filter(|s| {
            args.filter
                .as_deref()
                .is_none_or(|f| f.split(',').any(|f| s.name.contains(f)))
        })
        .collect();
    if args.list {
        for s in &selected {
            println!("{}", s.name);
        }
        return;
    }
    match run(&args, &selected) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("berth-conformance: {e}");
            std::process::exit(2);
        }
    }
}

fn run(args: &cli::Args, selected: &[&scenarios::Scenario]) -> Result<bool, String> {
    reaper::become_subreaper().map_err(|e| format!("prctl(PR_SET_CHILD_SUBREAPER): {e}"))?;
    let runtime = std::fs::canonicalize(&args.runtime)
        .map_err(|e| format!("runtime {}: {e}", args.runtime.display()))?;
    let pid = std::process::id();
    let work = PathBuf::from(format!("/tmp/berth-conformance-{pid}"));
    if args.view.as_deref() == Some("v1-only") {
        let scratch = work.join("view");
        std::fs::create_dir_all(&scratch)
            .map_err(|e| format!("mkdir {}: {e}", scratch.display()))?;
        if !view::enter_v1_only(&scratch)? {
            let _ = std::fs::remove_dir_all(&work);
            for s in selected {
                println!(
                    "skip {}: --view v1-only: this host has no cgroup v1 hierarchy",
                    s.name
                );
            }
            println!("0 passed, 0 failed, {} skipped", selected.len());
            return Ok(true);
        }
        println!("# view v1-only: /sys/fs/cgroup holds only the v1 hierarchies (cgroup2 covered)");
    }
    let bundles = work.join("bundles");
    let scratch = work.join("scratch");
    for d in [&bundles, &scratch] {
        std::fs::create_dir_all(d).map_err(|e| format!("mkdir {}: {e}", d.display()))?;
    }
    let root = match &args.root {
        Some(r) => r.clone(),
        None => work.join("root"),
    };
    std::fs::create_dir_all(&root).map_err(|e| format!("mkdir {}: {e}", root.display()))?;
    let root = std::fs::canonicalize(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    let checker = find_checker(args.checker.as_deref());
    match &checker {
        None => println!("# no checker binary found: inside scenarios will be skipped"),
        Some(c) if is_dynamic(c) => println!(
            "# warning: checker {} is dynamically linked and cannot run in the busybox rootfs \
             (build it with RUSTFLAGS=\"-C target-feature=+crt-static\")",
            c.display()
        ),
        Some(_) => {}
    }
    let suite = Suite {
        rt: runtime::Runtime::new(runtime, root, scratch),
        checker,
        bundles,
        cg_parent: format!("berth-conformance-{pid}"),
        counter: Cell::new(0),
    };
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let mut failed_names: Vec<&str> = Vec::new();
    let mut dev_null_broken = false;
    if let Err(e) = hostcheck::dev_null() {
        println!("FAIL host_dev_null_before: {e}");
        failed += 1;
        dev_null_broken = true;
    }
    for s in selected {
        let res = {
            let mut ctx = Ctx::new(&suite, s.name);
            (s.run)(&mut ctx)
        };
        match res {
            Ok(()) => {
                passed += 1;
                println!("ok {}", s.name);
            }
            Err(Verdict::Skip(r)) => {
                skipped += 1;
                println!("skip {}: {}", s.name, one_line(&r));
            }
            Err(Verdict::Fail(r)) => {
                failed += 1;
                failed_names.push(s.name);
                println!("FAIL {}: {}", s.name, one_line(&r));
            }
        }
        if let Err(e) = hostcheck::dev_null() {
            if !dev_null_broken {
                println!(
                    "FAIL host_dev_null_after_{}: {e} !!! THE HOST'S /dev/null WAS DAMAGED !!!",
                    s.name
                );
                failed += 1;
            }
            dev_null_broken = true;
        }
        let _ = std::io::stdout().flush();
        if failed > 0 && !args.keep_going {
            println!("# stopping at the first failure (use --keep-going to run the rest)");
            break;
        }
    }
    reaper::reap_orphans();
    cgroup::remove_everywhere(&suite.cg_parent);
    if let Err(e) = bundle::remove_tree(&work) {
        println!("# cleanup {}: {e}", work.display());
    }
    match hostcheck::dev_null() {
        Err(e) if !dev_null_broken => {
            println!("FAIL host_dev_null: {e} !!! THE HOST'S /dev/null WAS DAMAGED !!!");
            failed += 1;
        }
        Err(e) => println!("# host /dev/null is still damaged at the end: {e}"),
        Ok(()) => {}
    }
    if !failed_names.is_empty() {
        // Repeated at the end, where the tail of a CI log shows them.
        println!("# failed: {}", failed_names.join(" "));
    }
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    Ok(failed == 0)
}

/// A reason on one line, so each scenario has exactly one result line.
fn one_line(s: &str) -> String {
    s.trim().replace('\n', " | ")
}

/// True if the ELF names a program interpreter (ld-linux) in its first page.
fn is_dynamic(p: &Path) -> bool {
    use std::io::Read;
    let mut head = vec![0u8; 4096];
    let n = std::fs::File::open(p)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    head[..n].windows(8).any(|w| w == b"ld-linux")
}

/// The checker: `--checker`, else the static build next to the workspace's target dir.
fn find_checker(given: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = given {
        return Some(p.to_path_buf());
    }
    let rel = "x86_64-unknown-linux-gnu/release/runtimetest";
    let mut candidates = Vec::new();
    if let Ok(t) = std::env::var("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(t).join(rel));
    }
    if let Ok(exe) = std::env::current_exe() {
        // <target>/<profile>/berth-conformance -> <target>/x86_64-.../release/runtimetest
        if let Some(target) = exe.parent().and_then(Path::parent) {
            candidates.push(target.join(rel));
        }
    }
    candidates.push(PathBuf::from("target").join(rel));
    candidates.push(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target")
            .join(rel),
    );
    candidates.into_iter().find(|p| p.is_file())
}
