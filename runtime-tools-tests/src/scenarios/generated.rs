//! Configs as others write them, each run to completion through create/start/state/
//! delete and through `run` (engine_flow): `runc spec` and `berth spec` (default and
//! --rootless, generated at test time), the OCI runtime-tools generator's default and
//! the variants its validation suite makes of it (configs::runtime_tools), and the
//! config.json that Docker 20.10 and Podman 4.3 write for a plain `run`, and that
//! containerd 1.6's CRI plugin writes for a Kubernetes container with the
//! RuntimeDefault seccomp profile (captured from the real engines: fixtures/README.md;
//! the engines stage replays a fresh capture).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::engine_flow::{as_is, lifecycle_and_run, Expect, Layout, Plan};
use crate::bundle::Bundle;
use crate::configs::{replay, runtime_tools};
use crate::ctx::Ctx;
use crate::spec::sh;
use crate::verdict::{Res, Verdict};
use crate::{fail, skip};

/// What the engines' captures run (GENERATED_ARGS in hack/lib/engine.sh) and print.
const ENGINE_SCRIPT: &str = "echo generated-config-ok uid=$(id -u) cwd=$(pwd)";
const ENGINE_OUTPUT: &str = "generated-config-ok uid=0 cwd=/\n";

/// For spec-generated configs: the same line, then whether stdout is a terminal and
/// whether the root is writable, so process.terminal and root.readonly are seen.
const SPEC_SCRIPT: &str = "echo generated-config-ok uid=$(id -u) cwd=$(pwd); \
    if [ -t 1 ]; then echo tty; else echo no-tty; fi; \
    if touch /.rw-probe 2>/dev/null; then rm /.rw-probe; echo rw; else echo ro; fi";

fn spec_output(cfg: &Value) -> String {
    let tty = cfg.pointer("/process/terminal") == Some(&json!(true));
    let ro = cfg.pointer("/root/readonly") == Some(&json!(true));
    format!(
        "{ENGINE_OUTPUT}{}\n{}\n",
        if tty { "tty" } else { "no-tty" },
        if ro { "ro" } else { "rw" }
    )
}

fn with_script(mut cfg: Value, script: &str) -> Value {
    cfg["process"]["args"] = json!(sh(script));
    cfg
}

/// Runs `tool args...` in `dir`, bounded in time; its stderr on failure.
fn run_tool(tool: &Path, args: &[&str], dir: &Path) -> Res {
    let what = format!("{} {}", tool.display(), args.join(" "));
    let mut child = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Verdict::Fail(format!("{what}: {e}")))?;
    let t = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(st)) if st.success() => return Ok(()),
            Ok(Some(st)) => {
                let out = child
                    .wait_with_output()
                    .map(|o| o.stderr)
                    .unwrap_or_default();
                fail!("`{what}` {st}: {}", String::from_utf8_lossy(&out).trim())
            }
            Ok(None) if t.elapsed() > Duration::from_secs(20) => {
                let _ = child.kill();
                let _ = child.wait();
                fail!("`{what}` timed out")
            }
            Ok(None) => sleep(Duration::from_millis(10)),
            Err(e) => fail!("`{what}`: {e}"),
        }
    }
}

/// The config `<tool> spec [--rootless]` writes, generated in a scratch bundle.
fn spec_of(c: &mut Ctx, tool: &Path, rootless: bool) -> Result<Value, Verdict> {
    let id = c.new_id();
    let b: Bundle = c.bundle(&id, false)?;
    let mut args = vec!["spec"];
    if rootless {
        args.push("--rootless");
    }
    run_tool(tool, &args, &b.dir)?;
    let text = std::fs::read_to_string(b.dir.join("config.json"))
        .map_err(|e| Verdict::Fail(format!("{} spec wrote no config.json: {e}", tool.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| Verdict::Fail(format!("{} spec wrote invalid JSON: {e}", tool.display())))
}

/// runc spec's config with only what runc's own tests change (the args), run as is:
/// terminal (a console socket for create, the runtime's stdout for run), read-only
/// root, no cgroupsPath (engine_flow adds ours).
fn spec_scenario(c: &mut Ctx, tool: &Path, rootless: bool) -> Res {
    let cfg = with_script(spec_of(c, tool, rootless)?, SPEC_SCRIPT);
    let expect = Expect::Text(spec_output(&cfg));
    lifecycle_and_run(
        c,
        &Plan {
            cfg: &cfg,
            layout: Layout::Rootfs,
            checker: false,
            adapt: &as_is,
            expect,
        },
    )
}

fn runc_binary() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push("/usr/sbin".into());
    dirs.into_iter()
        .map(|d| d.join("runc"))
        .find(|p| p.is_file())
}

/// berth: the runtime under test if it is berth, else the one built beside this driver.
fn berth_binary(c: &Ctx) -> Option<PathBuf> {
    if c.suite.rt.path.file_name().is_some_and(|n| n == "berth") {
        return Some(c.suite.rt.path.clone());
    }
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.join("berth")).filter(|p| p.is_file())
}

pub fn generated_runc_spec(c: &mut Ctx) -> Res {
    let Some(runc) = runc_binary() else {
        skip!("runc is not installed (its `spec` writes this config)");
    };
    spec_scenario(c, &runc, false)
}

/// `runc spec --rootless` run by root: runc's own tests use it only when not root,
/// but as root it is a user namespace mapping root to root (one id), no network
/// namespace, /sys bound from the host, no devices cgroup rules.
pub fn generated_runc_spec_rootless(c: &mut Ctx) -> Res {
    let Some(runc) = runc_binary() else {
        skip!("runc is not installed (its `spec --rootless` writes this config)");
    };
    spec_scenario(c, &runc, true)
}

pub fn generated_berth_spec(c: &mut Ctx) -> Res {
    let Some(berth) = berth_binary(c) else {
        skip!("no berth binary beside the driver (build it: hack/build-release.sh -p berth)");
    };
    spec_scenario(c, &berth, false)
}

pub fn generated_berth_spec_rootless(c: &mut Ctx) -> Res {
    let Some(berth) = berth_binary(c) else {
        skip!("no berth binary beside the driver (build it: hack/build-release.sh -p berth)");
    };
    spec_scenario(c, &berth, true)
}

/// A runtime-tools validation run: the bundle is the rootfs, the checker is the process.
fn runtime_tools_checker(c: &mut Ctx, cfg: &Value) -> Res {
    lifecycle_and_run(
        c,
        &Plan {
            cfg,
            layout: Layout::BundleIsRootfs,
            checker: true,
            adapt: &as_is,
            expect: Expect::Tap,
        },
    )
}

/// `GetDefaultGenerator()` unchanged: the checker under the generator's deny-by-default
/// seccomp profile with noNewPrivileges false (so the filter is loaded while the
/// runtime still holds its capabilities).
pub fn generated_runtime_tools_default(c: &mut Ctx) -> Res {
    runtime_tools_checker(
        c,
        &runtime_tools::default_config(runtime_tools::Profile::Snapshot2022),
    )
}

/// The default with `SetProcessNoNewPrivileges(true)`.
pub fn generated_runtime_tools_nnp(c: &mut Ctx) -> Res {
    let mut cfg = runtime_tools::default_config(runtime_tools::Profile::Snapshot2022);
    cfg["process"]["noNewPrivileges"] = json!(true);
    runtime_tools_checker(c, &cfg)
}

/// The default with `SetProcessTerminal(false)` and busybox args instead of the
/// checker: a shell, its pipes and subshells (fork, wait4, pipe2, dup2, execve)
/// under the profile.
pub fn generated_runtime_tools_sh(c: &mut Ctx) -> Res {
    let mut cfg = runtime_tools::default_config(runtime_tools::Profile::Snapshot2022);
    cfg["process"]["terminal"] = json!(false);
    let cfg = with_script(cfg, SPEC_SCRIPT);
    let expect = Expect::Text(spec_output(&cfg));
    lifecycle_and_run(
        c,
        &Plan {
            cfg: &cfg,
            layout: Layout::BundleIsRootfs,
            checker: false,
            adapt: &as_is,
            expect,
        },
    )
}

/// The default as later runtime-tools writes it (personality as three rules,
/// CLONE_NEWCGROUP in the clone mask).
pub fn generated_runtime_tools_later(c: &mut Ctx) -> Res {
    runtime_tools_checker(
        c,
        &runtime_tools::default_config(runtime_tools::Profile::Later),
    )
}

/// An engine's captured config: `BERTH_GENERATED_<ENGINE>_CONFIG` (a fresh capture,
/// from the engines stage) or the checked-in fixture.
fn engine_config(engine: &str, fixture: &str, text: &str) -> Result<Value, Verdict> {
    let var = format!("BERTH_GENERATED_{}_CONFIG", engine.to_uppercase());
    let (origin, text) = match std::env::var_os(&var) {
        Some(p) => {
            let t = std::fs::read_to_string(&p)
                .map_err(|e| Verdict::Fail(format!("{var}={}: {e}", p.to_string_lossy())))?;
            (format!("{var}={}", p.to_string_lossy()), t)
        }
        None => (format!("fixtures/{fixture}"), text.to_string()),
    };
    println!("# generated_{engine}: config from {origin}");
    serde_json::from_str(&text).map_err(|e| Verdict::Fail(format!("{origin}: not JSON: {e}")))
}

/// The engine's config replayed as captured (its own process: ENGINE_SCRIPT), then
/// once more with the checker as the process to compare the container with the config.
fn engine_scenario(c: &mut Ctx, engine: &str, fixture: &str, text: &str) -> Res {
    let cfg = engine_config(engine, fixture, text)?;
    let want = json!(["sh", "-c", ENGINE_SCRIPT]);
    if cfg.pointer("/process/args") != Some(&want) {
        fail!(
            "the {engine} config's process.args are {} (the capture runs {want})",
            cfg["process"]["args"]
        );
    }
    let adapt = |cfg: &mut Value, b: &Bundle| -> Res {
        let notes = replay::adapt(cfg, &b.dir)?;
        if std::env::var_os("BERTH_CONFORMANCE_VERBOSE").is_some() {
            println!("# replay edits: {}", notes.join("; "));
        }
        Ok(())
    };
    lifecycle_and_run(
        c,
        &Plan {
            cfg: &cfg,
            layout: Layout::Rootfs,
            checker: false,
            adapt: &adapt,
            expect: Expect::Text(ENGINE_OUTPUT.to_string()),
        },
    )?;
    let mut checked = cfg.clone();
    checked["process"]["args"] = json!(["/runtimetest"]);
    lifecycle_and_run(
        c,
        &Plan {
            cfg: &checked,
            layout: Layout::Rootfs,
            checker: true,
            adapt: &adapt,
            expect: Expect::Tap,
        },
    )
    .map_err(|v| match v {
        Verdict::Fail(s) => Verdict::Fail(format!("with the checker as the process: {s}")),
        other => other,
    })
}

const DOCKER_FIXTURE: &str = "docker-20.10.24-config.json";
const PODMAN_FIXTURE: &str = "podman-4.3.1-config.json";
const CONTAINERD_CRI_FIXTURE: &str = "containerd-1.6.20-cri-config.json";

/// Docker 20.10's `docker run --network none IMAGE CMD`: its default seccomp profile
/// (clone3 answered with ENOSYS), 14 capabilities, devices cgroup rules, sysctls,
/// /etc/hosts-like binds.
pub fn generated_docker_default(c: &mut Ctx) -> Res {
    let text = include_str!("../../fixtures/docker-20.10.24-config.json");
    engine_scenario(c, "docker", DOCKER_FIXTURE, text)
}

/// Podman 4.3's `podman run IMAGE CMD`: its seccomp profile (defaultErrnoRet ENOSYS),
/// umask, pids limit, rlimits, cgroup mount, /run/.containerenv.
pub fn generated_podman_default(c: &mut Ctx) -> Res {
    let text = include_str!("../../fixtures/podman-4.3.1-config.json");
    engine_scenario(c, "podman", PODMAN_FIXTURE, text)
}

/// containerd 1.6's CRI plugin, for a container as the kubelet asks for one in a
/// BestEffort pod with `seccompProfile: RuntimeDefault`: containerd's default seccomp
/// profile (deny by default, clone3 answered with ENOSYS) with noNewPrivileges false,
/// 14 capabilities, the kubelet's masked and read-only paths, a cgroup mount,
/// oomScoreAdj 1000, and the sandbox's namespaces (joined by /proc path in the capture,
/// new ones in the replay).
pub fn generated_containerd_cri_default(c: &mut Ctx) -> Res {
    let text = include_str!("../../fixtures/containerd-1.6.20-cri-config.json");
    engine_scenario(c, "containerd_cri", CONTAINERD_CRI_FIXTURE, text)
}
