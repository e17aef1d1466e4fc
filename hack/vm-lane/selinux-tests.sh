#!/bin/bash
# hack/vm-lane/selinux-tests.sh: SELinux enforced, checked INSIDE a guest booted with
# `security=selinux selinux=1` (selinux-lane.sh boots it; Debian's kernel has SELinux
# built in). Prints PASS/FAIL per check and appends them to $RESULTS.
#
# Environment: BERTH, ROOTFS (a busybox rootfs), RESULTS, SE_POLICY (the lane's policy,
# hack/vm-lane/selinux-policy.cil compiled on the host by Debian's secilc).
#
# The policy is written straight to /sys/fs/selinux/load (what load_policy does, without
# libselinux) and the guest is switched to enforcing. Its two container domains each
# lose one thing: container_t may not write se_denied_t files (a tmpfs mounted with
# context=...:se_denied_t, bound at /d in the containers), container_exec_t may not
# write se_exec_denied_t files (bound at /e). Every "denied" has its twin where the
# label is not in force and the write succeeds, so a runtime that ignored the label
# fails the checks.
set -uo pipefail

: "${BERTH:?}" "${ROOTFS:?}" "${RESULTS:?}" "${SE_POLICY:?}"

WORK=/tmp/berth-selane-$$
ROOT=/run/berth-selane-$$
OUT=$WORK/out
mkdir -p "$WORK" "$ROOT"
last=$SECONDS
pass() { echo "PASS: $1 ($((SECONDS - last))s)"; echo "PASS $1" >>"$RESULTS"; last=$SECONDS; }
fail() { echo "FAIL: $1: $2 ($((SECONDS - last))s)"; echo "FAIL $1: $2" >>"$RESULTS"; last=$SECONDS; }
berth() { timeout 60 "$BERTH" --root "$ROOT" "$@"; }
tail_out() { tail -n 5 "$OUT" 2>/dev/null | tr -d '\0' | paste -sd '|'; }
# shellcheck disable=SC2317 # invoked by the trap
cleanup() {
    local id
    for id in seinit senone seeacces seexec seinvalid; do berth delete --force "vmlane-$id-$$" >/dev/null 2>&1; done
    umount "$WORK/denied" "$WORK/exec-denied" 2>/dev/null
    rm -rf "$WORK" "$ROOT"
}
trap cleanup EXIT

CT=system_u:system_r:container_t:s0
CT_EXEC=system_u:system_r:container_exec_t:s0
HOST=system_u:system_r:kernel_t:s0
# One line: current=<label> d=<rc> e=<rc> (rc of writing /d/f and /e/f).
# shellcheck disable=SC2016 # expanded by the container's shell
SE_PROBE='echo current=$(tr -d "\0" </proc/self/attr/current) d=$(echo x 2>/dev/null >/d/f; echo $?) e=$(echo x 2>/dev/null >/e/f; echo $?)'

# The lane: SELinux is the guest's LSM, the policy loads and is enforced.
se_lane() {
    grep -qw selinux /sys/kernel/security/lsm 2>/dev/null ||
        { echo "SELinux is not an active LSM ($(cat /sys/kernel/security/lsm 2>/dev/null); cmdline: $(cat /proc/cmdline))"; return 1; }
    if [ ! -e /sys/fs/selinux/enforce ]; then
        mount -t selinuxfs selinuxfs /sys/fs/selinux 2>&1 || { echo "mount selinuxfs failed"; return 1; }
    fi
    [ -s "$SE_POLICY" ] || { echo "no policy at '$SE_POLICY'"; return 1; }
    cat "$SE_POLICY" >/sys/fs/selinux/load 2>"$OUT" || { echo "loading the policy failed: $(tail_out) $(dmesg | grep -i selinux | tail -n 3 | paste -sd '|')"; return 1; }
    echo 1 >/sys/fs/selinux/enforce || { echo "could not switch to enforcing"; return 1; }
    [ "$(cat /sys/fs/selinux/enforce)" = 1 ] || { echo "not enforcing after the switch"; return 1; }
    [ "$(tr -d '\0' </proc/self/attr/current)" = "$HOST" ] ||
        { echo "the guest's processes are not $HOST: $(tr -d '\0' </proc/self/attr/current)"; return 1; }
    # busybox's mount: util-linux's (libmount) drops context= here without a word (the
    # tmpfs came out file_t), busybox hands the option to the kernel as it is.
    mkdir -p "$WORK/denied" "$WORK/exec-denied" || return 1
    busybox mount -t tmpfs -o "context=system_u:object_r:se_denied_t:s0" tmpfs "$WORK/denied" ||
        { echo "mounting the se_denied_t tmpfs failed"; return 1; }
    busybox mount -t tmpfs -o "context=system_u:object_r:se_exec_denied_t:s0" tmpfs "$WORK/exec-denied" ||
        { echo "mounting the se_exec_denied_t tmpfs failed"; return 1; }
    chmod 1777 "$WORK/denied" "$WORK/exec-denied"
    grep -q " $WORK/denied tmpfs .*context=system_u:object_r:se_denied_t:s0" /proc/mounts ||
        { echo "the tmpfs at $WORK/denied is not se_denied_t: $(grep " $WORK/denied " /proc/mounts)"; return 1; }
    [ -d "$WORK/rootfs" ] || cp -a "$ROOTFS" "$WORK/rootfs"
}
# bundle ID PROCESS-ARGS-JSON [JQ-FILTER]: $WORK/ID on the shared rootfs, with /d and
# /e bound from the labelled tmpfs mounts.
bundle() {
    local dir=$WORK/$1
    mkdir -p "$dir" && (cd "$dir" && "$BERTH" spec) || return 1
    jq --argjson args "$2" --arg root "$WORK/rootfs" --arg d "$WORK/denied" --arg e "$WORK/exec-denied" '
        .root = {path: $root, readonly: true}
        | .process.terminal = false | .process.args = $args
        | .mounts += [{destination: "/d", type: "bind", source: $d, options: ["rbind", "rw"]},
                      {destination: "/e", type: "bind", source: $e, options: ["rbind", "rw"]}]
        | '"${3:-.}" "$dir/config.json" >"$dir/config.new" && mv "$dir/config.new" "$dir/config.json"
}
se_run() {
    bundle "$1" "$(jq -cn --arg s "$SE_PROBE" '["sh", "-c", $s]')" "$2" ||
        { echo "could not build the bundle in $WORK/$1"; return 1; }
    berth run --bundle "$WORK/$1" "vmlane-$1-$$" >"$OUT" 2>&1 || { echo "berth run exited $?: $(tail_out)"; return 1; }
}
want() {
    tr -d '\0' <"$OUT" | grep -qx "$2" || { echo "$1: want '$2', got: $(tail_out)"; return 1; }
    echo "  | $1: $2" >>"$WORK/seen"
}

# The container's process runs as process.selinuxLabel (its /proc/self/attr/current)
# and its write to an se_denied_t file fails; without the label it runs as the guest's
# kernel_t and the same write succeeds.
se_init() {
    se_run seinit ".process.selinuxLabel = \"$CT\"" || return 1
    want "process.selinuxLabel=$CT" "current=$CT d=1 e=0" || return 1
    se_run senone 'del(.process.selinuxLabel)' || return 1
    want "no process.selinuxLabel" "current=$HOST d=0 e=0" || return 1
}
# The denied write's error is EACCES.
se_eacces() {
    se_run seeacces ".process.selinuxLabel = \"$CT\" | .process.args = [\"sh\", \"-c\", \"echo x >/d/f\"]" >/dev/null 2>&1 &&
        { echo "the denied write succeeded: $(tail_out)"; return 1; }
    grep -q 'Permission denied' "$OUT" || { echo "the write failed, but not with EACCES: $(tail_out)"; return 1; }
}
# exec: the container's label by default, --process-label's label, process.json's
# selinuxLabel.
se_exec() {
    local id=vmlane-seexec-$$
    bundle seexec '["sleep", "300"]' ".process.selinuxLabel = \"$CT\"" ||
        { echo "could not build the bundle in $WORK/seexec"; return 1; }
    berth run --detach --bundle "$WORK/seexec" "$id" >"$OUT" 2>&1 || { echo "run --detach: $(tail_out)"; return 1; }
    berth exec "$id" sh -c "$SE_PROBE" >"$OUT" 2>&1 || { echo "exec: $(tail_out)"; return 1; }
    want "exec without --process-label" "current=$CT d=1 e=0" || return 1
    berth exec --process-label "$CT_EXEC" "$id" sh -c "$SE_PROBE" >"$OUT" 2>&1 || { echo "exec --process-label: $(tail_out)"; return 1; }
    want "exec --process-label $CT_EXEC" "current=$CT_EXEC d=0 e=1" || return 1
    local pj=$WORK/seexec/process.json
    jq --arg l "$CT_EXEC" --arg s "$SE_PROBE" '.process | .args = ["sh", "-c", $s] | .selinuxLabel = $l' \
        "$WORK/seexec/config.json" >"$pj" || return 1
    berth exec --process "$pj" "$id" >"$OUT" 2>&1 || { echo "exec --process: $(tail_out)"; return 1; }
    want "process.json selinuxLabel $CT_EXEC" "current=$CT_EXEC d=0 e=1" || return 1
    berth delete --force "$id" >"$OUT" 2>&1 || { echo "delete --force: $(tail_out)"; return 1; }
}
# A label the policy does not know (its type is not defined): the kernel refuses the
# write to attr/exec (EINVAL), so create fails with it and leaves nothing behind; exec
# --process-label of such a label fails the same way.
se_invalid() {
    local id=vmlane-seinvalid-$$ bad=system_u:system_r:no_such_t:s0
    bundle seinvalid '["sleep", "300"]' ".process.selinuxLabel = \"$bad\"" ||
        { echo "could not build the bundle in $WORK/seinvalid"; return 1; }
    berth run --detach --bundle "$WORK/seinvalid" "$id" >"$OUT" 2>&1 && { echo "run succeeded"; return 1; }
    grep -q 'unable to set selinux label.*attr/exec: invalid argument' "$OUT" ||
        { echo "want 'unable to set selinux label ... attr/exec: invalid argument', got: $(tail_out)"; return 1; }
    echo "  | run with $bad: $(grep -o 'unable to set selinux label.*invalid argument' "$OUT" | head -n 1)" >>"$WORK/seen"
    berth state "$id" >/dev/null 2>&1 && { echo "state still answers after the failed run"; return 1; }
    rm -rf "${WORK:?}/seinvalid" && bundle seinvalid '["sleep", "300"]' || return 1
    berth run --detach --bundle "$WORK/seinvalid" "$id" >"$OUT" 2>&1 || { echo "run --detach: $(tail_out)"; return 1; }
    berth exec --process-label "$bad" "$id" true >"$OUT" 2>&1 && { echo "exec --process-label $bad succeeded"; return 1; }
    grep -q 'selinux.*attr/exec: invalid argument' "$OUT" ||
        { echo "exec --process-label: want an selinux error ending in 'attr/exec: invalid argument', got: $(tail_out)"; return 1; }
    berth delete --force "$id" >"$OUT" 2>&1 || { echo "delete --force: $(tail_out)"; return 1; }
}
se_check() {
    local msg
    : >"$WORK/seen"
    if msg=$($2 2>&1); then pass "$1"; else fail "$1" "$msg"; fi
    cat "$WORK/seen"
    berth delete --force "vmlane-seexec-$$" >/dev/null 2>&1
    berth delete --force "vmlane-seinvalid-$$" >/dev/null 2>&1
}

echo "guest: kernel $(uname -r), lsm: $(cat /sys/kernel/security/lsm 2>/dev/null)"
if msg=$(se_lane 2>&1); then
    pass selinux-lane
    se_check selinux-init-label se_init
    se_check selinux-denied-eacces se_eacces
    se_check selinux-exec-label se_exec
    se_check selinux-label-invalid se_invalid
else
    fail selinux-lane "$msg"
fi
