#!/usr/bin/env bash
# A smoke round of hack/bench-containerd: one container life through containerd per
# lane (runc shim + runc, + crun, + berth, and berth's native shim; `ctr run --rm` and
# a CRI pod life each). It asserts that every life exited 0 and that nothing was left
# behind (tasks, containers, pods, shims, cgroups, mounts); the times it prints are
# not checked (one round on a shared machine says nothing about speed: for figures,
# run `make bench-containerd`).
#
#   hack/engines/containerd-bench.sh
#
# Output: the bench's tables, PASS/FAIL lines, then "N passed, N failed".
set -uo pipefail

cd "$(dirname "$0")/../.." || exit 1
target=${CARGO_TARGET_DIR:-target}
export BERTH=${BERTH:-$target/release/berth}
export SHIM=${SHIM:-$(dirname "$BERTH")/containerd-shim-berth-v2}
export BERTH_CRI=${BERTH_CRI:-$(dirname "$BERTH")/berth-cri}
exec hack/bench-containerd --smoke
