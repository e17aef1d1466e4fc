#!/usr/bin/env bash
# shellcheck disable=SC2016  # container commands and sh -c scripts in single quotes
# Rootless Podman: Podman run by an unprivileged user (its own user namespace from
# /etc/subuid and /etc/subgid through newuidmap, fuse-overlayfs storage, slirp4netns
# networking, no cgroups on this cgroup v1 host) drives each runtime under test
# (default: runc, then berth) through conmon, so a failure of the environment (runc
# fails too) is told apart from a failure of berth (only berth fails).
#
# The test makes its own user (a free uid from 20000 up, a 65536-id subuid/subgid
# range after every range in use, as crates/berth/tests/rootless.rs does), with its
# home, XDG_RUNTIME_DIR, containers.conf and storage under one temp dir, and runs
# Podman as that user (setpriv). It runs in a private mount namespace where
# /dev/fuse and /dev/net/tun, when the user cannot open the host's (root-only nodes
# on a host without udev), are covered by nodes of the test's own owned by the user:
# the host's nodes are not changed. At the end, on failure and on SIGTERM too: the
# user's containers and storage go (as the user, `podman unshare rm -rf`), every
# process of the user and of its subordinate ids is killed (the rootless pause
# process, conmon, slirp4netns, fuse-overlayfs), mounts under the temp dir are
# unmounted, the user and its subid lines are removed, and the temp dir.
#
#   hack/engines/podman-rootless.sh                 # runc and berth
#   RUNTIMES="berth=target/release/berth" hack/engines/podman-rootless.sh
#
# Skipped, with the reason, where the host cannot run rootless containers at all:
# user namespaces disabled for unprivileged users, no setuid newuidmap/newgidmap,
# no /dev/fuse or /dev/net/tun device.
#
# Output: PASS/FAIL/SKIP lines tagged [runtime], then "N passed, N failed".
set -uo pipefail

cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=hack/lib/bundle.sh
. hack/lib/bundle.sh
# shellcheck source=hack/lib/engine.sh
. hack/lib/engine.sh

STEP_TIMEOUT=${STEP_TIMEOUT:-60}
BUSYBOX=localhost/berth-test/busybox
SUBID_COUNT=65536
USER_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# --- the inner half: root in a private mount namespace, Podman as the test user ---
if [ "${1:-}" = --inner ]; then
    work=$2
    shift 3
    # The test user, from the outer half.
    uid=$PR_UID
    gid=$PR_GID
    subid=$PR_SUBID
    u=$work/u # everything the user owns
    xdg=$u/xdg

    # user_dev NODE: cover the host's device NODE, which the user cannot open, with
    # a node of its own (same device number, owned by the user, mode 0600) on a
    # tmpfs of this mount namespace.
    user_dev() {
        local node=$1 t
        [ -c "$node" ] || return 1
        setpriv --reuid "$uid" --regid "$gid" --clear-groups -- test -r "$node" -a -w "$node" && return 0
        if ! findmnt -rn "$work/dev" >/dev/null; then
            mkdir -p "$work/dev"
            mount -t tmpfs -o mode=0755,size=64k berth-dev "$work/dev" || return 1
        fi
        t=$work/dev/$(basename "$node")
        mknod -m 0600 "$t" c "$((16#$(stat -c %t "$node")))" "$((16#$(stat -c %T "$node")))" &&
            chown "$uid:$gid" "$t" && mount --bind "$t" "$node" || return 1
        echo "# $node is $(stat -c '%U:%G %a' "$t") in this mount namespace (a node of the test's own; the host's is root-only)"
    }
    for d in /dev/fuse /dev/net/tun; do
        if ! user_dev "$d"; then
            echo "FAIL: cannot give the test user a usable $d in the test's mount namespace"
            echo "0 passed, 1 failed"
            exit 1
        fi
    done

    # Each runtime under test: a named runtime of containers.conf whose path is a
    # wrapper that logs its arguments and execs the runtime with no --root, so the
    # runtime picks its own rootless state root ($XDG_RUNTIME_DIR/<runtime>). A
    # runtime binary the user cannot execute (under a private home) is copied.
    mkdir -p "$work/bin"
    runtimes_conf=""
    for spec in "$@"; do
        name=${spec%%=*}
        rt=${spec#*=}
        if ! setpriv --reuid "$uid" --regid "$gid" --clear-groups -- test -x "$rt"; then
            cp "$rt" "$work/bin/$name" && chmod 0755 "$work/bin/$name"
            rt=$work/bin/$name
        fi
        {
            echo '#!/bin/sh'
            echo "echo \"\$*\" >>\"$u/logs/calls-$name.log\""
            echo "exec \"$rt\" \"\$@\""
        } >"$work/rt-$name"
        chmod 0755 "$work/rt-$name"
        runtimes_conf+="test-$name = [\"$work/rt-$name\"]"$'\n'
    done
    # As the user: its directories (XDG_RUNTIME_DIR 0700, as Podman wants it).
    as_user=(setpriv --reuid "$uid" --regid "$gid" --clear-groups --
        env -i -C "$u" PATH="$USER_PATH" HOME="$u/home" USER="$PR_USER" LOGNAME="$PR_USER"
        XDG_RUNTIME_DIR="$xdg" XDG_CONFIG_HOME="$u/home/.config" XDG_DATA_HOME="$u/home/.local/share"
        CONTAINERS_CONF="$work/containers.conf" TMPDIR="$u/tmp")
    "${as_user[@]}" sh -c 'umask 077 && mkdir -p home xdg tmp logs storage run &&
        chmod 0755 logs' || {
        echo "FAIL: the test user cannot make its directories under $u"
        echo "0 passed, 1 failed"
        exit 1
    }
    cat >"$work/containers.conf" <<CONF
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
[engine.runtimes]
$runtimes_conf
CONF
    chmod 0644 "$work/containers.conf"

    wrapper=
    pod() {
        timeout --kill-after=5 "$STEP_TIMEOUT" "${as_user[@]}" podman --root "$u/storage" \
            --runroot "$u/run" --storage-driver overlay \
            --storage-opt overlay.mount_program=/usr/bin/fuse-overlayfs \
            --cgroup-manager=cgroupfs --runtime "$wrapper" "$@"
    }
    # remove_storage: the storage holds files of the user's subordinate ids: removed
    # from inside its user namespace (podman unshare), where the overlay driver keeps
    # its home bind-mounted. Podman re-creates the store's empty skeleton as it exits
    # (the user's own files), which the user then removes.
    storage_removed=
    remove_storage() {
        pod unshare sh -c 'findmnt -rn -o TARGET | grep "^$1/" | sort -r |
            while read -r m; do umount -l "$m"; done; rm -rf "$1/storage" "$1/run"' \
            sh "$u" >/dev/null 2>"$work/err" || return 1
        [ -z "$(find "$u/storage" "$u/run" ! -user "$uid" 2>/dev/null | head -n 1)" ] || return 1
        "${as_user[@]}" rm -rf "$u/storage" "$u/run" 2>>"$work/err" &&
            [ ! -e "$u/storage" ] && [ ! -e "$u/run" ]
    }
    # shellcheck disable=SC2317  # called through the trap
    inner_cleanup() {
        trap '' TERM INT # finish cleaning up even if stopped again
        [ -n "$wrapper" ] || wrapper=/usr/sbin/runc
        if [ -z "$storage_removed" ]; then
            pod rm -af -t 0 >/dev/null 2>&1
            remove_storage ||
                echo "# podman unshare rm -rf of the storage failed (left to the outer cleanup): $(t_err "$work/err")"
        fi
        umount_under "$work"
    }
    trap inner_cleanup EXIT
    trap 'exit 143' TERM
    trap 'exit 130' INT

    # The image, once, shared by every runtime; the first podman call also makes the
    # user's namespace (newuidmap/newgidmap) and its pause process.
    T_RT=podman
    wrapper=/usr/sbin/runc
    make_busybox_rootfs "$work/rootfs"
    tar -C "$work/rootfs" --numeric-owner -cf "$work/rootfs.tar" . && chmod 0644 "$work/rootfs.tar"
    s=$(pod info --format '{{.Host.Security.Rootless}} {{.Store.GraphDriverName}} {{index .Store.GraphOptions "overlay.mount_program"}}' 2>"$work/err")
    if [[ $s == "true overlay "*fuse-overlayfs* ]]; then
        t_pass "podman info as uid $uid: rootless, overlay storage through fuse-overlayfs"
    else
        t_fail "podman info as uid $uid: '$s' (want rootless true, overlay, fuse-overlayfs), $(t_err "$work/err")"
    fi
    s=$(pod unshare cat /proc/self/uid_map 2>"$work/err" | tr -s ' \n' ' ')
    if [ "$s" = " 0 $uid 1 1 $subid $SUBID_COUNT " ]; then
        t_pass "the user's namespace: 0 -> $uid, 1.. -> $subid ($SUBID_COUNT ids, from /etc/subuid)"
    else
        t_fail "the user's namespace: uid_map '$s' (want 0 $uid 1, 1 $subid $SUBID_COUNT), $(t_err "$work/err")"
    fi
    if pod import -q "$work/rootfs.tar" "$BUSYBOX" >/dev/null 2>"$work/err"; then
        t_pass "podman import: $BUSYBOX"
    else
        t_fail "podman import: $(t_err "$work/err")"
        t_summary
        exit 1
    fi

    # shellcheck source=hack/engines/podman-scenarios.sh
    . hack/engines/podman-scenarios.sh # expect, wait_status

    # rootless_scenarios: the scenarios, for the runtime T_RT.
    rootless_scenarios() {
        local n="r$$-$T_RT" d s cid root t0 secs i mode log=$u/logs/calls-$T_RT.log
        local vol=$u/vol-$T_RT allcaps
        allcaps=$(printf '%016x' $(((1 << ($(cat /proc/sys/kernel/cap_last_cap) + 1)) - 1)))
        local maps='id -u; id -g; while read a b c; do echo $a $b $c; done </proc/self/uid_map'

        # --- one-shot runs ---
        expect "run --rm echo: output" 0 'hello-rootless' run --rm "$BUSYBOX" echo hello-rootless
        expect "run sh -c 'exit 3': exit code 3" 3 '' run --rm "$BUSYBOX" sh -c 'exit 3'
        expect "uid 0 inside, uid_map 0 -> $uid and 1.. -> $subid" 0 \
            "0\|0\|0 $uid 1\|1 $subid $SUBID_COUNT" run --rm "$BUSYBOX" sh -c "$maps"
        expect "gid_map 0 -> $gid and 1.. -> $subid" 0 "0 $gid 1\|1 $subid $SUBID_COUNT" \
            run --rm "$BUSYBOX" sh -c 'while read a b c; do echo $a $b $c; done </proc/self/gid_map'
        expect "run --user 1000:1000: a subordinate id" 0 '1000 1000' \
            run --rm --user 1000:1000 "$BUSYBOX" sh -c 'echo $(id -u) $(id -g)'
        expect "run --network slirp4netns: lo and tap0 10.0.2.100, default route via 10.0.2.2" 0 \
            'lo tap0\|lo 127\.0\.0\.1/8\|tap0 10\.0\.2\.100/24\|default via 10\.0\.2\.2 dev tap0' \
            run --rm --network slirp4netns "$BUSYBOX" sh -c 'echo $(ls /sys/class/net);
                for i in lo tap0; do set -- $(ip -o -4 addr show dev $i); echo $i $4; done;
                ip route | grep ^default | cut -d" " -f1-5'
        expect "run --network none: only lo" 0 'lo' run --rm --network none "$BUSYBOX" ls /sys/class/net
        expect "run -t: stdout is a terminal" 0 '/dev/pts/[0-9]+' run --rm -t "$BUSYBOX" tty
        expect "run --init: catatonit is pid 1" 0 '(podman-init|catatonit) [0-9]+' \
            run --rm --init "$BUSYBOX" sh -c 'echo $(cat /proc/1/comm) $$'
        expect "run --read-only --tmpfs /scratch: / read-only, tmpfs writable" 0 'ro|tmpfs-ok' \
            run --rm --read-only --tmpfs /scratch "$BUSYBOX" \
            sh -c 'touch /etc/x 2>/dev/null && echo rw || echo ro; touch /scratch/y && echo tmpfs-ok'
        expect "run --cap-drop ALL: no effective capability" 0 'CapEff:	0000000000000000' \
            run --rm --cap-drop ALL "$BUSYBOX" grep CapEff /proc/self/status
        # keep-id: a user namespace of the container's own, nested in the user's, that
        # maps the user's uid to itself (the runtime writes the maps from the parent).
        expect "run --userns keep-id: the user's own uid and gid inside, a nested user namespace" 0 \
            "$uid $gid\|0 1 $uid\|$uid 0 1\|$((uid + 1)) $((uid + 1)) $((SUBID_COUNT - uid))" \
            run --rm --userns keep-id "$BUSYBOX" \
            sh -c 'echo $(id -u) $(id -g); while read a b c; do echo $a $b $c; done </proc/self/uid_map'
        expect "run --uidmap 0:1:100 --uidmap 100:0:1: a nested user namespace of two ranges" 0 \
            '0\|0 1 100\|100 0 1' run --rm --uidmap 0:1:100 --uidmap 100:0:1 --gidmap 0:1:100 \
            --gidmap 100:0:1 "$BUSYBOX" sh -c 'id -u; while read a b c; do echo $a $b $c; done </proc/self/uid_map'
        expect "run --privileged: every capability of the user's namespace" 0 "CapEff:	$allcaps" \
            run --rm --privileged "$BUSYBOX" grep CapEff /proc/self/status
        expect "run --ulimit nofile=100:200" 0 '100\|200' \
            run --rm --ulimit nofile=100:200 "$BUSYBOX" sh -c 'ulimit -n; ulimit -Hn'
        expect "run --security-opt no-new-privileges" 0 'NoNewPrivs:	1' \
            run --rm --security-opt no-new-privileges "$BUSYBOX" grep NoNewPrivs /proc/self/status

        # --- files the container makes in a bind mount belong to the user ---
        "${as_user[@]}" sh -c "mkdir -p '$vol' && echo from-host >'$vol/host'"
        expect "run -v: the container reads the user's file" 0 'from-host' \
            run --rm -v "$vol:/data" "$BUSYBOX" sh -c \
            'cat /data/host; echo x >/data/by-root; echo y >/data/by-1000; chown 1000:1000 /data/by-1000'
        s="$(stat -c %u:%g "$vol/by-root" 2>&1) $(stat -c %u:%g "$vol/by-1000" 2>&1)"
        if [ "$s" = "$uid:$gid $((subid + 999)):$((subid + 999))" ]; then
            t_pass "run -v: the container's root writes as $uid:$gid on the host, its uid 1000 as $((subid + 999))"
        else
            t_fail "run -v: host owners '$s' (want $uid:$gid $((subid + 999)):$((subid + 999)))"
        fi

        # --- a detached container: exec, the runtime's rootless state, stop, rm ---
        d="$n-d"
        if ! pod run -d --name "$d" "$BUSYBOX" \
            sh -c 'trap "exit 7" TERM; trap "echo got-usr1" USR1; echo started; while :; do sleep 0.1; done' >/dev/null 2>"$work/err"; then
            t_fail "run -d: $(t_err "$work/err")"
        elif ! s=$(wait_status "$d" running); then
            t_fail "run -d: status '$s', not running"
        else
            t_pass "run -d: running"
        fi
        expect "exec: output" 0 'in-exec' exec "$d" echo in-exec
        expect "exec: exit code 5" 5 '' exec "$d" sh -c 'exit 5'
        expect "exec: uid 0 in the init's user namespace" 0 '0 same' exec "$d" \
            sh -c 'echo $(id -u) $([ "$(readlink /proc/self/ns/user)" = "$(readlink /proc/1/ns/user)" ] && echo same)'
        expect "exec --user 1000 -e X=1 -w /tmp" 0 '1000 1 /tmp' exec --user 1000 -e X=1 -w /tmp "$d" \
            sh -c 'echo $(id -u) $X $(pwd)'
        expect "exec -t: a terminal" 0 '/dev/pts/[0-9]+' exec -t "$d" tty
        pod kill -s USR1 "$d" >/dev/null 2>"$work/err"
        for ((i = 0; i < 30; i++)); do
            grep -q got-usr1 < <(pod logs "$d" 2>/dev/null) && break
            sleep 0.1
        done
        if grep -q got-usr1 < <(pod logs "$d" 2>/dev/null); then
            t_pass "kill -s USR1: the container's trap ran"
        else
            t_fail "kill -s USR1: no 'got-usr1' in the logs ($(t_err "$work/err"))"
        fi
        # The runtime ran rootless: its state under the user's XDG_RUNTIME_DIR (or the
        # --root Podman gave it), owned by the user; no cgroup named for the container.
        cid=$(pod inspect -f '{{.Id}}' "$d" 2>/dev/null)
        root=$(grep -o -- '--root [^ ]*' "$log" 2>/dev/null | tail -n 1 | cut -d' ' -f2)
        root=${root:-$xdg/$T_RT}
        s=$(stat -c %u "$root/$cid/state.json" 2>&1)
        # runc's state.json says config.rootless_cgroups, berth's cgroup.rootless.
        mode=$(jq -r 'if has("cgroup") then .cgroup.rootless else .config.rootless_cgroups end' \
            "$root/$cid/state.json" 2>&1)
        if [ -n "$cid" ] && [ "$s" = "$uid" ] && [ "$mode" = true ] &&
            [ -z "$(find /sys/fs/cgroup -maxdepth 4 -name "*$cid*" 2>/dev/null | head -n 1)" ]; then
            t_pass "rootless runtime: state in ${root#"$u"/} owned by uid $uid, rootless cgroups, no cgroup directory made"
        else
            t_fail "rootless runtime: state '$root/${cid:-?}/state.json' owner '$s' (want $uid), rootless cgroups '$mode' (want true), cgroups: $(find /sys/fs/cgroup -maxdepth 4 -name "*${cid:-none}*" 2>/dev/null | head -n 2 | paste -sd' ')"
        fi
        t0=$(date +%s.%N)
        pod stop -t 10 "$d" >/dev/null 2>"$work/err"
        secs=$(printf "%.2f" "$(echo "$(date +%s.%N) - $t0" | bc)")
        s=$(pod inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$d" 2>/dev/null)
        if [ "$s" = "exited 7" ] && [ "$(echo "$secs < 5" | bc)" = 1 ]; then
            t_pass "stop, TERM handled: exited 7 in ${secs}s"
        else
            t_fail "stop, TERM handled: state '$s' after ${secs}s (want exited 7 within 5s), $(t_err "$work/err")"
        fi
        expect "logs: the container's output" 0 'started\|got-usr1' logs "$d"
        if pod rm "$d" >/dev/null 2>"$work/err" && ! pod container exists "$d" && [ ! -e "$root/$cid" ]; then
            t_pass "rm: container and runtime state gone"
        else
            t_fail "rm: $(t_err "$work/err"); state dir: $(ls -d "$root/$cid" 2>&1)"
        fi
        # pid 1 has no TERM handler (the kernel ignores TERM): stop KILLs after -t 2.
        pod run -d --name "$d-kill" "$BUSYBOX" sleep 300 >/dev/null 2>"$work/err"
        wait_status "$d-kill" running >/dev/null
        t0=$(date +%s.%N)
        pod stop -t 2 "$d-kill" >/dev/null 2>>"$work/err"
        secs=$(printf "%.2f" "$(echo "$(date +%s.%N) - $t0" | bc)")
        s=$(pod inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$d-kill" 2>/dev/null)
        if [ "$s" = "exited 137" ] && [ "$(echo "$secs >= 1.8 && $secs < 10" | bc)" = 1 ]; then
            t_pass "stop -t 2, TERM ignored: KILLed after the timeout (exit 137, ${secs}s)"
        else
            t_fail "stop -t 2: state '$s' after ${secs}s (want exited 137 after 2-10s), $(t_err "$work/err")"
        fi
        pod rm -f "$d-kill" >/dev/null 2>&1
        pod run -d --name "$d-rm" "$BUSYBOX" sleep 300 >/dev/null 2>"$work/err"
        wait_status "$d-rm" running >/dev/null
        if pod rm -f -t 0 "$d-rm" >/dev/null 2>>"$work/err" && ! pod container exists "$d-rm"; then
            t_pass "rm -f of a running container"
        else
            t_fail "rm -f: $(t_err "$work/err")"
        fi

        # --- what is left, and who was called ---
        s="containers=$(pod ps -aq 2>/dev/null | wc -l) state=$(find "$root" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)"
        if [ "$s" = "containers=0 state=0" ]; then t_pass "nothing left ($s)"; else t_fail "left behind: $s"; fi
        s=$(grep -cE '(^| )create ' "$log" 2>/dev/null)
        if [ "${s:-0}" -gt 0 ]; then
            t_pass "the runtime was $T_RT: $(wc -l <"$log") calls through its wrapper ($s create)"
        else
            t_fail "the wrapper of $T_RT logged no create: $(wc -l <"$log" 2>/dev/null || echo 0) calls"
        fi
        return 0
    }

    for spec in "$@"; do
        T_RT=${spec%%=*}
        wrapper="test-$T_RT"
        failed_before=$T_FAILED
        rootless_scenarios
        t_last_calls "$failed_before" "$u/logs/calls-$T_RT.log"
    done
    # The user's containers, then its storage, as at the end of a user's session.
    T_RT=podman
    if pod rm -af -t 0 >/dev/null 2>"$work/err" && remove_storage; then
        t_pass "podman rm -af, podman unshare rm -rf of the storage: nothing left under the user's root"
    else
        t_fail "removing the user's containers and storage: $(t_err "$work/err"); left: $(find "$u/storage" "$u/run" -maxdepth 1 2>&1 | head -n 4 | paste -sd" ")"
    fi
    storage_removed=1
    t_summary
    exit
fi

# --- the outer half: the checks, the test user, the namespace and cleanup ---
BERTH=${BERTH:-${CARGO_TARGET_DIR:-target}/release/berth}
RUNTIMES=${RUNTIMES:-"runc=/usr/sbin/runc berth=$BERTH"}
engine_runtimes
engine_need "hack/install-deps.sh" podman conmon fuse-overlayfs slirp4netns unshare findmnt \
    setpriv useradd userdel groupdel flock bc jq

T_RT=host
# host_cannot: print why this host cannot run rootless containers (and succeed), or
# fail when it can.
host_cannot() {
    local f
    for f in /proc/sys/kernel/unprivileged_userns_clone /proc/sys/user/max_user_namespaces; do
        [ "$(cat "$f" 2>/dev/null)" = 0 ] && { echo "$f is 0 (no user namespaces for unprivileged users)"; return 0; }
    done
    [ "$(cat /proc/sys/kernel/apparmor_restrict_unprivileged_userns 2>/dev/null)" = 1 ] &&
        { echo "kernel.apparmor_restrict_unprivileged_userns is 1"; return 0; }
    for f in /usr/bin/newuidmap /usr/bin/newgidmap; do
        [ -x "$f" ] || { echo "$f is missing (Debian package uidmap)"; return 0; }
        [ -u "$f" ] || [ -n "$(getcap "$f" 2>/dev/null)" ] || { echo "$f is neither setuid nor has file capabilities"; return 0; }
    done
    for f in /dev/fuse /dev/net/tun; do
        [ -c "$f" ] || { echo "no $f device (fuse-overlayfs and slirp4netns need it)"; return 0; }
    done
    return 1
}
if [ "$(id -u)" -ne 0 ]; then
    echo "FAIL: must run as root (it makes a test user)"
    echo "0 passed, 1 failed"
    exit 1
fi
for f in /etc/subuid /etc/subgid; do
    [ -f "$f" ] || {
        echo "FAIL: no $f (Debian's passwd package makes it; useradd and newuidmap need it)"
        echo "0 passed, 1 failed"
        exit 1
    }
done
if why=$(host_cannot); then
    t_skip "rootless Podman: $why"
    t_summary
    exit 0
fi

work=$(mktemp -d /tmp/berth-podman-rootless.XXXXXX)
chmod 0711 "$work"
cgparent=- # no cgroups: rootless on cgroup v1
PR_USER=
PR_UID=
PR_SUBID=

# user_pids: the processes of the test user or of its subordinate ids (any of the
# real, effective, saved or filesystem uids).
# shellcheck disable=SC2317  # called from the trap
user_pids() {
    local p line ids i
    for p in /proc/[0-9]*; do
        line=$(grep -m1 '^Uid:' "$p/status" 2>/dev/null) || continue
        read -ra ids <<<"${line#Uid:}"
        for i in "${ids[@]}"; do
            if [ "$i" = "$PR_UID" ] || { [ -n "$PR_SUBID" ] && [ "$i" -ge "$PR_SUBID" ] &&
                [ "$i" -lt $((PR_SUBID + SUBID_COUNT)) ]; }; then
                echo "${p#/proc/}"
                break
            fi
        done
    done
}

# drop_subid_lines: the test user's lines out of /etc/subuid and /etc/subgid (the
# files rewritten in place, under a lock on each).
# shellcheck disable=SC2317  # called from the trap
drop_subid_lines() {
    local f tmp
    tmp=$(mktemp /tmp/berth-subid.XXXXXX)
    for f in /etc/subuid /etc/subgid; do
        # grep -v: 1 when no line is left (an empty file is right), 2 on an error.
        flock "$f" sh -c 'grep -v "^$1:" "$2" >"$3"; [ $? -le 1 ] && cat "$3" >"$2"' \
            sh "$PR_USER" "$f" "$tmp"
    done
    rm -f "$tmp"
}

# shellcheck disable=SC2317  # called through the trap
outer_cleanup() {
    local i pids left=""
    trap '' TERM INT # finish cleaning up even if stopped again
    # Stopped from outside (a stage timeout): the inner half removes its containers first.
    stop_pid "$inner_pid" 30
    if [ -n "$PR_UID" ]; then
        for ((i = 0; i < 50; i++)); do
            pids=$(user_pids)
            [ -z "$pids" ] && break
            # shellcheck disable=SC2086
            kill -KILL $pids 2>/dev/null
            sleep 0.1
        done
        [ -n "$(user_pids)" ] && left+=" processes: $(user_pids | paste -sd' ')"
    fi
    umount_under "$work"
    if [ -n "$PR_USER" ]; then
        timeout 30 userdel "$PR_USER" >/dev/null 2>&1
        getent group "$PR_USER" >/dev/null && timeout 30 groupdel "$PR_USER" >/dev/null 2>&1
        drop_subid_lines
        getent passwd "$PR_USER" >/dev/null && left+=" user $PR_USER"
        getent group "$PR_USER" >/dev/null && left+=" group $PR_USER"
        grep -qs "^$PR_USER:" /etc/subuid /etc/subgid && left+=" subid lines"
    fi
    rm -rf "$work"
    [ -e "$work" ] && left+=" $work"
    if [ -n "$left" ]; then
        echo "FAIL: [host] cleanup left:$left"
        exit 1
    fi
}
inner_pid=
trap outer_cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# The test user: a free uid (and group) from 20000 up, and a subordinate range after
# every range in use in /etc/subuid and /etc/subgid.
for ((cand = 20000 + $$ % 20000; cand < 60000; cand++)); do
    getent passwd "$cand" >/dev/null || getent group "$cand" >/dev/null ||
        getent passwd "brp$cand" >/dev/null || getent group "brp$cand" >/dev/null || break
done
if ! timeout 30 useradd -M -U -u "$cand" -s /bin/sh -d "$work/u/home" \
    -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "brp$cand" 2>"$work/err"; then
    echo "FAIL: useradd brp$cand: $(t_err "$work/err")"
    echo "0 passed, 1 failed"
    exit 1
fi
PR_UID=$cand
PR_USER=brp$cand
PR_GID=$(id -g "$PR_USER")
# Both files under their locks while the range is chosen and written.
exec 8</etc/subuid 9</etc/subgid
flock 8 && flock 9
PR_SUBID=$(cat /etc/subuid /etc/subgid | awk -F: 'NF >= 3 && $2 ~ /^[0-9]+$/ && $3 ~ /^[0-9]+$/ {
    if ($2 + $3 > m) m = $2 + $3 } END { if (m < 100000) m = 100000; print m }')
for f in /etc/subuid /etc/subgid; do
    [ -s "$f" ] && [ "$(tail -c 1 "$f")" != "" ] && echo >>"$f"
    echo "$PR_USER:$PR_SUBID:$SUBID_COUNT" >>"$f"
done
exec 8<&- 9<&-
export PR_USER PR_UID PR_GID PR_SUBID
echo "test user $PR_USER: uid $PR_UID gid $PR_GID, subordinate ids $PR_SUBID-$((PR_SUBID + SUBID_COUNT - 1))"
mkdir -p "$work/u"
chown "$PR_UID:$PR_GID" "$work/u"
chmod 0700 "$work/u"

# A user namespace the user makes alone (no helper): refused where a policy forbids it.
if ! timeout 30 setpriv --reuid "$PR_UID" --regid "$PR_GID" --clear-groups -- \
    unshare --user --map-root-user true 2>"$work/err"; then
    t_skip "rootless Podman: uid $PR_UID cannot make a user namespace: $(t_err "$work/err")"
    t_summary
    exit 0
fi

engine_run_inner podman-rootless $((STEP_TIMEOUT * 10)) -m --propagation private
