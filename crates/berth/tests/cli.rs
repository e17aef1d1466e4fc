//! The `berth` command line against runc 1.1's observable behaviour: version, help,
//! `spec`, error reporting, exit codes and log formats, and at the end the lifecycle
//! verbs with real containers (as root).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{
    berth, berth_in, berth_root, run_bounded, stderr, stdout, unique_id, wait_exit, TempDir, BERTH,
    TIMEOUT,
};

/// `runc spec` of runc 1.1.5, byte for byte.
const RUNC_SPEC: &str = include_str!("fixtures/runc-1.1.5-spec.json");
/// `runc spec --rootless` of runc 1.1.5 run as uid 0, gid 0.
const RUNC_SPEC_ROOTLESS: &str = include_str!("fixtures/runc-1.1.5-spec-rootless-uid0.json");

fn with_version(text: &str, version: &str) -> String {
    let mut value: serde_json::Value = serde_json::from_str(text).expect("valid json");
    value["ociVersion"] = serde_json::Value::from(version);
    serde_json::to_string(&value).expect("serialize")
}

#[test]
fn version_prints_runc_layout() {
    for flag in ["--version", "-v"] {
        let out = berth(&[flag]);
        assert!(out.status.success(), "{flag}: {}", stderr(&out));
        let text = stdout(&out);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.len() == 4 || lines.len() == 5, "{text}");
        assert_eq!(
            lines[0],
            format!("berth version {}", env!("CARGO_PKG_VERSION"))
        );
        assert!(
            lines[1].starts_with("commit: ") && lines[1].len() > "commit: ".len(),
            "{text}"
        );
        assert_eq!(lines[2], "spec: 1.2.0");
        assert!(lines[3].starts_with("rustc: 1."), "{text}");
        if let Some(l) = lines.get(4) {
            assert!(l.starts_with("libseccomp: 2."), "{text}");
        }
    }
}

#[test]
fn help_lists_the_implemented_verbs() {
    let out = berth(&["--help"]);
    assert!(out.status.success());
    let text = stdout(&out);
    for verb in [
        "create", "delete", "kill", "list", "run", "spec", "start", "state",
    ] {
        assert!(text.contains(verb), "help lacks {verb}: {text}");
    }
    for flag in [
        "--root",
        "--log",
        "--log-format",
        "--debug",
        "--systemd-cgroup",
        "--criu",
    ] {
        assert!(text.contains(flag), "help lacks {flag}: {text}");
    }
    // No argument at all prints the help too, successfully, as runc does.
    let out = berth(&[]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("create"));
}

#[test]
fn usage_errors_exit_1() {
    let root = TempDir::new("usage");
    for args in [
        &["state"][..],
        &["state", "a", "b"],
        &["exec"],
        &["nosuchverb"],
        &["--log-format", "xml", "state", "x"],
        &["--rootless", "maybe", "state", "x"],
        // Global flags go before the verb, as with runc.
        &["state", "--root", "/tmp", "x"],
    ] {
        let out = berth_root(&root, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn spec_writes_runc_default_config() {
    let dir = TempDir::new("spec");
    let out = berth_in(dir.path(), &["spec"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
    let written = std::fs::read_to_string(dir.path().join("config.json")).expect("config.json");

    let ours: serde_json::Value = serde_json::from_str(&written).expect("valid json");
    assert_eq!(ours["ociVersion"], "1.2.0");
    let runc: serde_json::Value =
        serde_json::from_str(&with_version(RUNC_SPEC, "1.2.0")).expect("fixture");
    assert_eq!(ours, runc, "structure differs from runc spec");
    // Same text too: tab indentation, runc's key order, no final newline.
    assert_eq!(written, RUNC_SPEC.replace("\"1.0.2-dev\"", "\"1.2.0\""));
}

#[test]
fn spec_matches_installed_runc() {
    let runc = Path::new("/usr/sbin/runc");
    if !runc.exists() {
        eprintln!("skipped: /usr/sbin/runc is not installed");
        return;
    }
    for extra in [&[][..], &["--rootless"]] {
        let ours = TempDir::new("spec-ours");
        let theirs = TempDir::new("spec-runc");
        let mut args = vec!["spec"];
        args.extend_from_slice(extra);
        let out = berth_in(ours.path(), &args);
        assert!(out.status.success(), "{}", stderr(&out));
        let out = run_bounded(Command::new(runc).args(&args).current_dir(theirs.path()));
        assert!(out.status.success(), "runc spec: {}", stderr(&out));
        let read = |d: &TempDir| {
            let text = std::fs::read_to_string(d.path().join("config.json")).expect("read");
            with_version(&text, "normalised")
        };
        assert_eq!(
            read(&ours),
            read(&theirs),
            "berth spec {extra:?} differs from runc"
        );
    }
}

#[test]
fn spec_rootless_matches_runc_to_rootless() {
    let dir = TempDir::new("spec-rootless");
    let out = berth_in(dir.path(), &["spec", "--rootless"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(dir.path().join("config.json")).expect("config.json");
    let ours: serde_json::Value = serde_json::from_str(&text).expect("valid json");

    let mut runc: serde_json::Value =
        serde_json::from_str(&with_version(RUNC_SPEC_ROOTLESS, "1.2.0")).expect("fixture");
    // The fixture was made as root: the mappings name the caller's euid and egid.
    let (uid, gid) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    runc["linux"]["uidMappings"][0]["hostID"] = uid.into();
    runc["linux"]["gidMappings"][0]["hostID"] = gid.into();
    assert_eq!(ours, runc);

    let namespaces: Vec<&str> = ours["linux"]["namespaces"]
        .as_array()
        .expect("namespaces")
        .iter()
        .filter_map(|n| n["type"].as_str())
        .collect();
    assert!(
        namespaces.contains(&"user") && !namespaces.contains(&"network"),
        "{namespaces:?}"
    );
    assert!(ours["linux"].get("resources").is_none());
}

#[test]
fn spec_refuses_to_overwrite() {
    let dir = TempDir::new("spec-exists");
    std::fs::write(dir.path().join("config.json"), "keep me").expect("write");
    let out = berth_in(dir.path(), &["spec"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("File config.json exists. Remove it first"),
        "{}",
        stderr(&out)
    );
    let kept = std::fs::read_to_string(dir.path().join("config.json")).expect("read");
    assert_eq!(kept, "keep me");
}

#[test]
fn spec_bundle_flag() {
    let dir = TempDir::new("spec-bundle");
    let bundle = dir.path().join("b");
    std::fs::create_dir(&bundle).expect("mkdir");
    let out = berth(&["spec", "--bundle", bundle.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(bundle.join("config.json").is_file());
    let missing = dir.path().join("missing");
    let out = berth(&["spec", "-b", missing.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!missing.exists());
}

#[test]
fn state_of_missing_container_names_it() {
    let root = TempDir::new("state");
    let id = unique_id("nonexistent");
    let out = berth_root(&root, &["state", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).is_empty());
    let err = stderr(&out);
    assert!(err.contains(&id), "{err}");
    // Without --log the error is a logrus text line on stderr.
    assert!(
        err.starts_with("time=\"") && err.contains(" level=error msg="),
        "{err}"
    );
}

#[test]
fn invalid_ids_are_rejected() {
    let root = TempDir::new("badid");
    // "../x" names <tmp>/x: another program may have made that one; judge only a new one.
    let escaped = root.path().parent().expect("parent").join("x");
    let was_there = escaped.exists();
    // 256 bytes: longer than a directory entry name may be (runc fails in mkdir).
    let long = "a".repeat(256);
    for id in ["../x", "a/b", "..", "a b", long.as_str()] {
        for verb in ["create", "start", "state", "delete", "kill"] {
            let out = berth_root(&root, &[verb, id]);
            assert_eq!(out.status.code(), Some(1), "{verb} {id:?}");
            assert!(
                stderr(&out).contains("invalid container id"),
                "{verb} {id:?}: {}",
                stderr(&out)
            );
        }
    }
    // Nothing was made in the root for the long id either.
    assert_eq!(
        std::fs::read_dir(root.path())
            .map(|d| d.count())
            .unwrap_or(0),
        0,
        "entries left in {}",
        root.path().display()
    );
    // Nothing escaped the root.
    assert!(
        was_there || !escaped.exists(),
        "{} was made",
        escaped.display()
    );
}

#[test]
fn kill_with_bad_signal_exits_1() {
    let root = TempDir::new("kill");
    let out = berth_root(&root, &["kill", &unique_id("kill"), "NOSUCHSIGNAL"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn delete_missing_container() {
    let root = TempDir::new("delete");
    let id = unique_id("gone");
    let out = berth_root(&root, &["delete", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(&id));
    // runc 1.1: --force on a missing container succeeds silently.
    let out = berth_root(&root, &["delete", "--force", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).is_empty() && stdout(&out).is_empty());
}

#[test]
fn list_empty_root() {
    let root = TempDir::new("list");
    let out = berth_root(&root, &["list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "ID          PID         STATUS      BUNDLE      CREATED     OWNER\n"
    );
    let out = berth_root(&root, &["list", "--format", "json"]);
    assert!(out.status.success());
    assert_eq!(stdout(&out), "null\n");
    let out = berth_root(&root, &["list", "-q"]);
    assert!(out.status.success());
    assert_eq!(stdout(&out), "");
    let out = berth_root(&root, &["list", "-f", "yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("invalid format option"));
}

#[test]
fn json_log_gets_one_logrus_line() {
    let root = TempDir::new("log-json");
    let log = root.path().join("log.json");
    let state_root = root.path().join("state");
    let id = unique_id("missing");
    let args = [
        "--root",
        state_root.to_str().expect("utf-8"),
        "--log",
        log.to_str().expect("utf-8"),
        "--log-format",
        "json",
        "state",
        &id,
    ];
    let out = berth(&args);
    assert_eq!(out.status.code(), Some(1));
    // runc's fatal: the bare message on stderr as well when the log is a file.
    let err = stderr(&out);
    assert!(err.contains(&id) && !err.contains("level"), "{err}");

    let text = std::fs::read_to_string(&log).expect("log file");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    // logrus's JSON formatter: keys sorted, so level, msg, time.
    assert!(
        lines[0].starts_with("{\"level\":\"error\",\"msg\":\""),
        "{text}"
    );
    let value: serde_json::Value = serde_json::from_str(lines[0]).expect("valid json line");
    let obj = value.as_object().expect("object");
    assert_eq!(obj.len(), 3, "{text}");
    assert_eq!(obj["level"], "error");
    assert!(obj["msg"].as_str().expect("msg").contains(&id));
    let time = obj["time"].as_str().expect("time");
    assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{time}");

    // The log is appended to, never truncated.
    let out = berth(&args);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        std::fs::read_to_string(&log).expect("log").lines().count(),
        2
    );
}

#[test]
fn text_log_gets_logrus_text_line() {
    let root = TempDir::new("log-text");
    let log = root.path().join("log.txt");
    let state_root = root.path().join("state");
    let id = unique_id("missing");
    let out = berth(&[
        "--root",
        state_root.to_str().expect("utf-8"),
        "--log",
        log.to_str().expect("utf-8"),
        "state",
        &id,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = std::fs::read_to_string(&log).expect("log file");
    let line = text.strip_suffix('\n').expect("newline-terminated");
    assert!(!line.contains('\n'), "{text}");
    let rest = line.strip_prefix("time=\"").expect("time first");
    let (time, rest) = rest.split_once('"').expect("closing quote");
    assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{time}");
    assert!(rest.starts_with(" level=error msg=\""), "{line}");
    assert!(rest.contains(&id));
}

// --- lifecycle: needs a working create path ------------------------------------

/// A busybox bundle running `args`, or None (with the reason printed) when this
/// machine cannot run one.
fn busybox_bundle(dir: &TempDir, args: &[&str]) -> Option<PathBuf> {
    let busybox = Path::new("/bin/busybox");
    if !busybox.exists() {
        eprintln!("skipped: /bin/busybox is not installed");
        return None;
    }
    let bundle = dir.path().join("bundle");
    let bin = bundle.join("rootfs/bin");
    for d in [
        "rootfs/bin",
        "rootfs/etc",
        "rootfs/proc",
        "rootfs/sys",
        "rootfs/dev",
        "rootfs/tmp",
    ] {
        std::fs::create_dir_all(bundle.join(d)).expect("mkdir rootfs");
    }
    std::fs::copy(busybox, bin.join("busybox")).expect("copy busybox");
    for applet in ["sh", "sleep", "true", "false", "kill"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).expect("symlink applet");
    }
    let out = berth_in(&bundle, &["spec"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    config["process"]["terminal"] = false.into();
    config["process"]["args"] = args.iter().map(|a| serde_json::Value::from(*a)).collect();
    std::fs::write(&path, serde_json::to_string(&config).expect("json")).expect("write");
    Some(bundle)
}

/// Deletes the container with --force when the test ends, however it ends.
struct ContainerGuard<'a> {
    root: &'a TempDir,
    id: String,
}

impl Drop for ContainerGuard<'_> {
    fn drop(&mut self) {
        let _ = berth_root(self.root, &["delete", "--force", &self.id]);
    }
}

/// Starts `berth run` in the background (output discarded).
fn spawn_run(root: &TempDir, bundle: &Path, id: &str, extra: &[&str]) -> Child {
    Command::new(BERTH)
        .args(["--root", root.path().to_str().expect("utf-8"), "run", "-b"])
        .arg(bundle)
        .args(extra)
        .arg(id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn berth run")
}

/// Waits until `berth state` says running; kills `child` and fails on timeout.
fn wait_running(root: &TempDir, id: &str, child: &mut Child) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let out = berth_root(root, &["state", id]);
        if stdout(&out).contains("\"running\"") {
            return;
        }
        if Instant::now() > deadline || child.try_wait().expect("try_wait").is_some() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("container {id} never ran");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn lifecycle_create_state_kill_delete() {
    let dir = TempDir::new("life");
    let Some(bundle) = busybox_bundle(&dir, &["sleep", "100"]) else {
        return;
    };
    let root = TempDir::new("life-root");
    let id = unique_id("life");
    let _guard = ContainerGuard {
        root: &root,
        id: id.clone(),
    };
    let pid_file = dir.path().join("pid");
    let out = berth_root(
        &root,
        &[
            "create",
            "-b",
            bundle.to_str().expect("utf-8"),
            "--pid-file",
            pid_file.to_str().expect("utf-8"),
            &id,
        ],
    );
    assert!(out.status.success(), "create: {}", stderr(&out));

    let out = berth_root(&root, &["state", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(!text.ends_with('\n'), "runc prints no final newline");
    let state: serde_json::Value = serde_json::from_str(&text).expect("state json");
    assert_eq!(state["status"], "created");
    assert_eq!(state["id"], id.as_str());
    let pid = std::fs::read_to_string(&pid_file).expect("pid file");
    assert_eq!(state["pid"].to_string(), pid);

    let out = berth_root(&root, &["list", "-q"]);
    assert_eq!(stdout(&out), format!("{id}\n"));
    let out = berth_root(&root, &["list", "--format", "json"]);
    let list: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("list json");
    assert_eq!(list[0]["id"], id.as_str());

    let out = berth_root(&root, &["kill", &id, "NOSUCHSIGNAL"]);
    assert_eq!(out.status.code(), Some(1));

    let out = berth_root(&root, &["start", &id]);
    assert!(out.status.success(), "start: {}", stderr(&out));
    let out = berth_root(&root, &["start", &id]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a running container cannot start again"
    );
    let out = berth_root(&root, &["delete", &id]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "running container must not be deleted"
    );
    // Signal 0 probes (engines use it for liveness), as runc's kill.
    let out = berth_root(&root, &["kill", &id, "0"]);
    assert!(out.status.success(), "kill 0: {}", stderr(&out));
    let out = berth_root(&root, &["kill", &id, "KILL"]);
    assert!(out.status.success(), "kill: {}", stderr(&out));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = berth_root(&root, &["state", &id]);
        let state: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("state json");
        if state["status"] == "stopped" {
            break;
        }
        assert!(Instant::now() < deadline, "container did not stop: {state}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Stopped: a signal (0 too) to the init fails, `kill --all` is fine (runc 1.1.5;
    // containerd's shim sends it after the init of a shared-PID pod has exited).
    for args in [["kill", id.as_str(), "0"], ["kill", id.as_str(), "TERM"]] {
        let out = berth_root(&root, &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
    }
    let out = berth_root(&root, &["kill", "--all", &id, "KILL"]);
    assert!(out.status.success(), "kill --all: {}", stderr(&out));
    let out = berth_root(&root, &["delete", &id]);
    assert!(out.status.success(), "delete: {}", stderr(&out));
    let out = berth_root(&root, &["state", &id]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn run_returns_the_container_exit_status() {
    let dir = TempDir::new("run");
    let Some(bundle) = busybox_bundle(&dir, &["sh", "-c", "exit 7"]) else {
        return;
    };
    let root = TempDir::new("run-root");
    let id = unique_id("run");
    let _guard = ContainerGuard {
        root: &root,
        id: id.clone(),
    };
    let out = berth_root(&root, &["run", "-b", bundle.to_str().expect("utf-8"), &id]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    // Deleted afterwards (no --keep).
    let out = berth_root(&root, &["state", &id]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn run_killed_init_gives_128_plus_signal() {
    let dir = TempDir::new("run-kill");
    let Some(bundle) = busybox_bundle(&dir, &["sleep", "100"]) else {
        return;
    };
    let root = TempDir::new("run-kill-root");
    let id = unique_id("run-kill");
    let _guard = ContainerGuard {
        root: &root,
        id: id.clone(),
    };
    let mut child = spawn_run(&root, &bundle, &id, &["--keep"]);
    wait_running(&root, &id, &mut child);
    let out = berth_root(&root, &["kill", &id, "KILL"]);
    assert!(out.status.success(), "kill: {}", stderr(&out));
    assert_eq!(wait_exit(&mut child).code(), Some(137));
    let out = berth_root(&root, &["state", &id]);
    assert!(
        out.status.success(),
        "--keep keeps the state: {}",
        stderr(&out)
    );
    assert!(stdout(&out).contains("\"stopped\""), "{}", stdout(&out));
}

#[test]
fn run_forwards_signals_to_the_init() {
    let dir = TempDir::new("run-signal");
    // A pid-namespace init only receives signals it handles: trap TERM.
    let script = "trap 'exit 42' TERM; while :; do sleep 0.1; done";
    let Some(bundle) = busybox_bundle(&dir, &["sh", "-c", script]) else {
        return;
    };
    let root = TempDir::new("run-signal-root");
    let id = unique_id("run-signal");
    let _guard = ContainerGuard {
        root: &root,
        id: id.clone(),
    };
    let mut child = spawn_run(&root, &bundle, &id, &[]);
    wait_running(&root, &id, &mut child);
    // Let the shell install its trap before signalling.
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("signal berth");
    assert_eq!(wait_exit(&mut child).code(), Some(42));
}

#[test]
fn run_bridges_a_terminal_without_console_socket() {
    // runc's behaviour: `run` in the foreground with process.terminal and no
    // --console-socket allocates the pty itself and copies its output to stdout.
    let dir = TempDir::new("run-tty");
    let Some(bundle) = busybox_bundle(&dir, &["sh", "-c", "[ -t 0 ] && echo tty-ok; exit 5"])
    else {
        return;
    };
    let path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    config["process"]["terminal"] = true.into();
    std::fs::write(&path, serde_json::to_string(&config).expect("json")).expect("write");
    let root = TempDir::new("run-tty-root");
    let id = unique_id("runtty");
    let _guard = ContainerGuard {
        root: &root,
        id: id.clone(),
    };
    let out = berth_root(&root, &["run", "-b", bundle.to_str().expect("utf-8"), &id]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("tty-ok"),
        "stdout: {:?}",
        stdout(&out)
    );
}

/// A truncated state file (a disk that filled up, a hand edit): every verb that reads
/// it fails with one line naming the id and the file, `list` still works, plain
/// `delete` refuses, and `delete --force` removes the directory so the id is free.
#[test]
fn corrupt_state_file_is_one_line_error_and_force_delete_removes_it() {
    let root = TempDir::new("corrupt-state");
    let id = unique_id("corrupt");
    let dir = root.path().join(&id);
    std::fs::create_dir(&dir).expect("make state dir");
    std::fs::write(dir.join("state.json"), br#"{"id":"x","pid":12,"bund"#).expect("write");
    for args in [vec!["state", id.as_str()], vec!["delete", id.as_str()]] {
        let out = berth_root(&root, &args);
        assert!(
            !out.status.success(),
            "{args:?} succeeded on a corrupt state"
        );
        let err = stderr(&out);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err:?}");
        assert!(
            err.contains(&id) && err.contains("state.json"),
            "{args:?}: {err:?}"
        );
    }
    assert!(dir.exists(), "delete without --force removed the directory");
    let out = berth_root(&root, &["list", "-q"]);
    assert!(out.status.success(), "list: {}", stderr(&out));
    let out = berth_root(&root, &["delete", "--force", &id]);
    assert!(out.status.success(), "delete --force: {}", stderr(&out));
    assert_eq!(
        stderr(&out).trim_end().lines().count(),
        1,
        "{}",
        stderr(&out)
    );
    assert!(!dir.exists(), "delete --force left {}", dir.display());
    let out = berth_root(&root, &["state", &id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
}

/// Mount points at or below `dir` in this mount namespace.
fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|m| m.starts_with(dir))
        .collect()
}

/// A `restore` killed after it bound the rootfs for CRIU at `<state>/<id>/criu-root`
/// (and before it recorded the restored init) leaves that bind in the state
/// directory: `delete --force` must detach it before it removes the directory, and
/// never reach through it into the rootfs (a recursive removal would empty it).
/// CRIU cannot run on this host, so the state is made by hand: a created container,
/// its state as a restore leaves it (no init pid, not created), and the bind.
#[test]
fn force_delete_after_a_killed_restore_keeps_the_rootfs() {
    if !support::usable() {
        return;
    }
    let dir = TempDir::new("killed-restore");
    let root = TempDir::new("killed-restore-root");
    let mut guard = support::Guard::new(&root, "killed-restore");
    let id = unique_id("killed-restore");
    guard.ids.push(id.clone());
    let b = support::bundle(&dir, &["sleep", "30"], &guard.cgroup_parent, &id);
    let rootfs = b.join("rootfs");
    std::fs::write(rootfs.join("canary"), "keep me\n").expect("canary");
    let out = berth_root(&root, &["create", "-b", b.to_str().expect("utf-8"), &id]);
    assert!(out.status.success(), "create: {}", stderr(&out));
    let state_dir = root.path().join(&id);
    let state_path = state_dir.join("state.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).expect("read state"))
            .expect("state json");
    state["pid"] = 0.into();
    state["pid_start_time"] = 0.into();
    state["created_done"] = false.into();
    std::fs::write(&state_path, state.to_string()).expect("write state");
    let criu_root = state_dir.join("criu-root");
    std::fs::create_dir(&criu_root).expect("mkdir criu-root");
    let bound = Command::new("mount")
        .arg("--rbind")
        .arg(&rootfs)
        .arg(&criu_root)
        .status()
        .expect("run mount");
    assert!(bound.success(), "mount --rbind {}", rootfs.display());
    let out = berth_root(&root, &["delete", "--force", &id]);
    let left = mounts_below(&state_dir);
    for m in left.iter().rev() {
        let _ = Command::new("umount").arg("-l").arg(m).status();
    }
    assert!(
        rootfs.join("canary").exists() && rootfs.join("bin/busybox").exists(),
        "delete --force emptied the rootfs through the restore's bind: {}",
        stderr(&out)
    );
    assert!(out.status.success(), "delete --force: {}", stderr(&out));
    assert!(left.is_empty(), "delete --force left mounts: {left:?}");
    assert!(
        !state_dir.exists(),
        "delete --force left {}: {}",
        state_dir.display(),
        stderr(&out)
    );
    assert!(
        stderr(&out).trim().is_empty(),
        "delete --force warned: {}",
        stderr(&out)
    );
}

/// A state directory `load` cannot read (a corrupt state file, or none: a create that
/// died early, or a removal stopped half-way) with something mounted below it: `delete
/// --force` removes it without reaching through the mount (a recursive removal by path
/// emptied the mounted directory), and removes it once the mount is gone.
#[test]
fn force_delete_of_an_unreadable_state_never_removes_through_a_mount() {
    if !support::usable() {
        return;
    }
    let root = TempDir::new("leftover-root");
    let outside = TempDir::new("leftover-outside");
    std::fs::write(outside.path().join("canary"), "keep me\n").expect("canary");
    for (n, state) in [Some("{\"id\": tr"), None].into_iter().enumerate() {
        let id = unique_id(&format!("leftover-{n}"));
        let state_dir = root.path().join(&id);
        let scratch = state_dir.join("scratch");
        std::fs::create_dir_all(&scratch).expect("mkdir scratch");
        if let Some(text) = state {
            std::fs::write(state_dir.join("state.json"), text).expect("state");
        }
        let bound = Command::new("mount")
            .arg("--bind")
            .arg(outside.path())
            .arg(&scratch)
            .status()
            .expect("run mount");
        assert!(bound.success(), "mount --bind onto {}", scratch.display());
        let out = berth_root(&root, &["delete", "--force", &id]);
        let _ = Command::new("umount").arg("-l").arg(&scratch).status();
        assert!(
            outside.path().join("canary").exists(),
            "delete --force of {id} ({state:?}) removed through the mount: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains(&*state_dir.to_string_lossy()),
            "delete --force of {id} did not name the directory it left: {}",
            stderr(&out)
        );
        let out = berth_root(&root, &["delete", "--force", &id]);
        assert!(out.status.success(), "delete --force: {}", stderr(&out));
        assert!(
            !state_dir.exists(),
            "delete --force left {}: {}",
            state_dir.display(),
            stderr(&out)
        );
    }
}

/// Without a mount namespace, `create` binds the rootfs onto itself in the runtime's
/// namespace. A create killed after that bind but before recording it leaves a state
/// with only the mount the rootfs was on: `delete --force` must still find the bind
/// (stacked on that mount at the rootfs) and detach it with everything below.
#[test]
fn force_delete_detaches_an_unrecorded_rootfs_bind() {
    if !support::usable() {
        return;
    }
    let dir = TempDir::new("unrecorded-bind");
    let root = TempDir::new("unrecorded-bind-root");
    let mut guard = support::Guard::new(&root, "unrecorded-bind");
    let id = unique_id("unrecorded-bind");
    guard.ids.push(id.clone());
    let b = support::bundle(&dir, &["sleep", "30"], &guard.cgroup_parent, &id);
    let config_path = b.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).expect("read config"))
            .expect("config json");
    config["linux"]["namespaces"]
        .as_array_mut()
        .expect("namespaces")
        .retain(|n| n["type"] != "mount");
    // Refused without a mount namespace (as runc refuses them).
    for key in ["maskedPaths", "readonlyPaths"] {
        config["linux"].as_object_mut().expect("linux").remove(key);
    }
    std::fs::write(&config_path, config.to_string()).expect("write config");
    let out = berth_root(&root, &["create", "-b", b.to_str().expect("utf-8"), &id]);
    assert!(out.status.success(), "create: {}", stderr(&out));
    let rootfs = b.join("rootfs").canonicalize().expect("canonical rootfs");
    assert!(
        !mounts_below(&rootfs).is_empty(),
        "no mount below {} without a mount namespace",
        rootfs.display()
    );
    // The state as a create killed just after the bind left it.
    let state_path = root.path().join(&id).join("state.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).expect("read state"))
            .expect("state json");
    assert!(
        state.get("shared_ns_under").is_some(),
        "state records no mount under the rootfs: {state}"
    );
    let fields = state.as_object_mut().expect("state object");
    assert!(
        fields.remove("shared_ns_mount").is_some(),
        "no bind recorded"
    );
    std::fs::write(&state_path, state.to_string()).expect("write state");
    let out = berth_root(&root, &["delete", "--force", &id]);
    let left = mounts_below(&rootfs);
    for m in left.iter().rev() {
        let _ = Command::new("umount").arg("-l").arg(m).status();
    }
    assert!(out.status.success(), "delete --force: {}", stderr(&out));
    assert!(left.is_empty(), "delete --force left mounts: {left:?}");
}
