//! `exec`: a new process in a running container, with each override of runc's command
//! line seen from inside, exit codes passed through, a terminal handed over a console
//! socket, and refusals for stopped containers and bad input.

use std::time::Duration;

use serde_json::json;

use super::running::{start_sleeper, start_with};
use super::terminal::{console_listener, read_master, receive_fd};
use crate::ctx::Ctx;
use crate::ensure;
use crate::spec::set;
use crate::verdict::{Res, Verdict};

pub fn exec_overrides(c: &mut Ctx) -> Res {
    let (id, _b) = start_with(c, &["/bin/sleep", "60"], |cfg| {
        set(cfg, "process/noNewPrivileges", json!(false));
    })?;
    let script = "id -u; id -g; id -G; echo $PWD; echo $FOO; \
                  grep -E '^(NoNewPrivs|CapBnd)' /proc/self/status";
    let out = c.must(&[
        "exec",
        "--env",
        "FOO=bar",
        "--cwd",
        "/tmp",
        "--user",
        "10:10",
        "--additional-gids",
        "5",
        "--cap",
        "CAP_SYS_ADMIN",
        "--no-new-privs",
        &id,
        "/bin/sh",
        "-c",
        script,
    ])?;
    let lines: Vec<&str> = out.stdout.lines().collect();
    ensure!(lines.len() >= 7, "short output: {:?}", out.stdout);
    ensure!(
        lines[0] == "10" && lines[1] == "10",
        "uid/gid not 10/10: {:?}",
        out.stdout
    );
    ensure!(
        lines[2].split_whitespace().any(|g| g == "5"),
        "additional gid 5 missing: {:?}",
        lines[2]
    );
    ensure!(lines[3] == "/tmp", "cwd {:?} want /tmp", lines[3]);
    ensure!(lines[4] == "bar", "FOO={:?} want bar", lines[4]);
    let bnd = lines
        .iter()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .ok_or_else(|| Verdict::Fail(format!("no CapBnd: {:?}", out.stdout)))?;
    ensure!(bnd & (1 << 21) != 0, "CAP_SYS_ADMIN not added: {bnd:x}");
    ensure!(
        bnd & (1 << 5) != 0,
        "the container's CAP_KILL was lost: {bnd:x}"
    );
    ensure!(
        out.stdout.contains("NoNewPrivs:\t1"),
        "--no-new-privs not applied: {:?}",
        out.stdout
    );
    // Without overrides, the container's own process is the default.
    let out = c.must(&["exec", &id, "/bin/sh", "-c", "id -u; echo $PWD; echo $TERM"])?;
    ensure!(
        out.stdout == "0\n/\nxterm\n",
        "defaults are not the container's process: {:?}",
        out.stdout
    );
    // --process: a process.json.
    let pj = c.suite.bundles.join(format!("{id}-process.json"));
    std::fs::write(
        &pj,
        json!({"cwd": "/", "args": ["/bin/sh", "-c", "echo from-json"], "user": {"uid": 0, "gid": 0},
               "env": ["PATH=/bin"]})
        .to_string(),
    )?;
    let out = c.must(&["exec", "--process", &pj.display().to_string(), &id]);
    let _ = std::fs::remove_file(&pj);
    let out = out?;
    ensure!(
        out.stdout == "from-json\n",
        "--process output {:?}",
        out.stdout
    );
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

pub fn exec_exit_codes(c: &mut Ctx) -> Res {
    let (id, _b) = start_sleeper(c)?;
    for (script, want) in [
        ("exit 0", 0),
        ("exit 3", 3),
        ("kill -9 $$", 137),
        ("kill -15 $$", 143),
    ] {
        let out = c.rt(&["exec", &id, "/bin/sh", "-c", script]);
        ensure!(
            out.code == Some(want),
            "`{script}` gave {:?} want {want}",
            out.code
        );
    }
    let out = c.rt(&["exec", &id, "/nonexistent"]);
    ensure!(out.code == Some(255), "missing binary: {}", out.describe());
    // Detached: returns at once, the pid file names the process.
    let pid_file = c.suite.bundles.join(format!("{id}-exec.pid"));
    let pf = pid_file.display().to_string();
    c.must(&[
        "exec",
        "--detach",
        "--pid-file",
        &pf,
        &id,
        "/bin/sleep",
        "1",
    ])?;
    let pid = std::fs::read_to_string(&pid_file).unwrap_or_default();
    let _ = std::fs::remove_file(&pid_file);
    ensure!(
        pid.trim().parse::<i32>().is_ok_and(|p| p > 0),
        "pid file holds {pid:?}"
    );
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

pub fn exec_refused(c: &mut Ctx) -> Res {
    let (id, b) = start_sleeper(c)?;
    c.must_fail(&["exec", &id], "no command")?;
    let bad = b.dir.join("bad-process.json");
    std::fs::write(&bad, "{bad")?;
    c.must_fail(
        &["exec", "--process", &bad.display().to_string(), &id],
        "bad process.json",
    )?;
    c.must_fail(&["exec", "--user", "x", &id, "/bin/true"], "bad --user")?;
    c.must_fail(&["exec", "no-such-container-x", "/bin/true"], "unknown id")?;
    c.must(&["kill", &id, "KILL"])?;
    c.wait_stopped(&id)?;
    let out = c.must_fail(&["exec", &id, "/bin/true"], "stopped container")?;
    ensure!(
        out.stderr.contains("stopped"),
        "the refusal does not say the container is stopped: {}",
        out.stderr.trim()
    );
    c.must(&["delete", &id])?;
    Ok(())
}

pub fn exec_tty_console_socket(c: &mut Ctx) -> Res {
    let (id, _b) = start_sleeper(c)?;
    let path = c.suite.bundles.join(format!("{id}-exec.sock"));
    let listener = console_listener(&path)?;
    let ps = path.display().to_string();
    let script = "test -t 0 && test -t 1 && test -t 2 && echo TTY-OK; echo DONE; sleep 1";
    let out = c.rt(&[
        "exec",
        "--detach",
        "--tty",
        "--console-socket",
        &ps,
        &id,
        "/bin/sh",
        "-c",
        script,
    ]);
    let _ = std::fs::remove_file(&path);
    ensure!(
        out.ok(),
        "exec --tty --console-socket failed: {}",
        out.describe()
    );
    let master = receive_fd(&listener)?;
    let text = read_master(&master, "DONE", Duration::from_secs(5));
    ensure!(
        text.contains("TTY-OK"),
        "stdio of the exec is not the terminal: {text:?}"
    );
    // A terminal with --detach needs a console socket.
    c.must_fail(
        &["exec", "--detach", "--tty", &id, "/bin/true"],
        "tty without socket",
    )?;
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

pub fn exec_sub_cgroup(c: &mut Ctx) -> Res {
    let (id, _b) = start_sleeper(c)?;
    let pids = crate::cgroup::controller("pids")
        .ok_or_else(|| Verdict::Skip("no pids controller on this host".into()))?;
    let sub = pids.dir(&format!("/{}/{id}/sub", c.suite.cg_parent));
    std::fs::create_dir(&sub)
        .map_err(|e| Verdict::Fail(format!("mkdir {}: {e}", sub.display())))?;
    let out = c.must(&[
        "exec",
        "--cgroup",
        "pids:sub",
        &id,
        "/bin/cat",
        "/proc/self/cgroup",
    ])?;
    ensure!(
        out.stdout
            .lines()
            .any(|l| l.ends_with("/sub") && (l.contains(":pids:") || l.starts_with("0::"))),
        "the process is not in the sub-cgroup: {:?}",
        out.stdout
    );
    c.must_fail(
        &["exec", "--cgroup", "pids:missing", &id, "/bin/true"],
        "no such sub-cgroup",
    )?;
    c.must(&["delete", "--force", &id])?;
    Ok(())
}
