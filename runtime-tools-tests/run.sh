#!/bin/sh
# Builds the conformance driver and the static in-container checker, then runs the
# driver against a runtime: runtime-tools-tests/run.sh --runtime target/release/berth
set -eu
here=$(cd "$(dirname "$0")" && pwd)
workspace=$(cd "$here/.." && pwd)
target=${CARGO_TARGET_DIR:-$workspace/target}
export CARGO_TARGET_DIR="$target"
cd "$workspace"
cargo build -q -j 2 --release -p runtime-tools-tests --bin berth-conformance
# With --target, RUSTFLAGS reach only the target artifacts, not build scripts.
RUSTFLAGS="-C target-feature=+crt-static" cargo build -q -j 2 --release \
    --target x86_64-unknown-linux-gnu -p runtime-tools-tests --bin runtimetest
exec "$target/release/berth-conformance" \
    --checker "$target/x86_64-unknown-linux-gnu/release/runtimetest" "$@"
