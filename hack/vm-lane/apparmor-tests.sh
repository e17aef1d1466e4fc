# shellcheck shell=bash
# hack/vm-lane/apparmor-tests.sh: AppArmor enforced, checked in the cgroup2 guest,
# which run-tests.sh boots with `apparmor=1 security=apparmor`. Sourced by
# guest-tests.sh (it uses that script's pass, fail, berth, bundle, tail_out, $WORK,
# $OUT); needs $APPARMOR_PARSER, Debian's apparmor_parser (prepare.sh extracts it
# from the `apparmor` package into the lane's cache).
#
# Two test profiles are loaded: berth-vmlane-aa (for the container) denies writes to
# /tmp/aa-denied, berth-vmlane-aa-exec (for exec'd processes) denies writes to
# /tmp/aa-exec-denied. Every "denied" check has its twin that the write succeeds
# where the profile is not in force, so a runtime that ignored the profile fails.

AA=berth-vmlane-aa
AA_EXEC=berth-vmlane-aa-exec
# The container's own writes, and what an exec'd process sees, in one line each:
# current=<label> a=<rc> e=<rc> (rc of writing /tmp/aa-denied and /tmp/aa-exec-denied).
# shellcheck disable=SC2016 # expanded by the container's shell
AA_PROBE='echo current=$(cat /proc/self/attr/current) aa=$(cat /proc/self/attr/apparmor/current) a=$(echo x 2>/dev/null >/tmp/aa-denied; echo $?) e=$(echo x 2>/dev/null >/tmp/aa-exec-denied; echo $?)'

# The lane: AppArmor is the enabled LSM and the parser loads both profiles.
aa_lane() {
    [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" = Y ] ||
        { echo "AppArmor is not enabled (kernel command line: $(cat /proc/cmdline))"; return 1; }
    [ -d /sys/kernel/security/apparmor ] || { echo "no /sys/kernel/security/apparmor"; return 1; }
    [ -x "${APPARMOR_PARSER:-}" ] || { echo "no apparmor_parser at '${APPARMOR_PARSER:-}'"; return 1; }
    local p deny
    for p in "$AA" "$AA_EXEC"; do
        if [ "$p" = "$AA" ]; then deny=/tmp/aa-denied; else deny=/tmp/aa-exec-denied; fi
        # attach_disconnected: the container's paths are judged from its own root.
        cat >"$WORK/$p.profile" <<-EOF
	profile $p flags=(attach_disconnected,mediate_deleted) {
	  file,
	  capability,
	  network,
	  signal,
	  ptrace,
	  unix,
	  mount,
	  umount,
	  pivot_root,
	  deny $deny w,
	}
	EOF
        timeout 60 "$APPARMOR_PARSER" --config-file=/dev/null -r -W "$WORK/$p.profile" >"$OUT" 2>&1 ||
            { echo "apparmor_parser -r $p: $(tail_out)"; return 1; }
        grep -qx "$p (enforce)" /sys/kernel/security/apparmor/profiles ||
            { echo "$p is not loaded in enforce mode: $(paste -sd '|' /sys/kernel/security/apparmor/profiles)"; return 1; }
    done
}
# aa_run ID JQ-FILTER: `berth run` of the probe, its output line in $OUT.
aa_run() {
    bundle "$1" "$(jq -cn --arg s "$AA_PROBE" '["sh", "-c", $s]')" \
        '.mounts += [{destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev"]}] | '"$2" ||
        { echo "could not build the bundle in $WORK/$1"; return 1; }
    berth run --bundle "$WORK/$1" "vmlane-$1-$$" >"$OUT" 2>&1 || { echo "berth run exited $?: $(tail_out)"; return 1; }
}
# want WHAT LINE: the probe's line is exactly LINE.
want() {
    grep -qx "$2" "$OUT" || { echo "$1: want '$2', got: $(tail_out)"; return 1; }
}

# The container's process runs under process.apparmorProfile, which denies the write
# it forbids (EACCES); the same config without the profile runs unconfined and the
# write succeeds.
aa_init() {
    aa_run aainit ".process.apparmorProfile = \"$AA\"" || return 1
    want "process.apparmorProfile=$AA" "current=$AA (enforce) aa=$AA (enforce) a=1 e=0" || return 1
    aa_run aanone 'del(.process.apparmorProfile)' || return 1
    want "no process.apparmorProfile" "current=unconfined aa=unconfined a=0 e=0" || return 1
}
# The denied write's error is EACCES.
aa_eacces() {
    aa_run aaeacces ".process.apparmorProfile = \"$AA\" | .process.args = [\"sh\", \"-c\", \"echo x >/tmp/aa-denied\"]" >/dev/null 2>&1 &&
        { echo "the denied write succeeded: $(tail_out)"; return 1; }
    grep -q 'Permission denied' "$OUT" || { echo "the write failed, but not with EACCES: $(tail_out)"; return 1; }
}

# exec: the container's profile by default (runc's exec starts from the container's
# process), --apparmor's profile, process.json's apparmorProfile; a process.json
# without one runs unconfined (runc: its container config has no profile to fall back
# to).
aa_exec() {
    local id=vmlane-aaexec-$$
    bundle aaexec '["sleep", "300"]' ".process.apparmorProfile = \"$AA\" | .mounts += [{destination: \"/tmp\", type: \"tmpfs\", source: \"tmpfs\", options: [\"nosuid\", \"nodev\"]}]" ||
        { echo "could not build the bundle in $WORK/aaexec"; return 1; }
    berth run --detach --bundle "$WORK/aaexec" "$id" >"$OUT" 2>&1 || { echo "run --detach: $(tail_out)"; return 1; }
    berth exec "$id" sh -c "$AA_PROBE" >"$OUT" 2>&1 || { echo "exec: $(tail_out)"; return 1; }
    want "exec without --apparmor" "current=$AA (enforce) aa=$AA (enforce) a=1 e=0" || return 1
    berth exec --apparmor "$AA_EXEC" "$id" sh -c "$AA_PROBE" >"$OUT" 2>&1 || { echo "exec --apparmor: $(tail_out)"; return 1; }
    want "exec --apparmor $AA_EXEC" "current=$AA_EXEC (enforce) aa=$AA_EXEC (enforce) a=0 e=1" || return 1
    local pj=$WORK/aaexec/process.json
    jq --arg p "$AA_EXEC" --arg s "$AA_PROBE" '.process | .args = ["sh", "-c", $s] | .apparmorProfile = $p' \
        "$WORK/aaexec/config.json" >"$pj" || return 1
    berth exec --process "$pj" "$id" >"$OUT" 2>&1 || { echo "exec --process: $(tail_out)"; return 1; }
    want "process.json apparmorProfile $AA_EXEC" "current=$AA_EXEC (enforce) aa=$AA_EXEC (enforce) a=0 e=1" || return 1
    jq 'del(.apparmorProfile)' "$pj" >"$pj.new" && mv "$pj.new" "$pj" || return 1
    berth exec --process "$pj" "$id" >"$OUT" 2>&1 || { echo "exec --process (no profile): $(tail_out)"; return 1; }
    want "process.json without apparmorProfile" "current=unconfined aa=unconfined a=0 e=0" || return 1
    berth delete --force "$id" >"$OUT" 2>&1 || { echo "delete --force: $(tail_out)"; return 1; }
}

# A profile that is not loaded: the write of `exec <profile>` fails with ENOENT, and
# create fails with it (runc 1.1.5: "unable to apply apparmor profile: apparmor failed
# to apply profile: write /proc/self/attr/apparmor/exec: no such file or directory"),
# leaving nothing behind; `exec --apparmor` of such a profile fails the same way.
aa_missing() {
    local id=vmlane-aamissing-$$
    bundle aamissing '["sleep", "300"]' '.process.apparmorProfile = "berth-vmlane-not-loaded"' ||
        { echo "could not build the bundle in $WORK/aamissing"; return 1; }
    berth run --detach --bundle "$WORK/aamissing" "$id" >"$OUT" 2>&1 && { echo "run succeeded"; return 1; }
    grep -q 'unable to apply apparmor profile.*attr/apparmor/exec: no such file or directory' "$OUT" ||
        { echo "want runc's 'unable to apply apparmor profile ... no such file or directory', got: $(tail_out)"; return 1; }
    berth state "$id" >/dev/null 2>&1 && { echo "state still answers after the failed run"; return 1; }
    [ ! -d "/sys/fs/cgroup/$PARENT/aamissing" ] || { echo "cgroup left after the failed run"; return 1; }
    rm -rf "${WORK:?}/aamissing" && bundle aamissing '["sleep", "300"]' || return 1
    berth run --detach --bundle "$WORK/aamissing" "$id" >"$OUT" 2>&1 || { echo "run --detach: $(tail_out)"; return 1; }
    berth exec --apparmor berth-vmlane-not-loaded "$id" true >"$OUT" 2>&1 && { echo "exec --apparmor succeeded"; return 1; }
    # runc's exec: "apparmor failed to apply profile: write ...: no such file or directory"
    grep -q 'apparmor.*attr/apparmor/exec: no such file or directory' "$OUT" ||
        { echo "exec --apparmor: want an apparmor error ending in 'no such file or directory', got: $(tail_out)"; return 1; }
    berth delete --force "$id" >"$OUT" 2>&1 || { echo "delete --force: $(tail_out)"; return 1; }
}
# check NAME FUNCTION: one PASS/FAIL line; the function's containers are gone after.
aa_check() {
    local msg
    if msg=$($2 2>&1); then pass "$1"; else fail "$1" "$msg"; fi
    berth delete --force "vmlane-aaexec-$$" >/dev/null 2>&1
    berth delete --force "vmlane-aamissing-$$" >/dev/null 2>&1
}
if msg=$(aa_lane 2>&1); then
    pass apparmor-lane
    aa_check apparmor-init-profile aa_init
    aa_check apparmor-denied-eacces aa_eacces
    aa_check apparmor-exec-profile aa_exec
    aa_check apparmor-profile-not-loaded aa_missing
else
    fail apparmor-lane "$msg"
fi
