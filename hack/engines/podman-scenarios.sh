# shellcheck shell=bash disable=SC2016,SC2154  # container commands in single quotes; $work etc. from the caller
# The Podman scenarios, sourced by hack/engines/podman.sh inside its namespaces, run
# once per runtime. Uses pod(), $work, $cgparent, ulim[], $BUSYBOX, $APP and the
# tally of hack/lib/engine.sh. Basic runs first, then what needs exec/pause/ps verbs.

# expect NAME WANT_RC REGEX PODMAN_ARGS...: t_expect on podman.
expect() {
    local name=$1 want_rc=$2 want=$3
    shift 3
    t_expect "$name" "$want_rc" "$want" pod "$@"
}

# wait_status NAME STATUS: poll `podman inspect` until the container's status is
# STATUS (5 s at most).
wait_status() {
    local i s
    for ((i = 0; i < 50; i++)); do
        s=$(pod inspect -f '{{.State.Status}}' "$1" 2>/dev/null)
        [ "$s" = "$2" ] && return 0
        sleep 0.1
    done
    echo "$s"
    return 1
}

# leak_count: mounts, cgroup directories under our parent, runtime state entries and
# podman containers, as one string to compare before/after.
leak_count() {
    echo "mounts=$(findmnt -rn | wc -l) cgroups=$(cgroup_dirs "$cgparent" | wc -l)" \
        "state=$(find "$work/root-$T_RT" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)" \
        "containers=$(pod ps -aq 2>/dev/null | wc -l)"
}

podman_scenarios() {
    local R=(--rm --cgroup-parent "$cgparent" "${ulim[@]}")
    local n="e$$-$T_RT" out rc t0 secs s cid

    # --- one-shot runs ---
    expect "run echo: output" 0 'hello-from-podman' run "${R[@]}" "$BUSYBOX" echo hello-from-podman
    expect "run sh -c 'exit 3': exit code 3" 3 '' run "${R[@]}" "$BUSYBOX" sh -c 'exit 3'
    expect "run -e FOO=bar: env" 0 'bar /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        run "${R[@]}" -e FOO=bar "$BUSYBOX" sh -c 'echo $FOO $PATH'
    expect "run -w /tmp: workdir" 0 '/tmp' \
        run "${R[@]}" -w /tmp "$BUSYBOX" pwd
    expect "run --user 65534:65534" 0 '65534 65534' run "${R[@]}" --user 65534:65534 "$BUSYBOX" sh -c 'echo $(id -u) $(id -g)'
    expect "app image: USER app, WORKDIR, ENV and entrypoint script" 0 \
        'entrypoint: user=app uid=1000 cwd=/home/app args=a b' run "${R[@]}" "$APP" a b
    expect "app image: ENV GREETING reaches the process" 0 'hello' \
        run "${R[@]}" --entrypoint /bin/sh "$APP" -c 'echo $GREETING'
    expect "run --read-only: / read-only, /tmp writable" 0 'ro|tmp-ok' run "${R[@]}" --read-only "$BUSYBOX" \
        sh -c 'touch /etc/x 2>/dev/null && echo rw || echo ro; touch /tmp/y && echo tmp-ok'
    echo from-host >"$work/vol/host"
    rm -f "$work/vol/ctr"
    expect "run -v bind volume: read and write" 0 'from-host' run "${R[@]}" -v "$work/vol:/data" "$BUSYBOX" \
        sh -c 'echo from-container >/data/ctr; cat /data/host'
    if [ "$(cat "$work/vol/ctr" 2>/dev/null)" = from-container ]; then
        t_pass "run -v bind volume: container's write visible on the host"
    else
        t_fail "run -v bind volume: $work/vol/ctr not written by the container"
    fi
    expect "run --tmpfs /scratch" 0 'tmpfs' run "${R[@]}" --tmpfs /scratch:size=1m "$BUSYBOX" \
        sh -c 'awk '\''$2 == "/scratch" {print $3}'\'' /proc/mounts'
    expect "run --memory 64m: limit seen inside (cgroup mount)" 0 '67108864' run "${R[@]}" --memory 64m "$BUSYBOX" \
        cat /sys/fs/cgroup/memory/memory.limit_in_bytes
    out=$(pod run --name "$n-oom" --cgroup-parent "$cgparent" "${ulim[@]}" --memory 32m --memory-swap 32m \
        "$BUSYBOX" dd if=/dev/zero of=/dev/null bs=128M count=1 2>"$work/err") && rc=0 || rc=$?
    s=$(pod inspect -f '{{.State.OOMKilled}}' "$n-oom" 2>/dev/null)
    if [ "$rc" -eq 137 ] && [ "$s" = true ]; then
        t_pass "run --memory 32m, dd bs=128M: OOM killed, exit 137, OOMKilled true"
    else
        t_fail "run --memory 32m OOM: exit $rc (want 137), OOMKilled '$s', stderr: $(t_err "$work/err")"
    fi
    pod rm -f "$n-oom" >/dev/null 2>&1
    expect "run --pids-limit 20: limit seen inside (cgroup mount)" 0 '20' run "${R[@]}" --pids-limit 20 "$BUSYBOX" cat /sys/fs/cgroup/pids/pids.max
    expect "run --cpus 0.5: quota seen inside (cgroup mount)" 0 '50000 100000' run "${R[@]}" --cpus 0.5 "$BUSYBOX" \
        sh -c 'echo $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)'
    # The same limits read from the host side: applied, whatever the container sees.
    pod run -d --name "$n-lim" --cgroup-parent "$cgparent" "${ulim[@]}" --memory 64m --pids-limit 20 \
        --cpus 0.5 "$BUSYBOX" sleep 300 >/dev/null 2>"$work/err"
    cid=$(pod inspect -f '{{.Id}}' "$n-lim" 2>/dev/null)
    s=$(cd /sys/fs/cgroup 2>/dev/null && cat "memory$cgparent/libpod-$cid/memory.limit_in_bytes" \
        "pids$cgparent/libpod-$cid/pids.max" "cpu$cgparent/libpod-$cid/cpu.cfs_quota_us" 2>/dev/null | paste -sd' ')
    if [ "$s" = "67108864 20 50000" ]; then
        t_pass "--memory 64m --pids-limit 20 --cpus 0.5: applied to the container's cgroups (host side)"
    else
        t_fail "limits on the host side: '$s' under $cgparent/libpod-${cid:-?} (want '67108864 20 50000'), $(t_err "$work/err")"
    fi
    pod rm -f -t 0 "$n-lim" >/dev/null 2>&1
    expect "run --cap-drop ALL --cap-add NET_ADMIN: CapEff" 0 'CapEff:	0000000000001000' \
        run "${R[@]}" --cap-drop ALL --cap-add NET_ADMIN "$BUSYBOX" grep CapEff /proc/self/status
    expect "run --cap-drop CHOWN: chown refused" 0 'refused' run "${R[@]}" --cap-drop CHOWN "$BUSYBOX" \
        sh -c 'touch /tmp/f; chown 65534 /tmp/f 2>/dev/null && echo allowed || echo refused'
    expect "run --security-opt no-new-privileges" 0 'NoNewPrivs:	1' \
        run "${R[@]}" --security-opt no-new-privileges "$BUSYBOX" grep NoNewPrivs /proc/self/status
    expect "run --hostname: pid 1 and hostname" 0 '1 berth-podman' \
        run "${R[@]}" --hostname berth-podman "$BUSYBOX" sh -c 'echo $$ $(hostname)'
    expect "run --network none: only lo" 0 'lo' run "${R[@]}" --network none "$BUSYBOX" ls /sys/class/net
    expect "run --network bridge (default network, in the test's own netns): eth0 10.88.x, default route" 0 \
        'eth0 10\.88\.[0-9.]+\|default via 10\.88\.0\.1' run "${R[@]}" --network bridge "$BUSYBOX" \
        sh -c 'ip -o -4 addr show eth0 | awk '\''{print $2, $4}'\'' | cut -d/ -f1; ip route | grep default | cut -d" " -f1-3'
    expect "run -t: stdout is a terminal" 0 '/dev/pts/[0-9]+' run "${R[@]}" -t "$BUSYBOX" tty
    expect "run --init: catatonit is pid 1, the command is not" 0 '(podman-init|catatonit) [0-9]+' \
        run "${R[@]}" --init "$BUSYBOX" sh -c 'echo $(cat /proc/1/comm) $$'

    # --- --rm leaves nothing behind ---
    rm -f "$work/cid"
    pod run "${R[@]}" --cidfile "$work/cid" "$BUSYBOX" true >/dev/null 2>"$work/err"
    cid=$(cat "$work/cid" 2>/dev/null)
    if [ -z "$cid" ]; then
        t_fail "run --rm: no container id ($(t_err "$work/err"))"
    else
        s=""
        pod container exists "$cid" && s+=" podman-container"
        [ -e "$work/root-$T_RT/$cid" ] && s+=" runtime-state"
        [ -n "$(find /sys/fs/cgroup -name "*$cid*" 2>/dev/null | head -1)" ] && s+=" cgroup"
        grep -q "$cid" < <(findmnt -rn -o TARGET) && s+=" mount"
        if [ -z "$s" ]; then t_pass "run --rm: no container, state dir, cgroup or mount left"; else t_fail "run --rm left:$s"; fi
    fi

    # --- 20 runs in a loop ---
    local before after i bad=0
    before=$(leak_count)
    for ((i = 0; i < 20; i++)); do
        out=$(pod run "${R[@]}" "$BUSYBOX" echo "loop-$i" 2>"$work/err") || bad=$((bad + 1))
        [ "$out" = "loop-$i" ] || bad=$((bad + 1))
    done
    after=$(leak_count)
    if [ "$bad" -eq 0 ] && [ "$before" = "$after" ]; then
        t_pass "20 runs in a loop: all ok, no leak ($after)"
    else
        t_fail "20 runs in a loop: $bad bad runs, before ($before) after ($after), stderr: $(t_err "$work/err")"
    fi

    # --- a detached container: exec, top, pause, kill -s, logs, stats, commit, stop ---
    local d="$n-d"
    if ! pod run -d --name "$d" --cgroup-parent "$cgparent" "${ulim[@]}" "$BUSYBOX" \
        sh -c 'echo committed >/marker; trap "echo got-usr1" USR1; echo started; while :; do sleep 0.1; done' >/dev/null 2>"$work/err"; then
        t_fail "run -d: $(t_err "$work/err")"
    elif ! s=$(wait_status "$d" running); then
        t_fail "run -d: status '$s', not running"
    else
        t_pass "run -d: running"
    fi
    expect "exec: output" 0 'in-exec' exec "$d" echo in-exec
    expect "exec: exit code 5" 5 '' exec "$d" sh -c 'exit 5'
    expect "exec --user 65534 -e X=1 -w /tmp" 0 '65534 1 /tmp' exec --user 65534 -e X=1 -w /tmp "$d" \
        sh -c 'echo $(id -u) $X $(pwd)'
    expect "exec -t: a terminal" 0 '/dev/pts/[0-9]+' exec -t "$d" tty
    expect "top: the container's processes" 0 '.*sleep.*' top "$d"
    if pod pause "$d" >/dev/null 2>"$work/err" && s=$(wait_status "$d" paused); then
        t_pass "pause: status paused"
    else
        t_fail "pause: status '${s:-}', $(t_err "$work/err")"
    fi
    if pod unpause "$d" >/dev/null 2>"$work/err" && s=$(wait_status "$d" running); then
        t_pass "unpause: status running"
    else
        t_fail "unpause: status '${s:-}', $(t_err "$work/err")"
    fi
    pod kill -s USR1 "$d" >/dev/null 2>"$work/err"
    for ((i = 0; i < 30; i++)); do
        grep -q got-usr1 < <(pod logs "$d" 2>/dev/null) && break
        sleep 0.1
    done
    if grep -q got-usr1 < <(pod logs "$d" 2>/dev/null); then t_pass "kill -s USR1: the trap ran"; else t_fail "kill -s USR1: no 'got-usr1' in logs ($(t_err "$work/err"))"; fi
    expect "logs: the container's output" 0 'started(\|got-usr1)*' logs "$d"
    expect "stats --no-stream: memory usage" 0 '[0-9.]+[kMG]?i?B / .*' stats --no-stream --format '{{.MemUsage}}' "$d"
    if pod commit -q "$d" "localhost/berth-test/committed-$T_RT" >/dev/null 2>"$work/err"; then
        expect "commit: the new image holds the container's change" 0 'committed' \
            run "${R[@]}" "localhost/berth-test/committed-$T_RT" cat /marker
    else
        t_fail "commit: $(t_err "$work/err")"
    fi
    # pid 1 has no TERM handler (so the kernel ignores TERM): stop must KILL after -t 2.
    t0=$(date +%s.%N)
    pod stop -t 2 "$d" >/dev/null 2>"$work/err"
    secs=$(printf "%.2f" "$(echo "$(date +%s.%N) - $t0" | bc)")
    s=$(pod inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$d" 2>/dev/null)
    if [ "$s" = "exited 137" ] && [ "$(echo "$secs >= 1.8" | bc)" = 1 ]; then
        t_pass "stop -t 2, TERM ignored: KILLed after the timeout (exit 137, ${secs}s)"
    else
        t_fail "stop -t 2: state '$s' after ${secs}s (want exited 137 after >= 2s), $(t_err "$work/err")"
    fi
    pod rm -f "$d" >/dev/null 2>&1
    pod run -d --name "$d-term" --cgroup-parent "$cgparent" "${ulim[@]}" "$BUSYBOX" \
        sh -c 'trap "exit 7" TERM; while :; do sleep 0.1; done' >/dev/null 2>"$work/err"
    wait_status "$d-term" running >/dev/null
    t0=$(date +%s.%N)
    pod stop -t 10 "$d-term" >/dev/null 2>>"$work/err"
    secs=$(printf "%.2f" "$(echo "$(date +%s.%N) - $t0" | bc)")
    s=$(pod inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$d-term" 2>/dev/null)
    if [ "$s" = "exited 7" ] && [ "$(echo "$secs < 5" | bc)" = 1 ]; then
        t_pass "stop, TERM handled: exit 7 in ${secs}s"
    else
        t_fail "stop, TERM handled: state '$s' after ${secs}s (want exited 7), $(t_err "$work/err")"
    fi
    pod rm -f "$d-term" >/dev/null 2>&1
    pod run -d --name "$d-rm" --cgroup-parent "$cgparent" "${ulim[@]}" "$BUSYBOX" sleep 300 >/dev/null 2>"$work/err"
    wait_status "$d-rm" running >/dev/null
    if pod rm -f -t 0 "$d-rm" >/dev/null 2>>"$work/err" && ! pod container exists "$d-rm"; then
        t_pass "rm -f of a running container"
    else
        t_fail "rm -f: $(t_err "$work/err")"
    fi
    pod rmi -f "localhost/berth-test/committed-$T_RT" >/dev/null 2>&1
    return 0
}
