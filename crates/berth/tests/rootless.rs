//! berth run by an unprivileged user (rootless), as runc runs for one: each test makes
//! its own user on a free uid with subordinate id ranges in /etc/subuid and
//! /etc/subgid, runs the verbs as that user (setpriv), and removes the user, its
//! subid lines, its containers and its state afterwards, on failure too.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use support::{run_bounded, stderr, stdout, unique_id, TempDir, BERTH};

/// useradd/userdel and the subid files are edited one test at a time.
static USERS: Mutex<()> = Mutex::new(());

/// Size of the subordinate range each test user gets.
const SUBID_COUNT: u64 = 65536;

/// Whether the host lets these tests run; prints why not.
fn usable() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root (to make the test user)");
        return false;
    }
    for tool in [
        "/bin/busybox",
        "/usr/sbin/useradd",
        "/usr/sbin/userdel",
        "/usr/bin/setpriv",
    ] {
        if !Path::new(tool).exists() {
            eprintln!("skipped: {tool} is not installed");
            return false;
        }
    }
    // Debian's switch (older kernels) and the namespace count limit.
    if let Ok(v) = std::fs::read_to_string("/proc/sys/kernel/unprivileged_userns_clone") {
        if v.trim() == "0" {
            eprintln!("skipped: kernel.unprivileged_userns_clone is 0 (unprivileged user namespaces are disabled)");
            return false;
        }
    }
    if let Ok(v) = std::fs::read_to_string("/proc/sys/user/max_user_namespaces") {
        if v.trim() == "0" {
            eprintln!("skipped: user.max_user_namespaces is 0 (user namespaces are disabled)");
            return false;
        }
    }
    true
}

/// A user made for one test; removed (with its subid lines) on drop.
struct TestUser {
    name: String,
    uid: u32,
    gid: u32,
    /// First id of its range in /etc/subuid and /etc/subgid.
    subid: u64,
    /// Its runtime directories (see [`TestUser::own_dir`]): where to look for
    /// containers to delete.
    xdgs: Mutex<Vec<PathBuf>>,
}

impl TestUser {
    fn new() -> TestUser {
        let _lock = USERS.lock().unwrap_or_else(|p| p.into_inner());
        let start = 20000 + std::process::id() % 20000;
        let uid = (start..60000)
            .find(|&u| {
                nix::unistd::User::from_uid(u.into())
                    .ok()
                    .flatten()
                    .is_none()
                    && nix::unistd::Group::from_gid(u.into())
                        .ok()
                        .flatten()
                        .is_none()
                    && nix::unistd::User::from_name(&format!("brl{u}"))
                        .ok()
                        .flatten()
                        .is_none()
            })
            .expect("a free uid between 20000 and 60000");
        let name = format!("brl{uid}");
        // After every range in use, so the new one overlaps none.
        let subid = ["/etc/subuid", "/etc/subgid"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .flat_map(|text| {
                text.lines()
                    .filter_map(|l| {
                        let mut p = l.split(':').skip(1);
                        let s: u64 = p.next()?.trim().parse().ok()?;
                        let n: u64 = p.next()?.trim().parse().ok()?;
                        Some(s + n)
                    })
                    .collect::<Vec<_>>()
            })
            .max()
            .unwrap_or(100000)
            .max(100000);
        let uid_s = uid.to_string();
        let out = run_bounded(Command::new("/usr/sbin/useradd").args([
            "-M",
            "-U",
            "-u",
            &uid_s,
            "-s",
            "/bin/sh",
            "-d",
            "/nonexistent",
            // The test writes its own subid lines, not useradd's automatic ones.
            "-K",
            "SUB_UID_COUNT=0",
            "-K",
            "SUB_GID_COUNT=0",
            &name,
        ]));
        assert!(out.status.success(), "useradd {name}: {}", stderr(&out));
        let user = nix::unistd::User::from_name(&name)
            .ok()
            .flatten()
            .expect("the new user");
        let me = TestUser {
            name,
            uid,
            gid: user.gid.as_raw(),
            subid,
            xdgs: Mutex::new(Vec::new()),
        };
        for f in ["/etc/subuid", "/etc/subgid"] {
            let mut text = std::fs::read_to_string(f).unwrap_or_default();
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&format!("{}:{}:{}\n", me.name, subid, SUBID_COUNT));
            std::fs::write(f, text).unwrap_or_else(|e| panic!("write {f}: {e}"));
        }
        me
    }

    /// berth as this user, in `cwd`, with its runtime directory `xdg` (no --root:
    /// the state goes to `$XDG_RUNTIME_DIR/berth`), bounded in time.
    fn berth(&self, cwd: &Path, xdg: &Path, args: &[&str]) -> Output {
        let (uid, gid) = (self.uid.to_string(), self.gid.to_string());
        run_bounded(
            Command::new("/usr/bin/setpriv")
                .args(["--reuid", &uid, "--regid", &gid, "--clear-groups", "--"])
                .arg(BERTH)
                .args(args)
                .current_dir(cwd)
                .env_clear()
                .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
                .env("XDG_RUNTIME_DIR", xdg)
                .env("USER", &self.name)
                .env("HOME", "/nonexistent"),
        )
    }

    /// A runtime directory owned by this user (mode 0700).
    fn own_dir(&self, path: &Path) {
        self.xdgs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(path.to_path_buf());
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(path).expect("mkdir");
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid)).expect("chown");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    }

    /// A busybox bundle owned by this user, its config from `berth spec --rootless`
    /// run as the user, with `args` and `edit` applied.
    fn bundle(
        &self,
        dir: &TempDir,
        xdg: &Path,
        args: &[&str],
        edit: impl FnOnce(&mut serde_json::Value),
    ) -> PathBuf {
        let bundle = dir.path().join(format!("bundle-{}", unique_id("b")));
        let bin = bundle.join("rootfs/bin");
        for d in ["bin", "etc", "proc", "sys", "dev", "tmp"] {
            std::fs::create_dir_all(bundle.join("rootfs").join(d)).expect("mkdir rootfs");
        }
        std::fs::copy("/bin/busybox", bin.join("busybox")).expect("copy busybox");
        for applet in ["sh", "sleep", "id", "cat", "echo"] {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).expect("symlink applet");
        }
        let out = run_bounded(Command::new("chown").args([
            "-R",
            &format!("{}:{}", self.uid, self.gid),
            bundle.to_str().expect("utf-8"),
        ]));
        assert!(out.status.success(), "chown bundle: {}", stderr(&out));
        let out = self.berth(&bundle, xdg, &["spec", "--rootless"]);
        assert!(out.status.success(), "spec --rootless: {}", stderr(&out));
        let path = bundle.join("config.json");
        let mut config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        config["process"]["terminal"] = false.into();
        config["process"]["args"] = args.iter().map(|a| serde_json::Value::from(*a)).collect();
        edit(&mut config);
        std::fs::write(&path, serde_json::to_string(&config).expect("json")).expect("write");
        bundle
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // A container a failed test left behind goes first, deleted by its owner.
        for xdg in self.xdgs.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let ids: Vec<String> = std::fs::read_dir(xdg.join("berth"))
                .map(|rd| {
                    rd.flatten()
                        .filter_map(|e| e.file_name().into_string().ok())
                        .collect()
                })
                .unwrap_or_default();
            for id in ids {
                let _ = self.berth(xdg, xdg, &["delete", "--force", &id]);
            }
        }
        let _lock = USERS.lock().unwrap_or_else(|p| p.into_inner());
        let _ = run_bounded(Command::new("/usr/sbin/userdel").arg(&self.name));
        for f in ["/etc/subuid", "/etc/subgid"] {
            if let Ok(text) = std::fs::read_to_string(f) {
                let prefix = format!("{}:", self.name);
                let kept: String = text
                    .lines()
                    .filter(|l| !l.starts_with(&prefix))
                    .map(|l| format!("{l}\n"))
                    .collect();
                let _ = std::fs::write(f, kept);
            }
        }
    }
}

/// The `status` of `berth state` run as the user, or "" without a state.
fn status(user: &TestUser, cwd: &Path, xdg: &Path, id: &str) -> String {
    let out = user.berth(cwd, xdg, &["state", id]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap_or_default();
    v["status"].as_str().unwrap_or("").to_string()
}

/// The v1 (or unified) cgroup directories with `name` under some hierarchy's root.
fn cgroup_dirs_named(name: &str) -> Vec<PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path().join(name))
                .filter(|p| p.exists())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn rootless_lifecycle_and_verbs_without_a_cgroup() {
    if !usable() {
        return;
    }
    let dir = TempDir::new("rootless-verbs");
    let user = TestUser::new();
    let xdg = dir.path().join("xdg");
    user.own_dir(&xdg);
    let bundle = user.bundle(&dir, &xdg, &["sleep", "100"], |_| {});
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("config.json")).expect("read"))
            .expect("json");
    // spec --rootless maps the caller's own ids to 0.
    assert_eq!(config["linux"]["uidMappings"][0]["hostID"], user.uid);
    assert_eq!(config["linux"]["gidMappings"][0]["hostID"], user.gid);
    let id = unique_id("verbs");

    let out = user.berth(&bundle, &xdg, &["create", &id]);
    assert!(out.status.success(), "create: {}", stderr(&out));
    // The state went to $XDG_RUNTIME_DIR/berth, made 0700 with the sticky bit.
    let root = xdg.join("berth");
    assert!(root.join(&id).is_dir(), "no state in {}", root.display());
    {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(&root).expect("state root");
        assert_eq!(meta.mode() & 0o7777, 0o1700);
        assert_eq!(meta.uid(), user.uid);
    }
    assert_eq!(status(&user, &bundle, &xdg, &id), "created");
    let out = user.berth(&bundle, &xdg, &["start", &id]);
    assert!(out.status.success(), "start: {}", stderr(&out));
    assert_eq!(status(&user, &bundle, &xdg, &id), "running");

    // No cgroup could be made: nothing named for the container under any hierarchy.
    assert!(
        cgroup_dirs_named(&id).is_empty(),
        "{:?}",
        cgroup_dirs_named(&id)
    );

    let out = user.berth(&bundle, &xdg, &["list", "-q"]);
    assert!(out.status.success(), "list: {}", stderr(&out));
    assert_eq!(stdout(&out).trim(), id);

    // exec: root of a user namespace that maps only the caller.
    let out = user.berth(
        &bundle,
        &xdg,
        &["exec", &id, "sh", "-c", "id -u; cat /proc/self/uid_map"],
    );
    assert!(out.status.success(), "exec: {}", stderr(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("0"), "{text}");
    let map: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(map, ["0", &user.uid.to_string(), "1"], "{text}");

    // Without a cgroup: pause and limits fail with runc's words, ps has nothing to
    // read, and events still reports (empty) stats.
    let out = user.berth(&bundle, &xdg, &["pause", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot toggle freezer: cgroups not configured for container"),
        "{}",
        stderr(&out)
    );
    let out = user.berth(&bundle, &xdg, &["update", "--memory", "100M", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot set memory limit: container could not join or create cgroup"),
        "{}",
        stderr(&out)
    );
    let out = user.berth(&bundle, &xdg, &["ps", &id]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("no cgroup"), "{}", stderr(&out));
    let out = user.berth(&bundle, &xdg, &["events", "--stats", &id]);
    assert!(out.status.success(), "events: {}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).expect("events json");
    assert_eq!(v["type"], "stats");
    assert_eq!(v["id"], id.as_str());

    let out = user.berth(&bundle, &xdg, &["kill", &id, "KILL"]);
    assert!(out.status.success(), "kill: {}", stderr(&out));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while status(&user, &bundle, &xdg, &id) != "stopped" {
        assert!(
            std::time::Instant::now() < deadline,
            "not stopped after kill"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = user.berth(&bundle, &xdg, &["delete", &id]);
    assert!(out.status.success(), "delete: {}", stderr(&out));
    assert!(!root.join(&id).exists());
    assert_eq!(status(&user, &bundle, &xdg, &id), "");
}

#[test]
fn rootless_run_with_limits_and_no_cgroup_fails_like_runc() {
    if !usable() {
        return;
    }
    let dir = TempDir::new("rootless-limits");
    let user = TestUser::new();
    let xdg = dir.path().join("xdg");
    user.own_dir(&xdg);
    let bundle = user.bundle(&dir, &xdg, &["true"], |c| {
        c["linux"]["resources"] = serde_json::json!({"pids": {"limit": 100}});
    });
    let id = unique_id("limits");
    let out = user.berth(&bundle, &xdg, &["run", &id]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("cannot set pids limit: container could not join or create cgroup"),
        "{}",
        stderr(&out)
    );
    // Nothing left behind.
    assert!(!xdg.join("berth").join(&id).exists());
    // --rootless false: the cgroups are required, and the caller cannot make them.
    let bundle = user.bundle(&dir, &xdg, &["true"], |_| {});
    let id = unique_id("notrootless");
    let out = user.berth(&bundle, &xdg, &["--rootless", "false", "run", &id]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("Permission denied"),
        "{}",
        stderr(&out)
    );
}

/// runc's rootless refusals (libcontainer/configs/validate/rootless.go and setupUser),
/// each with runc's message and nothing left behind: no user namespace, a mount's
/// uid= option naming an id the namespace does not map, additionalGids, and a process
/// uid outside the mapping (refused for root too: the unit tests of userns_checks.rs).
#[test]
fn rootless_refusals_like_runc() {
    if !usable() {
        return;
    }
    let dir = TempDir::new("rootless-refusals");
    let user = TestUser::new();
    let xdg = dir.path().join("xdg");
    user.own_dir(&xdg);
    type Edit = fn(&mut serde_json::Value);
    let cases: [(&str, Edit, &str); 4] = [
        (
            "nouserns",
            |c| {
                let ns = c["linux"]["namespaces"].as_array_mut().expect("namespaces");
                ns.retain(|n| n["type"] != "user");
                c["linux"]["uidMappings"] = serde_json::Value::Null;
                c["linux"]["gidMappings"] = serde_json::Value::Null;
            },
            "rootless container requires user namespaces",
        ),
        (
            "mountuid",
            |c| {
                c["mounts"]
                    .as_array_mut()
                    .expect("mounts")
                    .push(serde_json::json!({
                        "destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                        "options": ["nosuid", "uid=5000"]
                    }));
            },
            "cannot specify uid=5000 mount option for rootless container",
        ),
        (
            "addgids",
            |c| c["process"]["user"]["additionalGids"] = serde_json::json!([5]),
            "cannot set any additional groups in a rootless container",
        ),
        (
            "unmapped",
            |c| c["process"]["user"]["uid"] = 5000.into(),
            "cannot set uid to unmapped user in user namespace",
        ),
    ];
    for (name, edit, want) in cases {
        let bundle = user.bundle(&dir, &xdg, &["true"], edit);
        let id = unique_id(name);
        let out = user.berth(&bundle, &xdg, &["run", &id]);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stdout(&out));
        assert!(stderr(&out).contains(want), "{name}: {}", stderr(&out));
        assert!(
            !xdg.join("berth").join(&id).exists(),
            "{name}: a state directory is left"
        );
        assert!(
            cgroup_dirs_named(&id).is_empty(),
            "{name}: a cgroup is left"
        );
    }
}

#[test]
fn rootless_run_with_subordinate_ranges_uses_newuidmap() {
    if !usable() {
        return;
    }
    if !Path::new("/usr/bin/newuidmap").exists() || !Path::new("/usr/bin/newgidmap").exists() {
        eprintln!("skipped: newuidmap/newgidmap are not installed (Debian package uidmap)");
        return;
    }
    let dir = TempDir::new("rootless-ranges");
    let user = TestUser::new();
    let xdg = dir.path().join("xdg");
    user.own_dir(&xdg);
    let sub = user.subid;
    let maps = serde_json::json!([
        {"containerID": 0, "hostID": user.uid, "size": 1},
        {"containerID": 1, "hostID": sub, "size": SUBID_COUNT}
    ]);
    let gmaps = serde_json::json!([
        {"containerID": 0, "hostID": user.gid, "size": 1},
        {"containerID": 1, "hostID": sub, "size": SUBID_COUNT}
    ]);
    let bundle = user.bundle(
        &dir,
        &xdg,
        &[
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups",
        ],
        |c| {
            c["linux"]["uidMappings"] = maps;
            c["linux"]["gidMappings"] = gmaps;
        },
    );
    let id = unique_id("ranges");
    let out = user.berth(&bundle, &xdg, &["run", &id]);
    assert!(out.status.success(), "run: {}", stderr(&out));
    let rows: Vec<Vec<String>> = stdout(&out)
        .lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect();
    let want = |host: u32| {
        vec![
            vec!["0".to_string(), host.to_string(), "1".to_string()],
            vec!["1".to_string(), sub.to_string(), SUBID_COUNT.to_string()],
        ]
    };
    assert_eq!(rows.len(), 5, "{}", stdout(&out));
    assert_eq!(rows[0..2], want(user.uid)[..], "{}", stdout(&out));
    assert_eq!(rows[2..4], want(user.gid)[..], "{}", stdout(&out));
    // newgidmap leaves setgroups allowed (the ranges were checked against /etc/subgid).
    assert_eq!(rows[4], ["allow"], "{}", stdout(&out));

    // A range the user was not given is refused by the helper, with its reason.
    let bad = serde_json::json!([
        {"containerID": 0, "hostID": user.uid, "size": 1},
        {"containerID": 1, "hostID": 1, "size": 10}
    ]);
    let bundle = user.bundle(&dir, &xdg, &["true"], |c| {
        c["linux"]["uidMappings"] = bad;
    });
    let id = unique_id("badrange");
    let out = user.berth(&bundle, &xdg, &["run", &id]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("newuidmap"), "{}", stderr(&out));
}

/// How rootless Podman runs its runtime: as uid 0 of the user's own user namespace
/// (one namespace for every call, as Podman's pause process keeps it), with
/// `$XDG_RUNTIME_DIR` set, no `$USER` and no `--root`, and a config without a user
/// namespace of its own. berth must take runc's rules from that alone: the state in
/// `$XDG_RUNTIME_DIR/berth` (not /run/berth, which the namespace cannot write), the
/// rootless cgroup handling (no cgroup made on a host that delegates none), and no
/// demand for a user namespace in the config (the caller's euid is 0).
/// hack/engines/podman-rootless.sh runs the same through Podman itself.
#[test]
fn rootless_root_in_the_users_namespace_like_rootless_podman() {
    if !usable() {
        return;
    }
    if !Path::new("/usr/bin/unshare").exists() {
        eprintln!("skipped: /usr/bin/unshare is not installed");
        return;
    }
    let dir = TempDir::new("rootless-userns-root");
    let user = TestUser::new();
    let xdg = dir.path().join("xdg");
    user.own_dir(&xdg);
    let bundle = user.bundle(&dir, &xdg, &["sleep", "100"], |c| {
        let ns = c["linux"]["namespaces"].as_array_mut().expect("namespaces");
        ns.retain(|n| n["type"] != "user");
        c["linux"]["uidMappings"] = serde_json::Value::Null;
        c["linux"]["gidMappings"] = serde_json::Value::Null;
    });
    let id = unique_id("usernsroot");
    // One user namespace for the whole life: create, the state as berth wrote it,
    // exec (root of the caller's namespace), delete.
    let script = r#"B=$1 id=$2
"$B" create --bundle "$3" "$id" </dev/null >/dev/null 2>&1 || { echo "create failed: $("$B" create --bundle "$3" "$id" 2>&1 </dev/null)"; exit 10; }
echo "state: $(cat "$XDG_RUNTIME_DIR/berth/$id/state.json")"
"$B" start "$id" || exit 11
echo "exec: $("$B" exec "$id" sh -c 'id -u; cat /proc/self/uid_map')"
"$B" delete --force "$id" || exit 12
[ -e "$XDG_RUNTIME_DIR/berth/$id" ] && exit 13
exit 0"#;
    let (uid, gid) = (user.uid.to_string(), user.gid.to_string());
    let out = run_bounded(
        Command::new("/usr/bin/setpriv")
            .args(["--reuid", &uid, "--regid", &gid, "--clear-groups", "--"])
            .args(["/usr/bin/unshare", "--user", "--map-root-user", "--"])
            .args(["/bin/sh", "-c", script, "sh", BERTH, &id])
            .arg(&bundle)
            .current_dir(&bundle)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("XDG_RUNTIME_DIR", &xdg)
            .env("HOME", "/nonexistent"),
    );
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "exit {:?}: {text} {}",
        out.status.code(),
        stderr(&out)
    );
    let state = text
        .lines()
        .find_map(|l| l.strip_prefix("state: "))
        .unwrap_or_else(|| panic!("no state in {text}"));
    let v: serde_json::Value = serde_json::from_str(state).expect("state.json");
    assert_eq!(v["cgroup"]["rootless"], true, "{state}");
    assert_eq!(
        v["cgroup"]["paths"].as_object().map(|p| p.len()),
        Some(0),
        "{state}"
    );
    // exec: uid 0, the namespace maps the user's uid alone.
    let exec: Vec<String> = text
        .split("exec: ")
        .nth(1)
        .unwrap_or("")
        .lines()
        .take(2)
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(exec, ["0", &format!("0 {uid} 1")], "{text}");
    assert!(
        !Path::new("/run/berth").join(&id).exists(),
        "state under /run/berth"
    );
    assert!(
        cgroup_dirs_named(&id).is_empty(),
        "{:?}",
        cgroup_dirs_named(&id)
    );
}
