# shellcheck shell=bash disable=SC2016,SC2154  # container commands in single quotes; $work etc. from the caller
# The CRI scenarios, sourced by hack/engines/cri.sh inside its namespaces, run once
# per runtime handler ($T_RT). Uses k() (berth-cri on containerd's socket), $work,
# $cgparent, $BUSYBOX, $APP and the tally of hack/lib/engine.sh. Each group of
# scenarios is one pod, removed at its end whatever happened (a failed step skips the
# steps that need it).

# A container that runs until SIGTERM (a trap, so `stop` needs no SIGKILL).
LOOP='trap "exit 0" TERM; while :; do sleep 0.1; done'
# NamespaceMode: POD 0 (the pod's), CONTAINER 1 (its own), NODE 2 (the host's).
NS_POD=0
NS_CONTAINER=1
# The native shim's (containerd-shim-berth-v2) default root, in the test's private
# /run: nothing may land there, as the handler's config file names another Root.
NATIVE_ROOT=/run/containerd/berth

# pod_config NAME PID_MODE: $work/NAME.pod.json, a PodSandboxConfig as the kubelet
# writes one: pod network (CNI), the pod's IPC, the given PID mode, a cgroup parent
# under the test's own, a log directory.
pod_config() {
    cat >"$work/$1.pod.json" <<JSON
{
  "metadata": {"name": "$1", "namespace": "berth-test", "uid": "uid-$1", "attempt": 0},
  "hostname": "$1",
  "log_directory": "$work/logs/$1",
  "linux": {
    "cgroup_parent": "$cgparent/$1",
    "security_context": {"namespace_options": {"network": $NS_POD, "ipc": $NS_POD, "pid": $2}}
  }
}
JSON
}

# ctr_config POD NAME PID_MODE IMAGE CMD_JSON [SECURITY_CONTEXT_JSON] [RESOURCES_JSON]:
# $work/POD.NAME.json, a ContainerConfig: the command, a log path, the PID mode
# (which must match the pod's), and the given security context and resources.
ctr_config() {
    local sc=${6:-'{}'} res=${7:-null}
    jq -n --arg name "$2" --argjson pid "$3" --arg image "$4" --argjson cmd "$5" \
        --argjson sc "$sc" --argjson res "$res" '{
        metadata: {name: $name},
        image: {image: $image},
        command: $cmd,
        log_path: ($name + ".log"),
        linux: ({security_context: ({namespace_options: {pid: $pid}} + $sc)}
                + (if $res == null then {} else {resources: $res} end))
    }' >"$work/$1.$2.json"
}

# kexpect NAME WANT_RC REGEX BERTH_CRI_ARGS...: t_expect on berth-cri.
kexpect() {
    local name=$1 want_rc=$2 want=$3
    shift 3
    t_expect "$name" "$want_rc" "$want" k "$@"
}

# ctr_state ID: CREATED, RUNNING, EXITED... from `berth-cri ps -a`.
ctr_state() {
    k ps -a 2>/dev/null | awk -v id="$1" '$1 == id {print $4}'
}

# wait_state ID STATE: poll until the container has STATE (10 s at most); prints
# the last state seen on failure.
wait_state() {
    local i s
    for ((i = 0; i < 100; i++)); do
        s=$(ctr_state "$1")
        [ "$s" = "$2" ] && return 0
        sleep 0.1
    done
    echo "${s:-none}"
    return 1
}

# info_pid ID | info_pid -p POD_ID: the process id from the runtime's verbose info.
info_pid() {
    if [ "$1" = -p ]; then
        k inspectp "$2" 2>/dev/null | jq -r '.info.info.pid // empty'
    else
        k inspect "$1" 2>/dev/null | jq -r '.info.info.pid // empty'
    fi
}

# run_pod NAME PID_MODE: writes the pod config and runs the pod with the handler under
# test; sets `pod` (empty on failure, with a FAIL line). The wrapper's log shows that
# the handler's runtime created the sandbox.
run_pod() {
    pod_config "$1" "$2"
    pod=
    local id
    if ! id=$(k runp --runtime "$T_RT" "$work/$1.pod.json" 2>"$work/err"); then
        t_fail "runp --runtime $T_RT ($1): $(t_err "$work/err")"
        return 1
    fi
    pod=$id
    # A runc-shim handler logs its runtime's calls; the native shim keeps berth's
    # state in the Root of the config file the handler's ConfigPath names (cri.sh), not
    # in its default root.
    if grep -q "create .*$pod" "$work/calls-$T_RT.log" 2>/dev/null ||
        { [ -d "$work/runc-root-$T_RT/k8s.io/$pod" ] && [ ! -e "$NATIVE_ROOT/k8s.io/$pod" ]; }; then
        t_pass "runp --runtime $T_RT ($1): the sandbox was created by $T_RT"
    else
        t_fail "runp --runtime $T_RT ($1): pod $pod, but $T_RT was not called to create it"
    fi
}

# start_ctr POD_NAME NAME: create and start the container configured by ctr_config;
# sets `cid` (empty on failure, with a FAIL line).
start_ctr() {
    local id s
    cid=
    if ! id=$(k create "$pod" "$work/$1.$2.json" "$work/$1.pod.json" 2>"$work/err"); then
        t_fail "create $2: $(t_err "$work/err")"
        return 1
    fi
    if ! k start "$id" >/dev/null 2>"$work/err"; then
        t_fail "start $2: $(t_err "$work/err")"
        k rm "$id" >/dev/null 2>&1
        return 1
    fi
    if ! s=$(wait_state "$id" RUNNING); then
        t_fail "start $2: state $s (want RUNNING)"
        return 1
    fi
    cid=$id
}

# end_pod: stopp and rmp of $pod, checked; the pod is gone either way.
end_pod() {
    [ -n "$pod" ] || return 0
    local name=$1 s
    if k stopp "$pod" >/dev/null 2>"$work/err" &&
        s=$(k pods | awk -v id="$pod" '$1 == id {print $3}') && [ "$s" = NOTREADY ]; then
        t_pass "stopp ($name): pod NOTREADY"
    else
        t_fail "stopp ($name): state '${s:-}', $(t_err "$work/err")"
    fi
    if k rmp "$pod" >/dev/null 2>"$work/err" && ! grep -q "^$pod " < <(k pods 2>/dev/null); then
        t_pass "rmp ($name): pod gone"
    else
        t_fail "rmp ($name): $(t_err "$work/err")"
    fi
    pod=
}

# One pod, one container through the kubelet's whole life of it.
cri_life() {
    local p="life-$T_RT" cid out s d t0 pid i
    run_pod "$p" $NS_CONTAINER || return 0
    s=$(k pods | awk -v id="$pod" '$1 == id {print $3}')
    if [ "$s" = READY ]; then t_pass "pods: $p READY"; else t_fail "pods: $p is '$s' (want READY)"; fi

    ctr_config "$p" c1 $NS_CONTAINER "$BUSYBOX" \
        "$(jq -nc --arg s "echo out-line; echo err-line >&2; $LOOP" '["sh", "-c", $s]')" '{}' \
        '{"cpu_period": 100000, "cpu_quota": 50000, "cpu_shares": 512, "memory_limit_in_bytes": 67108864}'
    if cid=$(k create "$pod" "$work/$p.c1.json" "$work/$p.pod.json" 2>"$work/err") &&
        s=$(wait_state "$cid" CREATED); then
        t_pass "create: container CREATED"
    else
        t_fail "create: state '${s:-}', $(t_err "$work/err")"
        end_pod "$p"
        return 0
    fi
    if k start "$cid" >/dev/null 2>"$work/err" && s=$(wait_state "$cid" RUNNING); then
        t_pass "start: container RUNNING"
    else
        t_fail "start: state '${s:-}', $(t_err "$work/err")"
        end_pod "$p"
        return 0
    fi

    kexpect "exec -s: output and exit code 7" 7 'in-exec' exec -s "$cid" sh -c 'echo in-exec; exit 7'
    out=$(k exec -s "$cid" sh -c 'echo to-stderr >&2' 2>&1 >/dev/null)
    if [ "$out" = to-stderr ]; then t_pass "exec -s: stderr apart from stdout"; else t_fail "exec -s: stderr '$out' (want to-stderr)"; fi
    kexpect "exec -s: the process user and cwd of the image" 0 'uid=0 cwd=/' \
        exec -s "$cid" sh -c 'echo uid=$(id -u) cwd=$(pwd)'

    # The CRI plugin copies the container's output into the log file: poll for it.
    for ((i = 0; i < 50; i++)); do
        out=$(k logs "$cid" 2>"$work/logerr")
        [ "$out" = out-line ] && grep -qx err-line "$work/logerr" && break
        sleep 0.1
    done
    if [ "$out" = out-line ] && grep -qx err-line "$work/logerr"; then
        t_pass "logs: stdout and stderr lines in the CRI log file"
    else
        t_fail "logs: stdout '${out:0:100}', stderr '$(head -c 200 "$work/logerr")'"
    fi

    out=$(k stats "$cid" 2>"$work/err")
    s=$(jq -r '"\(.stats.memory.working_set_bytes.value // 0) \(.stats.cpu.usage_core_nano_seconds.value // 0)"' <<<"$out" 2>/dev/null)
    if [[ $s =~ ^[1-9][0-9]*\ [1-9][0-9]*$ ]]; then
        t_pass "stats: memory working set and cpu usage ($s)"
    else
        t_fail "stats: '$s' from '${out:0:200}', $(t_err "$work/err")"
    fi

    # The limits on the host (cgroupfs driver: the pod's cgroup parent, then the
    # container's id) and as the container sees them (the cgroup mount CRI adds).
    d="$cgparent/$p/$cid"
    pid=$(info_pid "$cid")
    s="$(cat "/sys/fs/cgroup/cpu$d/cpu.cfs_quota_us" "/sys/fs/cgroup/cpu$d/cpu.cfs_period_us" \
        "/sys/fs/cgroup/cpu$d/cpu.shares" "/sys/fs/cgroup/memory$d/memory.limit_in_bytes" 2>/dev/null | paste -sd' ')"
    if [ "$s" = "50000 100000 512 67108864" ] && [ -n "$pid" ] &&
        grep -qx "$pid" "/sys/fs/cgroup/memory$d/cgroup.procs" 2>/dev/null; then
        t_pass "cpu/memory limits in the container's cgroup on the host ($d: $s), the init in it"
    else
        t_fail "cgroup $d: quota period shares limit '$s' (want 50000 100000 512 67108864), init pid '$pid' in cgroup.procs: $(paste -sd' ' "/sys/fs/cgroup/memory$d/cgroup.procs" 2>&1)"
    fi
    kexpect "the limits as the container sees them (its cgroup mount)" 0 '50000\|67108864' \
        exec -s "$cid" cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/memory/memory.limit_in_bytes

    # An in-place resize (UpdateContainerResources): the runtime's update, or the
    # native shim's Update.
    s=
    if k update --memory 134217728 --cpu-quota 25000 "$cid" >/dev/null 2>"$work/err"; then
        s="$(cat "/sys/fs/cgroup/cpu$d/cpu.cfs_quota_us" "/sys/fs/cgroup/memory$d/memory.limit_in_bytes" 2>/dev/null | paste -sd' ')"
    fi
    if [ "$s" = "25000 134217728" ]; then
        t_pass "update: cpu quota 25000 and memory 128m in the container's cgroup"
    else
        t_fail "update: quota and limit '$s' (want 25000 134217728), $(t_err "$work/err")"
    fi

    t0=$(date +%s%N)
    if k stop -t 10 "$cid" >/dev/null 2>"$work/err" && s=$(wait_state "$cid" EXITED); then
        s=$(k inspect "$cid" | jq -r '.status.exit_code')
        t0=$((($(date +%s%N) - t0) / 1000000))
        if [ "$s" = 0 ] && [ "$t0" -lt 8000 ]; then
            t_pass "stop: EXITED with the TERM trap's exit code 0 (${t0} ms, no SIGKILL)"
        else
            t_fail "stop: exit code '$s' (want 0) after ${t0} ms"
        fi
    else
        t_fail "stop: state '${s:-}', $(t_err "$work/err")"
    fi
    if k rm "$cid" >/dev/null 2>"$work/err" && [ -z "$(ctr_state "$cid")" ]; then
        t_pass "rm: container gone"
    else
        t_fail "rm: state '$(ctr_state "$cid")', $(t_err "$work/err")"
    fi
    end_pod "$p"
}

# Security contexts: RuntimeDefault seccomp, read-only rootfs, runAsUser,
# capabilities; one pod, a container for each.
cri_security() {
    local p="sec-$T_RT" cid out eff loop
    loop=$(jq -nc --arg s "$LOOP" '["sh", "-c", $s]')
    run_pod "$p" $NS_CONTAINER || return 0

    ctr_config "$p" seccomp $NS_CONTAINER "$BUSYBOX" "$loop" '{"seccomp": {"profile_type": 0}}'
    if start_ctr "$p" seccomp; then
        t_pass "RuntimeDefault seccomp: the container runs under containerd's default profile"
        kexpect "RuntimeDefault seccomp: filter mode in the init and in exec" 0 'Seccomp:.2\|Seccomp:.2' \
            exec -s "$cid" sh -c 'grep ^Seccomp: /proc/1/status; grep ^Seccomp: /proc/self/status'
        # The profile allows unshare only with CAP_SYS_ADMIN, which the container lacks.
        kexpect "RuntimeDefault seccomp: unshare -U refused (the profile denies it)" 0 'refused' \
            exec -s "$cid" sh -c 'unshare -U true 2>/dev/null && echo allowed || echo refused'
    fi

    ctr_config "$p" ro $NS_CONTAINER "$BUSYBOX" "$loop" '{"readonly_rootfs": true}'
    if start_ctr "$p" ro; then
        kexpect "readonlyRootfs: writing / fails" 0 'touch: /probe: Read-only file system\|rc=1' \
            exec -s "$cid" sh -c 'touch /probe 2>&1; echo rc=$?'
        kexpect "no seccomp profile (the control for RuntimeDefault): unshare -U allowed" 0 'allowed' \
            exec -s "$cid" sh -c 'unshare -U true 2>/dev/null && echo allowed || echo refused'
    fi

    ctr_config "$p" user $NS_CONTAINER "$APP" "$loop" '{"run_as_user": {"value": 1000}}'
    if start_ctr "$p" user; then
        kexpect "runAsUser 1000: the init's and exec's uid and gid (from the image's passwd)" 0 \
            '1000 1000\|uid=1000\(app\) gid=1000\(app\).*' \
            exec -s "$cid" sh -c 'awk "/^Uid:/{u=\$2} /^Gid:/{g=\$2} END{print u, g}" /proc/1/status; id'
    fi

    ctr_config "$p" caps $NS_CONTAINER "$BUSYBOX" "$loop" \
        '{"capabilities": {"add_capabilities": ["SYS_TIME"], "drop_capabilities": ["CHOWN", "NET_RAW"]}}'
    if start_ctr "$p" caps; then
        eff=$(k exec -s "$cid" awk '/^CapEff:/{print $2}' /proc/1/status 2>"$work/err")
        if [[ $eff =~ ^[0-9a-f]{16}$ ]] && (((0x$eff >> 25 & 1) == 1 && (0x$eff & 1) == 0 &&
            (0x$eff >> 13 & 1) == 0 && (0x$eff >> 5 & 1) == 1)); then
            t_pass "capabilities: SYS_TIME added, CHOWN and NET_RAW dropped, KILL kept (CapEff $eff)"
        else
            t_fail "capabilities: CapEff '$eff' (want bit 25 set, bits 0 and 13 clear, bit 5 set), $(t_err "$work/err")"
        fi
        kexpect "capabilities: chown without CAP_CHOWN fails" 0 'rc=1' \
            exec -s "$cid" sh -c 'chown 1 /tmp 2>/dev/null; echo rc=$?'
    fi
    end_pod "$p"
}

# Two containers in a pod that shares its PID namespace: the pod's network, IPC, UTS
# and PID namespaces are the sandbox's (joined by path), each container has its own
# mount namespace.
cri_shared() {
    local p="share-$T_RT" a b pp pa pb ns same=() diff=() self
    run_pod "$p" $NS_POD || return 0
    ctr_config "$p" a $NS_POD "$BUSYBOX" '["sh", "-c", "hostname > /dev/shm/from-a; exec sleep 1001"]'
    start_ctr "$p" a && a=$cid
    ctr_config "$p" b $NS_POD "$BUSYBOX" '["sleep", "1002"]'
    start_ctr "$p" b && b=$cid
    if [ -z "${a:-}" ] || [ -z "${b:-}" ]; then
        end_pod "$p"
        return 0
    fi
    pp=$(info_pid -p "$pod")
    pa=$(info_pid "$a")
    pb=$(info_pid "$b")
    for ns in net ipc uts pid mnt; do
        self=$(readlink "/proc/self/ns/$ns")
        if [ -n "$pp" ] && [ "$(readlink "/proc/$pa/ns/$ns")" = "$(readlink "/proc/$pp/ns/$ns")" ] &&
            [ "$(readlink "/proc/$pb/ns/$ns")" = "$(readlink "/proc/$pp/ns/$ns")" ] &&
            [ "$(readlink "/proc/$pa/ns/$ns")" != "$self" ]; then
            same+=("$ns")
        else
            diff+=("$ns")
        fi
    done
    if [ "${same[*]}" = "net ipc uts pid" ] && [ "${diff[*]}" = mnt ]; then
        t_pass "two containers share the sandbox's net, ipc, uts and pid namespaces (not the host's), each its own mnt"
    else
        t_fail "namespaces shared with the sandbox (pid $pp; a $pa, b $pb): '${same[*]}' (want net ipc uts pid), not shared: '${diff[*]}' (want mnt)"
    fi
    # One shim per pod: the sandbox's and both containers' inits are children of the
    # same shim process (the CRI plugin's sandbox-id annotation groups them).
    local sp sa sb
    sp=$(awk '{print $4}' "/proc/$pp/stat" 2>/dev/null)
    sa=$(awk '{print $4}' "/proc/$pa/stat" 2>/dev/null)
    sb=$(awk '{print $4}' "/proc/$pb/stat" 2>/dev/null)
    if [ -n "$sp" ] && [ "$sp" = "$sa" ] && [ "$sp" = "$sb" ] && grep -qF "$sock" "/proc/$sp/cmdline" 2>/dev/null; then
        t_pass "one shim (pid $sp) serves the pod: the sandbox's and both containers' inits are its children"
    else
        t_fail "one shim per pod: the inits' parents are '$sp' (sandbox), '$sa' (a), '$sb' (b)"
    fi
    kexpect "shared IPC and UTS: b reads a's /dev/shm file holding the pod's hostname" 0 "$p" \
        exec -s "$b" cat /dev/shm/from-a
    kexpect "shared PID namespace: b sees the sandbox as pid 1 and a's process" 0 '/bin/sleep inf \|sleep 1001' \
        exec -s "$b" sh -c 'tr "\0" " " </proc/1/cmdline; echo; ps -o args | grep -x "sleep 1001"'
    # When a container's init exits in a shared PID namespace, the shim runs
    # `RUNTIME kill --all ID KILL` on the stopped container (runc: exit 0) and logs
    # an error in containerd's log for each failure.
    local logged errs
    logged=$(wc -l <"$work/containerd.log")
    end_pod "$p"
    errs=$(tail -n +"$((logged + 1))" "$work/containerd.log" | grep 'level=error' | grep -E "$a|$b")
    if [ -z "$errs" ]; then
        t_pass "stopp of a shared-PID pod: no runtime errors in containerd's log (kill --all of each stopped container)"
    else
        t_fail "stopp of a shared-PID pod: the shim's kill --all of a stopped container must exit 0 (as runc's does); containerd logged: $(head -n 2 <<<"$errs" | sed 's/.*msg=//' | cut -c1-250 | paste -sd'|')"
    fi
}

# What the kubelet puts in every container's security context and resources for a
# BestEffort pod (its default masked and read-only /proc and /sys paths, the minimum
# cpu shares, the BestEffort OOM score) and the termination-log mount it always adds.
KUBELET_SC='{
  "masked_paths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"],
  "readonly_paths": ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
    "/proc/sysrq-trigger"]
}'
KUBELET_RESOURCES='{"cpu_shares": 2, "oom_score_adj": 1000}'

# capture_cri_default NAME: containerd's config.json for a container with the
# RuntimeDefault seccomp profile (GENERATED_ARGS as its command, the rest as the
# kubelet sends for a BestEffort pod), kept by the first handler's wrapper
# (capture_config); sets `captured`.
capture_cri_default() {
    local p="capture" cmd sc
    # shellcheck disable=SC2034  # read by the caller (replay_config)
    captured=
    run_pod "$p" $NS_CONTAINER || return 0
    cmd=$(jq -nc '$ARGS.positional' --args -- "${GENERATED_ARGS[@]}")
    sc=$(jq -c '. + {seccomp: {profile_type: 0}}' <<<"$KUBELET_SC")
    ctr_config "$p" gen $NS_CONTAINER "$BUSYBOX" "$cmd" "$sc" "$KUBELET_RESOURCES"
    : >"$work/termination-log"
    jq --arg h "$work/termination-log" '. + {mounts: [{container_path: "/dev/termination-log", host_path: $h}]}' \
        "$work/$p.gen.json" >"$work/$p.gen.json.new" && mv "$work/$p.gen.json.new" "$work/$p.gen.json"
    capture_config "$1" cri_run_once "$p" gen
    if grep -qx 'generated-config-ok uid=0 cwd=/' "$work/out"; then
        t_pass "the captured container ran to completion with the expected output"
    else
        t_fail "the captured container's output: '$(head -c 200 "$work/out")', $(t_err "$work/err")"
    fi
    end_pod "$p"
}

# cri_run_once POD_NAME NAME: create and start a container, wait for it to exit,
# print its logs.
cri_run_once() {
    local id
    id=$(k create "$pod" "$work/$1.$2.json" "$work/$1.pod.json") && k start "$id" &&
        wait_state "$id" EXITED >/dev/null && sleep 0.2 && k logs "$id"
}

# shim_count: the shims our containerd started (their command line names its socket).
shim_count() {
    local p n=0
    for p in /proc/[0-9]*; do
        grep -qF "$sock" "$p/cmdline" 2>/dev/null && n=$((n + 1))
    done
    echo "$n"
}

# Nothing the handler's pods made is left: no pod, container, runtime state, container
# cgroup, rootfs mount, network namespace or shim.
cri_nothing_left() {
    local i left
    for ((i = 0; i < 50; i++)); do
        left="pods=$(k pods -q 2>/dev/null | wc -l) containers=$(k ps -aq 2>/dev/null | wc -l)"
        left+=" state=$(find "$work/runc-root-$T_RT" "$NATIVE_ROOT" -mindepth 2 -maxdepth 2 2>/dev/null | wc -l)"
        left+=" cgroups=$(cgroup_dirs "$cgparent" | grep -cE '/[0-9a-f]{64}$')"
        left+=" mounts=$(findmnt -rn -o TARGET | grep -c "^$work/state/")"
        left+=" netns=$(find /run/netns -mindepth 1 2>/dev/null | wc -l)"
        left+=" shims=$(shim_count)"
        [ "$left" = "pods=0 containers=0 state=0 cgroups=0 mounts=0 netns=0 shims=0" ] && break
        sleep 0.1
    done
    if [ "$left" = "pods=0 containers=0 state=0 cgroups=0 mounts=0 netns=0 shims=0" ]; then
        t_pass "nothing left: no pod, container, runtime state, container cgroup, rootfs mount, netns or shim"
    else
        t_fail "left behind: $left"
    fi
}

cri_scenarios() {
    cri_life
    cri_security
    cri_shared
    cri_nothing_left
    return 0
}
