#!/bin/bash
# hack/vm-lane/run-tests.sh: the cgroup v2 checks (and CRIU's checkpoint/restore),
# run in a throw-away qemu guest whose only cgroup hierarchy is cgroup2 with every
# controller, then SELinux's checks in a guest booted with security=selinux
# (selinux-lane.sh), then the systemd driver's checks in a guest with systemd as PID 1
# (systemd-lane.sh) (`make vm-lane`). Builds what is missing (cargo no-ops when it is
# up to date), prepares the guest kernel cache (idempotent), boots the first guest with
# the host's / as its root and runs guest-tests.sh there. Prints PASS/FAIL per check and `N passed, N failed`; exits 1
# on any failure. See docs/testing.md, "The VM lane".
#
# Environment: CARGO_TARGET_DIR (default <workspace>/target), BERTH (the runtime under
# test, default <target>/release/berth; copied into the guest's share), VMLANE_TIMEOUT (the
# guest's bound in seconds, default 900: the guest takes about 6 minutes on an idle 2-core host), VMLANE_CACHE (see prepare.sh), VMLANE_SELINUX (0: skip the SELinux guest).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
workspace=$(cd "$here/../.." && pwd)
target=${CARGO_TARGET_DIR:-$workspace/target}
export CARGO_TARGET_DIR=$target
berth=${BERTH:-$target/release/berth}
cd "$workspace" || exit 1

step() { echo "# $*"; }
die() { echo "FAIL: $*"; echo "0 passed, 1 failed"; exit 1; }

# --- host side: the binaries the guest runs (the earlier stages built most of them).
t0=$(date +%s)
step "building berth, the conformance driver and the berth-cgroups v2 test"
# berth as it ships: static-pie (hack/build-release.sh says why).
hack/build-release.sh -q -j 2 -p berth || die "build: hack/build-release.sh -p berth"
cargo build -q -j 2 --release -p containerd-shim-berth ||
    die "build: cargo build --release -p containerd-shim-berth"
cargo build -q -j 2 --release -p runtime-tools-tests --bin berth-conformance ||
    die "build: the conformance driver"
# The checker is static, as runtime-tools-tests/run.sh builds it.
RUSTFLAGS="-C target-feature=+crt-static" cargo build -q -j 2 --release \
    --target x86_64-unknown-linux-gnu -p runtime-tools-tests --bin runtimetest ||
    die "build: the conformance checker"
v2_test=$(cargo test -q -j 2 -p berth-cgroups --test v2_real --no-run --message-format=json |
    jq -r 'select(.reason == "compiler-artifact" and .target.name == "v2_real" and .executable != null) | .executable' |
    tail -n 1)
[ -x "$berth" ] || die "no runtime at $berth"
[ -x "$v2_test" ] || die "build: no executable for the berth-cgroups v2_real test"
step "v2 test binary: $v2_test"

step "preparing the guest kernel and initramfs"
"$here/prepare.sh" || die "prepare: $here/prepare.sh failed"
t1=$(date +%s)

# --- the guest: the shared folder carries the results back.
share=$(mktemp -d /tmp/berth-vmlane.XXXXXX) || die "mktemp"
trap 'rm -rf "$share"' EXIT
results=$share/results
: >"$results"
# shellcheck source=../lib/bundle.sh
. "$workspace/hack/lib/bundle.sh"
make_busybox_rootfs "$share/rootfs" || die "a busybox rootfs in $share/rootfs"
# The guest sees the host's / read-only but has a /tmp of its own: a checkout or a
# target dir under /tmp (CI's clone may be there) is invisible to it. Everything it
# runs is copied into the shared folder, which it sees at the same path.
mkdir -p "$share/bin" || die "mkdir $share/bin"
cp "$berth" "$share/bin/berth" &&
    cp "$v2_test" "$share/bin/v2_real" &&
    cp "$target/release/berth-conformance" "$share/bin/berth-conformance" &&
    cp "$target/x86_64-unknown-linux-gnu/release/runtimetest" "$share/bin/runtimetest" &&
    cp "$here/guest-tests.sh" "$here/apparmor-tests.sh" "$share/bin/" &&
    cp "$target/release/containerd-shim-berth-v2" "$share/bin/containerd-shim-berth-v2" &&
    mkdir -p "$share/hack/engines" "$share/hack/lib" &&
    cp "$workspace/hack/engines/containerd-shim.sh" "$share/hack/engines/" &&
    cp "$workspace"/hack/lib/*.sh "$share/hack/lib/" &&
    cp "${VMLANE_CACHE:-/var/cache/vmlane}/apparmor/apparmor_parser" "$share/bin/apparmor_parser" ||
    die "copy the binaries for the guest into $share/bin"
step "booting the guest (qemu $(qemu-system-x86_64 --version | head -n 1 | awk '{print $4}'))"
# AppArmor is the guest's LSM (Debian's kernel has it built in): apparmor-tests.sh,
# run by guest-tests.sh, checks that profiles are enforced.
"$here/vm-run.sh" --mode host --timeout "${VMLANE_TIMEOUT:-900}" \
    --append "apparmor=1 security=apparmor" -e APPARMOR_PARSER="$share/bin/apparmor_parser" \
    -e BERTH="$share/bin/berth" -e V2_TEST="$share/bin/v2_real" \
    -e CONFORMANCE="$share/bin/berth-conformance" \
    -e CHECKER="$share/bin/runtimetest" \
    -e SHIM="$share/bin/containerd-shim-berth-v2" \
    -e SHIM_SCRIPT="$share/hack/engines/containerd-shim.sh" \
    -e ROOTFS="$share/rootfs" -e RESULTS="$results" \
    "$share" bash "$share/bin/guest-tests.sh"
rc=$?
t2=$(date +%s)
case $rc in
0) ;;
124) echo "FAIL: guest: timed out after ${VMLANE_TIMEOUT:-900}s"; echo "FAIL guest timeout" >>"$results" ;;
125) echo "FAIL: guest: never reported an exit status (boot failure)"; echo "FAIL guest boot" >>"$results" ;;
*) echo "FAIL: guest: guest-tests.sh exited $rc"; echo "FAIL guest exit $rc" >>"$results" ;;
esac

# --- SELinux enforced: a guest booted with security=selinux and the lane's own policy
# (selinux-lane.sh). Its selinux-* PASS/FAIL lines join $results. VMLANE_SELINUX=0 skips it.
if [ "${VMLANE_SELINUX:-1}" != 0 ]; then
    t_se=$(date +%s)
    "$here/selinux-lane.sh" "$share" "$berth" "$results"
    echo "# selinux guest $(($(date +%s) - t_se))s"
fi

# --- the systemd cgroup driver: a third guest with systemd as PID 1 (systemd-lane.sh;
# VMLANE_SYSTEMD_MODE picks the guest). Its systemd/* PASS/FAIL lines join $results.
t_sd=$(date +%s)
"$here/systemd-lane.sh" "$share" "$berth" "$results"
t2=$(date +%s)
echo "# systemd guest $((t2 - t_sd))s"
# --- end of the systemd block

p=$(grep -c '^PASS' "$results")
f=$(grep -c '^FAIL' "$results")
echo "# build+prepare $((t1 - t0))s, guest $((t2 - t1))s"
if [ "$f" -gt 0 ]; then
    echo "# failed:"
    grep '^FAIL' "$results" | sed 's/^/#   /'
fi
echo "$p passed, $f failed"
[ "$f" -eq 0 ] && [ "$p" -gt 0 ]
