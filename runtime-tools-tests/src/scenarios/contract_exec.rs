//! runc's exec contract (exec.bats without `--cgroup` and runc's own `--debug` text,
//! the paused-container tests of cgroups.bats, cwd.bats, umask.bats): output and
//! options seen from inside, exit codes engines act on, paused containers, a cwd the
//! process user alone can enter, and the umask.

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;

use serde_json::json;

use super::contract::{cfg, expect_status, prepare, run_detached, run_tty_shell};
use crate::ctx::Ctx;
use crate::spec::set;
use crate::verdict::{Res, Verdict};
use crate::{ensure, fail};

/// exec's output, `ls -la` (total, ., ..), --cwd, --env, --user, --additional-gids
/// (exactly the gids given), and --preserve-fds handing on the caller's fd 4.
pub fn contract_exec_options(c: &mut Ctx) -> Res {
    let (id, b, _master) = run_tty_shell(c, |_| {})?;
    let out = c.must(&["exec", &id, "echo", "Hello from exec"])?;
    ensure!(
        out.stdout.contains("Hello from exec"),
        "exec echo: {:?}",
        out.stdout
    );
    let out = c.must(&["exec", &id, "ls", "-la"])?;
    let l: Vec<&str> = out.stdout.lines().collect();
    ensure!(
        l.len() >= 3 && l[0].contains("total") && l[1].ends_with(" .") && l[2].ends_with(" .."),
        "exec ls -la in the cwd /: {:?}",
        out.stdout
    );
    let out = c.must(&["exec", "--cwd", "/bin", &id, "pwd"])?;
    ensure!(
        out.stdout.trim() == "/bin",
        "exec --cwd /bin pwd: {:?}",
        out.stdout
    );
    let out = c.must(&["exec", "--env", "RUNC_EXEC_TEST=true", &id, "env"])?;
    ensure!(
        out.stdout.lines().any(|l| l == "RUNC_EXEC_TEST=true"),
        "exec --env: {:?}",
        out.stdout
    );
    let out = c.must(&["exec", "--user", "1000:1000", &id, "id"])?;
    ensure!(
        out.stdout.starts_with("uid=1000 gid=1000"),
        "exec --user 1000:1000 id: {:?}",
        out.stdout
    );
    let out = c.must(&[
        "exec",
        "--user",
        "1000:1000",
        "--additional-gids",
        "100",
        "--additional-gids",
        "65534",
        &id,
        "id",
        "-G",
    ])?;
    ensure!(
        out.stdout.trim() == "1000 100 65534",
        "exec --additional-gids 100 --additional-gids 65534: id -G is {:?}",
        out.stdout
    );
    let text = b.dir.join("preserve-fds.test");
    std::fs::write(&text, "hello\n")?;
    let (fd3, fd4) = (File::open("/dev/null")?, File::open(&text)?);
    let out = c.suite.rt.run_to_with_fds(
        &["exec", "--preserve-fds=2", &id, "cat", "/proc/self/fd/4"],
        &b.dir.join("exec-fds.out"),
        &b.dir.join("exec-fds.err"),
        &[fd3.as_fd(), fd4.as_fd()],
    );
    ensure!(
        out.ok() && out.stdout == "hello\n",
        "exec --preserve-fds=2 cat /proc/self/fd/4: {}; stdout {:?}",
        out.describe(),
        out.stdout
    );
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// The exit codes engines read: the process's own (1, 42); 255 when the runtime
/// itself fails (pid file in a missing directory, missing binary, unknown container).
pub fn contract_exec_exit_codes(c: &mut Ctx) -> Res {
    let (id, _b, _master) = run_tty_shell(c, |_| {})?;
    let cases: [(&[&str], i32, &str); 5] = [
        (&["exec", &id, "false"], 1, "false"),
        (&["exec", &id, "sh", "-c", "exit 42"], 42, "exit 42"),
        (
            &["exec", "--pid-file", "/non-existent/directory", &id, "true"],
            255,
            "a pid file in a missing directory",
        ),
        (&["exec", &id, "no-such-binary"], 255, "a missing binary"),
        (
            &["exec", "no_such_container_berth", "true"],
            255,
            "an unknown container",
        ),
    ];
    for (args, want, what) in cases {
        let out = c.rt(args);
        ensure!(
            out.code == Some(want),
            "exec with {what}: exit {:?}, want {want}: {}",
            out.code,
            out.describe()
        );
    }
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// `exec -d --user 1000:1000` with /dev/null as stdin leaves the host's /dev/null
/// as it was (runc#3674: runc once chowned it to the exec user).
pub fn contract_exec_user_keeps_host_dev_null(c: &mut Ctx) -> Res {
    let (id, _b, _master) = run_tty_shell(c, |_| {})?;
    // Every runtime command of the driver has /dev/null as stdin.
    let out = c.rt(&["exec", "-d", "--user", "1000:1000", &id, "id"]);
    ensure!(out.ok(), "exec -d --user 1000:1000: {}", out.describe());
    std::thread::sleep(std::time::Duration::from_millis(200));
    if let Err(e) = crate::hostcheck::dev_null() {
        fail!("after exec -d --user 1000:1000: {e}");
    }
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// A paused container refuses exec with exit 255 and says so; `--ignore-paused`
/// waits in the frozen cgroup and runs once the container is resumed.
pub fn contract_exec_paused(c: &mut Ctx) -> Res {
    let (id, b) = prepare(c, cfg(&["sleep", "60"]))?;
    run_detached(c, &b, &id)?;
    c.must(&["pause", &id])?;
    let out = c.rt(&["exec", &id, "echo", "ok"]);
    ensure!(
        out.code == Some(255) && out.stderr.contains("cannot exec in a paused container"),
        "exec in a paused container: want exit 255 and \"cannot exec in a paused container\": {}",
        out.describe()
    );
    // Resumed a second later by a helper, while exec --ignore-paused waits.
    let rt = &c.suite.rt;
    let resumer = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg("sleep 1; exec \"$0\" --root \"$1\" resume \"$2\"")
        .arg(&rt.path)
        .arg(&rt.root)
        .arg(&id)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| Verdict::Fail(format!("spawn the resumer: {e}")))?;
    c.own_helper(resumer.id() as i32);
    let out = c.rt(&["exec", "--ignore-paused", &id, "echo", "ok"]);
    ensure!(
        out.ok() && out.stdout == "ok\n",
        "exec --ignore-paused: {}; stdout {:?}",
        out.describe(),
        out.stdout
    );
    expect_status(c, &id, "running")?;
    c.must(&["delete", "--force", &id])?;
    Ok(())
}

/// process.cwd /root, mode 0700: owned by the process user 42, exec --user 0 still
/// works; owned by root, the runtime enters it before it drops to uid 42, and the
/// process runs.
pub fn contract_cwd_access(c: &mut Ctx) -> Res {
    for owner in [42u32, 0] {
        let mut config = if owner == 42 {
            cfg(&["sleep", "60"])
        } else {
            cfg(&["ls", "/tmp"])
        };
        set(&mut config, "process/cwd", json!("/root"));
        set(&mut config, "process/user", json!({"uid": 42, "gid": 0}));
        let (id, b) = prepare(c, config)?;
        let root = b.rootfs().join("root");
        std::fs::create_dir_all(&root)?;
        std::os::unix::fs::chown(&root, Some(owner), Some(0))?;
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700))?;
        if owner == 42 {
            run_detached(c, &b, &id)?;
            let out = c.rt(&["exec", "--user", "0", &id, "true"]);
            ensure!(
                out.ok(),
                "exec --user 0 into a container whose cwd only uid 42 can enter: {}",
                out.describe()
            );
            c.must(&["delete", "--force", &id])?;
        } else {
            let bp = b.path_str();
            let out = c.rt(&["run", "--bundle", &bp, &id]);
            ensure!(
                out.ok(),
                "uid 42 with the cwd /root (root's, 0700): {}",
                out.describe()
            );
        }
    }
    Ok(())
}

/// process.user.umask 63 (0077) is the init's umask.
pub fn contract_process_umask(c: &mut Ctx) -> Res {
    let mut config = cfg(&["sleep", "60"]);
    set(&mut config, "process/user/umask", json!(63));
    let (id, b) = prepare(c, config)?;
    run_detached(c, &b, &id)?;
    let out = c.must(&["exec", &id, "grep", "^Umask:", "/proc/1/status"])?;
    ensure!(
        out.stdout.split_whitespace().nth(1) == Some("0077"),
        "the init's umask: {:?}, want 0077",
        out.stdout
    );
    c.must(&["delete", "--force", &id])?;
    Ok(())
}
