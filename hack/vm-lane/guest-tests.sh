#!/bin/bash
# hack/vm-lane/guest-tests.sh: the checks that need a cgroup2-only host. Runs INSIDE
# the guest (run-tests.sh boots it); prints PASS/FAIL per check and appends the same
# lines to $RESULTS (on the shared host folder) so the host can tally them even if the
# guest dies midway. Every runtime and test call is bounded by `timeout`, the guest as
# a whole by vm-run.sh --timeout.
#
# Environment (set by run-tests.sh): BERTH, V2_TEST (the berth-cgroups
# v2_real test binary), CONFORMANCE + CHECKER (the conformance driver and checker),
# ROOTFS (a busybox rootfs the host made: ~400 applet links cost seconds of forks
# under emulation), RESULTS, APPARMOR_PARSER (for apparmor-tests.sh, next to this
# script, which runs at the end), SHIM + SHIM_SCRIPT (containerd-shim-berth-v2 and
# a copy of hack/engines/containerd-shim.sh with hack/lib beside it).
set -uo pipefail

: "${BERTH:?}" "${V2_TEST:?}" "${CONFORMANCE:?}" "${CHECKER:?}" "${ROOTFS:?}" "${RESULTS:?}"

CG=/sys/fs/cgroup
PARENT=berth-vmlane-$$
WORK=/tmp/berth-vmlane-$$
ROOT=/run/berth-vmlane-$$
OUT=$WORK/out
LIMIT=67108864
mkdir -p "$WORK" "$ROOT"

# Each line says how long its check took (the guest is 15-40x slower than the host).
last=$SECONDS
pass() {
    echo "PASS: $1 ($((SECONDS - last))s)"
    echo "PASS $1" >>"$RESULTS"
    last=$SECONDS
}
fail() {
    echo "FAIL: $1: $2 ($((SECONDS - last))s)"
    echo "FAIL $1: $2" >>"$RESULTS"
    last=$SECONDS
}
skip() { echo "SKIP: $1: $2"; }
berth() { timeout 60 "$BERTH" --root "$ROOT" "$@"; }
# The last lines of the last command's output, for a failure message.
tail_out() { tail -n "${1:-5}" "$OUT" 2>/dev/null | paste -sd '|'; }

# shellcheck disable=SC2317 # invoked by the trap
cleanup() {
    local id
    for id in run life upd dflt hook exec oom pids aainit aanone aaeacces aaexec aamissing; do berth delete --force "vmlane-$id-$$" >/dev/null 2>&1; done
    for d in "$CG/$PARENT"/*/ "$CG/$PARENT"; do rmdir "$d" 2>/dev/null; done
    rm -rf "$WORK" "$ROOT"
}
trap cleanup EXIT

echo "guest: kernel $(uname -r), $(nproc) cpus, cgroup.controllers: $(cat $CG/cgroup.controllers)"

# --- the lane itself: cgroup2 only, with the controllers the checks rely on.
if grep -q ' cgroup ' /proc/mounts || ! grep -q " $CG cgroup2 " /proc/mounts; then
    fail lane-cgroup2-only "the guest is not cgroup2-only: $(grep cgroup /proc/mounts | tr '\n' '|')"
elif ! grep -qw memory $CG/cgroup.subtree_control || ! grep -qw pids $CG/cgroup.subtree_control; then
    fail lane-cgroup2-only "memory/pids not in $CG/cgroup.subtree_control"
else
    pass lane-cgroup2-only
fi

# --- a. berth-cgroups' v2 test (ignored on other hosts, so --ignored here).
timeout 300 "$V2_TEST" --ignored --test-threads=1 --nocapture >"$OUT" 2>&1
rc=$?
cat "$OUT"
if [ "$rc" -ne 0 ]; then
    fail cgroups-v2-real "exit $rc: $(grep -E 'panicked|error|left' "$OUT" | head -n 3 | tr '\n' '|')"
elif grep -q '^skipped:' "$OUT" || ! grep -q 'test result: ok. [1-9]' "$OUT"; then
    fail cgroups-v2-real "the test did not run: $(tail_out 3)"
else
    pass cgroups-v2-real
fi

# --- b. berth on pure v2: a busybox bundle with a memory limit and a cgroup mount.
# bundle ID PROCESS-ARGS-JSON [JQ-FILTER]: $WORK/ID with cgroupsPath /$PARENT/ID and
# memory.limit $LIMIT, sharing the read-only rootfs $WORK/rootfs (copied off the 9p
# share onto the guest's tmpfs); JQ-FILTER edits the config further.
[ -d "$WORK/rootfs" ] || cp -a "$ROOTFS" "$WORK/rootfs"
bundle() {
    local dir=$WORK/$1
    mkdir -p "$dir" && (cd "$dir" && "$BERTH" spec) || return 1
    jq --argjson args "$2" --arg cg "/$PARENT/$1" --argjson lim "$LIMIT" --arg root "$WORK/rootfs" '
        .root = {path: $root, readonly: true}
        | .process.terminal = false | .process.args = $args
        | .linux.cgroupsPath = $cg
        | .linux.resources.memory.limit = $lim
        | .linux.namespaces |= (if any(.[]; .type == "cgroup") then . else . + [{type: "cgroup"}] end)
        | .mounts |= (map(select(.destination != "/sys/fs/cgroup")) + [{destination: "/sys/fs/cgroup",
            type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", "ro"]}])
        | '"${3:-.}" "$dir/config.json" >"$dir/config.new" && mv "$dir/config.new" "$dir/config.json"
}

id=vmlane-run-$$
# shellcheck disable=SC2016 # expanded by the container's shell
if ! bundle run '["sh", "-c", "cat /proc/self/cgroup; echo max=$(cat /sys/fs/cgroup/memory.max)"]'; then
    fail berth-run-v2 "could not build the bundle in $WORK/run"
else
    berth run --bundle "$WORK/run" "$id" >"$OUT" 2>&1
    rc=$?
    sed 's/^/  | /' "$OUT"
    if [ "$rc" -ne 0 ]; then
        fail berth-run-v2 "berth run exited $rc: $(tail_out)"
    elif ! grep -qx '0::/' "$OUT"; then
        fail berth-run-v2 "/proc/self/cgroup is not '0::/' (cgroup namespace): $(tail_out)"
    elif ! grep -qx "max=$LIMIT" "$OUT"; then
        fail berth-run-v2 "memory.max seen inside is not $LIMIT: $(tail_out)"
    elif [ -d "$CG/$PARENT/run" ]; then
        fail berth-run-v2 "cgroup $CG/$PARENT/run left after run"
    else
        pass berth-run-v2
    fi
fi

# create/start/state/kill/delete, judged from the host's cgroupfs.
id=vmlane-life-$$
dir=$CG/$PARENT/life
status() { berth state "$id" 2>/dev/null | jq -r .status; }
lifecycle() {
    bundle life '["sleep", "300"]' || { echo "could not build the bundle in $WORK/life"; return 1; }
    berth create --bundle "$WORK/life" "$id" >"$OUT" 2>&1 || { echo "create: $(tail_out)"; return 1; }
    [ -d "$dir" ] || { echo "no cgroup $dir after create"; return 1; }
    local pid got
    pid=$(berth state "$id" | jq -r .pid)
    grep -qx "$pid" "$dir/cgroup.procs" || { echo "init pid $pid not in $dir/cgroup.procs: $(cat "$dir/cgroup.procs")"; return 1; }
    got=$(cat "$dir/memory.max")
    [ "$got" = "$LIMIT" ] || { echo "$dir/memory.max is $got, want $LIMIT"; return 1; }
    [ "$(status)" = created ] || { echo "state after create is $(status)"; return 1; }
    berth start "$id" >"$OUT" 2>&1 || { echo "start: $(tail_out)"; return 1; }
    [ "$(status)" = running ] || { echo "state after start is $(status)"; return 1; }
    berth pause "$id" >"$OUT" 2>&1 || { echo "pause: $(tail_out)"; return 1; }
    [ "$(status)" = paused ] || { echo "state after pause is $(status)"; return 1; }
    grep -qx 'frozen 1' "$dir/cgroup.events" || { echo "$dir/cgroup.events after pause: $(tr '\n' ' ' <"$dir/cgroup.events")"; return 1; }
    berth resume "$id" >"$OUT" 2>&1 || { echo "resume: $(tail_out)"; return 1; }
    [ "$(status)" = running ] || { echo "state after resume is $(status)"; return 1; }
    grep -qx 'frozen 0' "$dir/cgroup.events" || { echo "$dir/cgroup.events after resume: $(tr '\n' ' ' <"$dir/cgroup.events")"; return 1; }
    berth kill "$id" KILL >"$OUT" 2>&1 || { echo "kill: $(tail_out)"; return 1; }
    local i=0
    while [ "$(status)" != stopped ] && [ $i -lt 100 ]; do sleep 0.2; i=$((i + 1)); done
    [ "$(status)" = stopped ] || { echo "state 20 s after kill is $(status)"; return 1; }
    berth delete "$id" >"$OUT" 2>&1 || { echo "delete: $(tail_out)"; return 1; }
    [ ! -d "$dir" ] || { echo "cgroup $dir left after delete: procs $(tr '\n' ' ' <"$dir/cgroup.procs")"; return 1; }
    berth state "$id" >/dev/null 2>&1 && { echo "state still answers after delete"; return 1; }
    return 0
}
if msg=$(lifecycle 2>&1); then pass berth-lifecycle-v2; else fail berth-lifecycle-v2 "$msg"; fi

# update and events --stats on a running container, judged against the cgroup files.
id=vmlane-upd-$$
updstats() {
    local d=$CG/$PARENT/upd got
    bundle upd '["sleep", "300"]' || { echo "could not build the bundle in $WORK/upd"; return 1; }
    berth run --detach --bundle "$WORK/upd" "$id" >"$OUT" 2>&1 || { echo "run --detach: $(tail_out)"; return 1; }
    berth update --memory 128m --pids-limit 50 "$id" >"$OUT" 2>&1 || { echo "update: $(tail_out)"; return 1; }
    got=$(cat "$d/memory.max" "$d/pids.max" | tr '\n' ' ')
    [ "$got" = "134217728 50 " ] || { echo "after update memory.max, pids.max are $got, want 134217728 50"; return 1; }
    berth events --stats "$id" >"$OUT" 2>&1 || { echo "events --stats: $(tail_out)"; return 1; }
    got=$(jq -r '[.data.pids.current, .data.pids.limit, .data.memory.usage.limit] | map(tostring) | join(" ")' "$OUT")
    [ "$got" = "$(cat "$d/pids.current") 50 134217728" ] ||
        { echo "events --stats pids.current, pids.limit, memory limit are $got, want $(cat "$d/pids.current") 50 134217728: $(head -c 300 "$OUT")"; return 1; }
    berth delete --force "$id" >"$OUT" 2>&1 || { echo "delete --force: $(tail_out)"; return 1; }
    [ ! -d "$d" ] || { echo "cgroup $d left after delete --force"; return 1; }
}
if msg=$(updstats 2>&1); then pass berth-update-stats-v2; else fail berth-update-stats-v2 "$msg"; fi

# No cgroupsPath: berth picks one; it is made, limited, and removed by delete.
id=vmlane-dflt-$$
dflt() {
    local pid rel
    bundle dflt '["sleep", "300"]' 'del(.linux.cgroupsPath)' || { echo "could not build the bundle in $WORK/dflt"; return 1; }
    berth create --bundle "$WORK/dflt" "$id" >"$OUT" 2>&1 || { echo "create: $(tail_out)"; return 1; }
    pid=$(berth state "$id" | jq -r .pid)
    rel=$(sed -n 's/^0:://p' "/proc/$pid/cgroup")
    case $rel in '' | /) echo "the init's cgroup is '$rel'"; return 1 ;; esac
    [ "$(cat "$CG$rel/memory.max")" = "$LIMIT" ] || { echo "$CG$rel/memory.max is not $LIMIT"; return 1; }
    echo "default cgroup: $rel"
    berth delete --force "$id" >"$OUT" 2>&1 || { echo "delete --force: $(tail_out)"; return 1; }
    [ ! -d "$CG$rel" ] || { echo "cgroup $CG$rel left after delete --force"; return 1; }
}
if msg=$(dflt 2>&1); then pass berth-default-path-v2; echo "  | $msg"; else fail berth-default-path-v2 "$msg"; fi

# A create that fails after the cgroup was made (a failing createRuntime hook; a process
# that cannot be executed) leaves no cgroup and no container behind.
for how in hook exec; do
    id=vmlane-$how-$$
    case $how in
    hook) bundle "$how" '["true"]' '.hooks.createRuntime = [{path: "/bin/false"}]' ;;
    exec) bundle "$how" '["/no/such/binary"]' ;;
    esac || { fail "berth-failed-create-$how-v2" "could not build the bundle in $WORK/$how"; continue; }
    berth run --bundle "$WORK/$how" "$id" >"$OUT" 2>&1
    rc=$?
    if [ "$rc" -eq 0 ]; then
        fail "berth-failed-create-$how-v2" "berth run succeeded: $(tail_out)"
    elif [ -d "$CG/$PARENT/$how" ]; then
        fail "berth-failed-create-$how-v2" "cgroup $CG/$PARENT/$how left after the failed run ($(tail_out 2))"
    elif berth state "$id" >/dev/null 2>&1; then
        fail "berth-failed-create-$how-v2" "state still answers after the failed run"
    else
        pass "berth-failed-create-$how-v2"
        echo "  | berth run exited $rc: $(tail_out 1)"
    fi
done

# Limits take effect: a 96 MiB buffer is OOM-killed under the 64 MiB limit (berth run
# exits 128+9), and forks stop at pids.max.
id=vmlane-oom-$$
if ! bundle oom '["dd", "if=/dev/zero", "of=/dev/null", "bs=96M", "count=1"]'; then
    fail berth-oom-v2 "could not build the bundle in $WORK/oom"
else
    berth run --bundle "$WORK/oom" "$id" >"$OUT" 2>&1
    rc=$?
    if [ "$rc" -eq 137 ]; then pass berth-oom-v2; else fail berth-oom-v2 "berth run exited $rc, want 137 (OOM kill): $(tail_out)"; fi
fi
id=vmlane-pids-$$
# shellcheck disable=SC2016 # expanded by the container's shell
if ! bundle pids '["sh", "-c", "i=0; while [ $i -lt 12 ]; do sleep 5 & i=$((i + 1)); done; echo forked $i"]' \
    '.linux.resources.pids.limit = 6'; then
    fail berth-pids-v2 "could not build the bundle in $WORK/pids"
else
    berth run --bundle "$WORK/pids" "$id" >"$OUT" 2>&1
    rc=$?
    if grep -q "can't fork" "$OUT"; then pass berth-pids-v2; else fail berth-pids-v2 "12 forks under pids.max 6 did not fail (exit $rc): $(tail_out)"; fi
fi

# --- c. conformance scenarios; each scenario is one check.
# conformance FILTER [strict]: the scenarios whose name holds FILTER; with strict, a
# skip is a failure (what this guest exists for must run here).
conformance() {
    local filter=$1 strict=${2:-} rc n=0 line name
    last=$SECONDS
    timeout 600 "$CONFORMANCE" --checker "$CHECKER" --runtime "$BERTH" --filter "$filter" --keep-going >"$OUT" 2>&1
    rc=$?
    echo "# conformance driver: $((SECONDS - last))s for the scenarios below"
    while IFS= read -r line; do
        case "$line" in
        "ok "*) pass "conformance/${line#ok }"; n=$((n + 1)) ;;
        "FAIL "*) name=${line#FAIL }; fail "conformance/${name%%:*}" "${name#*: }"; n=$((n + 1)) ;;
        "skip "*)
            name=${line#skip }
            if [ -n "$strict" ]; then
                fail "conformance/${name%%:*}" "skipped in the VM lane, where it must run: ${name#*: }"
                n=$((n + 1))
            else
                skip "conformance/${name%%:*}" "${name#*: }"
            fi
            ;;
        *) echo "  | $line" ;;
        esac
    done <"$OUT"
    if [ "$rc" -ne 0 ] && ! grep -q '^FAIL ' "$OUT"; then
        fail "conformance-$filter" "the driver exited $rc: $(tail_out 3)"
    elif [ "$n" -eq 0 ]; then
        fail "conformance-$filter" "no scenario matching '$filter' ran: $(tail_out 3)"
    fi
}
# The guest's root is 9p, with no block device: a small RAM disk gives the blkio
# scenario one to throttle (io.max).
modprobe brd rd_nr=1 rd_size=1024 2>/dev/null || echo "# modprobe brd failed: the blkio scenario will skip"
conformance cgroups
# CRIU 3.17 works on this guest's Debian 6.1 kernel (not on the host's): the real
# checkpoint and restore run here, lazy migration too (uffd-noncoop works here, and
# the page server listens on the guest's loopback).
conformance checkpoint strict

# --- d. containerd drives the native shim on cgroup v2: v2 metrics in `ctr task
# metrics`, the v2 OOM watch (inotify on memory.events) reporting a live OOM kill,
# memory.max set. The host's containerd and ctr (the guest sees the host's /); the
# same script as the host's engines stage, which covers cgroup v1 there.
if [ -z "${SHIM_SCRIPT:-}" ] || [ -z "${SHIM:-}" ]; then
    skip containerd-native-shim "run-tests.sh gave no SHIM/SHIM_SCRIPT"
elif ! command -v containerd >/dev/null || ! command -v ctr >/dev/null; then
    skip containerd-native-shim "containerd/ctr not installed on the host (apt-get install containerd)"
else
    last=$SECONDS
    # The guest runs 15-40x slower than the host: each ctr step gets 180s, the script's
    # inner half 6x that (STEP_TIMEOUT*6, which then cleans up), the whole a minute more.
    STEP_TIMEOUT=180 SHIM="$SHIM" SHIM_CHECKPOINT=required timeout $((180 * 6 + 60)) bash "$SHIM_SCRIPT" >"$OUT" 2>&1
    rc=$?
    echo "# containerd + native shim: $((SECONDS - last))s for the checks below"
    n=0
    while IFS= read -r line; do
        case "$line" in
        "PASS: "*) pass "containerd-shim-v2/${line#PASS: \[*\] }"; n=$((n + 1)) ;;
        "FAIL: "*) fail containerd-shim-v2 "${line#FAIL: \[*\] }"; n=$((n + 1)) ;;
        "SKIP: "*) skip "containerd-shim-v2" "${line#SKIP: }" ;;
        *) echo "  | $line" ;;
        esac
    done <"$OUT"
    if [ "$rc" -ne 0 ] && ! grep -q '^FAIL: ' "$OUT"; then
        fail containerd-native-shim "the script exited $rc: $(tail_out 3)"
    elif [ "$n" -eq 0 ]; then
        fail containerd-native-shim "no check ran: $(tail_out 3)"
    fi
fi

# --- e. AppArmor enforced (the guest boots with apparmor=1 security=apparmor).
# shellcheck source=apparmor-tests.sh
. "$(dirname "$0")/apparmor-tests.sh"
# The host tallies $RESULTS; exit 0 says the script itself ran to its end.
exit 0
