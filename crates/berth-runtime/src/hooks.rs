//! OCI hooks: each runs with `path`, `args` as argv (args[0] is argv[0]), exactly `env`
//! as its environment, the container state JSON on stdin (then closed), and is killed
//! after `timeout` seconds.
//!
//! A hook with no `env` at all inherits an environment, as under runc (Go's exec with
//! a nil `Env`): the runtime's own for the hooks berth runs itself, the container
//! process's `process.env` for createContainer and startContainer, which runc runs from
//! its init after it has replaced its environment with the process's. An empty `env`
//! (`"env": []`) is an empty environment.
//!
//! Run points follow the current runtime spec: prestart and createRuntime in the
//! runtime's namespaces during create; createContainer in the container's mount
//! namespace before pivot_root and startContainer in the container just before the
//! user program (both run by the init); poststart after start; poststop at delete.
//!
//! The working directory is runc's, so that relative paths in hooks resolve alike:
//! the bundle for prestart, createRuntime and poststart (runc runs them from `create`,
//! which works in the bundle), the rootfs (host path) for createContainer, the
//! process's cwd for startContainer, and the caller's for poststop (runc's `delete`).

use crate::error::{Error, Result};
use oci_spec::runtime::Hook;
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The environment of a hook that has no `env` key.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Inherit<'a> {
    /// The runtime's own (prestart, createRuntime, poststart, poststop).
    Runtime,
    /// The container process's (createContainer, startContainer).
    Process(&'a [CString]),
}

/// Runs hooks in order, stopping at the first failure; `cwd` is their working
/// directory (None: ours).
pub(crate) fn run_all(
    kind: &'static str,
    hooks: &[Hook],
    state_json: &str,
    cwd: Option<&Path>,
    inherit: Inherit<'_>,
) -> Result<()> {
    hooks
        .iter()
        .try_for_each(|h| run(kind, h, state_json, cwd, inherit))
}

/// Runs hooks in order; failures are logged as warnings and the rest still run
/// (the spec's rule for poststop).
pub(crate) fn run_all_warn(
    kind: &'static str,
    hooks: &[Hook],
    state_json: &str,
    cwd: Option<&Path>,
) {
    for h in hooks {
        if let Err(e) = run(kind, h, state_json, cwd, Inherit::Runtime) {
            tracing::warn!("{e}");
        }
    }
}

/// Runs one hook, in `cwd` when given.
pub(crate) fn run(
    kind: &'static str,
    hook: &Hook,
    state_json: &str,
    cwd: Option<&Path>,
    inherit: Inherit<'_>,
) -> Result<()> {
    let path = hook.path();
    let fail = |reason: String| Error::Hook {
        kind,
        path: path.clone(),
        reason,
    };
    let mut cmd = Command::new(path);
    if let Some(args) = hook.args() {
        if let Some((arg0, rest)) = args.split_first() {
            cmd.arg0(arg0).args(rest);
        }
    }
    // A directory that has gone (a bundle removed before start) leaves the hook in
    // ours rather than failing it for a reason that is not its own.
    if let Some(dir) = cwd.filter(|d| d.is_dir()) {
        cmd.current_dir(dir);
    }
    match (hook.env(), inherit) {
        (Some(env), _) => {
            cmd.env_clear();
            for kv in env {
                if let Some((k, v)) = kv.split_once('=') {
                    cmd.env(k, v);
                }
            }
        }
        (None, Inherit::Runtime) => {}
        (None, Inherit::Process(env)) => {
            cmd.env_clear();
            for kv in env {
                let kv = kv.as_bytes();
                if let Some(eq) = kv.iter().position(|&b| b == b'=') {
                    let (k, v) = (&kv[..eq], &kv[eq + 1..]);
                    cmd.env(
                        std::ffi::OsStr::from_bytes(k),
                        std::ffi::OsStr::from_bytes(v),
                    );
                }
            }
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // A hook dies with the process running it: a runtime killed while a hook runs
    // (an engine's timeout) leaves no hook behind that nothing would ever stop.
    // SAFETY: getpid before the fork; the closure calls only prctl, getppid and
    // _exit, which are async-signal-safe.
    let runner = unsafe { libc::getpid() };
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The runner died before the signal was armed.
            if libc::getppid() != runner {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| fail(format!("cannot start: {e}")))?;
    let started = Instant::now();
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that exits without reading its stdin gives EPIPE: not a failure.
        let _ = stdin.write_all(state_json.as_bytes());
    }
    // Drain output in threads so a chatty hook cannot block on a full pipe.
    let out = child.stdout.take().map(drain);
    let err = child.stderr.take().map(drain);
    let timeout = hook.timeout().map(|t| Duration::from_secs(t.max(1) as u64));
    let status = match wait_timeout(&mut child, timeout) {
        Ok(Some(status)) => status,
        Ok(None) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(format!(
                "timed out after {}s",
                started.elapsed().as_secs()
            )));
        }
        Err(e) => return Err(fail(format!("wait: {e}"))),
    };
    // A hook that leaves a daemon holding its stdout/stderr must not hang us: give the
    // readers a moment after the exit, then go on without the rest of the output.
    let grace = Duration::from_millis(200);
    let stderr = err
        .and_then(|rx| rx.recv_timeout(grace).ok())
        .unwrap_or_default();
    let _ = out.and_then(|rx| rx.recv_timeout(grace).ok());
    if !status.success() {
        let stderr = String::from_utf8_lossy(&stderr);
        let stderr = stderr.trim();
        let status = describe(status);
        return Err(fail(if stderr.is_empty() {
            status
        } else {
            format!("{status}, stderr: {stderr}")
        }));
    }
    Ok(())
}

/// How a failed hook ended: its exit status, or the signal that killed it in runc's
/// words ("signal: bad system call", which users and runc's tests look for) with the
/// number.
fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    let Some(sig) = status.signal() else {
        return status.to_string();
    };
    // SAFETY: strsignal returns a NUL-terminated description that stays valid until
    // the next call in this thread; it is copied at once.
    let text = unsafe {
        let p = libc::strsignal(sig);
        (!p.is_null()).then(|| std::ffi::CStr::from_ptr(p).to_string_lossy().to_lowercase())
    };
    match text {
        Some(t) => format!("signal: {t} (signal {sig})"),
        None => status.to_string(),
    }
}

fn drain(mut r: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.by_ref().take(64 * 1024).read_to_end(&mut buf);
        // Keep reading past the cap so the hook never blocks, discarding.
        let _ = std::io::copy(&mut r, &mut std::io::sink());
        let _ = tx.send(buf);
    });
    rx
}

/// Waits for the child, up to `timeout`; `Ok(None)` when it expired. Uses a pidfd so
/// the wait wakes at the child's exit rather than on a polling tick.
fn wait_timeout(
    child: &mut std::process::Child,
    timeout: Option<Duration>,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    let Some(timeout) = timeout else {
        return child.wait().map(Some);
    };
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as libc::pid_t, 0) };
    if raw < 0 {
        return child.wait().map(Some);
    }
    // SAFETY: the syscall returned a fresh fd that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait()? {
            return Ok(Some(s));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        let mut pfd = libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd for the duration of the call.
        unsafe { libc::poll(&mut pfd, 1, ms.max(1)) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::HookBuilder;

    fn hook(args: &[&str], timeout: Option<i64>) -> Hook {
        let mut b = HookBuilder::default()
            .path("/bin/sh")
            .args(args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .env(vec!["HOOKVAR=x".to_string()]);
        if let Some(t) = timeout {
            b = b.timeout(t);
        }
        b.build().unwrap()
    }

    #[test]
    fn stdin_args_env() {
        let dir = std::env::temp_dir().join(format!("berth-hook-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        // argv[0] is the hook's args[0]; $0 and $1 are the args after the script; the
        // environment is exactly the hook's env (HOME is not inherited).
        let script = format!(
            "cat > {0}; head -c 6 /proc/$$/cmdline >> {0}; echo \" $0 $1 $HOOKVAR ${{HOME:-nohome}}\" >> {0}",
            out.display()
        );
        let h = hook(&["myhook", "-c", &script, "zero", "one"], Some(5));
        let r = run("prestart", &h, "{\"id\":\"x\"}", None, Inherit::Runtime);
        let text = std::fs::read_to_string(&out);
        std::fs::remove_dir_all(&dir).unwrap();
        r.unwrap();
        assert_eq!(text.unwrap(), "{\"id\":\"x\"}myhook zero one x nohome\n");
    }

    #[test]
    fn failure_names_status_and_stderr() {
        let h = hook(&["sh", "-c", "echo boom >&2; exit 3"], None);
        let e = run("poststart", &h, "{}", None, Inherit::Runtime)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("poststart hook /bin/sh")
                && e.contains("exit status: 3")
                && e.contains("boom"),
            "{e}"
        );
    }

    #[test]
    fn killed_hook_names_the_signal_as_runc() {
        let h = hook(&["sh", "-c", "kill -SYS $$"], None);
        let e = run("startContainer", &h, "{}", None, Inherit::Runtime)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "error running hook: startContainer hook /bin/sh: signal: bad system call (signal 31)"
            ),
            "{e}"
        );
    }

    #[test]
    fn runs_in_the_given_directory() {
        let dir = std::env::temp_dir().join(format!("berth-hook-cwd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let h = hook(&["sh", "-c", "pwd > here"], None);
        let r = run("createContainer", &h, "{}", Some(&dir), Inherit::Runtime);
        let text = std::fs::read_to_string(dir.join("here"));
        std::fs::remove_dir_all(&dir).unwrap();
        r.unwrap();
        assert_eq!(text.unwrap().trim(), dir.to_str().unwrap());
    }

    /// Runs a hook printing `${<var>-unset}|${X-unset}` (with `env` as its env key
    /// when given) and returns what it printed.
    fn env_seen(env: Option<Vec<String>>, inherit: Inherit<'_>, var: &str, tag: &str) -> String {
        let dir = std::env::temp_dir().join(format!("berth-hook-env-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut b = HookBuilder::default().path("/bin/sh").args(vec![
            "sh".to_string(),
            "-c".to_string(),
            format!("echo \"${{{var}-unset}}|${{X-unset}}\" > out"),
        ]);
        if let Some(env) = env {
            b = b.env(env);
        }
        let r = run("prestart", &b.build().unwrap(), "{}", Some(&dir), inherit);
        let text = std::fs::read_to_string(dir.join("out"));
        std::fs::remove_dir_all(&dir).unwrap();
        r.unwrap();
        text.unwrap().trim_end().to_string()
    }

    /// A variable of this test's environment that no shell sets by itself.
    fn own_var() -> (String, String) {
        std::env::vars()
            .find(|(k, v)| {
                !v.is_empty()
                    && !v.contains(['"', '\\', '$', '`'])
                    && !["PWD", "OLDPWD", "SHLVL", "_", "IFS", "PATH", "X"].contains(&k.as_str())
                    && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !k.starts_with(|c: char| c.is_ascii_digit())
            })
            .expect("cargo runs tests with CARGO_* variables in the environment")
    }

    #[test]
    fn without_env_the_hook_inherits() {
        let (var, value) = own_var();
        // The runtime's environment (runc: Go's exec with a nil Env).
        let seen = env_seen(None, Inherit::Runtime, &var, "runtime");
        assert_eq!(seen, format!("{value}|unset"));
        // The container process's, for the hooks the init runs.
        let process = [c"X=1".to_owned(), c"V=/p".to_owned()];
        assert_eq!(
            env_seen(None, Inherit::Process(&process), "V", "process"),
            "/p|1"
        );
    }

    #[test]
    fn an_env_key_is_the_whole_environment() {
        let (var, _) = own_var();
        let process = [c"X=1".to_owned()];
        assert_eq!(
            env_seen(Some(vec![]), Inherit::Runtime, &var, "empty"),
            "unset|unset"
        );
        assert_eq!(
            env_seen(
                Some(vec!["X=2".into()]),
                Inherit::Process(&process),
                &var,
                "given"
            ),
            "unset|2"
        );
    }

    #[test]
    fn timeout_kills() {
        let h = hook(&["sh", "-c", "sleep 20"], Some(1));
        let t = Instant::now();
        let e = run("createRuntime", &h, "{}", None, Inherit::Runtime)
            .unwrap_err()
            .to_string();
        assert!(e.contains("timed out"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(10));
    }
}
