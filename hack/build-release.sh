#!/usr/bin/env bash
# hack/build-release.sh [CARGO BUILD ARGS...]: builds the release binaries the way they
# ship. `cargo build --release ARGS` first (the whole workspace when ARGS is empty),
# then the berth binary linked again as a static PIE, in place at
# $CARGO_TARGET_DIR/release/berth (default target/release/berth).
#
# Why static-pie: berth starts four times per container life (create and its
# CVE-2019-5736 re-execution, start, delete), and a dynamic start spends most of its
# user time in ld.so (opening, mapping and relocating libc, libgcc_s, libm and their
# symbol lookups). Linked against glibc's libc.a it is still a PIE with ASLR; measured
# in docs/performance.md (2026-12-07: -0.3 ms and -33 page faults per start, about
# 2.6 ms of CPU and 150 KiB of peak memory per life).
#
# Why a second step: cargo applies RUSTFLAGS and [target] rustflags to proc-macros
# and build scripts when no --target is given, and crt-static cannot build a
# proc-macro; --target would move the binary out of target/release. `cargo rustc`
# gives the flag to the final crate only (std's link attributes follow it: libc.a,
# libgcc_eh). The dynamic and the static binary keep separate artifacts in
# target/release/deps; whichever cargo command ran last put its own at
# target/release/berth, so everything that builds berth for use goes through here
# (the Makefile, hack/vm-lane/run-tests.sh).
#
# BERTH_LINK=dynamic skips the second step (a dynamic berth, as `cargo build` makes).
set -euo pipefail
cd "$(dirname "$0")/.."

# The options that also apply to the relink (`cargo rustc` takes one package, so -p
# and the like are not passed on); --target-dir would put the two links in different
# places: set CARGO_TARGET_DIR instead.
common=()
all=("$@")
while [ $# -gt 0 ]; do
    case $1 in
    --target-dir | --target-dir=*)
        echo "hack/build-release.sh: use CARGO_TARGET_DIR rather than --target-dir" >&2
        exit 2
        ;;
    -j | --jobs)
        common+=("$1" "${2:?$1 needs a value}")
        shift
        ;;
    -j* | --jobs=* | -q | --quiet | -v | --verbose | --locked | --offline | --frozen)
        common+=("$1")
        ;;
    esac
    shift
done
set -- "${all[@]}"

"${CARGO:-cargo}" build --release "$@"
case ${BERTH_LINK:-static-pie} in
dynamic) exit 0 ;;
static-pie) ;;
*)
    echo "hack/build-release.sh: BERTH_LINK must be static-pie or dynamic, not '$BERTH_LINK'" >&2
    exit 2
    ;;
esac
"${CARGO:-cargo}" rustc --release "${common[@]}" -p berth --bin berth -- -C target-feature=+crt-static

target=${CARGO_TARGET_DIR:-target}
# A static PIE: an ELF of type DYN (position independent) without a program
# interpreter (no ld.so).
headers=$(readelf -hlW "$target/release/berth")
if ! grep -q 'Type: *DYN' <<<"$headers" || grep -q 'INTERP' <<<"$headers"; then
    echo "hack/build-release.sh: $target/release/berth is not a static PIE" >&2
    exit 1
fi
