#!/usr/bin/env bash
# Run one busybox container with berth (or any runc-compatible runtime) and show
# what it sees: its hostname, its pid (1) and its uid (0).
#
#   hack/demo.sh                      # RUNTIME defaults to target/release/berth
#   RUNTIME=/usr/sbin/runc hack/demo.sh
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=hack/lib/bundle.sh
. hack/lib/bundle.sh

RUNTIME=${RUNTIME:-${CARGO_TARGET_DIR:-target}/release/berth}
rt=$(resolve_runtime "$RUNTIME")

work=$(mktemp -d /tmp/berth-demo.XXXXXX)
id=demo-$$
state="$work/state"
bundle="$work/bundle"

cleanup() {
    # Only if the run did not finish on its own (interrupted, failed create).
    if [ -d "$state/$id" ]; then
        timeout 10 "$rt" --root "$state" delete --force "$id" >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$state"
make_busybox_bundle "$bundle" "$rt"

# shellcheck disable=SC2016  # $(...) and $$ are for the container's shell
script='echo "hostname: $(hostname)"; echo "pid: $$"; echo "uid: $(id -u)"'
jq --arg s "$script" '
    .process.terminal = false
    | .process.args = ["sh", "-c", $s]
    | .hostname = "berth-demo"
' "$bundle/config.json" >"$bundle/config.json.new"
mv "$bundle/config.json.new" "$bundle/config.json"

echo "\$ $(basename "$rt") --root $state run --bundle $bundle $id"
rc=0
timeout 60 "$rt" --root "$state" run --bundle "$bundle" "$id" || rc=$?
if [ "$rc" -ne 0 ]; then
    echo "demo: '$rt run' exited with status $rc" >&2
    exit "$rc"
fi
echo "demo: ok ($rt)"
