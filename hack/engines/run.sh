#!/usr/bin/env bash
# Every engine test, one after the other, each bounded in time: Podman, rootless
# Podman (as a test user of its own: hack/engines/podman-rootless.sh), containerd,
# containerd with berth's native shim (containerd-shim-berth-v2),
# containerd's CRI plugin (Kubernetes' node path), a smoke round of
# hack/bench-containerd (one life per lane, no timing asserted) and Docker (skipped with the reason
# if dockerd is not installed), each against runc and berth. Prints each script's
# output, one summary line per engine, and the total.
#
#   hack/engines/run.sh                       # BERTH defaults to target/release/berth
#   ENGINES="podman containerd" hack/engines/run.sh
#   ENGINES=cri hack/engines/run.sh            # the CRI stage alone
#
# Exit status 0 only if every engine script passed.
set -uo pipefail

cd "$(dirname "$0")/../.." || exit 1
ENGINES=${ENGINES:-podman podman-rootless containerd containerd-shim cri containerd-bench docker}
ENGINE_TIMEOUT=${ENGINE_TIMEOUT:-300}

passed=0
failed=0
summary=()
fails=()
for e in $ENGINES; do
    script=hack/engines/$e.sh
    [ -x "$script" ] || { echo "FAIL: no engine script $script"; failed=$((failed + 1)); continue; }
    start=$(date +%s)
    out=$(mktemp /tmp/berth-engine-out.XXXXXX)
    timeout --kill-after=30 "$ENGINE_TIMEOUT" "$script" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    last=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
    # Repeated at the end, where a CI log's tail shows them.
    while IFS= read -r line; do fails+=("$e: ${line:0:300}"); done < <(grep -E '^FAIL' "$out" | head -n 20)
    rm -f "$out"
    p=$(echo "$last" | awk '{print $1}')
    f=$(echo "$last" | awk '{print $3}')
    if [ -z "$last" ]; then
        p=0
        f=1
        last="no summary (exit $rc)"
    elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        last="$last; exit $rc"
    fi
    [ "$rc" -eq 124 ] && last="$last; timed out after ${ENGINE_TIMEOUT}s"
    passed=$((passed + p))
    failed=$((failed + f))
    summary+=("$(printf '%-16s %s (%ss)' "$e" "$last" $(($(date +%s) - start)))")
done
# A runtime bug that chowns or mounts over the host's /dev/null breaks every process.
devnull=$(stat -c '%U:%G %a %t,%T' /dev/null)
if [ "$devnull" != "root:root 666 1,3" ]; then
    summary+=("FAIL: /dev/null is now '$devnull' (want root:root 666, char 1,3)")
    failed=$((failed + 1))
fi
echo "--- engines ---"
[ "${#fails[@]}" -gt 0 ] && printf '%s\n' "${fails[@]}"
printf '%s\n' "${summary[@]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
