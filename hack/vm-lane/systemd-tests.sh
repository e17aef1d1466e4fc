#!/bin/bash
# hack/vm-lane/systemd-tests.sh: runs INSIDE a guest with systemd as PID 1 (`vm-run.sh
# --mode host-systemd` or `--mode systemd`: systemd 252, D-Bus, cgroup v2 only). Checks
# berth's systemd cgroup driver (`--systemd-cgroup`): a transient scope per container in
# the slice of `slice:prefix:name`, resources on the delegated cgroup and as unit
# properties, pause/resume/update there, the unit gone after delete, checkpoint and
# restore, cgroup delegation to a user namespace's root, and rootless containers in a
# user's delegated subtree (the user's own systemd). Writes PASS/FAIL lines to
# $RESULTS.
#
# systemd-lane.sh builds the bundle and boots the guest (`make vm-lane` runs it after
# the v2 guest). Environment: BERTH, BUNDLE (config.json with cgroupsPath
# system.slice:berth:vm1, a 64 MiB memory limit and pids limit 50; process sleep 30),
# RESULTS, SHIM and LIBDIR (containerd-shim-berth-v2 and hack/lib, for the native
# shim's check at the end).
set -u
: "${BERTH:?}" "${BUNDLE:?}" "${RESULTS:?}"
pass() { echo "PASS: systemd/$1"; echo "PASS systemd/$1" >>"$RESULTS"; }
fail() { echo "FAIL: systemd/$1: $2"; echo "FAIL systemd/$1: $2" >>"$RESULTS"; }
berth() { timeout -k 5 60 "$BERTH" --systemd-cgroup --root /run/berth-systemd "$@"; }
unit=berth-vm1.scope
dir=/sys/fs/cgroup/system.slice/$unit

# create's output goes to a file: the container's init inherits berth's stdio, so a
# $(...) pipe would stay open (and the script wait) for as long as the container lives.
if berth create --bundle "$BUNDLE" vm1 >/tmp/create.log 2>&1 </dev/null; then pass create
else fail create "$(cat /tmp/create.log)"; fi
state=$(systemctl is-active "$unit" 2>&1)
[ "$state" = active ] && pass scope-active || fail scope-active "systemctl is-active $unit: $state"
pid=$(berth state vm1 | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
if grep -qx "0::/system.slice/$unit" "/proc/$pid/cgroup" 2>/dev/null; then pass init-in-scope
else fail init-in-scope "$(cat "/proc/$pid/cgroup" 2>&1)"; fi
v=$(cat "$dir/memory.max" 2>&1); [ "$v" = 67108864 ] && pass memory-max || fail memory-max "$v"
v=$(cat "$dir/pids.max" 2>&1); [ "$v" = 50 ] && pass pids-max || fail pids-max "$v"
# The limits are unit properties too (as runc sets them), not only cgroup files.
v=$(systemctl show -p MemoryMax,TasksMax "$unit" 2>&1 | sort | tr '\n' ' ')
[ "$v" = "MemoryMax=67108864 TasksMax=50 " ] && pass unit-properties || fail unit-properties "$v"
if out=$(berth start vm1 2>&1); then pass start; else fail start "$out"; fi
# runc#3551 (dev.bats "runc exec vs systemctl daemon-reload"): a daemon-reload makes
# systemd apply the unit's settings again; an exec with a terminal must still get its
# pty (/dev/pts/N) through the device rules afterwards.
exec_tty() { berth exec -t vm1 sh -c 'ls -l /proc/self/fd/0; echo 123' </dev/null 2>&1; }
if ! out=$(exec_tty) || [[ $out != *123* ]]; then
    fail exec-tty-after-daemon-reload "before the reload: $out"
elif ! out=$(systemctl daemon-reload 2>&1); then
    fail exec-tty-after-daemon-reload "systemctl daemon-reload: $out"
elif out=$(exec_tty) && [[ $out == *123* ]]; then
    pass exec-tty-after-daemon-reload
else
    fail exec-tty-after-daemon-reload "after the reload: $out"
fi
if berth pause vm1 && grep -qx "frozen 1" "$dir/cgroup.events"; then pass pause; else fail pause "$(cat "$dir/cgroup.events" 2>&1)"; fi
if berth resume vm1 && grep -qx "frozen 0" "$dir/cgroup.events"; then pass resume; else fail resume "$(cat "$dir/cgroup.events" 2>&1)"; fi
if berth update --pids-limit 60 vm1 && [ "$(cat "$dir/pids.max")" = 60 ]; then pass update; else fail update "pids.max $(cat "$dir/pids.max" 2>&1)"; fi
v=$(systemctl show -p TasksMax --value "$unit" 2>&1)
[ "$v" = 60 ] && pass update-unit-properties || fail update-unit-properties "TasksMax $v"
# cpu: the cgroup file and the unit properties (quota per second, weight from shares).
if berth update --cpu-quota 50000 --cpu-period 100000 --cpu-share 512 --cpuset-cpus 0 vm1 >/tmp/cpu.log 2>&1; then
    v=$(systemctl show -p CPUQuotaPerSecUSec,CPUWeight,AllowedCPUs "$unit" 2>&1 | sort | tr '\n' ' ')
    f="$(cat "$dir/cpu.max" 2>&1) $(cat "$dir/cpu.weight" 2>&1) $(cat "$dir/cpuset.cpus" 2>&1)"
    if [ "$v" = "AllowedCPUs=0 CPUQuotaPerSecUSec=500ms CPUWeight=20 " ] && [ "$f" = "50000 100000 20 0" ]; then
        pass cpu-unit-properties
    else
        fail cpu-unit-properties "properties '$v', files '$f'"
    fi
else
    fail cpu-unit-properties "update: $(cat /tmp/cpu.log)"
fi
# A unified key with a unit property (memory.high -> MemoryHigh), as runc maps them.
if echo '{"unified": {"memory.high": "50000000"}}' | berth update -r - vm1 >/tmp/upd.log 2>&1; then
    v=$(systemctl show -p MemoryHigh --value "$unit" 2>&1)
    f=$(cat "$dir/memory.high" 2>&1)
    if [ "$v" = 50000000 ] && [ "$f" = 49999872 ]; then pass unified-unit-property
    else fail unified-unit-property "MemoryHigh $v, memory.high $f"; fi
else
    fail unified-unit-property "update -r: $(cat /tmp/upd.log)"
fi
berth kill vm1 KILL
for _ in $(seq 50); do [ "$(berth state vm1 2>/dev/null | sed -n 's/.*"status": "\([a-z]*\)".*/\1/p')" = stopped ] && break; sleep 0.1; done
if out=$(berth delete vm1 2>&1); then pass delete; else fail delete "$out"; fi
for _ in $(seq 50); do [ -d "$dir" ] || break; sleep 0.1; done
state=$(systemctl is-active "$unit" 2>&1)
[ "$state" != active ] && pass scope-gone || fail scope-gone "still $state"
[ ! -d "$dir" ] && pass cgroup-gone || fail cgroup-gone "$dir is still there"
# Checkpoint and restore under the systemd driver (CRIU works on this kernel): delete
# after the dump stops the scope; restore starts it again for CRIU, and the restored
# init is inside. stdio is /dev/null: CRIU cannot restore files of another mount
# namespace.
img=/tmp/ckpt-vm3
if berth run -d --bundle "$BUNDLE" vm3 </dev/null >/dev/null 2>&1 &&
    berth checkpoint --image-path "$img" vm3 >/tmp/ck.log 2>&1 </dev/null &&
    berth restore -d --bundle "$BUNDLE" --image-path "$img" vm3 >/tmp/rs.log 2>&1 </dev/null; then
    pid=$(berth state vm3 | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
    if grep -qx "0::/system.slice/$unit" "/proc/$pid/cgroup" 2>/dev/null && [ "$(systemctl is-active "$unit")" = active ]; then
        pass checkpoint-restore
    else
        fail checkpoint-restore "pid $pid in $(cat "/proc/$pid/cgroup" 2>&1), unit $(systemctl is-active "$unit" 2>&1)"
    fi
else
    fail checkpoint-restore "$(tail -n 3 /tmp/ck.log /tmp/rs.log 2>&1 | tr '\n' ' ')"
fi
berth delete --force vm3 >/dev/null 2>&1
# Cgroup delegation (runc's cgroup_delegation.bats): in a user namespace (container
# root = host 100000), the container's cgroup is handed to its root only with a new
# cgroup namespace AND a writable cgroup mount; /sys/fs/cgroup inside is then owned by
# uid 0, else by the unmapped 65534. The rootfs stays the host root's, copied where
# the container's root can reach it (the share's parent is private to host root).
[ -d /tmp/deleg-rootfs ] || cp -a "$BUNDLE/rootfs" /tmp/deleg-rootfs
# delegation N CGROUPNS(new|inherit) MOUNT(ro|rw) WANT-UID
delegation() {
    local n=$1 cgns=$2 mnt=$3 want=$4 dir=/tmp/deleg-$1 id=deleg$1 got
    mkdir -p "$dir"
    jq --arg root /tmp/deleg-rootfs --arg cg "system.slice:berth:$id" --arg cgns "$cgns" --arg mnt "$mnt" '
        .root = {path: $root, readonly: true} | .process.args = ["sleep", "30"]
        | .linux.cgroupsPath = $cg
        | .linux.namespaces |= (map(select(.type != "cgroup" and .type != "user")) + [{type: "user"}]
            + (if $cgns == "new" then [{type: "cgroup"}] else [] end))
        | .linux.uidMappings = [{hostID: 100000, containerID: 0, size: 65536}]
        | .linux.gidMappings = [{hostID: 100000, containerID: 0, size: 65536}]
        | .mounts |= map(if .type == "cgroup" then .options = ((.options - ["ro", "rw"]) + [$mnt]) else . end)
        ' "$BUNDLE/config.json" >"$dir/config.json" || { fail "delegation-$n" "jq"; return; }
    if ! berth run -d --bundle "$dir" "$id" >/tmp/deleg.log 2>&1 </dev/null; then
        fail "delegation-$n" "run -d: $(tail -n 3 /tmp/deleg.log | tr '\n' ' ')"
        return
    fi
    got=$(berth exec "$id" stat -c %u /sys/fs/cgroup 2>&1 </dev/null)
    if [ "$got" = "$want" ]; then pass "delegation-$n"
    else fail "delegation-$n" "cgroupns $cgns, cgroup mount $mnt: /sys/fs/cgroup is owned by '$got' inside, want $want"; fi
    berth delete --force "$id" >/dev/null 2>&1
}
delegation ro-new-cgroupns new ro 65534
delegation rw-inherit-cgroupns inherit rw 65534
delegation rw-new-cgroupns new rw 0

# Rootless with a delegated cgroup (issue 11), as runc's rootless cgroup v2 tests: a
# user (made here, in the guest's throw-away /etc) gets its own systemd,
# user@UID.service, which systemd hands the user's subtree to (Delegate=pids memory
# cpu). berth run by that user, with no privilege at all:
#  - with --systemd-cgroup asks that user manager (on the user's session bus) for a
#    scope in its user.slice, as runc does; the limits, pause/resume, update, ps and
#    delete all work there;
#  - with the cgroupfs driver, started inside a delegated scope of its own
#    (`systemd-run --user --scope -p Delegate=yes`), makes the cgroupsPath it is given
#    in the user's subtree and sets the limits there.
rootless_delegated() {
    local u=berthrl uid=20950 xdg=/run/user/20950 rootfs=/tmp/rl-rootfs i pid v
    local sdir="/sys/fs/cgroup/user.slice/user-20950.slice/user@20950.service"
    # The share's directories are private to root: the user runs a copy of berth.
    local rb=/tmp/rl-bin/berth
    mkdir -p /tmp/rl-bin && install -m 0755 "$BERTH" "$rb" ||
        { fail rootless-setup "copy berth to $rb"; return; }
    as_user() {
        timeout -k 5 120 setpriv --reuid "$uid" --regid "$uid" --clear-groups \
            env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp XDG_RUNTIME_DIR="$xdg" "$@"
    }
    rl() { as_user "$rb" "$@" </dev/null; }
    if ! useradd -u "$uid" -M -d /tmp -s /bin/sh "$u" >/tmp/rl.log 2>&1 ||
        ! timeout 180 systemctl start "user@$uid.service" >>/tmp/rl.log 2>&1; then
        fail rootless-setup "useradd, systemctl start user@$uid.service: $(tail -n 3 /tmp/rl.log | tr '\n' ' ')"
        return
    fi
    for i in $(seq 300); do [ -S "$xdg/bus" ] && break; sleep 0.2; done
    if [ ! -S "$xdg/bus" ]; then
        fail rootless-setup "the user manager made no session bus at $xdg/bus: $(systemctl status "user@$uid.service" 2>&1 | tail -n 5 | tr '\n' ' ')"
        return
    fi
    [ "$(stat -c %u "$sdir")" = "$uid" ] && pass rootless-user-manager-delegated ||
        fail rootless-user-manager-delegated "$sdir is owned by $(stat -c %u "$sdir" 2>&1), not $uid"
    [ -d "$rootfs" ] || cp -a "$BUNDLE/rootfs" "$rootfs"
    # rlbundle DIR CGROUPSPATH: `berth spec --rootless` as the user, with limits.
    rlbundle() {
        mkdir -p "$1" && chown "$uid:$uid" "$1" &&
            (cd "$1" && as_user "$rb" spec --rootless) &&
            jq --arg root "$rootfs" --arg cg "$2" '.root = {path: $root, readonly: true}
                | .process.terminal = false | .process.args = ["sleep", "60"]
                | .linux.cgroupsPath = $cg
                | .linux.resources = {memory: {limit: 67108864}, pids: {limit: 50}}' \
                "$1/config.json" >"$1/config.json.new" && mv "$1/config.json.new" "$1/config.json"
    }

    # The systemd driver, through the user manager.
    local unit=berth-rl1.scope dir="$sdir/user.slice/berth-rl1.scope"
    if ! rlbundle /tmp/rl1 ""; then
        fail rootless-systemd "the bundle (berth spec --rootless as uid $uid)"
    elif ! rl --systemd-cgroup run -d --bundle /tmp/rl1 rl1 >/tmp/rl1.log 2>&1; then
        fail rootless-systemd "run -d as uid $uid: $(tail -n 3 /tmp/rl1.log | tr '\n' ' ')"
    else
        pid=$(rl --systemd-cgroup state rl1 | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
        v="cgroup $(cat "/proc/$pid/cgroup" 2>&1), unit $(as_user systemctl --user is-active "$unit" 2>&1)"
        if [ "$v" = "cgroup 0::${dir#/sys/fs/cgroup}, unit active" ]; then pass rootless-systemd-scope
        else fail rootless-systemd-scope "$v"; fi
        v="$(cat "$dir/memory.max" 2>&1) $(cat "$dir/pids.max" 2>&1)"
        [ "$v" = "67108864 50" ] && pass rootless-systemd-limits || fail rootless-systemd-limits "memory.max pids.max: $v"
        if rl --systemd-cgroup pause rl1 && grep -qx "frozen 1" "$dir/cgroup.events" &&
            rl --systemd-cgroup resume rl1 && grep -qx "frozen 0" "$dir/cgroup.events"; then
            pass rootless-systemd-pause-resume
        else
            fail rootless-systemd-pause-resume "$(cat "$dir/cgroup.events" 2>&1 | tr '\n' ' ')"
        fi
        if rl --systemd-cgroup update --pids-limit 60 rl1 && [ "$(cat "$dir/pids.max")" = 60 ]; then
            pass rootless-systemd-update
        else
            fail rootless-systemd-update "pids.max $(cat "$dir/pids.max" 2>&1)"
        fi
        # As runc's update.bats (check_systemd_value under ROOTLESS): the limits are
        # the user unit's properties too, not only its cgroup files.
        v=$(as_user systemctl --user show -p MemoryMax,TasksMax "$unit" 2>&1 | sort | tr '\n' ' ')
        [ "$v" = "MemoryMax=67108864 TasksMax=60 " ] && pass rootless-systemd-unit-properties ||
            fail rootless-systemd-unit-properties "systemctl --user show: $v"
        v=$(rl --systemd-cgroup ps rl1 2>&1)
        grep -qw "$pid" <<<"$v" && pass rootless-systemd-ps || fail rootless-systemd-ps "$v"
        rl --systemd-cgroup kill rl1 KILL
        for i in $(seq 50); do [ "$(rl --systemd-cgroup state rl1 2>/dev/null | sed -n 's/.*"status": "\([a-z]*\)".*/\1/p')" = stopped ] && break; sleep 0.1; done
        if v=$(rl --systemd-cgroup delete rl1 2>&1); then
            for i in $(seq 50); do [ -d "$dir" ] || break; sleep 0.1; done
            [ ! -d "$dir" ] && pass rootless-systemd-delete || fail rootless-systemd-delete "$dir is still there"
        else
            fail rootless-systemd-delete "$v"
        fi
    fi
    rl --systemd-cgroup delete --force rl1 >/dev/null 2>&1

    # As rootless Podman calls it: uid 0 of the user's own user namespace, the config
    # without one of its own. berth counts as rootless (the user manager's uid is not
    # 0) and authenticates on the session bus as the user it is outside.
    dir="$sdir/user.slice/berth-rl3.scope"
    inns() { as_user unshare --user --map-root-user "$rb" "$@" </dev/null; }
    if ! rlbundle /tmp/rl3 "" || ! jq '.linux.namespaces |= map(select(.type != "user"))
        | del(.linux.uidMappings, .linux.gidMappings)' /tmp/rl3/config.json >/tmp/rl3/c.json ||
        ! mv /tmp/rl3/c.json /tmp/rl3/config.json; then
        fail rootless-systemd-userns-root "the bundle"
    elif ! inns --systemd-cgroup run -d --bundle /tmp/rl3 rl3 >/tmp/rl3.log 2>&1; then
        fail rootless-systemd-userns-root "run -d as root of uid $uid's user namespace: $(tail -n 3 /tmp/rl3.log | tr '\n' ' ')"
    else
        pid=$(inns --systemd-cgroup state rl3 | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
        v="cgroup $(cat "/proc/$pid/cgroup" 2>&1), memory.max $(cat "$dir/memory.max" 2>&1)"
        if [ "$v" = "cgroup 0::${dir#/sys/fs/cgroup}, memory.max 67108864" ]; then pass rootless-systemd-userns-root
        else fail rootless-systemd-userns-root "$v"; fi
    fi
    inns --systemd-cgroup delete --force rl3 >/dev/null 2>&1
    for i in $(seq 50); do [ -d "$dir" ] || break; sleep 0.1; done
    [ ! -d "$dir" ] && pass rootless-systemd-userns-root-delete ||
        fail rootless-systemd-userns-root-delete "$dir is still there after delete --force"

    # The cgroupfs driver inside a delegated scope of the user's own.
    dir="$sdir/berth-rl2"
    if ! rlbundle /tmp/rl2 "${dir#/sys/fs/cgroup}"; then
        fail rootless-cgroupfs "the bundle (berth spec --rootless as uid $uid)"
    elif ! as_user systemd-run --user --scope -q -p Delegate=yes -- "$rb" run -d --bundle /tmp/rl2 rl2 \
        </dev/null >/tmp/rl2.log 2>&1; then
        fail rootless-cgroupfs "systemd-run --user --scope berth run -d: $(tail -n 3 /tmp/rl2.log | tr '\n' ' ')"
    else
        pid=$(rl state rl2 | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
        v="cgroup $(cat "/proc/$pid/cgroup" 2>&1), limits $(cat "$dir/memory.max" 2>&1) $(cat "$dir/pids.max" 2>&1)"
        [ "$v" = "cgroup 0::${dir#/sys/fs/cgroup}, limits 67108864 50" ] && pass rootless-cgroupfs-delegated ||
            fail rootless-cgroupfs-delegated "$v"
        if v=$(rl delete --force rl2 2>&1) && [ ! -d "$dir" ]; then pass rootless-cgroupfs-delete
        else fail rootless-cgroupfs-delete "${v:-$dir is still there}"; fi
    fi
    rl delete --force rl2 >/dev/null 2>&1
    timeout 60 systemctl stop "user@$uid.service" >/dev/null 2>&1
}
rootless_delegated

# A cgroupsPath that is not slice:prefix:name is refused with the form named.
cp "$BUNDLE/config.json" /tmp/bad.json
sed 's#system.slice:berth:vm1#/not/systemd#' /tmp/bad.json >"$BUNDLE/config.json"
if berth create --bundle "$BUNDLE" vm2 >/tmp/create2.log 2>&1 </dev/null; then
    fail bad-path "accepted"
    berth delete --force vm2 >/dev/null 2>&1
elif grep -q "slice:prefix:name" /tmp/create2.log; then pass bad-path
else fail bad-path "$(cat /tmp/create2.log)"; fi
cp /tmp/bad.json "$BUNDLE/config.json"

# The native shim under the systemd driver: containerd's generic runtime options
# (`ctr run --runtime-config-path FILE`; a CRI handler's ConfigPath sends the same
# runtimeoptions.v1.Options) with `SystemdCgroup = true` in the file put the task in a
# transient scope of system.slice, with its memory limit, gone after delete. containerd
# and ctr are the host's (this guest's / in host-systemd mode).
shim_systemd() {
    local cw=/tmp/shim-systemd sock cpid i unit=berth-shim1.scope pid v
    local img=docker.io/berth-test/busybox:latest
    sock=$cw/containerd.sock
    mkdir -p "$cw/bin" && ln -sf "$SHIM" "$cw/bin/containerd-shim-berth-v2" || { fail shim-setup "mkdir $cw"; return; }
    # shellcheck source=../lib/bundle.sh
    . "$LIBDIR/bundle.sh"
    # shellcheck source=../lib/engine.sh
    . "$LIBDIR/engine.sh"
    # shellcheck source=../lib/images.sh
    . "$LIBDIR/images.sh"
    containerd_config "$cw" "$sock"
    PATH="$cw/bin:$PATH" containerd --config "$cw/config.toml" >"$cw/containerd.log" 2>&1 &
    cpid=$!
    c() { timeout -k 5 120 ctr --address "$sock" --namespace sd "$@"; }
    for i in $(seq 600); do c version >/dev/null 2>&1 && break; sleep 0.2; done
    if ! c version >/dev/null 2>&1; then
        fail shim-setup "containerd did not come up: $(tail -n 3 "$cw/containerd.log" | tr '\n' ' ')"
    elif ! { make_busybox_rootfs "$cw/rootfs" && make_oci_archive "$cw/rootfs" "$cw/bb.tar" "$img" &&
        c image import "$cw/bb.tar" >/dev/null 2>"$cw/err"; }; then
        fail shim-setup "image import: $(tail -n 3 "$cw/err" | tr '\n' ' ')"
    else
        printf 'SystemdCgroup = true\n' >"$cw/berth.toml"
        if c run -d --runtime io.containerd.berth.v2 --runtime-config-path "$cw/berth.toml" \
            --cgroup system.slice:berth:shim1 --memory-limit 67108864 "$img" shim1 sleep 100 \
            >/dev/null 2>"$cw/err"; then
            pid=$(c task ls 2>/dev/null | awk '$1 == "shim1" {print $2}')
            v="unit $(systemctl is-active "$unit" 2>&1), init cgroup $(cat "/proc/$pid/cgroup" 2>&1), memory.max $(cat "/sys/fs/cgroup/system.slice/$unit/memory.max" 2>&1)"
            if [ "$v" = "unit active, init cgroup 0::/system.slice/$unit, memory.max 67108864" ]; then
                pass shim-systemd-scope
            else
                fail shim-systemd-scope "$v"
            fi
            c task kill -s KILL shim1 >/dev/null 2>&1
            for i in $(seq 100); do [ "$(c task ls 2>/dev/null | awk '$1 == "shim1" {print $3}')" = STOPPED ] && break; sleep 0.1; done
            c task delete shim1 >/dev/null 2>&1
            c container delete shim1 >/dev/null 2>&1
            for i in $(seq 50); do [ "$(systemctl is-active "$unit" 2>&1)" = active ] || break; sleep 0.1; done
            v=$(systemctl is-active "$unit" 2>&1)
            [ "$v" != active ] && pass shim-systemd-scope-gone || fail shim-systemd-scope-gone "still $v"
        else
            fail shim-systemd-scope "ctr run: $(tail -n 3 "$cw/err" | tr '\n' ' ')"
        fi
    fi
    stop_pid "$cpid" 10
    for pid in $(grep -lF "$sock" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do stop_pid "$pid" 5; done
}
if [ -z "${SHIM:-}" ] || [ -z "${LIBDIR:-}" ]; then
    echo "SKIP: systemd/shim-systemd-scope: systemd-lane.sh gave no SHIM/LIBDIR"
elif ! command -v containerd >/dev/null || ! command -v ctr >/dev/null; then
    echo "SKIP: systemd/shim-systemd-scope: no containerd in this guest (--mode systemd's image has none; host-systemd, the default, sees the host's)"
else
    shim_systemd
fi
echo "# systemd-tests.sh: done"
exit 0
