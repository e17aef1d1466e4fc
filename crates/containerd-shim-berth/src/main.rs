//! `containerd-shim-berth-v2`: the shim containerd starts for a runtime named
//! `io.containerd.berth.v2`. It serves containerd's task API (v2, over ttrpc) and runs
//! every OCI operation in-process through berth-runtime: no runtime binary is exec'd,
//! the container's init and exec'd processes are this shim's own children, and their
//! exits come through pidfds.
//!
//! The command line, the `start` / `delete` actions and the ttrpc server come from
//! containerd's Rust shim crate (`containerd-shim`); this crate holds the task service.
//! One shim serves every container of a Kubernetes pod (the sandbox annotation), as
//! containerd-shim-runc-v2 does.

mod errors;
mod events;
mod io;
mod metrics;
mod mounts;
mod options;
mod process;
mod reaper;
mod runtime_options;
mod service;
mod shim;
mod task;

use berth_runtime::sealed_exe::{run_protected, Exposure};
use std::ffi::OsString;

/// The name containerd knows this runtime by.
const RUNTIME_ID: &str = "io.containerd.berth.v2";

/// Whether `args` (the command line after argv[0]) start the serving shim: the
/// long-lived process that `start` spawns, which creates the containers. The crate's
/// `bootstrap` serves when the action (the first word after the flags) is neither
/// `start` nor `delete`, the namespace is given and a socket is named; its `start`
/// spawns it with `-namespace`, `-id`, `-address`, `-socket` and no action. Anything
/// the crate would refuse (unparsable flags, no namespace, no socket) is not serving:
/// the crate then reports the error itself.
fn serving(args: &[OsString]) -> bool {
    let Ok(flags) = containerd_shim::parse(args) else {
        return false;
    };
    !matches!(flags.action.as_str(), "start" | "delete")
        && !flags.namespace.is_empty()
        && !flags.socket.is_empty()
}

/// CVE-2019-5736: the containers' init and exec'd processes are clones of this
/// process, so their `/proc/<pid>/exe` is the shim's binary until their `execve` (and
/// a container whose program is `/proc/self/exe` runs that binary inside). The serving
/// shim therefore re-executes itself, once, from a protected image of its binary (a
/// read-only detached bind, or a sealed memfd copy: berth-runtime's `sealed_exe`),
/// before it has started a thread or opened an fd. The same argv, environment, cwd and
/// fds 0-2 (stdin /dev/null, stdout the pipe `start` reads until the server is up,
/// stderr) go across; the listening socket and the log fifo are opened afterwards.
///
/// Always, not only when a container needs it (as the CLI decides per container): the
/// shim cannot know the containers it will serve, one shim serves a whole pod, and a
/// pod's containers after the first join the sandbox's namespaces by path (a joined user
/// namespace always needs it). The cost is paid once per shim: a bind costs no copy; the
/// memfd fallback costs the binary's size in memory for the shim's life.
///
/// No fallback to running unprotected: if no image can be made, the shim logs why (to
/// the shim log containerd reads, and stderr) and exits 1, so containerd fails the
/// task's create rather than run containers that could overwrite the host's binary.
fn protect_serving_shim() {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if !serving(&args) {
        return;
    }
    if let Err(e) = run_protected(Exposure::ContainersNotYetKnown) {
        let msg = format!(
            "{RUNTIME_ID}: cannot run from a protected image of the shim's binary \
             (CVE-2019-5736), refusing to serve: {e}"
        );
        // The log fifo in the bundle, which containerd copies into its own log.
        if let Ok(flags) = containerd_shim::parse(&args) {
            if containerd_shim::logger::init(flags.debug, "info", &flags.namespace, &flags.id)
                .is_ok()
            {
                log::error!("{msg}");
                log::logger().flush();
            }
        }
        eprintln!("{msg}");
        std::process::exit(1);
    }
}

fn main() {
    protect_serving_shim();
    // The crate's own reaper waits for any child (waitpid(-1)) on SIGCHLD, which
    // would take the init's and exec'd processes' exit statuses from their pidfd
    // waiters: this shim reaps only the orphans it does not track (reaper.rs).
    let config = containerd_shim::Config {
        no_reaper: true,
        ..Default::default()
    };
    containerd_shim::run::<shim::BerthShim>(RUNTIME_ID, Some(config));
}

#[cfg(test)]
mod tests {
    use super::serving;
    use std::ffi::OsString;

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_process_start_spawns_is_the_serving_one() {
        // As the crate's spawn builds it (with and without -debug).
        let mut a = vec![
            "-namespace",
            "k8s.io",
            "-id",
            "c1",
            "-address",
            "/run/containerd/containerd.sock",
            "-socket",
            "unix:///run/containerd/s/0123abcd",
        ];
        assert!(serving(&args(&a)));
        a.push("-debug");
        assert!(serving(&args(&a)));
    }

    #[test]
    fn the_start_and_delete_actions_are_not() {
        // As containerd runs them: flags, then the action.
        for action in ["start", "delete"] {
            let a = args(&[
                "-namespace",
                "k8s.io",
                "-address",
                "/run/containerd/containerd.sock",
                "-publish-binary",
                "/usr/bin/containerd",
                "-id",
                "c1",
                action,
            ]);
            assert!(!serving(&a), "{action}");
            // Even given a socket.
            let mut with_socket = args(&["-socket", "unix:///run/s"]);
            with_socket.extend(a);
            assert!(!serving(&with_socket), "{action} with -socket");
        }
    }

    #[test]
    fn what_the_crate_refuses_is_not() {
        for a in [
            vec![],
            vec!["-v"],
            vec!["-version"],
            vec!["-namespace", "n", "-id", "c1"],
            vec!["-socket", "unix:///run/s", "-id", "c1"],
            vec![
                "-no-such-flag",
                "-namespace",
                "n",
                "-socket",
                "unix:///run/s",
            ],
        ] {
            assert!(!serving(&args(&a)), "{a:?}");
        }
    }
}
