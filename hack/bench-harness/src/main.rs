//! berth-bench: container lifecycle cost of berth, runc and crun, side by side.
//!
//! Each iteration runs one life of `/bin/true` in a busybox bundle per runtime
//! (`create`, `start`, reap the init, `delete`), the runtimes taken round-robin with
//! the starting one rotated per iteration so that drift and ordering effects cancel.
//! Run it through `hack/bench`, which puts it in a private mount namespace with the
//! cgroup2 mount hidden (crun refuses hybrid cgroups otherwise).

mod bundle;
mod life;
mod memory;
mod modes;
mod report;

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use life::Runtime;
use report::Series;

const USAGE: &str = "\
usage: berth-bench [--runtimes LIST] [--iterations N] [--warmup N] [--json FILE] [--keep]
                   [--state-entries N] [--mounts N] [--devices N] [--min-memory] [--burst N]

  --runtimes LIST     comma-separated NAME or NAME=PATH (default berth,runc,crun);
                      berth defaults to $BERTH or target/release/berth, others to PATH
  --iterations N      measured lives per runtime (default 50)
  --warmup N          unmeasured lives per runtime first (default 5)
  --json FILE         also write every sample and summary as JSON
  --keep              keep the work directory (bundles, runtime logs)
  --state-entries N   first fill each runtime's state directory with N created (not
                      started) containers, deleted at the end
  --mounts N          N extra tmpfs mounts in the config
  --devices N         N extra device nodes (linux.devices) in the config
  --min-memory        after the lives: the smallest memory limit (halving from 16 MiB)
                      of the runtime's cgroup under which `run` of /bin/true works
  --burst N           after the lives: N `run`s of /bin/true started at once per
                      runtime; lives per second, and what was left behind
";

struct Args {
    runtimes: Vec<(String, Option<PathBuf>)>,
    iterations: usize,
    warmup: usize,
    json: Option<PathBuf>,
    keep: bool,
    state_entries: usize,
    extra: bundle::Extra,
    min_memory: bool,
    burst: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        runtimes: Vec::new(),
        iterations: 50,
        warmup: 5,
        json: None,
        keep: false,
        state_entries: 0,
        extra: bundle::Extra::default(),
        min_memory: false,
        burst: 0,
    };
    let mut list = "berth,runc,crun".to_string();
    let mut it = env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--runtimes" => list = value("--runtimes")?,
            "--iterations" => a.iterations = parse_count(&value("--iterations")?)?,
            "--warmup" => a.warmup = parse_count(&value("--warmup")?)?,
            "--json" => a.json = Some(PathBuf::from(value("--json")?)),
            "--keep" => a.keep = true,
            "--state-entries" => a.state_entries = parse_count(&value("--state-entries")?)?,
            "--mounts" => a.extra.mounts = parse_count(&value("--mounts")?)?,
            "--devices" => a.extra.devices = parse_count(&value("--devices")?)?,
            "--min-memory" => a.min_memory = true,
            "--burst" => a.burst = parse_count(&value("--burst")?)?,
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item.split_once('=') {
            Some((n, p)) => a.runtimes.push((n.to_string(), Some(PathBuf::from(p)))),
            None => a.runtimes.push((item.to_string(), None)),
        }
    }
    if a.runtimes.is_empty() {
        return Err("--runtimes names no runtime".to_string());
    }
    if a.iterations == 0 {
        return Err("--iterations must be at least 1".to_string());
    }
    Ok(a)
}

fn parse_count(s: &str) -> Result<usize, String> {
    s.parse().map_err(|_| format!("not a count: {s:?}"))
}

/// Where runtime `name` is, if it is there.
fn locate(name: &str, given: Option<PathBuf>) -> Option<PathBuf> {
    let candidate = match given {
        Some(p) => p,
        None if name == "berth" => env::var_os("BERTH")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("target/release/berth")),
        None => {
            let path = env::var_os("PATH")?;
            return env::split_paths(&path)
                .map(|d| d.join(name))
                .find(|p| is_executable(p));
        }
    };
    is_executable(&candidate).then(|| fs::canonicalize(&candidate).unwrap_or(candidate))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Is a cgroup2 file system mounted at /sys/fs/cgroup/unified (hybrid mode)?
fn cgroup2_visible() -> bool {
    use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};
    statfs("/sys/fs/cgroup/unified")
        .map(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("berth-bench: {e}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("berth-bench: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Ok(false) when some runtime failed or none could be measured.
fn run(args: Args) -> Result<bool, String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("must run as root".to_string());
    }
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| format!("prctl(PR_SET_CHILD_SUBREAPER): {e}"))?;
    if cgroup2_visible() {
        eprintln!(
            "berth-bench: note: a cgroup2 mount is visible (hybrid mode): crun will refuse; \
             run through hack/bench, which hides it"
        );
    }
    life::start_watchdog();

    let pid = std::process::id();
    let work = PathBuf::from(format!("/tmp/berth-bench.{pid}"));
    fs::create_dir(&work).map_err(|e| format!("mkdir {}: {e}", work.display()))?;
    let cg_parent = format!("/berth-bench-{pid}");

    let mem_parent = format!("/berth-bench-{pid}-rt");
    let result = measure(&args, &work, &cg_parent, &mem_parent);

    bundle::remove_cgroup_parent(&cg_parent);
    memory::remove_parent(&mem_parent);
    if args.keep {
        eprintln!("berth-bench: kept {}", work.display());
    } else if let Err(e) = fs::remove_dir_all(&work) {
        eprintln!("berth-bench: warning: rm -rf {}: {e}", work.display());
    }
    result
}

fn measure(args: &Args, work: &Path, cg_parent: &str, mem_parent: &str) -> Result<bool, String> {
    let rootfs = bundle::make_rootfs(work)?;
    bundle::make_mount_points(&rootfs, args.extra)?;
    let with_memory = memory::MemCg::available();
    if !with_memory {
        println!("no v1 memory hierarchy with max_usage_in_bytes: no peak memory column");
    }
    let mut runtimes = Vec::new();
    let mut series = Vec::new();
    for (name, given) in &args.runtimes {
        let Some(path) = locate(name, given.clone()) else {
            println!("{name}: not found, skipped");
            continue;
        };
        let root = work.join(format!("state-{name}"));
        fs::create_dir_all(&root).map_err(|e| format!("mkdir {}: {e}", root.display()))?;
        let bundle = bundle::make_bundle(
            work,
            &rootfs,
            name,
            &format!("{cg_parent}/{name}"),
            args.extra,
        )?;
        let mem = if with_memory {
            Some(memory::MemCg::new(mem_parent, name)?)
        } else {
            None
        };
        series.push(Series {
            name: name.clone(),
            path: path.display().to_string(),
            samples: Vec::with_capacity(args.iterations),
            failure: None,
        });
        runtimes.push(Runtime {
            name: name.clone(),
            path,
            root,
            bundle,
            log: work.join(format!("{name}.log")),
            mem,
        });
    }
    if runtimes.is_empty() {
        return Err("no runtime to measure".to_string());
    }
    for r in &runtimes {
        println!("{:<8} {}", r.name, r.path.display());
    }
    println!(
        "{} warm-up + {} measured lives per runtime, round-robin; {} extra mounts, {} extra \
         devices, {} containers already in each state directory",
        args.warmup, args.iterations, args.extra.mounts, args.extra.devices, args.state_entries
    );
    if let Ok(load) = fs::read_to_string("/proc/loadavg") {
        println!("load average at start: {}", load.trim());
    }
    let fill = modes::fill_state(&runtimes, args.state_entries);

    let pid = std::process::id();
    let total = args.warmup + args.iterations;
    let n = runtimes.len();
    for i in 0..total {
        for k in 0..n {
            let idx = (i + k) % n;
            if series[idx].failure.is_some() {
                continue;
            }
            let rt = &runtimes[idx];
            let id = format!("bench-{pid}-{}-{i}", rt.name);
            match rt.life(&id) {
                Ok(s) if i >= args.warmup => series[idx].samples.push(s),
                Ok(_) => {}
                Err(e) => {
                    eprintln!("berth-bench: {e}");
                    rt.force_delete(&id);
                    series[idx].failure = Some(e);
                }
            }
        }
        if (i + 1) % 10 == 0 || i + 1 == total {
            eprintln!("berth-bench: {}/{total} iterations", i + 1);
        }
    }

    if let Ok(load) = fs::read_to_string("/proc/loadavg") {
        println!("load average at end: {}", load.trim());
    }
    print!("{}", report::table(&series));
    modes::empty_state(&runtimes, &fill);
    fill?;
    if args.min_memory && with_memory {
        modes::min_memory(&runtimes, mem_parent)?;
    }
    if args.burst > 0 {
        modes::burst(&runtimes, work, &rootfs, cg_parent, args.burst, args.extra)?;
    }
    if let Some(path) = &args.json {
        let doc = report::to_json(&series, args.iterations, args.warmup);
        let text = serde_json::to_string_pretty(&doc)
            .map_err(|e| format!("serialize {}: {e}", path.display()))?;
        fs::write(path, text).map_err(|e| format!("write {}: {e}", path.display()))?;
        println!("samples written to {}", path.display());
    }
    Ok(series
        .iter()
        .all(|s| s.failure.is_none() && !s.samples.is_empty()))
}
