# shellcheck shell=bash disable=SC2154  # t_expect writes $work/err: the caller sets work
# Helpers shared by the engine tests (hack/engines/*.sh, hack/podman-test.sh): the
# PASS/FAIL tally, a `--root`-pinning runtime wrapper, unmounting, and stopping what a
# test started by pid. Source it; it defines functions and the tally counters only.

T_PASSED=0
T_FAILED=0
T_SKIPPED=0
T_RT=${T_RT:-}

# t_pass/t_fail/t_skip TEXT: one result line, tagged with the runtime under test.
t_pass() {
    echo "PASS: [$T_RT] $*"
    T_PASSED=$((T_PASSED + 1))
}
t_fail() {
    echo "FAIL: [$T_RT] $*"
    T_FAILED=$((T_FAILED + 1))
}
# A skip carries its reason and does not count as passed or failed.
t_skip() {
    echo "SKIP: [$T_RT] $*"
    T_SKIPPED=$((T_SKIPPED + 1))
}

# t_summary: the closing line; exit status 0 only if nothing failed.
t_summary() {
    local s=""
    [ "$T_SKIPPED" -gt 0 ] && s=" ($T_SKIPPED skipped)"
    echo "$T_PASSED passed, $T_FAILED failed$s"
    [ "$T_FAILED" -eq 0 ]
}

# t_last_calls FAILED_BEFORE LOG: when the runtime's scenarios failed (T_FAILED grew
# past FAILED_BEFORE), its last calls from the wrapper's LOG; true when shown.
t_last_calls() {
    { [ "$T_FAILED" -ne "$1" ] && [ -s "$2" ]; } || return 1
    echo "[$T_RT] last runtime calls:"
    tail -n 8 "$2" | cut -c1-200 | sed 's/^/  /'
}

# t_err FILE: the last lines of a command's stderr on one line, for a FAIL message.
t_err() {
    [ -s "$1" ] || return 0
    tail -n 4 "$1" | tr -d '\0' | tr '\n' ' ' | cut -c1-400
}

# write_runtime_wrapper PATH RUNTIME ROOT LOG [CAPTURE_DIR]: an executable that runs
# `RUNTIME --root ROOT "$@"` and appends its arguments to LOG. Engines that drop
# --runtime-flag in their cleanup paths (Podman 4.3) still reach the private root.
# With CAPTURE_DIR, each `create` first copies the bundle's config.json there
# (capture_lines).
write_runtime_wrapper() {
    local path=$1 rt=$2 root=$3 log=$4 capture=${5:-}
    mkdir -p "$root"
    {
        echo '#!/bin/sh'
        echo "echo \"\$*\" >>\"$log\""
        [ -n "$capture" ] && capture_lines "$capture"
        echo "exec \"$rt\" --root \"$root\" \"\$@\""
    } >"$path"
    chmod +x "$path"
}

# capture_lines DIR: sh lines for a runtime wrapper that, on `create`, copy the
# bundle's config.json to DIR/<container id>.json before the runtime runs: the config
# exactly as the engine wrote it, whatever the runtime then does with it. The id is
# the last argument, the bundle `--bundle`/`-b` (default: the working directory), the
# verb the first argument that names one.
capture_lines() {
    mkdir -p "$1"
    cat <<CAPTURE
b=. prev= last= verb=
for a in "\$@"; do
    case "\$prev" in -b|--bundle) b=\$a ;; esac
    case "\$a" in --bundle=*) b=\${a#--bundle=} ;; esac
    case "\$verb:\$a" in
    :create | :start | :run | :exec | :delete | :kill | :state | :pause | :resume | :update | :ps | :events) verb=\$a ;;
    esac
    prev=\$a
    last=\$a
done
[ "\$verb" = create ] && cp "\$b/config.json" "$1/\$last.json"
CAPTURE
}

# write_conmon_wrapper PATH: conmon started from its bundle directory, where conmon
# 2.1.6 writes the "oom" marker file and where Podman looks for it.
write_conmon_wrapper() {
    local path=$1 conmon
    conmon=$(command -v conmon) || { echo "conmon not found" >&2; return 1; }
    cat >"$path" <<WRAP
#!/bin/sh
b=
prev=
for a in "\$@"; do
    case "\$prev" in -b|--bundle) b=\$a ;; esac
    case "\$a" in --bundle=*) b=\${a#--bundle=} ;; esac
    prev=\$a
done
[ -n "\$b" ] && cd "\$b"
exec "$conmon" "\$@"
WRAP
    chmod +x "$path"
}

# umount_under DIR: lazily unmount every mount below DIR, deepest first.
umount_under() {
    local m
    findmnt -rn -o TARGET | { grep "^$1/" || true; } | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done
}

# stop_pid PID [SECONDS]: TERM, wait up to SECONDS (default 10), then KILL. Only for
# processes the calling test started itself.
stop_pid() {
    local pid=$1 secs=${2:-10} i
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < secs * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

# cgroup_dirs PARENT: every cgroup directory named PARENT (a path such as
# /berth-engines-123) or below it, on every mounted v1/v2 hierarchy, deepest first.
cgroup_dirs() {
    local p=${1#/} c
    for c in /sys/fs/cgroup/*/"$p" /sys/fs/cgroup/"$p"; do
        [ -d "$c" ] || continue
        find "$c" -depth -type d
    done 2>/dev/null
}

# kill_cgroup PARENT: KILL the processes left in PARENT's cgroups (containers this
# test started), then remove the cgroup directories.
kill_cgroup() {
    local d pid
    for d in $(cgroup_dirs "$1"); do
        cat "$d/cgroup.procs" 2>/dev/null
    done | sort -u | while read -r pid; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    sleep 0.2
    for d in $(cgroup_dirs "$1"); do
        [ -e "$d/freezer.state" ] && echo THAWED >"$d/freezer.state" 2>/dev/null
        rmdir "$d" 2>/dev/null || true
    done
    return 0
}

# host_ulimits: print `--ulimit` arguments granting the current nofile/nproc limits
# (Podman's defaults need CAP_SYS_RESOURCE, missing here). nproc is capped at
# kernel.pid_max, which Podman lowers its own limit to, and must be listed or Podman
# re-adds its default.
host_ulimits() {
    local pid_max
    pid_max=$(cat /proc/sys/kernel/pid_max)
    _lim() { if [ "$1" = unlimited ] || [ "$1" -gt "$2" ]; then echo "$2"; else echo "$1"; fi; }
    echo "--ulimit nofile=$(ulimit -Sn):$(ulimit -Hn)"
    echo "--ulimit nproc=$(_lim "$(ulimit -Su)" "$pid_max"):$(_lim "$(ulimit -Hu)" "$pid_max")"
}

# t_expect NAME WANT_RC REGEX COMMAND...: run COMMAND (stderr to $work/err), compare
# its exit code and its output (carriage returns and NULs dropped, lines joined by
# '|') against an anchored extended REGEX, and record PASS or FAIL.
t_expect() {
    local name=$1 want_rc=$2 want=$3 out rc
    shift 3
    out=$("$@" 2>"$work/err") && rc=0 || rc=$?
    out=$(printf '%s' "$out" | tr -d '\r\0' | paste -sd'|')
    if [ "$rc" = "$want_rc" ] && [[ $out =~ ^${want}$ ]]; then
        t_pass "$name"
    else
        t_fail "$name: exit $rc (want $want_rc), output '${out:0:200}', stderr: $(t_err "$work/err")"
    fi
}

# --- the outer half every engine script shares ---

# engine_runtimes: sets `specs` to $RUNTIMES (NAME=PATH words) with each path
# resolved; a missing runtime fails the script with its summary line.
engine_runtimes() {
    local spec p
    specs=()
    for spec in $RUNTIMES; do
        if ! p=$(resolve_runtime "${spec#*=}"); then
            echo "FAIL: [${spec%%=*}] no runtime at ${spec#*=}"
            echo "0 passed, 1 failed"
            exit 1
        fi
        specs+=("${spec%%=*}=$p")
    done
}

# engine_need HINT TOOL...: a missing tool fails the script, saying how to get it.
engine_need() {
    local hint=$1 tool
    shift
    for tool in "$@"; do
        command -v "$tool" >/dev/null || {
            echo "FAIL: $tool not found ($hint)"
            echo "0 passed, 1 failed"
            exit 1
        }
    done
}

# engine_run_inner NAME SECONDS UNSHARE_ARGS...: runs this script's inner half
# (`$0 --inner $work $cgparent specs...`) under `unshare UNSHARE_ARGS`, bounded in time,
# in the background so the caller's EXIT trap can stop it ($inner_pid), and exits with
# its status.
engine_run_inner() {
    local name=$1 limit=$2 rc
    shift 2
    echo "$name: ${specs[*]}"
    timeout --kill-after=10 "$limit" \
        unshare "$@" -- bash "$0" --inner "$work" "$cgparent" "${specs[@]}" &
    inner_pid=$!
    wait "$inner_pid"
    rc=$?
    inner_pid=
    exit "$rc"
}

# --- an engine's own config.json, captured and replayed ---

# What each engine runs for its capture: the conformance scenarios generated_docker_*
# and generated_podman_* expect exactly this process and its output
# (runtime-tools-tests/src/scenarios/generated.rs).
# shellcheck disable=SC2016  # expanded in the container
GENERATED_ARGS=(sh -c 'echo generated-config-ok uid=$(id -u) cwd=$(pwd)')

# capture_config NAME COMMAND...: runs COMMAND (an engine's `run` of GENERATED_ARGS
# through a runtime wrapper with capture_lines into $work/captured) and sets
# `captured` to the config.json the engine wrote for it. With BERTH_CAPTURE_DIR set,
# a copy is kept there as NAME-config.json (how runtime-tools-tests/fixtures/ is made).
capture_config() {
    local name=$1 files
    shift
    captured=
    rm -rf "$work/captured"
    mkdir -p "$work/captured"
    "$@" >"$work/out" 2>"$work/err"
    files=("$work/captured"/*.json)
    if [ "${#files[@]}" -ne 1 ] || [ ! -s "${files[0]}" ]; then
        t_fail "capture of $name's config.json: ${#files[@]} configs written (want 1), output: $(head -c 200 "$work/out"), stderr: $(t_err "$work/err")"
        return 0
    fi
    captured=$work/captured-$name.json
    cp "${files[0]}" "$captured"
    t_pass "captured $name's config.json ($(stat -c %s "$captured") bytes)"
    if [ -n "${BERTH_CAPTURE_DIR:-}" ]; then
        cp "$captured" "$BERTH_CAPTURE_DIR/$name-config.json"
        echo "# kept as $BERTH_CAPTURE_DIR/$name-config.json"
    fi
}

# replay_config ENGINE CONFIG RUNTIME: the conformance scenarios generated_ENGINE_*
# on RUNTIME directly, with CONFIG (a captured config.json) in place of their
# checked-in fixture: the engine's config as it is today, run as the engine runs it.
replay_config() {
    local engine=$1 cfg=$2 rt=$3 out summary var
    if [ -z "$cfg" ]; then
        t_fail "replay of $engine's config.json: nothing was captured"
        return 0
    fi
    var=BERTH_GENERATED_$(echo "$engine" | tr '[:lower:]' '[:upper:]')_CONFIG
    out=$(env "$var=$cfg" timeout 300 runtime-tools-tests/run.sh --runtime "$rt" \
        --keep-going --filter "generated_${engine}_" 2>&1)
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' <<<"$out" | tail -n 1)
    if [[ $summary =~ ^[1-9][0-9]*\ passed,\ 0\ failed ]]; then
        t_pass "replay of $engine's captured config.json: $(grep -E '^ok ' <<<"$out" | cut -d' ' -f2 | paste -sd' ')"
    else
        t_fail "replay of $engine's captured config.json: ${summary:-no summary}: $(grep -E '^(FAIL|skip) ' <<<"$out" | head -n 3 | cut -c1-300 | paste -sd'|')"
    fi
}

# containerd_config WORK SOCK: WORK/config.toml for a private containerd without the
# CRI plugin (root, state and opt under WORK, its sockets at SOCK and SOCK.ttrpc).
containerd_config() {
    local work=$1 sock=$2
    cat >"$work/config.toml" <<CONF
version = 2
root = "$work/root"
state = "$work/state"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[debug]
  level = "info"
[plugins."io.containerd.internal.v1.opt"]
  path = "$work/opt"
CONF
}

# engine_outer_cleanup PIDFILE WAIT MARKER: the outer half's EXIT trap for an engine
# that runs a daemon (uses the caller's work, cgparent and inner_pid). Stopped from
# outside (a stage timeout), the inner half stops its engine first; if the inner half
# was killed by its own timeout, the daemon is stopped by the pid in PIDFILE (WAIT
# seconds) and its children (shims) by MARKER in their command line. Then the
# engine's cgroups, mounts and work directory go.
engine_outer_cleanup() {
    local pidfile=$1 wait=$2 marker=$3 p
    trap '' TERM INT # finish cleaning up even if stopped again
    stop_pid "$inner_pid" 20
    [ -s "$pidfile" ] && stop_pid "$(cat "$pidfile")" "$wait"
    for p in /proc/[0-9]*; do
        grep -qF "$marker" "$p/cmdline" 2>/dev/null && stop_pid "${p#/proc/}" 5
    done
    kill_cgroup "$cgparent"
    umount_under "$work"
    rm -rf "$work"
}
