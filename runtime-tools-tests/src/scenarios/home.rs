//! HOME: when the process's env has none, the runtime sets it from the process user's
//! passwd entry in the container (runc: the entry's home directory, `/` when the uid
//! has no entry), for the container's process and for `exec`'d ones.

use serde_json::{json, Value};

use super::running::start_with;
use crate::bundle::Bundle;
use crate::ctx::Ctx;
use crate::ensure;
use crate::spec::{default_config, set, sh};
use crate::verdict::Res;

/// The passwd file these scenarios put in the rootfs: uid 20 has no entry.
const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nten:x:10:10:ten:/home/ten:/bin/sh\n";

/// Prints every HOME of the environment, `|`-separated (one line); absolute paths, as
/// an exec'd process.json may have no PATH.
const SHOW_HOME: &str = "/bin/env | /bin/grep '^HOME=' | /bin/tr '\\n' '|'";

const PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The passwd file, and the two applets SHOW_HOME needs beyond the default set.
fn prepare_rootfs(b: &Bundle) -> std::io::Result<()> {
    for applet in ["env", "tr"] {
        std::os::unix::fs::symlink("busybox", b.rootfs().join("bin").join(applet))?;
    }
    std::fs::write(b.rootfs().join("etc/passwd"), PASSWD)
}

/// Runs `cfg` to completion and returns the process's stdout.
fn output_of(c: &mut Ctx, cfg: Value) -> Result<String, crate::verdict::Verdict> {
    let (id, b) = c.prepare(cfg, false)?;
    prepare_rootfs(&b)?;
    c.must_create(&b, &id)?;
    c.must(&["start", &id])?;
    c.wait_stopped(&id)?;
    c.must(&["delete", &id])?;
    Ok(std::fs::read_to_string(b.stdout_path()).unwrap_or_default())
}

/// The container's process: uid 0 gets /root, uid 10 /home/ten, uid 20 (no entry) `/`;
/// an empty HOME is replaced; a HOME in the env is kept as it is.
pub fn process_home_from_passwd(c: &mut Ctx) -> Res {
    let script = sh(SHOW_HOME);
    let args: Vec<&str> = script.iter().map(String::as_str).collect();
    for (uid, env, want) in [
        (0, vec![PATH], "HOME=/root|"),
        (10, vec![PATH], "HOME=/home/ten|"),
        (20, vec![PATH], "HOME=/|"),
        (0, vec![PATH, "HOME="], "HOME=/root|"),
        (10, vec![PATH, "HOME=/given"], "HOME=/given|"),
    ] {
        let mut cfg = default_config(&args, "/placeholder");
        set(&mut cfg, "process/user", json!({"uid": uid, "gid": uid}));
        set(&mut cfg, "process/env", json!(env));
        let got = output_of(c, cfg)?;
        ensure!(
            got.trim() == want,
            "uid {uid} with env {env:?}: the process saw {:?}, want {want:?} (runc: HOME from the passwd entry when the env has none)",
            got.trim()
        );
    }
    Ok(())
}

/// `exec`'d processes: the container's env has no HOME; each exec gets its user's.
pub fn exec_home_from_passwd(c: &mut Ctx) -> Res {
    let (id, b) = start_with(c, &["/bin/sleep", "60"], |cfg| {
        set(cfg, "process/env", json!([PATH]));
    })?;
    prepare_rootfs(&b)?;
    let pj = b.dir.join("process.json");
    std::fs::write(
        &pj,
        json!({"args": ["/bin/sh", "-c", SHOW_HOME], "cwd": "/", "user": {"uid": 10, "gid": 10}})
            .to_string(),
    )?;
    let pj = pj.display().to_string();
    for (extra, want) in [
        (vec![], "HOME=/root|"),
        (vec!["--user", "10:10"], "HOME=/home/ten|"),
        (vec!["--user", "20:20"], "HOME=/|"),
        (vec!["--env", "HOME=/given"], "HOME=/given|"),
    ] {
        let mut args = vec!["exec"];
        args.extend_from_slice(&extra);
        args.extend_from_slice(&[&id, "/bin/sh", "-c", SHOW_HOME]);
        let out = c.must(&args)?;
        ensure!(
            out.stdout.trim() == want,
            "exec {extra:?}: the process saw {:?}, want {want:?}",
            out.stdout.trim()
        );
    }
    let out = c.must(&["exec", "--process", &pj, &id])?;
    ensure!(
        out.stdout.trim() == "HOME=/home/ten|",
        "exec --process (uid 10, no env): the process saw {:?}, want \"HOME=/home/ten|\"",
        out.stdout.trim()
    );
    c.must(&["delete", "--force", &id])?;
    Ok(())
}
