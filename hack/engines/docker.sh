#!/usr/bin/env bash
# Docker (Debian's docker.io 20.10 dockerd, which starts its own containerd) drives
# each runtime under test (default: runc, then berth) registered with --add-runtime,
# so a failure of the environment is told apart from a failure of berth. dockerd runs
# with its own data root, exec root, pid file and socket under a temp dir, without
# iptables or a bridge, in a private mount and network namespace; the test stops it by
# pid at the end (dockerd stops its containerd), on failure too. Skips, with the
# reason, if dockerd is not installed.
#
#   hack/engines/docker.sh
#   RUNTIMES="berth=target/release/berth" hack/engines/docker.sh
#
# Output: PASS/FAIL/SKIP lines tagged [runtime], then "N passed, N failed".
set -uo pipefail

cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=hack/lib/bundle.sh
. hack/lib/bundle.sh
# shellcheck source=hack/lib/cgroupfs.sh
. hack/lib/cgroupfs.sh
# shellcheck source=hack/lib/engine.sh
. hack/lib/engine.sh

STEP_TIMEOUT=${STEP_TIMEOUT:-60}
BUSYBOX=berth-test/busybox

if [ "${1:-}" = --inner ]; then
    work=$2
    cgparent=$3
    shift 3
    ip link set lo up
    mkdir -p "$work/cgsave"
    if ! private_cgroupfs "$work/cgsave"; then
        echo "FAIL: private /sys/fs/cgroup setup in a mount namespace"
        echo "0 passed, 1 failed"
        exit 1
    fi
    # One registered runtime per runtime under test: a wrapper that logs its calls
    # and keeps a copy of every config.json it is given (dockerd passes --root itself,
    # under its exec root).
    addrt=()
    for spec in "$@"; do
        {
            echo '#!/bin/sh'
            echo "echo \"\$*\" >>\"$work/calls-${spec%%=*}.log\""
            capture_lines "$work/captured"
            echo "exec \"${spec#*=}\" \"\$@\""
        } >"$work/rt-${spec%%=*}"
        chmod +x "$work/rt-${spec%%=*}"
        addrt+=(--add-runtime "test-${spec%%=*}=$work/rt-${spec%%=*}")
    done
    dockerd --data-root "$work/data" --exec-root "$work/exec" --pidfile "$work/dockerd.pid" \
        --host "unix://$work/docker.sock" --iptables=false --ip6tables=false --bridge=none \
        --storage-driver overlay2 --exec-opt native.cgroupdriver=cgroupfs \
        --cgroup-parent "$cgparent" "${addrt[@]}" >"$work/dockerd.log" 2>&1 &
    dpid=$!
    d() { timeout "$STEP_TIMEOUT" /usr/bin/docker -H "unix://$work/docker.sock" "$@"; }
    # d_then "VERB [FLAGS]" NAME FORMAT: docker VERB NAME, then print inspect FORMAT.
    # shellcheck disable=SC2317  # called through t_expect
    d_then() {
        # shellcheck disable=SC2086  # VERB and its flags
        d $1 "$2" >/dev/null && d inspect -f "$3" "$2"
    }
    # shellcheck disable=SC2317  # called through the trap
    inner_cleanup() {
        trap '' TERM INT # finish cleaning up even if stopped again
        local ids
        ids=$(d ps -aq 2>/dev/null)
        # shellcheck disable=SC2086
        [ -n "$ids" ] && d rm -f $ids >/dev/null 2>&1
        d rmi -f "$BUSYBOX" >/dev/null 2>&1
        stop_pid "$dpid" 20
        umount_under "$work"
    }
    trap inner_cleanup EXIT
    T_RT=docker
    for ((i = 0; i < 150; i++)); do
        d version >/dev/null 2>&1 && break
        kill -0 "$dpid" 2>/dev/null || break
        sleep 0.1
    done
    if ! d version >/dev/null 2>&1; then
        t_fail "dockerd did not come up: $(t_err "$work/dockerd.log")"
        t_summary
        exit 1
    fi
    t_pass "dockerd $(d version -f '{{.Server.Version}}' 2>/dev/null) up with its own data root, exec root and socket"
    make_busybox_rootfs "$work/rootfs"
    tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
    if d import "$work/rootfs.tar" "$BUSYBOX" >/dev/null 2>"$work/err"; then
        t_pass "docker import: $BUSYBOX"
    else
        t_fail "docker import: $(t_err "$work/err")"
        t_summary
        exit 1
    fi

    # Docker's own config.json for a plain `docker run IMAGE CMD` (with --network none:
    # this dockerd has no bridge), as the first runtime's wrapper received it; each
    # runtime below replays it directly (hack/lib/engine.sh).
    capture_config "docker-$(d version -f '{{.Server.Version}}' 2>/dev/null | cut -d+ -f1)" \
        d run --rm --network none --runtime "test-${1%%=*}" "$BUSYBOX" "${GENERATED_ARGS[@]}"

    for spec in "$@"; do
        T_RT=${spec%%=*}
        failed_before=$T_FAILED
        replay_config docker "$captured" "${spec#*=}"
        R=(run --rm --network none --runtime "test-$T_RT")
        n="e$$-$T_RT"
        t_expect "docker run: output" 0 'hello-from-docker' d "${R[@]}" "$BUSYBOX" echo hello-from-docker
        t_expect "docker run sh -c 'exit 3': exit code 3" 3 '' d "${R[@]}" "$BUSYBOX" sh -c 'exit 3'
        # shellcheck disable=SC2016
        t_expect "docker run --user -e -w --hostname" 0 '65534 bar /tmp h1' d "${R[@]}" --user 65534 -e FOO=bar \
            -w /tmp --hostname h1 "$BUSYBOX" sh -c 'echo $(id -u) $FOO $(pwd) $(hostname)'
        t_expect "docker run --read-only" 0 'ro' d "${R[@]}" --read-only "$BUSYBOX" \
            sh -c 'touch /x 2>/dev/null && echo rw || echo ro'
        t_expect "docker run -t: a terminal" 0 '/dev/pts/[0-9]+' d "${R[@]}" -t "$BUSYBOX" tty
        out=$(d run --name "$n-oom" --network none --runtime "test-$T_RT" --memory 32m --memory-swap 32m \
            "$BUSYBOX" dd if=/dev/zero of=/dev/null bs=128M count=1 2>"$work/err") && rc=0 || rc=$?
        s=$(d inspect -f '{{.State.OOMKilled}}' "$n-oom" 2>/dev/null)
        if [ "$rc" -eq 137 ] && [ "$s" = true ]; then
            t_pass "docker run --memory 32m, dd bs=128M: exit 137, OOMKilled true"
        else
            t_fail "docker run --memory 32m OOM: exit $rc (want 137), OOMKilled '$s', stderr: $(t_err "$work/err")"
        fi
        d rm -f "$n-oom" >/dev/null 2>&1
        if d run -d --name "$n-d" --network none --runtime "test-$T_RT" "$BUSYBOX" sleep 300 >/dev/null 2>"$work/err"; then
            t_pass "docker run -d"
        else
            t_fail "docker run -d: $(t_err "$work/err")"
        fi
        t_expect "docker exec: output" 0 'in-exec' d exec "$n-d" echo in-exec
        t_expect "docker pause" 0 'paused' d_then pause "$n-d" '{{.State.Status}}'
        t_expect "docker unpause" 0 'running' d_then unpause "$n-d" '{{.State.Status}}'
        t_expect "docker stop -t 1: KILL after the timeout, exit 137" 0 '137' \
            d_then "stop -t 1" "$n-d" '{{.State.ExitCode}}'
        d rm -f "$n-d" >/dev/null 2>&1
        s=$(find "$work/exec"/runtime-*/moby -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
        if [ "$(d ps -aq | wc -l)" -eq 0 ] && [ "$s" -eq 0 ]; then
            t_pass "nothing left: no container, no runtime state"
        else
            t_fail "left behind: $(d ps -aq | wc -l) containers, $s runtime state entries"
        fi
        t_last_calls "$failed_before" "$work/calls-$T_RT.log"
    done
    t_summary
    exit
fi

BERTH=${BERTH:-${CARGO_TARGET_DIR:-target}/release/berth}
RUNTIMES=${RUNTIMES:-"runc=/usr/sbin/runc berth=$BERTH"}
if ! command -v dockerd >/dev/null || [ ! -x /usr/bin/docker ]; then
    echo "SKIP: dockerd not installed (apt-get install -y --no-install-recommends docker.io)"
    echo "0 passed, 0 failed (1 skipped)"
    exit 0
fi
engine_runtimes

work=$(mktemp -d /tmp/berth-docker.XXXXXX)
cgparent="/berth-engines-docker-$$"
# shellcheck disable=SC2317  # called through the trap
outer_cleanup() { engine_outer_cleanup "$work/dockerd.pid" 10 "$work/exec"; }
inner_pid=
trap outer_cleanup EXIT

engine_run_inner docker $((STEP_TIMEOUT * 5)) -m -n --propagation private
