//! No mount namespace in the config: the container inherits the runtime's (as every
//! namespace type that is not listed), and its mounts are made there, beneath the
//! rootfs, as runc makes them (runtime-tools' linux_ns_itype keeps the generator's
//! default mounts). berth keeps the host whole around them: no propagation changes
//! outside the rootfs, and `delete` (or a failed `create`) leaves nothing mounted.
//! Judged from the driver, which shares that namespace.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::bundle::{mounts_under, unescape};
use crate::configs::runtime_tools;
use crate::ctx::Ctx;
use crate::nshelper::link;
use crate::spec::{push, remove, set};
use crate::verdict::{Res, Verdict};
use crate::{ensure, fail};

/// Namespace links compared with the driver's (time only where the kernel has it).
const LINKS: &[&str] = &["pid", "net", "ipc", "uts", "mnt", "user", "cgroup", "time"];

/// The runtime-tools generator's default config with every namespace and the hostname
/// removed (what linux_ns_itype runs), a rootfs of ours and a long sleep.
fn generator_without_namespaces() -> Value {
    let mut cfg = runtime_tools::default_config(runtime_tools::Profile::Snapshot2022);
    set(&mut cfg, "linux/namespaces", json!([]));
    remove(&mut cfg, "hostname");
    set(&mut cfg, "root", json!({"path": "rootfs"}));
    set(&mut cfg, "process/args", json!(["/bin/sleep", "60"]));
    cfg
}

/// (mount point, mount options, optional fields) of each line of our mountinfo.
fn mountinfo() -> Vec<(PathBuf, String, String)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            Some((
                PathBuf::from(unescape(f.get(4)?)),
                f.get(5)?.to_string(),
                f.get(6..sep)?.join(" "),
            ))
        })
        .collect()
}

/// The propagation fields of the top mount at `/` and of the mount holding `dir`.
fn propagation_around(dir: &Path) -> (String, String) {
    let table = mountinfo();
    let at = |want: &Path| {
        table
            .iter()
            .rev()
            .find(|(p, _, _)| p == want)
            .map(|(_, _, opt)| opt.clone())
            .unwrap_or_default()
    };
    // The mount holding `dir`: the longest mount point that is a prefix of it.
    let holder = table
        .iter()
        .filter(|(p, _, _)| dir.starts_with(p))
        .max_by_key(|(p, _, _)| p.components().count())
        .map(|(p, _, _)| p.clone())
        .unwrap_or_else(|| PathBuf::from("/"));
    (at(Path::new("/")), at(&holder))
}

fn canonical(p: &Path) -> Result<PathBuf, Verdict> {
    std::fs::canonicalize(p).map_err(|e| Verdict::Fail(format!("{}: {e}", p.display())))
}

/// What is still mounted at or below the rootfs after the container is gone.
fn left_behind(rootfs: &Path) -> Res {
    let left = mounts_under(rootfs);
    ensure!(
        left.is_empty(),
        "left mounted in the runtime's mount namespace: {}",
        left.iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// create with the generator's default mounts and no namespace at all: every
/// namespace is the driver's, the mounts are below the rootfs (and the container's
/// root is the rootfs, for `exec` too), no propagation outside the rootfs changed, and after
/// `delete` nothing is left mounted. Then once more with root.readonly: the rootfs
/// mount is read-only while the container lives and writable again after.
pub fn linux_ns_itype_generator_mounts(c: &mut Ctx) -> Res {
    for readonly in [false, true] {
        let mut cfg = generator_without_namespaces();
        if readonly {
            set(&mut cfg, "root/readonly", json!(true));
        }
        let (id, b) = c.prepare(cfg, false)?;
        let rootfs = canonical(&b.rootfs())?;
        let before = propagation_around(&rootfs);
        let out = c.create(&b, &id);
        if !out.ok() {
            fail!(
                "create without namespaces (root.readonly {readonly}) failed: {}",
                out.describe()
            );
        }
        let checked = check_created(c, &id, &rootfs, readonly);
        c.must(&["delete", "--force", &id])?;
        checked?;
        left_behind(&rootfs)?;
        let after = propagation_around(&rootfs);
        ensure!(
            after == before,
            "propagation outside the rootfs changed: / and the bundle's mount were {before:?}, now {after:?}"
        );
        if readonly {
            let probe = rootfs.join("rw-probe");
            ensure!(
                std::fs::write(&probe, "x").is_ok(),
                "the rootfs stays read-only on the host after delete"
            );
            let _ = std::fs::remove_file(probe);
        }
    }
    Ok(())
}

fn check_created(c: &mut Ctx, id: &str, rootfs: &Path, readonly: bool) -> Res {
    let pid = c.pid(id)?.to_string();
    let me = std::process::id().to_string();
    let differ: Vec<String> = LINKS
        .iter()
        .filter(|k| Path::new(&format!("/proc/self/ns/{k}")).exists())
        .filter(|k| link(&me, k) != link(&pid, k))
        .map(|k| format!("{k} ({} vs {})", link(&pid, k), link(&me, k)))
        .collect();
    ensure!(
        differ.is_empty(),
        "namespaces not inherited: {}",
        differ.join(", ")
    );
    let root = std::fs::read_link(format!("/proc/{pid}/root"))
        .map_err(|e| Verdict::Fail(format!("/proc/{pid}/root: {e}")))?;
    ensure!(
        root == rootfs,
        "the container's root is {}, want the rootfs {}",
        root.display(),
        rootfs.display()
    );
    let mounted = mounts_under(rootfs);
    let missing: Vec<&str> = ["proc", "dev", "dev/pts", "dev/shm", "dev/mqueue", "sys"]
        .into_iter()
        .filter(|d| !mounted.contains(&rootfs.join(d)))
        .collect();
    ensure!(
        missing.is_empty(),
        "not mounted below the rootfs: {} (mounted: {mounted:?})",
        missing.join(", ")
    );
    // exec joins the namespaces, which does not enter the root: it must still run in
    // the container's filesystem, not the runtime's.
    let out = c.must(&["exec", id, "/bin/ls", "-a", "/"])?;
    let mut inside: Vec<String> = out
        .stdout
        .split_whitespace()
        .filter(|n| *n != "." && *n != "..")
        .map(str::to_string)
        .collect();
    let mut want: Vec<String> = std::fs::read_dir(rootfs)
        .map_err(|e| Verdict::Fail(format!("{}: {e}", rootfs.display())))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    inside.sort();
    want.sort();
    ensure!(
        inside == want,
        "exec sees / as {inside:?}, the rootfs holds {want:?}"
    );
    let root_opts = mountinfo()
        .into_iter()
        .rev()
        .find(|(p, _, _)| p == rootfs)
        .map(|(_, o, _)| o);
    let Some(root_opts) = root_opts else {
        fail!("no mount at the rootfs {}", rootfs.display());
    };
    let is_ro = root_opts.split(',').any(|o| o == "ro");
    ensure!(
        is_ro == readonly,
        "the rootfs mount has options {root_opts} with root.readonly {readonly}"
    );
    Ok(())
}

/// A create that fails after some mounts were made (a bind source that does not
/// exist, last) leaves nothing mounted; maskedPaths, which would cover paths of the
/// runtime's namespace, are refused with runc's words.
pub fn linux_ns_itype_cleanup(c: &mut Ctx) -> Res {
    let mut cfg = generator_without_namespaces();
    push(
        &mut cfg,
        "mounts",
        json!({"destination": "/late", "type": "bind", "source": "/nonexistent-berth-source", "options": ["rbind"]}),
    );
    let (id, b) = c.prepare(cfg, false)?;
    let rootfs = canonical(&b.rootfs())?;
    let out = c.create(&b, &id);
    if out.ok() {
        c.must(&["delete", "--force", &id])?;
        fail!("create succeeded with a bind mount of a missing source");
    }
    left_behind(&rootfs)?;
    ensure!(
        !c.state_entry_exists(&id),
        "the failed create left container {id} in the state directory"
    );

    let mut cfg = generator_without_namespaces();
    set(&mut cfg, "linux/maskedPaths", json!(["/proc/kcore"]));
    let (id, b) = c.prepare(cfg, false)?;
    let rootfs = canonical(&b.rootfs())?;
    let out = c.create(&b, &id);
    if out.ok() {
        c.must(&["delete", "--force", &id])?;
        fail!("create accepted maskedPaths without a mount namespace");
    }
    ensure!(
        out.stderr.contains("without a private MNT namespace"),
        "maskedPaths without a mount namespace: want runc's \"unable to restrict sys entries without a private MNT namespace\", got {}",
        out.describe()
    );
    left_behind(&rootfs)?;
    Ok(())
}
