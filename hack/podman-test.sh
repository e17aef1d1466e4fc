#!/usr/bin/env bash
# Podman smoke test: podman drives $RUNTIME (default target/release/berth) through
# conmon, as an engine would. Everything runs in a private mount namespace with a
# private tmpfs over /sys/fs/cgroup (the v1 hierarchies bound back into it), so what
# podman creates there never reaches the host; podman's storage, run root, runtime
# state and cgroups are private to this run and removed at the end, on failure too.
#
#   hack/podman-test.sh
#   RUNTIME=/usr/sbin/runc hack/podman-test.sh
#
# Output: PASS/FAIL lines, then "N passed, N failed". Exit status 0 only if all passed.
# This is the quick smoke test of one runtime; hack/engines/podman.sh is the full
# Podman suite (and hack/engines/run.sh every engine), each against runc and berth.
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=hack/lib/bundle.sh
. hack/lib/bundle.sh
# shellcheck source=hack/lib/cgroupfs.sh
. hack/lib/cgroupfs.sh
# shellcheck source=hack/lib/engine.sh
. hack/lib/engine.sh

IMAGE=localhost/berth-test/busybox

STEP_TIMEOUT=${STEP_TIMEOUT:-120}

# ---------------------------------------------------------------------------
# Inner half: runs inside `unshare -m`, does the mounts and the tests.
# ---------------------------------------------------------------------------
if [ "${1:-}" = --inner ]; then
    work=$2
    rt=$3
    cgparent=$4
    passed=0
    failed=0
    pass() {
        echo "PASS: $*"
        passed=$((passed + 1))
    }
    fail() {
        echo "FAIL: $*"
        failed=$((failed + 1))
    }

    # podman mkdirs hugetlb/net_cls/... under /sys/fs/cgroup: keep them in here.
    mkdir -p "$work/cgsave"
    if ! private_cgroupfs "$work/cgsave"; then
        echo "FAIL: private /sys/fs/cgroup setup in a mount namespace"
        echo "0 passed, 1 failed"
        exit 1
    fi

    mkdir -p "$work/runtime-root" "$work/tmp" "$work/conf" "$work/networks"
    wrapper="$work/runtime-wrapper"
    write_runtime_wrapper "$wrapper" "$rt" "$work/runtime-root" "$work/runtime-calls.log"
    write_conmon_wrapper "$work/conmon"

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
CONF
    export CONTAINERS_CONF="$work/conf/containers.conf"
    export TMPDIR="$work/tmp"

    # Podman's default nofile/nproc need CAP_SYS_RESOURCE: grant the current limits.
    read -ra ulim <<<"$(host_ulimits | tr '\n' ' ')"
    pod() {
        timeout "$STEP_TIMEOUT" podman --root "$work/storage" --runroot "$work/run" \
            --tmpdir "$work/tmp" --storage-driver overlay --cgroup-manager=cgroupfs \
            --conmon "$work/conmon" --runtime "$wrapper" "$@"
    }
    # shellcheck disable=SC2317  # called through the trap
    inner_cleanup() {
        trap '' TERM INT # finish cleaning up even if stopped again
        # Not `podman system reset`: it also removes networks, which live outside our
        # private storage; rm -rf of the work dir removes the rest.
        pod rm -af -t 0 >/dev/null 2>&1 || true
        pod rmi -af >/dev/null 2>&1 || true
        # Whatever podman left mounted under the work dir (overlay layers, shm).
        umount_under "$work"
    }
    trap inner_cleanup EXIT

    # 1. an image from a busybox rootfs
    make_busybox_rootfs "$work/rootfs"
    tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
    if pod import -q "$work/rootfs.tar" "$IMAGE" >"$work/import.out" 2>&1; then
        pass "podman import of a busybox rootfs as $IMAGE"
    else
        fail "podman import: $(tail -n 5 "$work/import.out")"
        echo "$passed passed, $failed failed"
        exit 1
    fi

    run_flags=(--rm --network none --cgroup-parent "$cgparent" "${ulim[@]}")

    # 2. output reaches podman
    out=$(pod run "${run_flags[@]}" "$IMAGE" echo hello-from-berth 2>"$work/run.err") && rc=0 || rc=$?
    if [ "$rc" -eq 0 ] && [ "$out" = hello-from-berth ]; then
        pass "podman run echo: output 'hello-from-berth'"
    else
        fail "podman run echo: exit $rc, output '$out', stderr: $(tail -n 5 "$work/run.err" | tr -d "\0")"
    fi

    # 3. the exit code propagates
    pod run "${run_flags[@]}" "$IMAGE" sh -c 'exit 3' >/dev/null 2>"$work/exit.err" && rc=0 || rc=$?
    if [ "$rc" -eq 3 ]; then
        pass "podman run sh -c 'exit 3': exit code 3"
    else
        fail "podman run sh -c 'exit 3': exit code $rc, stderr: $(tail -n 5 "$work/exit.err" | tr -d "\0")"
    fi

    # 4. the container sees its own pid namespace and hostname
    # shellcheck disable=SC2016  # $$ is the container's shell's
    out=$(pod run "${run_flags[@]}" --hostname berth-podman "$IMAGE" sh -c 'echo $$ $(hostname)' 2>"$work/ns.err") && rc=0 || rc=$?
    if [ "$rc" -eq 0 ] && [ "$out" = "1 berth-podman" ]; then
        pass "podman run: pid 1 and hostname berth-podman inside"
    else
        fail "podman run pid/hostname: exit $rc, output '$out', stderr: $(tail -n 5 "$work/ns.err" | tr -d "\0")"
    fi

    # 5. --rm leaves no container behind
    left=$(pod ps -aq 2>/dev/null | wc -l)
    if [ "$left" -eq 0 ]; then
        pass "podman run --rm: no container left"
    else
        fail "podman run --rm: $left container(s) left"
    fi

    if [ "$failed" -ne 0 ] && [ -s "$work/runtime-calls.log" ]; then
        echo "runtime calls (last 10):"
        tail -n 10 "$work/runtime-calls.log" | sed 's/^/  /'
    fi
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ] && exit 0
    exit 1
fi

# ---------------------------------------------------------------------------
# Outer half: temp dir, the namespace, and cleanup that survives any failure.
# ---------------------------------------------------------------------------
RUNTIME=${RUNTIME:-${CARGO_TARGET_DIR:-target}/release/berth}
if ! rt=$(resolve_runtime "$RUNTIME"); then
    echo "FAIL: no runtime to test"
    echo "0 passed, 1 failed"
    exit 1
fi
for tool in podman conmon unshare findmnt; do
    command -v "$tool" >/dev/null || { echo "FAIL: $tool not found (hack/install-deps.sh)"; echo "0 passed, 1 failed"; exit 1; }
done

work=$(mktemp -d /tmp/berth-podman.XXXXXX)
cgparent="/berth-podman-test-$$"
outer_cleanup() {
    trap '' TERM INT # finish cleaning up even if stopped again
    # Mounts live only in the private namespace, which is gone; still, be safe.
    umount_under "$work"
    rm -rf "$work"
    # Processes left in our cgroup parent after a timeout, then the cgroups.
    kill_cgroup "$cgparent"
    return 0
}
trap outer_cleanup EXIT

echo "podman-test: runtime $rt"
timeout $((STEP_TIMEOUT * 6)) unshare -m --propagation private -- bash "$0" --inner "$work" "$rt" "$cgparent"
