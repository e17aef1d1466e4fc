#!/usr/bin/env bash
# Kubernetes' node path: containerd 1.6's CRI plugin, driven by our own CRI client
# (berth-cri, hack/cri-client) as the kubelet drives it, with one RuntimeClass handler
# per runtime under test (default: `runc`, then `berth`, each the runc shim v2 with
# BinaryName set to that runtime, then `berth-native`, berth's own shim
# containerd-shim-berth-v2, runtime type io.containerd.berth.v2); so a failure of the
# environment (runc fails too) is told apart from a failure of berth. The test starts its own containerd (own config,
# root, state dir and socket under a temp dir) in private mount and network namespaces
# (private /sys/fs/cgroup tmpfs, /run, an overlay on /var/lib; the pods' bridge network
# lives in that network namespace only), imports hand-built images (busybox, app, and a
# busybox "pause" as the sandbox image) into containerd's k8s.io namespace, and stops
# containerd and the shims it started by pid at the end, on failure too.
#
#   hack/engines/cri.sh
#   RUNTIMES="berth=target/release/berth" hack/engines/cri.sh
#   RUNTIMES="berth=target/release/berth berth-native=target/release/containerd-shim-berth-v2" hack/engines/cri.sh
#   BERTH_CAPTURE_DIR=/tmp/capture hack/engines/cri.sh   # keep the captured config
#   CGROUP_VIEW=v1-only hack/engines/cri.sh   # the cgroup2 mount hidden (legacy hosts)
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
PAUSE=docker.io/berth-test/pause:latest
CNI_BIN=/usr/lib/cni

# is_native_shim PATH: PATH is berth's containerd shim, not a runc-compatible runtime.
is_native_shim() { [ "$(basename "$1")" = containerd-shim-berth-v2 ]; }

if [ "${1:-}" = --inner ]; then
    work=$2
    cgparent=$3
    shift 3
    mkdir -p "$work/cgsave" "$work/cni/net.d" "$work/cni-ipam" "$work/logs" \
        "$work/varlib/upper" "$work/varlib/work"
    # libcni keeps its results cache in /var/lib/cni (compiled into containerd): a
    # private overlay over /var/lib takes those writes, the host's /var/lib untouched.
    # CGROUP_VIEW=v1-only: only the v1 hierarchies in /sys/fs/cgroup, as on a host in
    # legacy mode (containerd then sees cgroups.Legacy, not Hybrid).
    hidden=()
    [ "${CGROUP_VIEW:-}" = v1-only ] && hidden=(unified)
    if ! private_cgroupfs "$work/cgsave" "${hidden[@]}" || ! mount -t tmpfs -o mode=755 berth-run /run ||
        ! mount -t overlay -o "lowerdir=/var/lib,upperdir=$work/varlib/upper,workdir=$work/varlib/work" \
            berth-varlib /var/lib || ! mkdir -p /var/lib/cni || ! ip link set lo up; then
        echo "FAIL: private /sys/fs/cgroup, /run, /var/lib and loopback in new namespaces"
        echo "0 passed, 1 failed"
        exit 1
    fi
    sock="$work/containerd.sock"
    # The pods' network: a bridge in this network namespace, addresses from host-local
    # kept under $work (containerd adds the loopback network itself).
    cat >"$work/cni/net.d/10-berth.conflist" <<CNI
{
  "cniVersion": "0.4.0",
  "name": "berth-cri",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "berth-cni0",
      "isGateway": true,
      "ipMasq": false,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "10.222.0.0/24"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$work/cni-ipam"
      }
    }
  ]
}
CNI
    # One runtime handler per runtime under test; its runc shim runs a wrapper that
    # logs the calls (and, for the first, keeps each create's config.json).
    handlers=""
    first=1
    mkdir -p "$work/bin"
    for spec in "$@"; do
        name=${spec%%=*}
        mkdir -p "$work/runc-root-$name"
        if is_native_shim "${spec#*=}"; then
            # berth's native shim: its own runtime type, found on containerd's PATH;
            # it keeps berth's state under Root/<namespace> (no runtime binary, no
            # wrapper to log calls). The CRI plugin passes only ConfigPath of this
            # table (runtimeoptions.v1.Options) to a runtime that is not runc's: the
            # shim reads Root and SystemdCgroup from that file.
            ln -sf "${spec#*=}" "$work/bin/containerd-shim-berth-v2"
            printf 'Root = "%s"\nSystemdCgroup = false\n' "$work/runc-root-$name" >"$work/shim-$name.toml"
            handlers+="
    [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.$name]
      runtime_type = \"io.containerd.berth.v2\"
      [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.$name.options]
        ConfigPath = \"$work/shim-$name.toml\""
            continue
        fi
        {
            echo '#!/bin/sh'
            echo "echo \"\$*\" >>\"$work/calls-$name.log\""
            [ "$first" = 1 ] && capture_lines "$work/captured"
            echo "exec \"${spec#*=}\" \"\$@\""
        } >"$work/rt-$name"
        chmod +x "$work/rt-$name"
        first=0
        handlers+="
    [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.$name]
      runtime_type = \"io.containerd.runc.v2\"
      [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.$name.options]
        BinaryName = \"$work/rt-$name\"
        Root = \"$work/runc-root-$name\"
        SystemdCgroup = false"
    done
    cat >"$work/config.toml" <<CONF
version = 2
root = "$work/root"
state = "$work/state"
disabled_plugins = [
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[debug]
  level = "info"
[plugins."io.containerd.internal.v1.opt"]
  path = "$work/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  # The sandbox asks for oom_score_adj -998; lowering it needs CAP_SYS_RESOURCE, which
  # this machine's bounding set lacks (ENVIRONMENT.md): clamp at containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN"
    conf_dir = "$work/cni/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "${1%%=*}"$handlers
CONF
    PATH="$work/bin:$PATH" containerd --config "$work/config.toml" >"$work/containerd.log" 2>&1 &
    cpid=$!
    echo "$cpid" >"$work/containerd.pid"
    c() { timeout "$STEP_TIMEOUT" ctr --address "$sock" --namespace k8s.io "$@"; }
    k() { timeout "$STEP_TIMEOUT" "$BERTH_CRI" --address "$sock" --timeout "$STEP_TIMEOUT" "$@"; }
    # shellcheck disable=SC2317  # called through the trap
    inner_cleanup() {
        trap '' TERM INT # finish cleaning up even if stopped again
        local p
        # As the kubelet tears a node down: stop and remove every pod (their
        # containers with them), then stop containerd and the shims by pid.
        for p in $(k pods -q 2>/dev/null); do k stopp "$p" >/dev/null 2>&1; done
        for p in $(k pods -q 2>/dev/null); do k rmp "$p" >/dev/null 2>&1; done
        stop_pid "$cpid" 10
        # The shims this containerd started: their command line names our socket.
        for p in /proc/[0-9]*; do
            grep -qF "$sock" "$p/cmdline" 2>/dev/null && stop_pid "${p#/proc/}" 5
        done
        umount_under "$work"
    }
    trap inner_cleanup EXIT
    T_RT=cri
    for ((i = 0; i < 150; i++)); do
        k version >/dev/null 2>&1 && break
        kill -0 "$cpid" 2>/dev/null || break
        sleep 0.1
    done
    if ! out=$(k version 2>"$work/err"); then
        t_fail "containerd's CRI plugin did not come up: $(t_err "$work/err") $(grep -i 'level=error\|level=fatal' "$work/containerd.log" | tail -n 3 | cut -c1-300 | paste -sd' ')"
        t_summary
        exit 1
    fi
    t_pass "containerd's CRI plugin up with its own config, root, state and socket: $out"

    make_busybox_rootfs "$work/rootfs"
    make_app_rootfs "$work/app-rootfs"
    # The sandbox ("pause") image: busybox sleeping as the pod's first process, which
    # holds the pod's namespaces; StopPodSandbox kills it with SIGKILL.
    if make_oci_archive "$work/rootfs" "$work/busybox.tar" "$BUSYBOX" &&
        make_oci_archive "$work/rootfs" "$work/pause.tar" "$PAUSE" \
            '{"Env":["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],"Entrypoint":["/bin/sleep","inf"]}' &&
        make_oci_archive "$work/app-rootfs" "$work/app.tar" "$APP" \
            "{\"User\":\"$APP_USER\",\"WorkingDir\":\"/home/$APP_USER\",\"Env\":[\"PATH=/usr/sbin:/usr/bin:/sbin:/bin\"],\"Cmd\":[\"sh\"]}" &&
        c image import "$work/busybox.tar" >/dev/null 2>"$work/err" &&
        c image import "$work/pause.tar" >/dev/null 2>>"$work/err" &&
        c image import "$work/app.tar" >/dev/null 2>>"$work/err" &&
        grep -qx "$PAUSE" < <(c image ls -q 2>/dev/null); then
        t_pass "ctr -n k8s.io image import of hand-built OCI archives: $BUSYBOX, $APP, $PAUSE (sandbox image)"
    else
        t_fail "ctr -n k8s.io image import: $(t_err "$work/err")"
        t_summary
        exit 1
    fi

    # shellcheck source=hack/engines/cri-scenarios.sh
    . hack/engines/cri-scenarios.sh

    # containerd's own config.json for a container with the RuntimeDefault seccomp
    # profile, as the first handler's wrapper received it; each runtime replays it.
    T_RT=${1%%=*}
    capture_cri_default "containerd-$(containerd --version | awk '{print $3}' | sed 's/^v//; s/[~+].*//')-cri"

    for spec in "$@"; do
        T_RT=${spec%%=*}
        failed_before=$T_FAILED
        # The replay runs a runtime's command line: the native shim has none.
        is_native_shim "${spec#*=}" || replay_config containerd_cri "$captured" "${spec#*=}"
        cri_scenarios
        if t_last_calls "$failed_before" "$work/calls-$T_RT.log"; then
            echo "[$T_RT] last containerd errors:"
            grep 'level=error' "$work/containerd.log" | tail -n 4 | cut -c1-400 | sed 's/^/  /'
        fi
    done
    t_summary
    exit
fi

# Outer half: the runtimes, the client, the temp dir, the namespaces and cleanup.
BERTH=${BERTH:-${CARGO_TARGET_DIR:-target}/release/berth}
SHIM=${SHIM:-${CARGO_TARGET_DIR:-target}/release/containerd-shim-berth-v2}
RUNTIMES=${RUNTIMES:-"runc=/usr/sbin/runc berth=$BERTH berth-native=$SHIM"}
engine_runtimes
engine_need "apt-get install -y containerd containernetworking-plugins; hack/install-deps.sh" \
    containerd ctr containerd-shim-runc-v2 unshare findmnt ip jq
BERTH_CRI=${BERTH_CRI:-$(dirname "$BERTH")/berth-cri}
if ! BERTH_CRI=$(resolve_runtime "$BERTH_CRI" 2>&1); then
    echo "FAIL: no CRI client: $BERTH_CRI (cargo build --release -p berth-cri)"
    echo "0 passed, 1 failed"
    exit 1
fi
export BERTH_CRI
for p in bridge host-local loopback; do
    [ -x "$CNI_BIN/$p" ] || {
        echo "FAIL: no CNI plugin $CNI_BIN/$p (apt-get install -y containernetworking-plugins)"
        echo "0 passed, 1 failed"
        exit 1
    }
done

work=$(mktemp -d /tmp/berth-cri.XXXXXX)
cgparent="/berth-engines-cri-$$"
# shellcheck disable=SC2317  # called through the trap
outer_cleanup() { engine_outer_cleanup "$work/containerd.pid" 5 "$work/containerd.sock"; }
inner_pid=
trap outer_cleanup EXIT

engine_run_inner cri $((STEP_TIMEOUT * 5)) -m --net --propagation private
