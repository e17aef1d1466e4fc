#!/usr/bin/env bash
# Podman drives each runtime under test (default: runc, then berth) through conmon,
# scenario by scenario, so a failure of the environment (runc fails too) is told apart
# from a failure of berth (only berth fails). Everything runs in a private mount and
# network namespace: a private tmpfs over /sys/fs/cgroup (the v1 hierarchies bound
# back in), Podman's bridge and firewall rules in a network namespace of our own,
# private storage/run root/runtime roots under one temp dir, containers under one
# cgroup parent; all removed at the end, on failure too.
#
#   hack/engines/podman.sh                         # runc and berth
#   RUNTIMES="berth=target/release/berth" hack/engines/podman.sh
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
# shellcheck source=hack/lib/images.sh
. hack/lib/images.sh

STEP_TIMEOUT=${STEP_TIMEOUT:-60}
BUSYBOX=localhost/berth-test/busybox
APP=localhost/berth-test/app

if [ "${1:-}" = --inner ]; then
    work=$2
    cgparent=$3
    shift 3
    set -e
    ip link set lo up
    mkdir -p "$work/cgsave"
    if ! private_cgroupfs "$work/cgsave"; then
        echo "FAIL: private /sys/fs/cgroup setup in a mount namespace"
        echo "0 passed, 1 failed"
        exit 1
    fi
    mkdir -p "$work/tmp" "$work/conf" "$work/networks" "$work/vol"
    # Each runtime under test is a named runtime of containers.conf ([engine.runtimes],
    # as docs/integration.md shows), its path a wrapper pinning a private --root.
    runtimes_conf=""
    for spec in "$@"; do
        write_runtime_wrapper "$work/rt-${spec%%=*}" "${spec#*=}" "$work/root-${spec%%=*}" \
            "$work/calls-${spec%%=*}.log" "$work/captured"
        runtimes_conf+="test-${spec%%=*} = [\"$work/rt-${spec%%=*}\"]"$'\n'
    done
    cat >"$work/conf/containers.conf" <<CONF
[containers]
cgroupns = "private"
netns = "none"
[network]
network_config_dir = "$work/networks"
[engine]
events_logger = "file"
events_logfile_path = "$work/events.log"
tmp_dir = "$work/tmp"
[engine.runtimes]
$runtimes_conf
CONF
    export CONTAINERS_CONF="$work/conf/containers.conf"
    export TMPDIR="$work/tmp"
    write_conmon_wrapper "$work/conmon"
    read -ra ulim <<<"$(host_ulimits | tr '\n' ' ')"
    wrapper=
    pod() {
        timeout "$STEP_TIMEOUT" podman --root "$work/storage" --runroot "$work/run" \
            --tmpdir "$work/tmp" --storage-driver overlay --cgroup-manager=cgroupfs \
            --conmon "$work/conmon" --runtime "$wrapper" "$@"
    }
    # shellcheck disable=SC2317  # called through the trap
    inner_cleanup() {
        trap '' TERM INT # finish cleaning up even if stopped again
        pod rm -af -t 0 >/dev/null 2>&1 || true
        pod rmi -af >/dev/null 2>&1 || true
        umount_under "$work"
    }
    trap inner_cleanup EXIT
    set +e

    # The images, once, shared by every runtime.
    T_RT=images
    wrapper=/usr/sbin/runc
    make_busybox_rootfs "$work/rootfs"
    tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
    make_app_rootfs "$work/app-rootfs"
    tar -C "$work/app-rootfs" --numeric-owner -cf "$work/app.tar" .
    if pod import -q "$work/rootfs.tar" "$BUSYBOX" >/dev/null 2>"$work/err" &&
        pod import -q --change "USER=$APP_USER" --change "WORKDIR=/home/$APP_USER" \
            --change "ENV=GREETING=hello" --change 'ENTRYPOINT=["/entrypoint.sh"]' \
            "$work/app.tar" "$APP" >/dev/null 2>>"$work/err"; then
        t_pass "podman import: $BUSYBOX and $APP (user $APP_USER, entrypoint script)"
    else
        t_fail "podman import: $(t_err "$work/err")"
        t_summary
        exit 1
    fi

    # Podman's own config.json for `podman run IMAGE CMD` (this file's containers.conf,
    # the host's ulimits, our cgroup parent), as the first runtime's wrapper received
    # it; each runtime below replays it directly (hack/lib/engine.sh).
    T_RT=podman
    wrapper="test-${1%%=*}"
    capture_config "podman-$(pod version -f '{{.Client.Version}}' 2>/dev/null)" \
        pod run --rm --cgroup-parent "$cgparent" "${ulim[@]}" "$BUSYBOX" "${GENERATED_ARGS[@]}"

    # shellcheck source=hack/engines/podman-scenarios.sh
    . hack/engines/podman-scenarios.sh
    for spec in "$@"; do
        T_RT=${spec%%=*}
        wrapper="test-$T_RT"
        failed_before=$T_FAILED
        replay_config podman "$captured" "${spec#*=}"
        podman_scenarios
        t_last_calls "$failed_before" "$work/calls-$T_RT.log"
    done
    t_summary
    exit
fi

# Outer half: the runtimes, the temp dir, the namespaces and cleanup.
BERTH=${BERTH:-${CARGO_TARGET_DIR:-target}/release/berth}
RUNTIMES=${RUNTIMES:-"runc=/usr/sbin/runc berth=$BERTH"}
engine_runtimes
engine_need "hack/install-deps.sh" podman conmon unshare findmnt ip

work=$(mktemp -d /tmp/berth-podman.XXXXXX)
cgparent="/berth-engines-podman-$$"
# shellcheck disable=SC2317  # called through the trap
outer_cleanup() {
    trap '' TERM INT # finish cleaning up even if stopped again
    # Stopped from outside (a stage timeout): the inner half stops its engine first.
    stop_pid "$inner_pid" 20
    umount_under "$work"
    kill_cgroup "$cgparent"
    rm -rf "$work"
}
inner_pid=
trap outer_cleanup EXIT

engine_run_inner podman $((STEP_TIMEOUT * 10)) -m -n --propagation private
