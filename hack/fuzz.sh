#!/usr/bin/env bash
# hack/fuzz.sh [TARGET...]: builds the fuzz targets of fuzz/ (cargo-fuzz, nightly) and
# runs each (all by default) for FUZZ_SECONDS seconds, from the committed seeds in
# fuzz/seeds/TARGET plus seeds made from the repository's configs (the engines'
# captured config.json files, runc's and berth's `spec`). A crash, a panic or a
# timeout of one input fails the run, with the input saved and its path printed.
#
# Variables: FUZZ_SECONDS (default 60 a target), FUZZ_SANITIZER (address, the
# default, or none: faster to build and run, still catches every panic), BERTH (the
# binary whose `spec` is a seed; default target/release/berth, skipped if absent),
# CARGO_TARGET_DIR (the build and the growing corpus go to $CARGO_TARGET_DIR/fuzz).
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$PWD
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_SANITIZER=${FUZZ_SANITIZER:-address}
target_root=$(realpath -m "${CARGO_TARGET_DIR:-target}")
work=$target_root/fuzz
BERTH=${BERTH:-$target_root/release/berth}

die() {
    echo "fuzz: error: $*" >&2
    exit 1
}

cargo +nightly --version >/dev/null 2>&1 || die "no nightly toolchain (rustup toolchain install nightly)"
cargo fuzz --version >/dev/null 2>&1 || die "cargo-fuzz is missing (hack/install-deps.sh --fuzz)"
command -v jq >/dev/null || die "jq is missing (hack/install-deps.sh)"

cd fuzz
mapfile -t all < <(cargo fuzz list)
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=("${all[@]}")

start=$(date +%s)
echo "fuzz: building ${#all[@]} targets (sanitizer $FUZZ_SANITIZER)"
timeout 900 cargo +nightly fuzz build --sanitizer "$FUZZ_SANITIZER" --target-dir "$work/build"
echo "fuzz: built in $(($(date +%s) - start)) s"
bin=$work/build/x86_64-unknown-linux-gnu/release

# --- seeds made from the repository's own configs --------------------------
gen=$work/generated-seeds
rm -rf "$gen"
for t in "${all[@]}"; do mkdir -p "$gen/$t"; done
shopt -s nullglob
configs=("$repo"/runtime-tools-tests/fixtures/*.json "$repo"/crates/berth/tests/fixtures/*.json)
shopt -u nullglob
if [ -x "$BERTH" ]; then
    spec_dir=$(mktemp -d)
    (cd "$spec_dir" && timeout 10 "$BERTH" spec) && cp "$spec_dir/config.json" "$gen/config/berth-spec.json"
    rm -rf "$spec_dir"
    [ -f "$gen/config/berth-spec.json" ] && configs+=("$gen/config/berth-spec.json")
fi
for c in "${configs[@]}"; do
    n=$(basename "$c" .json)
    [ "$c" = "$gen/config/$n.json" ] || cp "$c" "$gen/config/$n.json"
    jq -e '.process // empty' "$c" >"$gen/exec_process/$n.json" || rm -f "$gen/exec_process/$n.json"
    jq -e '.linux.resources // empty' "$c" >"$gen/update_resources/$n.json" ||
        rm -f "$gen/update_resources/$n.json"
    jq -e '.linux.seccomp // empty' "$c" >"$gen/seccomp/$n.json" || rm -f "$gen/seccomp/$n.json"
    jq -e '.linux // empty' "$c" >"$gen/cgroup_resources/$n.json" ||
        rm -f "$gen/cgroup_resources/$n.json"
    # One mount a file, as mount_options reads it: type, source, destination, options.
    i=0
    while IFS= read -r line; do
        jq -j . <<<"$line" >"$gen/mount_options/$n-$i"
        i=$((i + 1))
    done < <(jq -c '.mounts[]? | [(.type // ""), (.source // ""), .destination,
        ((.options // []) | join(","))] | join("\n")' "$c")
done

# --- run --------------------------------------------------------------------
failed=()
for t in "${targets[@]}"; do
    [ -x "$bin/$t" ] || die "no fuzz target $t (targets: ${all[*]})"
    corpus=$work/corpus/$t
    artifacts=$work/artifacts/$t
    mkdir -p "$corpus" "$artifacts"
    seeds=("$repo/fuzz/seeds/$t" "$gen/$t")
    [ -d "${seeds[0]}" ] || seeds=("$gen/$t")
    log=$work/$t.log
    echo "fuzz: $t for ${FUZZ_SECONDS} s"
    # -timeout: one input taking 10 s is a hang; the outer timeout bounds the run.
    if timeout --kill-after=10 $((FUZZ_SECONDS + 120)) "$bin/$t" "$corpus" "${seeds[@]}" \
        -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
        echo "fuzz: $t ok: ${runs:-?} runs, ${cov:-cov: ?}, corpus $(find "$corpus" -type f | wc -l) files"
    else
        tail -40 "$log" >&2
        echo "fuzz: $t FAILED: input(s) in $artifacts: $(ls "$artifacts" | tr '\n' ' ')" >&2
        failed+=("$t")
    fi
done
echo "fuzz: ${#targets[@]} targets in $(($(date +%s) - start)) s, ${#failed[@]} failed"
[ "${#failed[@]}" -eq 0 ] || die "failed: ${failed[*]} (reproduce: $bin/TARGET INPUT)"
