#!/bin/bash
# hack/vm-lane/systemd-tests.sh: runs INSIDE the systemd guest (`vm-run.sh --mode
# systemd`: systemd 252 as PID 1, D-Bus, cgroup v2 only). Checks berth's systemd
# cgroup driver (`--systemd-cgroup`): a transient scope per container in the slice of
# `slice:prefix:name`, resources on the delegated cgroup, pause/resume/update there,
# and the unit gone after delete. Writes PASS/FAIL lines to $RESULTS.
#
# Not part of `make test` yet (see docs/testing.md): run by hand, as
#   vm-run.sh --mode systemd -e BERTH=... -e BUNDLE=... -e RESULTS=... SHARE bash systemd-tests.sh
# after `prepare.sh --systemd`. Environment: BERTH, BUNDLE (config.json with cgroupsPath
# system.slice:berth:vm1, a 64 MiB memory limit and pids limit 50; process sleep 30),
# RESULTS.
set -u
: "${BERTH:?}" "${BUNDLE:?}" "${RESULTS:?}"
pass() { echo "PASS: systemd/$1"; echo "PASS systemd/$1" >>"$RESULTS"; }
fail() { echo "FAIL: systemd/$1: $2"; echo "FAIL systemd/$1: $2" >>"$RESULTS"; }
berth() { timeout 60 "$BERTH" --systemd-cgroup --root /run/berth-systemd "$@"; }
unit=berth-vm1.scope
dir=/sys/fs/cgroup/system.slice/$unit

if out=$(berth create --bundle "$BUNDLE" vm1 2>&1); then pass create; else fail create "$out"; fi
state=$(systemctl is-active "$unit" 2>&1)
[ "$state" = active ] && pass scope-active || fail scope-active "systemctl is-active $unit: $state"
pid=$(berth state vm1 | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
if grep -qx "0::/system.slice/$unit" "/proc/$pid/cgroup" 2>/dev/null; then pass init-in-scope
else fail init-in-scope "$(cat "/proc/$pid/cgroup" 2>&1)"; fi
v=$(cat "$dir/memory.max" 2>&1); [ "$v" = 67108864 ] && pass memory-max || fail memory-max "$v"
v=$(cat "$dir/pids.max" 2>&1); [ "$v" = 50 ] && pass pids-max || fail pids-max "$v"
if out=$(berth start vm1 2>&1); then pass start; else fail start "$out"; fi
if berth pause vm1 && grep -qx "frozen 1" "$dir/cgroup.events"; then pass pause; else fail pause "$(cat "$dir/cgroup.events" 2>&1)"; fi
if berth resume vm1 && grep -qx "frozen 0" "$dir/cgroup.events"; then pass resume; else fail resume "$(cat "$dir/cgroup.events" 2>&1)"; fi
if berth update --pids-limit 60 vm1 && [ "$(cat "$dir/pids.max")" = 60 ]; then pass update; else fail update "pids.max $(cat "$dir/pids.max" 2>&1)"; fi
berth kill vm1 KILL
for _ in $(seq 50); do [ "$(berth state vm1 2>/dev/null | sed -n 's/.*"status": "\([a-z]*\)".*/\1/p')" = stopped ] && break; sleep 0.1; done
if out=$(berth delete vm1 2>&1); then pass delete; else fail delete "$out"; fi
for _ in $(seq 50); do [ -d "$dir" ] || break; sleep 0.1; done
state=$(systemctl is-active "$unit" 2>&1)
[ "$state" != active ] && pass scope-gone || fail scope-gone "still $state"
[ ! -d "$dir" ] && pass cgroup-gone || fail cgroup-gone "$dir is still there"
# A cgroupsPath that is not slice:prefix:name is refused with the form named.
cp "$BUNDLE/config.json" /tmp/bad.json
sed 's#system.slice:berth:vm1#/not/systemd#' /tmp/bad.json >"$BUNDLE/config.json"
out=$(berth create --bundle "$BUNDLE" vm2 2>&1) && fail bad-path "accepted" ||
    { echo "$out" | grep -q "slice:prefix:name" && pass bad-path || fail bad-path "$out"; }
cp /tmp/bad.json "$BUNDLE/config.json"
