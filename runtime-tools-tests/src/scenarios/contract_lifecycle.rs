//! runc's lifecycle contract (create.bats, start.bats, start_detached.bats,
//! start_hello.bats, run.bats, state.bats, kill.bats, delete.bats, pause.bats): the
//! states each verb leaves behind, `run` in both modes, pid files relative to the
//! caller, and what delete removes.

use std::time::Duration;

use serde_json::json;

use super::contract::{
    cfg, expect_gone, expect_status, prepare, run_detached, run_tty, run_tty_shell, wait_until,
};
use crate::ctx::Ctx;
use crate::runtime::Opts;
use crate::spec::set;
use crate::verdict::Res;
use crate::{cgroup, ensure};

/// A process that is gone or a zombie (reaping orphans meanwhile).
fn dead(pid: i32) -> bool {
    crate::reaper::reap_orphans();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(") ")
        .is_none_or(|(_, r)| r.starts_with('Z') || r.starts_with('X'))
}

/// create (terminal, console socket) leaves `created`; exec in a created container
/// works and leaves it `created`; start makes it `running`; delete --force removes it.
pub fn contract_create_exec_start(c: &mut Ctx) -> Res {
    let mut config = cfg(&["sh"]);
    set(&mut config, "process/terminal", json!(true));
    let (id, b) = prepare(c, config)?;
    let _master = run_tty(c, &b, &id, &["create"])?;
    expect_status(c, &id, "created")?;
    let out = c.rt(&["exec", &id, "true"]);
    ensure!(out.ok(), "exec in a created container: {}", out.describe());
    expect_status(c, &id, "created")?;
    c.must(&["start", &id])?;
    c.wait_status(&id, "running", Duration::from_secs(5))?;
    c.must(&["delete", "--force", &id])?;
    expect_gone(c, &id, "after delete --force")
}

/// A pid file named relatively is written in the caller's working directory (not the
/// bundle's) and holds the init's pid: create, run -d and a foreground run; an exec's
/// pid file names the exec'd process, not the init.
pub fn contract_pid_file_in_callers_cwd(c: &mut Ctx) -> Res {
    let cwd = c
        .suite
        .bundles
        .join(format!("{}-{}-cwd", c.name, std::process::id()));
    std::fs::create_dir_all(&cwd)?;
    c.own_dir(&cwd);
    let here = Opts {
        cwd: Some(cwd.as_path()),
        stdin: None,
    };
    let read_pid = |name: &str| {
        std::fs::read_to_string(cwd.join(name))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
    };
    // create --pid-file, then exec --pid-file.
    let (id, b) = prepare(c, cfg(&["sleep", "60"]))?;
    let bp = b.path_str();
    let out = c.suite.rt.run_opts(
        &["create", "--pid-file", "create.pid", "--bundle", &bp, &id],
        here,
    );
    ensure!(out.ok(), "create --pid-file: {}", out.describe());
    let init = c.pid(&id)?;
    ensure!(
        read_pid("create.pid") == Some(init),
        "create --pid-file create.pid: the caller's cwd holds {:?}, state says {init} (bundle has it: {})",
        read_pid("create.pid"),
        b.dir.join("create.pid").exists()
    );
    c.must(&["start", &id])?;
    expect_status(c, &id, "running")?;
    let out = c.suite.rt.run_opts(
        &[
            "exec",
            "--pid-file",
            "exec.pid",
            &id,
            "echo",
            "Hello from exec",
        ],
        here,
    );
    ensure!(out.ok(), "exec --pid-file: {}", out.describe());
    ensure!(
        out.stdout.contains("Hello from exec"),
        "exec output {:?}",
        out.stdout
    );
    let exec_pid = read_pid("exec.pid");
    ensure!(
        exec_pid.is_some_and(|p| p > 0 && p != init),
        "exec --pid-file exec.pid holds {exec_pid:?}: want the exec'd process, not the init {init}"
    );
    c.must(&["delete", "--force", &id])?;
    // run -d --pid-file.
    let (id, b) = prepare(c, cfg(&["sleep", "60"]))?;
    let bp = b.path_str();
    let out = c.suite.rt.run_opts(
        &["run", "-d", "--pid-file", "run-d.pid", "--bundle", &bp, &id],
        here,
    );
    ensure!(out.ok(), "run -d --pid-file: {}", out.describe());
    expect_status(c, &id, "running")?;
    let init = c.pid(&id)?;
    ensure!(
        read_pid("run-d.pid") == Some(init),
        "run -d --pid-file run-d.pid holds {:?}, state says {init}",
        read_pid("run-d.pid")
    );
    c.must(&["delete", "--force", &id])?;
    // A foreground run.
    let (id, b) = prepare(c, cfg(&["/bin/echo", "Hello World"]))?;
    let bp = b.path_str();
    let out = c.suite.rt.run_opts(
        &["run", "--pid-file", "run.pid", "--bundle", &bp, &id],
        here,
    );
    ensure!(
        out.ok() && out.stdout.contains("Hello World"),
        "run --pid-file: {}; stdout {:?}",
        out.describe(),
        out.stdout
    );
    ensure!(
        read_pid("run.pid").is_some_and(|p| p > 0),
        "run --pid-file run.pid holds {:?}",
        std::fs::read_to_string(cwd.join("run.pid"))
    );
    Ok(())
}

/// run -d with a terminal (console socket) leaves the shell running, also as uid 1000
/// gid 100, which the init then runs as.
pub fn contract_run_detached(c: &mut Ctx) -> Res {
    let (id, _b, _master) = run_tty_shell(c, |_| {})?;
    expect_status(c, &id, "running")?;
    c.must(&["delete", "--force", &id])?;
    let (id, _b, _master) = run_tty_shell(c, |cfg| {
        set(cfg, "process/user", json!({"uid": 1000, "gid": 100}));
    })?;
    expect_status(c, &id, "running")?;
    let out = c.must(&["exec", &id, "grep", "-E", "^(Uid|Gid):", "/proc/1/status"])?;
    let ids: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().skip(1).collect())
        .collect();
    ensure!(
        ids.len() == 2 && ids[0].iter().all(|u| *u == "1000") && ids[1].iter().all(|g| *g == "100"),
        "the init does not run as 1000:100: {:?}",
        out.stdout
    );
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// A foreground run prints the process's output, exits 0 and leaves nothing behind
/// (state fails, the cgroup is gone); also as uid 1000 gid 100.
pub fn contract_run_foreground(c: &mut Ctx) -> Res {
    for user in [
        json!({"uid": 0, "gid": 0}),
        json!({"uid": 1000, "gid": 100}),
    ] {
        let mut config = cfg(&["/bin/echo", "Hello World"]);
        set(&mut config, "process/user", user.clone());
        let (id, b) = prepare(c, config)?;
        let bp = b.path_str();
        let out = c.rt(&["run", "--bundle", &bp, &id]);
        ensure!(out.ok(), "run as {user}: {}", out.describe());
        ensure!(
            out.stdout.contains("Hello World"),
            "run as {user}: stdout {:?}",
            out.stdout
        );
        expect_gone(c, &id, "after a foreground run ended")?;
        ensure!(
            !c.state_entry_exists(&id),
            "the state entry of {id} is left after run"
        );
        let left = cgroup::existing(&format!("/{}/{id}", c.suite.cg_parent));
        ensure!(left.is_empty(), "run left its cgroup behind: {left:?}");
    }
    Ok(())
}

/// The bundle defaults to the caller's cwd: config.json in the rootfs itself, with
/// `root.path` ".", run from there without --bundle.
pub fn contract_run_rootfs_is_dot(c: &mut Ctx) -> Res {
    let mut config = cfg(&["/bin/echo", "Hello World"]);
    set(&mut config, "root/path", json!("."));
    let (id, b) = prepare(c, config)?;
    // write_config put a copy into the rootfs; the bundle's own goes.
    std::fs::remove_file(b.dir.join("config.json"))?;
    let rootfs = b.rootfs();
    let out = c.suite.rt.run_opts(
        &["run", &id],
        Opts {
            cwd: Some(rootfs.as_path()),
            stdin: None,
        },
    );
    ensure!(
        out.ok() && out.stdout.contains("Hello World"),
        "run with root.path \".\" from the rootfs: {}; stdout {:?}",
        out.describe(),
        out.stdout
    );
    Ok(())
}

/// run --keep: the exited container stays `stopped` with its cgroup (pids.max is
/// there and "max"), until delete removes both.
pub fn contract_run_keep(c: &mut Ctx) -> Res {
    let (id, b) = prepare(c, cfg(&["/bin/echo", "Hello World"]))?;
    let bp = b.path_str();
    let out = c.rt(&["run", "--keep", "--bundle", &bp, &id]);
    ensure!(out.ok(), "run --keep: {}", out.describe());
    expect_status(c, &id, "stopped")?;
    let path = format!("/{}/{id}", c.suite.cg_parent);
    if let Some(pids) = cgroup::controller("pids") {
        let max = crate::ctx::read_trim(&pids.dir(&path).join("pids.max"));
        ensure!(
            max == "max",
            "after run --keep {}/pids.max is {max:?}, want \"max\"",
            pids.dir(&path).display()
        );
    }
    c.must(&["delete", &id])?;
    expect_gone(c, &id, "after delete")?;
    let left = cgroup::existing(&path);
    ensure!(left.is_empty(), "delete left the cgroup: {left:?}");
    Ok(())
}

/// state fails before run; run -d is `running`; pause is `paused`, and pausing or
/// resuming an unknown id fails without touching it; resume is `running`; kill KILL
/// reaches `stopped`; delete removes it.
pub fn contract_state_transitions(c: &mut Ctx) -> Res {
    let (id, b) = prepare(c, cfg(&["sleep", "60"]))?;
    expect_gone(c, &id, "before it was created")?;
    run_detached(c, &b, &id)?;
    expect_status(c, &id, "running")?;
    c.must(&["pause", &id])?;
    expect_status(c, &id, "paused")?;
    let unknown = format!("{id}-nonexistent");
    c.must_fail(&["pause", &unknown], "pause of an unknown id")?;
    c.must_fail(&["resume", &unknown], "resume of an unknown id")?;
    expect_status(c, &id, "paused")?;
    c.must(&["resume", &id])?;
    expect_status(c, &id, "running")?;
    c.must(&["kill", &id, "KILL"])?;
    c.wait_stopped(&id)?;
    c.must(&["delete", &id])?;
    expect_gone(c, &id, "after delete")
}

/// kill with signal 0 probes a running container without harm; after the container
/// stopped, `kill --all ID 0` still succeeds (containerd's shim sends it after every
/// exit) and delete works.
pub fn contract_kill_all_after_stop(c: &mut Ctx) -> Res {
    let (id, _b, _master) = run_tty_shell(c, |_| {})?;
    let probe = c.rt(&["kill", &id, "0"]);
    ensure!(
        probe.ok(),
        "kill {id} 0 on a running container: {}",
        probe.describe()
    );
    expect_status(c, &id, "running")?;
    c.must(&["kill", &id, "KILL"])?;
    c.wait_stopped(&id)?;
    let all = c.rt(&["kill", "-a", &id, "0"]);
    ensure!(
        all.ok(),
        "kill -a {id} 0 after the container stopped: {}",
        all.describe()
    );
    c.must(&["delete", &id])?;
    expect_gone(c, &id, "after delete")
}

/// delete after kill removes the container's cgroup in every hierarchy; delete
/// --force removes a running and a paused container (whose processes die) and succeeds
/// for an id that does not exist.
pub fn contract_delete(c: &mut Ctx) -> Res {
    let mut config = cfg(&["sleep", "60"]);
    set(&mut config, "linux/resources/pids", json!({"limit": 100}));
    let (id, b) = prepare(c, config)?;
    run_detached(c, &b, &id)?;
    expect_status(c, &id, "running")?;
    let path = format!("/{}/{id}", c.suite.cg_parent);
    ensure!(
        !cgroup::existing(&path).is_empty(),
        "no cgroup {path} in any hierarchy while running"
    );
    c.must(&["kill", &id, "KILL"])?;
    c.wait_stopped(&id)?;
    c.must(&["delete", &id])?;
    expect_gone(c, &id, "after delete")?;
    let left = cgroup::existing(&path);
    ensure!(left.is_empty(), "delete left the cgroup: {left:?}");
    for paused in [false, true] {
        let (id, b) = prepare(c, cfg(&["sleep", "60"]))?;
        run_detached(c, &b, &id)?;
        let pid = c.pid(&id)?;
        if paused {
            c.must(&["pause", &id])?;
        }
        let what = if paused { "paused" } else { "running" };
        let out = c.rt(&["delete", "--force", &id]);
        ensure!(
            out.ok(),
            "delete --force of a {what} container: {}",
            out.describe()
        );
        expect_gone(
            c,
            &id,
            &format!("after delete --force of a {what} container"),
        )?;
        ensure!(
            wait_until(Duration::from_secs(5), || dead(pid)),
            "the {what} container's process {pid} survives delete --force"
        );
        let path = format!("/{}/{id}", c.suite.cg_parent);
        let left = cgroup::existing(&path);
        ensure!(left.is_empty(), "delete --force ({what}) left: {left:?}");
    }
    let out = c.rt(&["delete", "--force", &format!("{id}-notexists")]);
    ensure!(
        out.ok(),
        "delete --force of an id that does not exist: {}",
        out.describe()
    );
    Ok(())
}

/// A foreground run of `echo Hello World` with `cfg`, which must succeed.
fn run_hello(c: &mut Ctx, config: serde_json::Value, what: &str) -> Res {
    let (id, b) = prepare(c, config)?;
    let bp = b.path_str();
    let out = c.rt(&["run", "--bundle", &bp, &id]);
    ensure!(
        out.ok() && out.stdout.contains("Hello World"),
        "run {what}: {}; stdout {:?}",
        out.describe(),
        out.stdout
    );
    Ok(())
}

/// Without a pid namespace, /proc a recursive bind of the host's (runc#2897: what a
/// rootless runc without pid namespace does), the container runs.
pub fn contract_run_host_pid_namespace(c: &mut Ctx) -> Res {
    let mut config = cfg(&["/bin/echo", "Hello World"]);
    let ns: Vec<serde_json::Value> = config["linux"]["namespaces"]
        .as_array()
        .map(|a| a.iter().filter(|n| n["type"] != "pid").cloned().collect())
        .unwrap_or_default();
    set(&mut config, "linux/namespaces", json!(ns));
    if let Some(mounts) = config["mounts"].as_array_mut() {
        for m in mounts.iter_mut().filter(|m| m["type"] == "proc") {
            *m = json!({"destination": "/proc", "type": "none", "source": "/proc",
                        "options": ["rbind", "nosuid", "nodev", "noexec"]});
        }
    }
    run_hello(
        c,
        config,
        "in the host's pid namespace with /proc bound from the host",
    )
}

/// A seccomp profile allowing by default that also allows one syscall by name (a
/// redundant rule) is accepted and the container runs.
pub fn contract_run_redundant_seccomp_rule(c: &mut Ctx) -> Res {
    let mut config = cfg(&["/bin/echo", "Hello World"]);
    set(
        &mut config,
        "linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["bdflush"], "action": "SCMP_ACT_ALLOW"}]}),
    );
    run_hello(c, config, "with a redundant seccomp allow rule")
}
