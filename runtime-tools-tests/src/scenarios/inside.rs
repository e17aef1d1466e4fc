//! "Inside" scenarios: the checker runs as the container process and judges config.json.

use serde_json::{json, Value};

use crate::ctx::Ctx;
use crate::spec::{caps_all_sets, default_config, push, set};
use crate::verdict::Res;
use crate::{ensure, skip};

fn checker_cfg() -> Value {
    default_config(&["/runtimetest"], "/placeholder")
}

fn bounding_has(cap: u32) -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    crate::caps::status_bits(&status, "CapBnd").is_some_and(|b| b & (1 << cap) != 0)
}

/// The default config: every checker item passes.
pub fn default(c: &mut Ctx) -> Res {
    c.run_inside(checker_cfg()).map(|_| ())
}

/// A specific hostname is seen; with none set the container still runs.
pub fn hostname(c: &mut Ctx) -> Res {
    let mut cfg = checker_cfg();
    set(&mut cfg, "hostname", json!("hostname-specific"));
    c.run_inside(cfg)?;
    let mut cfg = checker_cfg();
    crate::spec::remove(&mut cfg, "hostname");
    c.run_inside(cfg).map(|_| ())
}

/// args, cwd and env (the cwd exists in the rootfs).
pub fn process(c: &mut Ctx) -> Res {
    let mut cfg = checker_cfg();
    set(
        &mut cfg,
        "process/args",
        json!(["/runtimetest", "--path=/", "an arg with spaces", ""]),
    );
    set(&mut cfg, "process/cwd", json!("/test/sub"));
    push(&mut cfg, "process/env", json!("testa=valuea"));
    push(&mut cfg, "process/env", json!("testb=value=b with spaces"));
    let (id, b) = c.prepare(cfg, true)?;
    std::fs::create_dir_all(b.rootfs().join("test/sub"))?;
    run_prepared(c, &id, &b)
}

/// runc creates a missing process.cwd (engines rely on it for image WORKDIRs); the
/// spec does not require it, so this is a runc-compatibility scenario.
pub fn process_cwd_created(c: &mut Ctx) -> Res {
    let mut cfg = checker_cfg();
    set(&mut cfg, "process/cwd", json!("/missing/work/dir"));
    c.run_inside(cfg).map(|_| ())
}

/// Lifecycle and checker judgement for a bundle already prepared.
fn run_prepared(c: &mut Ctx, id: &str, b: &crate::bundle::Bundle) -> Res {
    c.must_create(b, id)?;
    c.must(&["start", id])?;
    c.wait_stopped(id)?;
    let out = b.read("container.out");
    let err = b.read("container.err");
    c.must(&["delete", id])?;
    crate::ctx::verbose_dump(&out);
    crate::ctx::judge_tap(&out, &err)
}

/// uid 10, gid 10, extra gid 5, umask 002; the default capabilities survive setuid.
pub fn process_user(c: &mut Ctx) -> Res {
    let mut cfg = checker_cfg();
    set(
        &mut cfg,
        "process/user",
        json!({"uid": 10, "gid": 10, "additionalGids": [5], "umask": 2}),
    );
    let out = c.run_inside(cfg)?;
    ensure!(
        out.contains("process.user.umask"),
        "checker did not check the umask"
    );
    Ok(())
}

pub fn process_oom_score_adj(c: &mut Ctx) -> Res {
    let mut cfg = checker_cfg();
    set(&mut cfg, "process/oomScoreAdj", json!(500));
    c.run_inside(cfg).map(|_| ())
}

fn hard_limit(res: libc::__rlimit_resource_t) -> u64 {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: rl is a valid, writable rlimit struct.
    unsafe { libc::getrlimit(res, &mut rl) };
    rl.rlim_max
}

/// rlimits at or below the driver's hard limits (no CAP_SYS_RESOURCE needed).
pub fn process_rlimits(c: &mut Ctx) -> Res {
    let gib = 1u64 << 30;
    let nofile_hard = hard_limit(libc::RLIMIT_NOFILE).min(4000);
    let mut lims =
        vec![json!({"type": "RLIMIT_NOFILE", "soft": nofile_hard.min(3000), "hard": nofile_hard})];
    for (name, res, soft, hard) in [
        ("RLIMIT_AS", libc::RLIMIT_AS, 2 * gib, 3 * gib),
        ("RLIMIT_CORE", libc::RLIMIT_CORE, gib, 2 * gib),
        ("RLIMIT_DATA", libc::RLIMIT_DATA, 2 * gib, 3 * gib),
        ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE, gib, 2 * gib),
        ("RLIMIT_STACK", libc::RLIMIT_STACK, 64 << 20, gib),
        ("RLIMIT_CPU", libc::RLIMIT_CPU, 60, 120),
    ] {
        if hard <= hard_limit(res) {
            lims.push(json!({"type": name, "soft": soft, "hard": hard}));
        } else {
            println!(
                "# process_rlimits: {name} left out: hard {hard} above the host's {}",
                hard_limit(res)
            );
        }
    }
    let mut cfg = checker_cfg();
    set(&mut cfg, "process/rlimits", Value::Array(lims));
    c.run_inside(cfg).map(|_| ())
}

/// Raising a hard rlimit above the caller's needs CAP_SYS_RESOURCE.
pub fn process_rlimits_raise(c: &mut Ctx) -> Res {
    const CAP_SYS_RESOURCE: u32 = 24;
    if !bounding_has(CAP_SYS_RESOURCE) {
        skip!(
            "CAP_SYS_RESOURCE is not in this machine's bounding set: hard limits cannot be raised"
        );
    }
    let hard = hard_limit(libc::RLIMIT_NOFILE);
    if hard >= 1 << 20 {
        skip!("RLIMIT_NOFILE hard limit already at {hard}");
    }
    let mut cfg = checker_cfg();
    set(
        &mut cfg,
        "process/rlimits",
        json!([{"type": "RLIMIT_NOFILE", "soft": hard + 1, "hard": hard + 100}]),
    );
    c.run_inside(cfg).map(|_| ())
}

/// Every capability of the driver's bounding set in all five sets (those outside it
/// cannot be granted here).
pub fn process_capabilities(c: &mut Ctx) -> Res {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let bnd = crate::caps::status_bits(&status, "CapBnd").unwrap_or(0);
    let last: u32 = crate::ctx::read_trim(std::path::Path::new("/proc/sys/kernel/cap_last_cap"))
        .parse()
        .unwrap_or(40);
    let names: Vec<&str> = crate::caps::NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| (*i as u32) <= last && bnd & (1 << i) != 0)
        .map(|(_, n)| *n)
        .collect();
    let mut cfg = checker_cfg();
    set(&mut cfg, "process/capabilities", caps_all_sets(&names));
    c.run_inside(cfg).map(|_| ())
}

/// tmpfs and bind mounts, destinations missing from the rootfs, all in config order.
pub fn mounts(c: &mut Ctx) -> Res {
    let id_hint = c.new_id();
    let src = c.suite.bundles.join(format!("{id_hint}-srcs"));
    c.own_dir(&src);
    for d in ["bind-a", "rbind-b/inner", "bind-ro"] {
        std::fs::create_dir_all(src.join(d))?;
    }
    std::fs::write(src.join("bind-a/hello"), "hi")?;
    std::fs::write(src.join("hostfile"), "file")?;
    let s = |p: &str| src.join(p).display().to_string();
    let mut cfg = checker_cfg();
    let tmpfs_opts = json!(["nosuid", "strictatime", "mode=755", "size=1k"]);
    for (dest, prop) in [
        ("/tmp/shared", "shared"),
        ("/tmp/slave", "slave"),
        ("/tmp/private", "private"),
    ] {
        let mut o = tmpfs_opts.clone();
        if let Some(a) = o.as_array_mut() {
            a.push(json!(prop));
        }
        push(
            &mut cfg,
            "mounts",
            json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": o}),
        );
    }
    push(
        &mut cfg,
        "mounts",
        json!({"destination": "/mnt/a", "type": "bind", "source": s("bind-a"), "options": ["bind", "rprivate"]}),
    );
    push(
        &mut cfg,
        "mounts",
        json!({"destination": "/mnt/deep/er/b", "type": "none", "source": s("rbind-b"), "options": ["rbind", "rslave", "nosuid"]}),
    );
    push(
        &mut cfg,
        "mounts",
        json!({"destination": "/mnt/ro", "source": s("bind-ro"), "options": ["bind", "ro", "nodev"]}),
    );
    push(
        &mut cfg,
        "mounts",
        json!({"destination": "/etc/hostfile", "type": "bind", "source": s("hostfile"), "options": ["bind", "ro"]}),
    );
    c.run_inside(cfg).map(|_| ())
}

pub fn root_readonly_true(c: &mut Ctx) -> Res {
    let mut cfg = checker_cfg();
    set(&mut cfg, "root/readonly", json!(true));
    c.run_inside(cfg).map(|_| ())
}

/// The rootfsPropagation probe run from inside with CAP_SYS_ADMIN added. runc before
/// 1.2.x never applies `shared` to the container's `/` (runc issue #1755).
fn propagation(c: &mut Ctx, mode: &str) -> Res {
    let mut cfg = checker_cfg();
    set(&mut cfg, "linux/rootfsPropagation", json!(mode));
    for s in ["bounding", "effective", "permitted"] {
        push(
            &mut cfg,
            &format!("process/capabilities/{s}"),
            json!("CAP_SYS_ADMIN"),
        );
    }
    let out = c.run_inside(cfg)?;
    ensure!(
        out.contains("linux.rootfsPropagation"),
        "checker did not run the propagation probe"
    );
    Ok(())
}

pub fn linux_rootfs_propagation_shared(c: &mut Ctx) -> Res {
    propagation(c, "shared")
}

pub fn linux_rootfs_propagation_slave(c: &mut Ctx) -> Res {
    propagation(c, "slave")
}

pub fn linux_rootfs_propagation_private(c: &mut Ctx) -> Res {
    propagation(c, "private")
}

pub fn linux_rootfs_propagation_unbindable(c: &mut Ctx) -> Res {
    propagation(c, "unbindable")
}

/// c, b and p nodes with exact mode 0660 and owner; numbers not used on the host.
pub fn linux_devices(c: &mut Ctx) -> Res {
    let mut cfg = checker_cfg();
    set(
        &mut cfg,
        "linux/devices",
        json!([
            {"path": "/dev/conf-char", "type": "c", "major": 10, "minor": 666, "fileMode": 0o660, "uid": 0, "gid": 0},
            {"path": "/dev/conf-block", "type": "b", "major": 8, "minor": 666, "fileMode": 0o660, "uid": 0, "gid": 0},
            {"path": "/dev/conf-fifo", "type": "p", "fileMode": 0o660},
            {"path": "/dev/sub/conf-char2", "type": "c", "major": 10, "minor": 667, "fileMode": 0o640, "uid": 10, "gid": 5}
        ]),
    );
    c.run_inside(cfg).map(|_| ())
}

/// Rootfs layout for masked/readonly scenarios: a non-empty dir with nested entries, a
/// file, and special nodes (created in the bundle before create).
fn special_layout(root: &std::path::Path) -> std::io::Result<()> {
    use nix::sys::stat::{mknod, Mode, SFlag};
    std::fs::create_dir_all(root.join("masked-dir/sub"))?;
    std::fs::write(root.join("masked-dir/file"), "secret")?;
    std::fs::write(root.join("masked-dir/sub/file"), "secret")?;
    std::fs::write(root.join("masked-file"), "secret")?;
    std::fs::create_dir_all(root.join("other/sub"))?;
    std::fs::write(root.join("other/sub/file"), "secret")?;
    let m = Mode::from_bits_truncate(0o600);
    mknod(
        &root.join("masked-chr"),
        SFlag::S_IFCHR,
        m,
        nix::sys::stat::makedev(1, 5),
    )
    .map_err(std::io::Error::from)?;
    mknod(&root.join("masked-fifo"), SFlag::S_IFIFO, m, 0).map_err(std::io::Error::from)?;
    Ok(())
}

/// A dir, a file, a nested dir, a file under a masked dir, a missing path and special nodes.
pub fn linux_masked_paths(c: &mut Ctx) -> Res {
    paths_scenario(c, "maskedPaths")
}

pub fn linux_readonly_paths(c: &mut Ctx) -> Res {
    paths_scenario(c, "readonlyPaths")
}

fn paths_scenario(c: &mut Ctx, key: &str) -> Res {
    let mut cfg = checker_cfg();
    for p in [
        "/masked-dir",
        "/masked-dir/sub/file",
        "/masked-file",
        "/other/sub",
        "/does/not/exist",
        "/masked-chr",
        "/masked-fifo",
    ] {
        push(&mut cfg, &format!("linux/{key}"), json!(p));
    }
    let (id, b) = c.prepare(cfg, true)?;
    special_layout(&b.rootfs())?;
    run_prepared(c, &id, &b)?;
    Ok(())
}

pub fn linux_sysctl(c: &mut Ctx) -> Res {
    let mut cfg = checker_cfg();
    set(
        &mut cfg,
        "linux/sysctl",
        json!({"net.ipv4.ip_forward": "1", "kernel.shmmni": "4000"}),
    );
    c.run_inside(cfg).map(|_| ())
}

/// A user namespace with uid 0→1000 size 2000 and gid 0→1000 size 3000.
pub fn linux_uid_mappings(c: &mut Ctx) -> Res {
    let mut cfg = checker_cfg();
    push(&mut cfg, "linux/namespaces", json!({"type": "user"}));
    set(
        &mut cfg,
        "linux/uidMappings",
        json!([{"containerID": 0, "hostID": 1000, "size": 2000}]),
    );
    set(
        &mut cfg,
        "linux/gidMappings",
        json!([{"containerID": 0, "hostID": 1000, "size": 3000}]),
    );
    c.run_inside(cfg).map(|_| ())
}

/// Default-allow seccomp with getcwd → errno 13: getcwd fails with exactly EACCES.
pub fn linux_seccomp(c: &mut Ctx) -> Res {
    let mut cfg = checker_cfg();
    set(
        &mut cfg,
        "linux/seccomp",
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]
        }),
    );
    let out = c.run_inside(cfg)?;
    ensure!(
        out.contains("linux.seccomp getcwd"),
        "checker did not probe seccomp"
    );
    Ok(())
}

/// An unknown rlimit type makes the lifecycle fail (create or start).
pub fn process_rlimits_fail(c: &mut Ctx) -> Res {
    let mut cfg = checker_cfg();
    push(
        &mut cfg,
        "process/rlimits",
        json!({"type": "RLIMIT_TEST", "soft": 1, "hard": 1}),
    );
    let (id, b) = c.prepare(cfg, true)?;
    let cr = c.create(&b, &id);
    if cr.ok() {
        let st = c.rt(&["start", &id]);
        ensure!(!st.ok(), "create and start accepted rlimit RLIMIT_TEST");
    }
    Ok(())
}

/// runtime-spec 1.1: an unknown capability name is a warning, not an error; the
/// container runs with the known ones.
pub fn process_capabilities_unknown(c: &mut Ctx) -> Res {
    let mut cfg = checker_cfg();
    for s in [
        "bounding",
        "effective",
        "permitted",
        "inheritable",
        "ambient",
    ] {
        push(
            &mut cfg,
            &format!("process/capabilities/{s}"),
            json!("CAP_TEST"),
        );
    }
    c.run_inside(cfg).map(|_| ())
}

/// AppArmor is not enabled here; with it, the profile must be loaded and applied.
pub fn linux_process_apparmor_profile(c: &mut Ctx) -> Res {
    let enabled = crate::ctx::read_trim(std::path::Path::new(
        "/sys/module/apparmor/parameters/enabled",
    ));
    if enabled != "Y" {
        skip!("AppArmor is not enabled on this host");
    }
    let mut cfg = checker_cfg();
    set(&mut cfg, "process/apparmorProfile", json!("unconfined"));
    c.run_inside(cfg).map(|_| ())
}

/// A mountLabel is accepted (SELinux is not enabled here, so it has no effect).
pub fn linux_mount_label(c: &mut Ctx) -> Res {
    if std::path::Path::new("/sys/fs/selinux/enforce").exists() {
        skip!("SELinux is enabled: this scenario only covers hosts without it");
    }
    let mut cfg = checker_cfg();
    set(
        &mut cfg,
        "linux/mountLabel",
        json!("system_u:object_r:svirt_sandbox_file_t:s0:c715,c811"),
    );
    c.run_inside(cfg).map(|_| ())
}
