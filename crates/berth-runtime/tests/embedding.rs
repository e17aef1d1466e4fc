//! The library as an embedder uses it (as root, real namespaces and cgroups): a spec
//! held in memory, stdio as fds, the pty master handed back in-process, exits through
//! pidfds (blocking and readiness), the OOM-kill fact, and two runtimes side by side.

use berth_runtime::{
    Console, CreateOptions, ExecOptions, ExitStatus, Runtime, SpecBundle, Status, Stdio,
};
use oci_spec::runtime::Spec;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};

mod support;
use support::Fixture;

const APPLETS: &[&str] = &["sh", "cat", "echo", "sleep", "dd", "tty", "read", "true"];

/// A spec running `args` with the usual namespaces and this fixture's cgroup.
fn spec(f: &Fixture, args: &[&str]) -> Spec {
    serde_json::from_value(serde_json::json!({
        "ociVersion": "1.2.0",
        "process": {
            "args": args, "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}
        },
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}
        ],
        "linux": {
            "cgroupsPath": f.cgroup(),
            "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}]
        }
    }))
    .unwrap()
}

fn rootfs(f: &Fixture) -> std::path::PathBuf {
    f.bundle().join("rootfs")
}

/// A pipe as (read end, write end), both close-on-exec.
fn pipe() -> (std::fs::File, OwnedFd) {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    (std::fs::File::from(r), w)
}

fn read_all(mut f: std::fs::File) -> String {
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    s
}

#[test]
fn spec_in_memory_with_piped_stdio() {
    let f = Fixture::new("emb-stdio", APPLETS);
    let script = "echo out; echo err >&2; read x; echo got $x";
    let (out_r, out_w) = pipe();
    let (err_r, err_w) = pipe();
    let (in_r, in_w) = pipe();
    let options = CreateOptions {
        stdio: Stdio {
            stdin: Some(OwnedFd::from(in_r)),
            stdout: Some(out_w),
            stderr: Some(err_w),
        },
        ..Default::default()
    };
    let mut c = f
        .runtime
        .create_from_spec(
            &f.id,
            SpecBundle::new(spec(&f, &["sh", "-c", script]), rootfs(&f)),
            &options,
        )
        .unwrap();
    // The library keeps no copy: with ours gone, the readers see the container's end.
    drop(options);
    // No bundle was given: the state directory is the bundle and holds the spec.
    let state_dir = f.runtime.root().join(&f.id);
    assert_eq!(c.state().unwrap().bundle, state_dir);
    let written: Spec =
        serde_json::from_slice(&std::fs::read(state_dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        written.root().as_ref().unwrap().path(),
        &std::fs::canonicalize(rootfs(&f)).unwrap()
    );
    // The init is our child: we can collect its status.
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", c.pid())).unwrap();
    let ppid: u32 = stat[stat.rfind(')').unwrap() + 2..]
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(ppid, std::process::id());
    let handle = c.wait_handle().unwrap();
    c.start().unwrap();
    std::fs::File::from(in_w).write_all(b"input\n").unwrap();
    let exit = handle.wait().unwrap();
    assert_eq!(exit.status, ExitStatus::Exited(0));
    assert!(!exit.oom_killed);
    assert_eq!(read_all(out_r), "out\ngot input\n");
    assert_eq!(read_all(err_r), "err\n");
    // Collected once, reported again.
    assert_eq!(handle.wait().unwrap(), exit);
    assert_eq!(c.status(), Status::Stopped);
    c.delete(false).unwrap();
    assert!(!state_dir.exists());
}

#[test]
fn spec_in_memory_records_a_given_bundle_dir() {
    let f = Fixture::new("emb-bundle", APPLETS);
    let bundle = f.dir.join("elsewhere");
    std::fs::create_dir_all(&bundle).unwrap();
    let mut s = spec(&f, &["true"]);
    // A relative bind source is found in the bundle directory, as runc finds it.
    std::fs::create_dir_all(bundle.join("data")).unwrap();
    std::fs::write(bundle.join("data/file"), "x").unwrap();
    let mut mounts = s.mounts().clone().unwrap();
    mounts.push(
        serde_json::from_value(serde_json::json!(
            {"destination": "/data", "type": "bind", "source": "data", "options": ["rbind", "ro"]}
        ))
        .unwrap(),
    );
    s.set_mounts(Some(mounts.clone()));
    let c = f
        .runtime
        .create_from_spec(
            &f.id,
            SpecBundle::new(s, rootfs(&f)).with_bundle_dir(&bundle),
            &CreateOptions {
                stdio: Stdio::null().unwrap(),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(c.state().unwrap().bundle, bundle);
    assert!(!f.runtime.root().join(&f.id).join("config.json").exists());
    c.delete(true).unwrap();

    // Without a bundle directory a relative bind source has no meaning: refused, and
    // nothing is left.
    let mut s = spec(&f, &["true"]);
    s.set_mounts(Some(mounts));
    let err = f
        .runtime
        .create_from_spec(&f.id, SpecBundle::new(s, rootfs(&f)), &Default::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("relative bind source"), "{err}");
    assert!(!f.state_dir_exists());
}

#[test]
fn exec_with_stdio_and_a_pidfd() {
    let f = Fixture::new("emb-exec", APPLETS);
    let mut c = f
        .runtime
        .create_from_spec(
            &f.id,
            SpecBundle::new(spec(&f, &["sleep", "30"]), rootfs(&f)),
            &CreateOptions {
                stdio: Stdio::null().unwrap(),
                ..Default::default()
            },
        )
        .unwrap();
    c.start().unwrap();
    let (out_r, out_w) = pipe();
    let process: oci_spec::runtime::Process = serde_json::from_value(serde_json::json!({
        "args": ["sh", "-c", "echo exec says hi; exit 3"], "cwd": "/", "env": ["PATH=/bin"],
        "user": {"uid": 0, "gid": 0}
    }))
    .unwrap();
    let options = ExecOptions {
        stdio: Stdio {
            stdout: Some(out_w),
            ..Default::default()
        },
        ..Default::default()
    };
    let p = c.exec(&process, &options).unwrap();
    drop(options);
    let handle = p.wait_handle().unwrap();
    assert_eq!(handle.pid(), p.pid());
    let exit = handle.wait().unwrap();
    assert_eq!(exit.status, ExitStatus::Exited(3));
    assert_eq!(read_all(out_r), "exec says hi\n");
    // The init is untouched; then it is killed and its exit collected by readiness.
    let init = c.wait_handle().unwrap();
    assert!(!readable(&init, 0));
    assert_eq!(init.try_wait().unwrap(), None);
    c.kill(nix::sys::signal::Signal::SIGKILL, false).unwrap();
    assert!(readable(&init, 10_000), "the pidfd never became readable");
    let exit = init.try_wait().unwrap().expect("exited");
    assert_eq!(exit.status, ExitStatus::Signaled(libc::SIGKILL));
    assert!(!exit.oom_killed);
    c.delete(false).unwrap();
}

/// Whether the handle's fd turns readable within `ms` (what an event loop sees).
fn readable(h: &berth_runtime::WaitHandle, ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd: h.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, ms) == 1 }
}

#[test]
fn terminal_master_handed_back_in_process() {
    let f = Fixture::new("emb-tty", APPLETS);
    let mut s = spec(&f, &["sh", "-c", "tty; read x; echo got-$x"]);
    let mut p = s.process().clone().unwrap();
    p.set_terminal(Some(true));
    s.set_process(Some(p));
    let mut c = f
        .runtime
        .create_from_spec(
            &f.id,
            SpecBundle::new(s, rootfs(&f)),
            &CreateOptions {
                console: Some(Console::InProcess),
                ..Default::default()
            },
        )
        .unwrap();
    let master = c.take_pty_master().expect("a pty master");
    assert!(c.take_pty_master().is_none());
    assert!(nix::unistd::isatty(&master).unwrap());
    let handle = c.wait_handle().unwrap();
    c.start().unwrap();
    let mut m = std::fs::File::from(master);
    m.write_all(b"yes\n").unwrap();
    let exit = handle.wait().unwrap();
    assert_eq!(exit.status, ExitStatus::Exited(0));
    // The slave is gone with the process: read until EIO.
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    while let Ok(n @ 1..) = m.read(&mut buf) {
        out.extend_from_slice(&buf[..n]);
    }
    let out = String::from_utf8_lossy(&out);
    assert!(out.contains("/dev/pts/0"), "{out}");
    assert!(out.contains("got-yes"), "{out}");
    c.delete(false).unwrap();
}

#[test]
fn oom_kill_is_reported() {
    let f = Fixture::new("emb-oom", APPLETS);
    let mut s = spec(
        &f,
        &["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
    );
    let mut linux = s.linux().clone().unwrap();
    linux.set_resources(Some(
        serde_json::from_value(serde_json::json!({
            "memory": {"limit": 16 * 1024 * 1024, "swap": 16 * 1024 * 1024}
        }))
        .unwrap(),
    ));
    s.set_linux(Some(linux));
    let c = match f.runtime.create_from_spec(
        &f.id,
        SpecBundle::new(s, rootfs(&f)),
        &CreateOptions {
            stdio: Stdio::null().unwrap(),
            ..Default::default()
        },
    ) {
        Ok(c) => c,
        Err(e) if e.to_string().contains("memsw") => {
            eprintln!("skipped oom_kill_is_reported: no swap accounting here ({e})");
            return;
        }
        Err(e) => panic!("create: {e}"),
    };
    if c.oom_kills().is_none() {
        eprintln!("skipped oom_kill_is_reported: the kernel keeps no OOM-kill count here");
        c.delete(true).unwrap();
        return;
    }
    let mut c = c;
    let handle = c.wait_handle().unwrap();
    c.start().unwrap();
    let exit = handle.wait().unwrap();
    assert_eq!(exit.status, ExitStatus::Signaled(libc::SIGKILL), "{exit:?}");
    assert!(exit.oom_killed, "{exit:?}");
    assert!(exit.oom_kills >= 1);
    c.delete(false).unwrap();
}

#[test]
fn two_runtimes_side_by_side() {
    // One id in two state roots: each runtime sees and removes only its own.
    let a = Fixture::new("emb-two", APPLETS);
    let b_root = a.dir.join("root-b");
    let b = Runtime::new(&b_root).unwrap();
    let mut spec_b = spec(&a, &["sleep", "30"]);
    let mut linux = spec_b.linux().clone().unwrap();
    linux.set_cgroups_path(Some(format!("{}-b", a.cgroup()).into()));
    spec_b.set_linux(Some(linux));
    let threads: Vec<_> = [(a.runtime.clone(), spec(&a, &["sleep", "30"])), (b, spec_b)]
        .into_iter()
        .map(|(rt, s)| {
            let id = a.id.clone();
            let rootfs = rootfs(&a);
            std::thread::spawn(move || {
                let mut c = rt
                    .create_from_spec(
                        &id,
                        SpecBundle::new(s, rootfs),
                        &CreateOptions {
                            stdio: Stdio::null().unwrap(),
                            ..Default::default()
                        },
                    )
                    .unwrap();
                c.start().unwrap();
                (rt, c.pid(), c.wait_handle().unwrap())
            })
        })
        .collect();
    let started: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let (rt_a, pid_a, _) = &started[0];
    let (rt_b, pid_b, wait_b) = &started[1];
    assert_ne!(pid_a, pid_b);
    for (rt, pid) in [(rt_a, pid_a), (rt_b, pid_b)] {
        let list = rt.list().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].pid(), *pid);
        assert_eq!(list[0].status(), Status::Running);
    }
    rt_a.load(&a.id).unwrap().delete(true).unwrap();
    assert!(rt_a.list().unwrap().is_empty());
    assert_eq!(rt_b.load(&a.id).unwrap().status(), Status::Running);
    assert!(!readable(wait_b, 0));
    rt_b.load(&a.id).unwrap().delete(true).unwrap();
    assert_eq!(
        wait_b.wait().unwrap().status,
        ExitStatus::Signaled(libc::SIGKILL)
    );
}

#[test]
fn another_process_container_can_be_watched_not_collected() {
    // A forked child creates and starts the container (so the init is the child's
    // child); this process loads it: the pidfd works, the status is not ours.
    let f = Fixture::new("emb-other", APPLETS);
    let (ready_r, ready_w) = pipe();
    let (go_r, go_w) = pipe();
    let s = spec(&f, &["sleep", "30"]);
    // SAFETY: the child uses the library (glibc's fork keeps malloc usable), writes
    // to its pipes and leaves with _exit, never returning into the test harness.
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            drop(ready_r);
            drop(go_w);
            let code = (|| -> Option<()> {
                let mut c = f
                    .runtime
                    .create_from_spec(
                        &f.id,
                        SpecBundle::new(s, rootfs(&f)),
                        &CreateOptions {
                            stdio: Stdio::null().ok()?,
                            ..Default::default()
                        },
                    )
                    .ok()?;
                c.start().ok()?;
                let init = c.wait_handle().ok()?;
                std::fs::File::from(ready_w).write_all(b"1").ok()?;
                let mut b = [0u8; 1];
                let _ = { go_r }.read(&mut b);
                c.delete(true).ok()?;
                // Reap it here: a zombie left to PID 1 may linger on this host.
                (init.wait().ok()?.status == ExitStatus::Signaled(libc::SIGKILL)).then_some(())
            })()
            .map_or(1, |()| 0);
            // SAFETY: leaving the forked child without running the harness's code.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(ready_w);
            drop(go_r);
            let mut b = [0u8; 1];
            let n = { ready_r }.read(&mut b).unwrap();
            let result = std::panic::catch_unwind(|| {
                assert_eq!(n, 1, "the child could not create the container");
                let c = f.runtime.load(&f.id).unwrap();
                let h = c.wait_handle().unwrap();
                assert!(!readable(&h, 0));
                match h.try_wait() {
                    Err(berth_runtime::Error::NotChild { pid, .. }) => assert_eq!(pid, c.pid()),
                    other => panic!("expected NotChild, got {other:?}"),
                }
                h
            });
            drop(go_w);
            let status = nix::sys::wait::waitpid(child, None).unwrap();
            let h = result.unwrap();
            assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            // The exit is seen through the fd even so.
            assert!(readable(&h, 0));
        }
    }
}

#[test]
fn bundle_dir_create_with_piped_stdio_and_exec_terminal_in_process() {
    // A bundle directory (config.json on disk) with the embedder's stdio, then an
    // exec'd process with a terminal whose master comes back in-process.
    let f = Fixture::new("emb-dir", APPLETS);
    let s = spec(&f, &["sh", "-c", "echo from-bundle-dir; exec sleep 30"]);
    let mut config = serde_json::to_value(&s).unwrap();
    config["root"] = serde_json::json!({"path": "rootfs"});
    f.write_config(&config);
    let (out_r, out_w) = pipe();
    let options = CreateOptions {
        stdio: Stdio {
            stdout: Some(out_w),
            ..Stdio::null().unwrap()
        },
        ..Default::default()
    };
    let mut c = f.create_with(&options).unwrap();
    drop(options);
    assert_eq!(c.state().unwrap().bundle, f.bundle());
    c.start().unwrap();
    let mut out = out_r;
    let mut line = [0u8; 16];
    out.read_exact(&mut line).unwrap();
    assert_eq!(&line, b"from-bundle-dir\n");

    let process: oci_spec::runtime::Process = serde_json::from_value(serde_json::json!({
        "terminal": true, "args": ["sh", "-c", "tty; read x; echo exec-got-$x"],
        "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}
    }))
    .unwrap();
    let mut p = c
        .exec(
            &process,
            &ExecOptions {
                console: Some(Console::InProcess),
                ..Default::default()
            },
        )
        .unwrap();
    let master = p.take_pty_master().expect("a pty master");
    assert!(p.take_pty_master().is_none());
    let mut m = std::fs::File::from(master);
    m.write_all(b"ok\n").unwrap();
    assert_eq!(p.wait().unwrap(), ExitStatus::Exited(0));
    let mut text = Vec::new();
    let mut buf = [0u8; 256];
    while let Ok(n @ 1..) = m.read(&mut buf) {
        text.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains("/dev/pts/"), "{text}");
    assert!(text.contains("exec-got-ok"), "{text}");
    // The exit stays collected for a handle taken afterwards.
    assert_eq!(
        p.wait_handle().unwrap().wait().unwrap().status,
        ExitStatus::Exited(0)
    );
    c.delete(true).unwrap();
}

/// An idmapped bind mount given to the library: oci-spec's `Mount` has no mapping
/// fields, so they go with [`SpecBundle::with_mount_id_mappings`], by mount index. A
/// source owned by 200001:200002 on disk shows as 0:0 inside, and a file made inside
/// is 200001:200002 on the host.
#[test]
fn spec_in_memory_with_an_idmapped_mount() {
    use oci_spec::runtime::{LinuxIdMappingBuilder, MountBuilder};
    use std::os::unix::fs::MetadataExt;
    if !berth_runtime::rootfs::idmap_supported() {
        eprintln!("skipped: this kernel cannot make idmapped mounts");
        return;
    }
    let f = Fixture::new("emb-idmap", &["sh", "stat", "touch"]);
    let src = f.dir.join("idmap-src");
    std::fs::create_dir_all(&src).unwrap();
    std::os::unix::fs::chown(&src, Some(200_001), Some(200_002)).unwrap();
    std::fs::create_dir_all(rootfs(&f).join("data")).unwrap();
    let script = "stat -c %u:%g /data; touch /data/made";
    let mut s = spec(&f, &["sh", "-c", script]);
    let mut mounts = s.mounts().clone().unwrap();
    mounts.push(
        MountBuilder::default()
            .destination("/data")
            .typ("bind")
            .source(&src)
            .options(vec!["bind".to_string(), "idmap".to_string()])
            .build()
            .unwrap(),
    );
    let index = mounts.len() - 1;
    s.set_mounts(Some(mounts));
    let one = |from: u32| {
        vec![LinuxIdMappingBuilder::default()
            .container_id(from)
            .host_id(0u32)
            .size(1u32)
            .build()
            .unwrap()]
    };
    let mut mappings = vec![None; index + 1];
    mappings[index] = Some(berth_runtime::rootfs::MountIdMappings {
        uid: one(200_001),
        gid: one(200_002),
    });
    let (out_r, out_w) = pipe();
    let options = CreateOptions {
        stdio: Stdio {
            stdout: Some(out_w),
            ..Default::default()
        },
        ..Default::default()
    };
    let bundle = SpecBundle::new(s, rootfs(&f)).with_mount_id_mappings(mappings);
    let mut c = f.runtime.create_from_spec(&f.id, bundle, &options).unwrap();
    drop(options);
    let handle = c.wait_handle().unwrap();
    c.start().unwrap();
    let exit = handle.wait().unwrap();
    assert_eq!(exit.status, ExitStatus::Exited(0));
    assert_eq!(read_all(out_r), "0:0\n");
    let made = std::fs::metadata(src.join("made")).unwrap();
    assert_eq!((made.uid(), made.gid()), (200_001, 200_002));
    c.delete(false).unwrap();
}
