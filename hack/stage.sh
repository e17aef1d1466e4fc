#!/usr/bin/env bash
# hack/stage.sh NAME SECONDS COMMAND...: one stage of `make test`, bounded in time.
# Prints "==> NAME", the command's own output, then "PASS: NAME (Ns)" or
# "FAIL: NAME (...)". Results are appended to $STAGE_FILE (if set); on a failure the
# stage tally is printed as the closing line, since make stops right after.
set -uo pipefail

name=$1
limit=$2
shift 2

tally() {
    local p f
    p=$(grep -c '^PASS' "$STAGE_FILE" 2>/dev/null) || p=0
    f=$(grep -c '^FAIL' "$STAGE_FILE" 2>/dev/null) || f=0
    echo "stages: $p passed, $f failed"
}

echo "==> $name"
start=$(date +%s)
# stdin is /dev/null: a caller with fd 0 closed (as CI may be) would otherwise hand
# fd 0 to the first file a daemon under test opens (containerd's tty tests hung so).
timeout --kill-after=30 "$limit" "$@" </dev/null
rc=$?
secs=$(($(date +%s) - start))
if [ "$rc" -eq 0 ]; then
    echo "PASS: $name (${secs}s)"
    [ -n "${STAGE_FILE:-}" ] && echo "PASS $name" >>"$STAGE_FILE"
    exit 0
fi
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "FAIL: $name (timed out after ${limit}s)"
else
    echo "FAIL: $name (exit $rc after ${secs}s)"
fi
if [ -n "${STAGE_FILE:-}" ]; then
    echo "FAIL $name" >>"$STAGE_FILE"
    tally
fi
exit 1
