#!/bin/bash
# hack/vm-lane/systemd-lane.sh: the systemd cgroup driver checks, in ONE throw-away
# guest booted with systemd as PID 1 (cgroup v2 only, D-Bus), run by run-tests.sh
# after the v2 guest (`make vm-lane`) or by hand:
#
#   systemd-lane.sh SHARE BERTH RESULTS
#
# SHARE is a host folder the guest sees at the same path (run-tests.sh's share; made
# here under $SHARE/systemd); BERTH the runtime to copy in; RESULTS the file the
# PASS/FAIL lines are appended to (guest failures included). Exits 0 when the guest ran
# systemd-tests.sh to its end, 1 otherwise (the failures are in RESULTS either way).
#
# Environment: VMLANE_SYSTEMD_MODE (host-systemd, the default: the host's own /
# and systemd 252 under a tmpfs overlay, nothing to build or download; or systemd:
# the debootstrapped image of `prepare.sh --systemd`), VMLANE_TIMEOUT (the guest's
# bound, default 600 s).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
workspace=$(cd "$here/../.." && pwd)
[ $# -eq 3 ] || { sed -n '2,16p' "$0" >&2; exit 2; }
share=$1 berth=$2 results=$3
mode=${VMLANE_SYSTEMD_MODE:-host-systemd}
# The guest's check names are systemd/*; a failure of the lane itself is systemd/guest.
lane_fail() { echo "FAIL: systemd/guest: $*"; echo "FAIL systemd/guest: $*" >>"$results"; exit 1; }

# prepare.sh is idempotent (a no-op when run-tests.sh just ran it). host-systemd: Debian
# 12 installs systemd and dbus by default, prepare.sh installs them if missing; PID 1 of
# this machine stays as it is (only the guest boots that systemd).
case $mode in
host-systemd | systemd) "$here/prepare.sh" "--$mode" >&2 || lane_fail "prepare.sh --$mode failed" ;;
*) lane_fail "bad VMLANE_SYSTEMD_MODE=$mode (host-systemd or systemd)" ;;
esac

# The bundle lives in the share: the systemd image sees nothing else of the host, and
# in host-systemd the guest's /tmp is its own.
work=$share/systemd
rm -rf "$work"
mkdir -p "$work/bin" "$work/bundle" || lane_fail "mkdir $work"
cp "$berth" "$work/bin/berth" && cp "$here/systemd-tests.sh" "$work/bin/systemd-tests.sh" ||
    lane_fail "copy berth and systemd-tests.sh into $work/bin"
# The native shim and hack/lib for systemd-tests.sh's containerd check (run-tests.sh
# put them in the share; by hand, the workspace's).
shim=$share/bin/containerd-shim-berth-v2
[ -x "$shim" ] || shim=${CARGO_TARGET_DIR:-$workspace/target}/release/containerd-shim-berth-v2
shim_env=()
if [ -x "$shim" ] && mkdir -p "$work/lib" && cp "$shim" "$work/bin/containerd-shim-berth-v2" &&
    cp "$workspace"/hack/lib/*.sh "$work/lib/"; then
    shim_env=(-e SHIM="$work/bin/containerd-shim-berth-v2" -e LIBDIR="$work/lib")
else
    echo "# no containerd-shim-berth-v2 at $shim: the guest skips the native shim's check"
fi
# shellcheck source=../lib/bundle.sh
. "$workspace/hack/lib/bundle.sh"
make_busybox_rootfs "$work/bundle/rootfs" || lane_fail "a busybox rootfs in $work/bundle/rootfs"
(cd "$work/bundle" && timeout 30 "$work/bin/berth" spec) || lane_fail "berth spec in $work/bundle"
jq '.process.terminal = false | .process.args = ["sleep", "30"]
    | .linux.cgroupsPath = "system.slice:berth:vm1"
    | .linux.resources.memory.limit = 67108864 | .linux.resources.pids.limit = 50' \
    "$work/bundle/config.json" >"$work/bundle/config.json.new" &&
    mv "$work/bundle/config.json.new" "$work/bundle/config.json" ||
    lane_fail "jq: the bundle's config.json"

echo "# booting the systemd guest (--mode $mode)"
"$here/vm-run.sh" --mode "$mode" --timeout "${VMLANE_TIMEOUT:-600}" \
    -e BERTH="$work/bin/berth" -e BUNDLE="$work/bundle" -e RESULTS="$results" ${shim_env[@]+"${shim_env[@]}"} \
    "$share" bash "$work/bin/systemd-tests.sh"
rc=$?
case $rc in
0) ;;
124) lane_fail "timed out after ${VMLANE_TIMEOUT:-600}s" ;;
125) lane_fail "never reported an exit status (boot failure)" ;;
*) lane_fail "systemd-tests.sh exited $rc" ;;
esac
