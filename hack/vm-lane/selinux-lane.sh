#!/bin/bash
# hack/vm-lane/selinux-lane.sh: SELinux enforced, checked in ONE throw-away guest booted
# with `security=selinux selinux=1` (AppArmor and SELinux are both exclusive LSMs, so
# not in the v2 guest, which runs AppArmor), run by run-tests.sh after the v2 guest
# (`make vm-lane`) or by hand:
#
#   selinux-lane.sh SHARE BERTH RESULTS
#
# SHARE is a host folder the guest sees at the same path (run-tests.sh's share, with a
# busybox rootfs in SHARE/rootfs; the files are put under SHARE/selinux); BERTH the
# runtime to copy in; RESULTS the file the PASS/FAIL lines are appended to. The lane's
# policy, hack/vm-lane/selinux-policy.cil, is compiled here by the secilc prepare.sh
# extracted; selinux-tests.sh loads it in the guest. Exits 0 when the guest ran
# selinux-tests.sh to its end, 1 otherwise (the failures are in RESULTS either way).
#
# Environment: VMLANE_CACHE (see prepare.sh), VMLANE_TIMEOUT (the guest's bound,
# default 300 s; the guest takes 25-40 s on a 2-core host).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
[ $# -eq 3 ] || { sed -n '2,17p' "$0" >&2; exit 2; }
share=$1 berth=$2 results=$3
cache=${VMLANE_CACHE:-/var/cache/vmlane}
lane_fail() { echo "FAIL: selinux-guest: $*"; echo "FAIL selinux-guest: $*" >>"$results"; exit 1; }

"$here/prepare.sh" >/dev/null 2>&1 || lane_fail "$here/prepare.sh failed"
[ -x "$cache/selinux/secilc" ] || lane_fail "no secilc in $cache/selinux (prepare.sh)"
[ -d "$share/rootfs" ] || lane_fail "no rootfs in $share/rootfs"
dir=$share/selinux
mkdir -p "$dir" || lane_fail "mkdir $dir"
# -c 33: the newest binary policy format bookworm's 6.1 kernel reads.
LD_LIBRARY_PATH=$cache/selinux/lib "$cache/selinux/secilc" -c 33 -o "$dir/policy" \
    -f "$dir/file_contexts" "$here/selinux-policy.cil" >"$dir/secilc.out" 2>&1 ||
    lane_fail "secilc $here/selinux-policy.cil: $(tail -n 3 "$dir/secilc.out" | paste -sd '|')"
cp "$berth" "$dir/berth" || lane_fail "copy $berth into $dir"
cp "$here/selinux-tests.sh" "$dir/" || lane_fail "copy selinux-tests.sh into $dir"

"$here/vm-run.sh" --mode host --timeout "${VMLANE_TIMEOUT:-300}" \
    --append "security=selinux selinux=1" \
    -e BERTH="$dir/berth" -e ROOTFS="$share/rootfs" -e RESULTS="$results" \
    -e SE_POLICY="$dir/policy" \
    "$share" bash "$dir/selinux-tests.sh"
rc=$?
case $rc in
0) ;;
124) lane_fail "timed out after ${VMLANE_TIMEOUT:-300}s" ;;
125) lane_fail "never reported an exit status (boot failure)" ;;
*) lane_fail "selinux-tests.sh exited $rc" ;;
esac
