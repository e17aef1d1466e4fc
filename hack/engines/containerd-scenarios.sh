# shellcheck shell=bash disable=SC2016,SC2154  # container commands in single quotes; $work etc. from the caller
# The containerd scenarios, sourced by hack/engines/containerd.sh inside its
# namespace, run once per runtime. Uses c() (ctr on our socket), $work, $cgparent,
# $wrapper, $BUSYBOX, $APP and the tally of hack/lib/engine.sh.

# cexpect NAME WANT_RC REGEX CTR_ARGS...: t_expect on ctr.
cexpect() {
    local name=$1 want_rc=$2 want=$3
    shift 3
    t_expect "$name" "$want_rc" "$want" c "$@"
}

# task_status ID: RUNNING, PAUSED, STOPPED... from `ctr task ls`.
task_status() {
    c task ls 2>/dev/null | awk -v id="$1" '$1 == id {print $3}'
}

# wait_task ID STATUS: poll until the task has STATUS (5 s at most).
wait_task() {
    local i s
    for ((i = 0; i < 50; i++)); do
        s=$(task_status "$1")
        [ "$s" = "$2" ] && return 0
        sleep 0.1
    done
    echo "$s"
    return 1
}

containerd_scenarios() {
    local n="e$$-$T_RT" s i out before after
    local rtroot="$work/runc-root-$T_RT"
    mkdir -p "$rtroot"
    # ctr run's runtime options for the runc shim v2: BinaryName and Root.
    local O=(--runc-binary "$wrapper" --runc-root "$rtroot")
    local R=(run --rm "${O[@]}")
    cg() { echo "$cgparent/$1"; }

    cexpect "ctr run --rm: output" 0 'hello-from-containerd' \
        "${R[@]}" --cgroup "$(cg "$n-1")" "$BUSYBOX" "$n-1" echo hello-from-containerd
    cexpect "ctr run --rm sh -c 'exit 3': exit code 3" 3 '' \
        "${R[@]}" --cgroup "$(cg "$n-2")" "$BUSYBOX" "$n-2" sh -c 'exit 3'
    cexpect "ctr run: app image user, workdir and entrypoint script" 0 \
        'entrypoint: user=app uid=1000 cwd=/home/app args=x' \
        "${R[@]}" --cgroup "$(cg "$n-3")" "$APP" "$n-3" /entrypoint.sh x
    cexpect "ctr run --env: env" 0 'bar hello' \
        "${R[@]}" --cgroup "$(cg "$n-4")" --env FOO=bar "$APP" "$n-4" sh -c 'echo $FOO $GREETING'
    out=$(SHELL=/bin/bash script -qec "timeout --foreground $STEP_TIMEOUT ctr --address $work/containerd.sock --namespace $NS run --rm -t ${O[*]} --cgroup $(cg "$n-5") $BUSYBOX $n-5 tty" /dev/null 2>"$work/err" </dev/null | tr -d '\r\0')
    # script(1) adds a NUL and ctr's resize warnings: look for the tty line only.
    if grep -q '/dev/pts/[0-9]*$' <<<"$out"; then t_pass "ctr run --tty: a terminal"; else t_fail "ctr run --tty: output '${out:0:200}', stderr: $(t_err "$work/err")"; fi
    # The cgroup is visible inside only with a cgroup mount, which ctr does not add.
    cexpect "ctr run --memory-limit 64m: limit seen inside (cgroup mount added)" 0 '67108864' \
        "${R[@]}" --cgroup "$(cg "$n-6")" --memory-limit 67108864 \
        --mount type=cgroup,src=cgroup,dst=/sys/fs/cgroup,options=ro "$BUSYBOX" "$n-6" \
        cat /sys/fs/cgroup/memory/memory.limit_in_bytes
    cexpect "ctr run --memory-limit 32m, dd bs=128M: OOM killed, exit 137" 137 '' \
        "${R[@]}" --cgroup "$(cg "$n-7")" --memory-limit 33554432 "$BUSYBOX" "$n-7" \
        dd if=/dev/zero of=/dev/null bs=128M count=1

    # --- a detached task: exec, ps, pause/resume, metrics, kill ---
    local d="$n-d"
    : >"$work/$d.log"
    if c run -d "${O[@]}" --cgroup "$(cg "$d")" --memory-limit 67108864 --log-uri "file://$work/$d.log" "$BUSYBOX" "$d" \
        sh -c 'trap "echo got-usr1" USR1; echo started; while :; do sleep 0.1; done' >/dev/null 2>"$work/err" &&
        s=$(wait_task "$d" RUNNING); then
        t_pass "ctr run -d: task RUNNING"
    else
        t_fail "ctr run -d: status '${s:-}', $(t_err "$work/err")"
    fi
    s=$(wc -l <"/sys/fs/cgroup/memory$cgparent/$d/cgroup.procs" 2>/dev/null || echo 0)
    if [ "$s" -ge 1 ]; then t_pass "ctr run --cgroup: the task is in $cgparent/$d"; else t_fail "ctr run --cgroup: no process in /sys/fs/cgroup/memory$cgparent/$d"; fi
    s=$(cat "/sys/fs/cgroup/memory$cgparent/$d/memory.limit_in_bytes" 2>/dev/null)
    if [ "$s" = 67108864 ]; then t_pass "ctr run --memory-limit 64m: applied to the task's cgroup (host side)"; else t_fail "ctr run --memory-limit: host side limit '$s' (want 67108864)"; fi
    cexpect "ctr task exec: output" 0 'in-exec' task exec --exec-id x1 "$d" echo in-exec
    cexpect "ctr task exec: exit code 5" 5 '' task exec --exec-id x2 "$d" sh -c 'exit 5'
    out=$(SHELL=/bin/bash script -qec "timeout --foreground $STEP_TIMEOUT ctr --address $work/containerd.sock --namespace $NS task exec -t --exec-id x3 $d tty" /dev/null 2>"$work/err" </dev/null | tr -d '\r\0')
    if grep -q '/dev/pts/[0-9]*$' <<<"$out"; then t_pass "ctr task exec --tty: a terminal"; else t_fail "ctr task exec --tty: output '${out:0:200}', stderr: $(t_err "$work/err")"; fi
    out=$(c task ps "$d" 2>"$work/err")
    s=$(printf '%s\n' "$out" | tail -n +2 | grep -c '[0-9]')
    if [ "$s" -ge 1 ]; then t_pass "ctr task ps: $s process(es)"; else t_fail "ctr task ps: output '${out:0:200}', stderr: $(t_err "$work/err")"; fi
    s=
    if c task pause "$d" >/dev/null 2>"$work/err" && s=$(wait_task "$d" PAUSED); then
        t_pass "ctr task pause: PAUSED"
    else
        t_fail "ctr task pause: status '${s:-}', $(t_err "$work/err")"
    fi
    s=
    if c task resume "$d" >/dev/null 2>"$work/err" && s=$(wait_task "$d" RUNNING); then
        t_pass "ctr task resume: RUNNING"
    else
        t_fail "ctr task resume: status '${s:-}', $(t_err "$work/err")"
    fi
    out=$(c task metrics "$d" 2>"$work/err")
    if grep -q 'memory.usage_in_bytes' <<<"$out"; then
        t_pass "ctr task metrics: memory usage reported"
    else
        t_fail "ctr task metrics: output '${out:0:200}', stderr: $(t_err "$work/err")"
    fi
    c task kill -s USR1 "$d" >/dev/null 2>"$work/err"
    for ((i = 0; i < 30; i++)); do grep -q got-usr1 "$work/$d.log" && break; sleep 0.1; done
    if grep -q got-usr1 "$work/$d.log"; then t_pass "ctr task kill -s USR1: the trap ran"; else t_fail "ctr task kill -s USR1: no 'got-usr1' in the log ($(t_err "$work/err"))"; fi
    if c task kill -s KILL "$d" >/dev/null 2>"$work/err" && s=$(wait_task "$d" STOPPED); then
        t_pass "ctr task kill -s KILL: STOPPED"
    else
        t_fail "ctr task kill -s KILL: status '${s:-}', $(t_err "$work/err")"
    fi
    c task delete "$d" >/dev/null 2>&1
    c container delete "$d" >/dev/null 2>&1

    # --- nothing left behind ---
    before="tasks=$(c task ls -q 2>/dev/null | wc -l) containers=$(c container ls -q 2>/dev/null | wc -l)"
    after="state=$(find "$rtroot" -mindepth 2 -maxdepth 2 2>/dev/null | wc -l) cgroups=$(cgroup_dirs "$cgparent" | grep -c "/$n" || true)"
    if [ "$before $after" = "tasks=0 containers=0 state=0 cgroups=0" ]; then
        t_pass "nothing left: no task, container, runtime state or cgroup"
    else
        t_fail "left behind: $before $after"
    fi
    return 0
}
