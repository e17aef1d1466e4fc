//! runc's hook contract (hooks.bats): hooks that put files into the container the way
//! engines' hooks put libraries in (a createRuntime hook binding through the init's
//! mount namespace, a createContainer hook with paths relative to its cwd, a
//! startContainer hook inside), and the working directory each hook kind gets.

use std::path::Path;

use serde_json::{json, Value};

use super::contract::{cfg, full_busybox};
use crate::ctx::Ctx;
use crate::runtime::Opts;
use crate::spec::{push, set};
use crate::verdict::Res;
use crate::{ensure, skip};

/// The first `name` on PATH, or None.
fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

fn sh_hook(script: &str) -> Value {
    json!({"path": "/bin/sh", "args": ["/bin/sh", "-c", script]})
}

/// A createRuntime hook binds a bundle file onto rootfs/lib/cr-lib inside the
/// container's mount namespace (nsenter with the pid read from its stdin); a
/// createContainer hook binds another onto ./lib/cc-lib, relative to its cwd (the
/// rootfs); a startContainer hook, in the container, reads both into /hook-index; the
/// process prints it.
pub fn contract_hooks_bind_files_into_container(c: &mut Ctx) -> Res {
    let Some(nsenter) = which("nsenter") else {
        skip!("no nsenter on this host (util-linux)");
    };
    let id = c.new_id();
    let b = c.bundle(&id, false)?;
    full_busybox(&b)?;
    std::fs::create_dir_all(b.rootfs().join("lib"))?;
    let (bundle, rootfs) = (b.path_str(), b.rootfs().display().to_string());
    std::fs::write(b.dir.join("cr-lib"), "create-runtime\n")?;
    std::fs::write(b.dir.join("cc-lib"), "create-container\n")?;
    let create_runtime = format!(
        "pid=$(sed -n 's/.*\"pid\": *\\([0-9]*\\).*/\\1/p'); touch {rootfs}/lib/cr-lib && \
         {} -m -t \"$pid\" mount --bind {bundle}/cr-lib {rootfs}/lib/cr-lib",
        nsenter.display()
    );
    let create_container =
        format!("touch ./lib/cc-lib && mount --bind {bundle}/cc-lib ./lib/cc-lib");
    let mut config = cfg(&["cat", "/hook-index"]);
    push(&mut config, "hooks/createRuntime", sh_hook(&create_runtime));
    push(
        &mut config,
        "hooks/createContainer",
        sh_hook(&create_container),
    );
    push(
        &mut config,
        "hooks/startContainer",
        sh_hook("cat /lib/cr-lib /lib/cc-lib > /hook-index"),
    );
    set(&mut config, "root/readonly", json!(false));
    set(&mut config, "linux/cgroupsPath", json!(c.cgroups_path(&id)));
    b.write_config(&config)?;
    let out = c.rt(&["run", "--bundle", &bundle, &id]);
    ensure!(out.ok(), "run with the library hooks: {}", out.describe());
    ensure!(
        out.stdout == "create-runtime\ncreate-container\n",
        "the process saw {:?}: want the files both hooks bound in",
        out.stdout
    );
    Ok(())
}

/// Each hook writes its working directory: prestart and createRuntime run in the
/// bundle, createContainer in the rootfs, startContainer in process.cwd, whatever
/// the caller's cwd.
pub fn contract_hooks_cwd(c: &mut Ctx) -> Res {
    let id = c.new_id();
    let b = c.bundle(&id, false)?;
    let dir = std::fs::canonicalize(&b.dir)?;
    let rootfs = std::fs::canonicalize(b.rootfs())?;
    let log = |kind: &str| dir.join(format!("cwd-{kind}")).display().to_string();
    let mut config = cfg(&["true"]);
    for kind in ["prestart", "createRuntime", "createContainer"] {
        push(
            &mut config,
            &format!("hooks/{kind}"),
            sh_hook(&format!("pwd > {}", log(kind))),
        );
    }
    push(
        &mut config,
        "hooks/startContainer",
        sh_hook("pwd > /cwd-startContainer"),
    );
    set(&mut config, "process/cwd", json!("/tmp"));
    set(&mut config, "linux/cgroupsPath", json!(c.cgroups_path(&id)));
    b.write_config(&config)?;
    let elsewhere = c.suite.bundles.join(format!("{id}-caller"));
    std::fs::create_dir_all(&elsewhere)?;
    c.own_dir(&elsewhere);
    let bp = b.path_str();
    let out = c.suite.rt.run_opts(
        &["run", "--bundle", &bp, &id],
        Opts {
            cwd: Some(elsewhere.as_path()),
            stdin: None,
        },
    );
    ensure!(out.ok(), "run: {}", out.describe());
    let mut problems = Vec::new();
    for (kind, want) in [
        ("prestart", dir.clone()),
        ("createRuntime", dir.clone()),
        ("createContainer", rootfs.clone()),
    ] {
        let got = b.read(&format!("cwd-{kind}"));
        if got.trim() != want.display().to_string() {
            problems.push(format!(
                "{kind} ran in {:?}, want {}",
                got.trim(),
                want.display()
            ));
        }
    }
    let got = b.read("rootfs/cwd-startContainer");
    if got.trim() != "/tmp" {
        problems.push(format!(
            "startContainer ran in {:?}, want the process cwd /tmp",
            got.trim()
        ));
    }
    ensure!(problems.is_empty(), "{}", problems.join("; "));
    Ok(())
}
