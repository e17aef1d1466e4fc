#!/usr/bin/env bash
# containerd 1.6 drives each runtime under test (default: runc, then berth) through
# the runc shim v2 (`ctr run --runc-binary`), so a failure of the environment (runc
# fails too) is told apart from a failure of berth. The test starts its own containerd
# (own config, root, state dir and socket under a temp dir) in a private mount
# namespace (private /sys/fs/cgroup tmpfs and /run, where the shims put their
# sockets), imports hand-built OCI archives, and stops containerd and the shims it
# started by pid at the end, on failure too.
#
#   hack/engines/containerd.sh
#   RUNTIMES="berth=target/release/berth" hack/engines/containerd.sh
#
# Output: PASS/FAIL/SKIP lines tagged [runtime], then "N passed, N failed".
set -uo pipefail

cd "$(dirname "$0")/../.." || exit 1
# A closed fd 0 would be taken by the first file a daemon opens: give it /dev/null.
exec </dev/null
# shellcheck source=hack/lib/bundle.sh
. hack/lib/bundle.sh
# shellcheck source=hack/lib/cgroupfs.sh
. hack/lib/cgroupfs.sh
# shellcheck source=hack/lib/engine.sh
. hack/lib/engine.sh
# shellcheck source=hack/lib/images.sh
. hack/lib/images.sh

STEP_TIMEOUT=${STEP_TIMEOUT:-60}
BUSYBOX=docker.io/berth-test/busybox:latest
APP=docker.io/berth-test/app:latest
NS=berth-test

if [ "${1:-}" = --inner ]; then
    work=$2
    cgparent=$3
    shift 3
    mkdir -p "$work/cgsave"
    if ! private_cgroupfs "$work/cgsave" || ! mount -t tmpfs -o mode=755 berth-run /run; then
        echo "FAIL: private /sys/fs/cgroup and /run in a mount namespace"
        echo "0 passed, 1 failed"
        exit 1
    fi
    sock="$work/containerd.sock"
    containerd_config "$work" "$sock"
    containerd --config "$work/config.toml" >"$work/containerd.log" 2>&1 &
    cpid=$!
    echo "$cpid" >"$work/containerd.pid"
    c() { timeout "$STEP_TIMEOUT" ctr --address "$sock" --namespace "$NS" "$@"; }
    # shellcheck disable=SC2317  # called through the trap
    inner_cleanup() {
        trap '' TERM INT # finish cleaning up even if stopped again
        local t p
        for t in $(c task ls -q 2>/dev/null); do c task kill -s KILL "$t" >/dev/null 2>&1; done
        sleep 0.3
        for t in $(c task ls -q 2>/dev/null); do c task delete -f "$t" >/dev/null 2>&1; done
        for t in $(c container ls -q 2>/dev/null); do c container delete "$t" >/dev/null 2>&1; done
        stop_pid "$cpid" 10
        # The shims this containerd started: their command line names our socket.
        for p in /proc/[0-9]*; do
            grep -qF "$sock" "$p/cmdline" 2>/dev/null && stop_pid "${p#/proc/}" 5
        done
        umount_under "$work"
    }
    trap inner_cleanup EXIT
    T_RT=containerd
    for ((i = 0; i < 100; i++)); do
        c version >/dev/null 2>&1 && break
        kill -0 "$cpid" 2>/dev/null || break
        sleep 0.1
    done
    if ! c version >/dev/null 2>&1; then
        t_fail "containerd did not come up: $(t_err "$work/containerd.log")"
        t_summary
        exit 1
    fi
    t_pass "containerd $(containerd --version | awk '{print $3}') up with its own config, root, state and socket"

    make_busybox_rootfs "$work/rootfs"
    make_app_rootfs "$work/app-rootfs"
    make_oci_archive "$work/rootfs" "$work/busybox.tar" "$BUSYBOX" &&
        make_oci_archive "$work/app-rootfs" "$work/app.tar" "$APP" \
            "{\"User\":\"$APP_USER\",\"WorkingDir\":\"/home/$APP_USER\",\"Env\":[\"PATH=/usr/sbin:/usr/bin:/sbin:/bin\",\"GREETING=hello\"],\"Entrypoint\":[\"/entrypoint.sh\"]}"
    if c image import "$work/busybox.tar" >/dev/null 2>"$work/err" &&
        c image import "$work/app.tar" >/dev/null 2>>"$work/err" &&
        grep -qx "$APP" < <(c image ls -q 2>/dev/null); then
        t_pass "ctr image import of hand-built OCI archives: $BUSYBOX, $APP"
    else
        t_fail "ctr image import: $(t_err "$work/err")"
        t_summary
        exit 1
    fi

    # shellcheck source=hack/engines/containerd-scenarios.sh
    . hack/engines/containerd-scenarios.sh
    for spec in "$@"; do
        T_RT=${spec%%=*}
        rt=${spec#*=}
        wrapper="$work/rt-$T_RT"
        # The shim passes its own --root (--runc-root); the wrapper only logs.
        cat >"$wrapper" <<WRAP
#!/bin/sh
echo "\$*" >>"$work/calls-$T_RT.log"
exec "$rt" "\$@"
WRAP
        chmod +x "$wrapper"
        failed_before=$T_FAILED
        containerd_scenarios
        t_last_calls "$failed_before" "$work/calls-$T_RT.log"
    done
    t_summary
    exit
fi

# Outer half: the runtimes, the temp dir, the namespace and cleanup.
BERTH=${BERTH:-${CARGO_TARGET_DIR:-target}/release/berth}
RUNTIMES=${RUNTIMES:-"runc=/usr/sbin/runc berth=$BERTH"}
engine_runtimes
engine_need "apt-get install -y containerd; hack/install-deps.sh" containerd ctr containerd-shim-runc-v2 unshare findmnt script

work=$(mktemp -d /tmp/berth-containerd.XXXXXX)
cgparent="/berth-engines-ctr-$$"
# shellcheck disable=SC2317  # called through the trap
outer_cleanup() { engine_outer_cleanup "$work/containerd.pid" 5 "$work/containerd.sock"; }
inner_pid=
trap outer_cleanup EXIT

engine_run_inner containerd $((STEP_TIMEOUT * 6)) -m --propagation private
