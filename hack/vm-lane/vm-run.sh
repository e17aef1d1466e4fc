#!/bin/bash
# hack/vm-lane/vm-run.sh: boot a throw-away qemu guest (cgroup v2 only, all controllers),
# run a shell command in it with a host folder shared read-write, stream the
# command's stdout+stderr to our stdout and exit with the command's status.
#
#   vm-run.sh [options] HOSTDIR COMMAND...
#
# HOSTDIR is mounted (9p, rw) at /share and at its own absolute path; the
# command starts there. COMMAND words are joined with spaces and run by the
# guest's /bin/sh (like ssh), so quote accordingly. stdin is /dev/null.
#
# Options:
#   --mode initramfs  busybox-only initramfs root (variant A; default)
#   --mode host       root = host "/" read-only over 9p + tmpfs overlay, so
#                     host-built binaries, libs and tools run unchanged
#   --mode systemd    root = debootstrap image, systemd as PID 1 + dbus
#                     (variant B; needs `prepare.sh --systemd`)
#   --mode host-systemd  host root overlay (as --mode host) booted with the
#                     host's own systemd as PID 1 (needs systemd + dbus
#                     installed on the host; only vmlane.target is started)
#   -m MiB            guest memory (default 2048)
#   --smp N           guest vCPUs (default: host CPUs)
#   --timeout SECS    kill qemu after SECS (default 900); exit 124
#   -e NAME=VALUE     export a variable to the command (repeatable)
#   --append ARGS     extra kernel command line
#   -v                copy the guest's serial console (kernel log) to stderr
#   --keep            keep the run dir ($VMLANE_CACHE/runs/...) for debugging
#
# Exit status: the command's; 124 timeout; 125 the guest never reported one
# (boot failure: console log is printed to stderr).
#
# Environment: VMLANE_CACHE (default /var/cache/vmlane), VMLANE_ACCEL
# (auto|kvm|tcg; auto = TCG unless hardware KVM: PVM /dev/kvm cannot boot
# stock kernels), VMLANE_MACHINE (pc), VMLANE_RETRIES (1: retry a qemu crash
# that happened before the command started).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${VMLANE_CACHE:-/var/cache/vmlane}
MODE=initramfs MEM=2048 SMP=$(nproc) TIMEOUT=900 VERBOSE=0 KEEP=0 APPEND=""
ENVS=()
usage() { sed -n '2,35p' "$0" >&2; exit 2; }
while [ $# -gt 0 ]; do
	case "$1" in
	--mode) MODE=$2; shift 2 ;;
	-m) MEM=$2; shift 2 ;;
	--smp) SMP=$2; shift 2 ;;
	--timeout) TIMEOUT=$2; shift 2 ;;
	-e) ENVS+=("$2"); shift 2 ;;
	--append) APPEND="$APPEND $2"; shift 2 ;;
	-v) VERBOSE=1; shift ;;
	--keep) KEEP=1; shift ;;
	-h | --help) usage ;;
	--) shift; break ;;
	-*) echo "vm-run.sh: unknown option $1" >&2; usage ;;
	*) break ;;
	esac
done
[ $# -ge 2 ] || usage
HOSTDIR=$(realpath -e "$1") || { echo "vm-run.sh: no such dir: $1" >&2; exit 2; }
[ -d "$HOSTDIR" ] || { echo "vm-run.sh: not a dir: $1" >&2; exit 2; }
shift
CMD="$*"

INITRD=$CACHE/initramfs-$("$HERE/initramfs-key.sh").cpio
[ -f "$CACHE/kernel/vmlinux" ] && [ -f "$INITRD" ] ||
	{ echo "vm-run.sh: run $HERE/prepare.sh first" >&2; exit 2; }
[ "$MODE" != systemd ] || [ -f "$CACHE/systemd.img" ] ||
	{ echo "vm-run.sh: run $HERE/prepare.sh --systemd first" >&2; exit 2; }
[ "$MODE" != host-systemd ] || [ -x /lib/systemd/systemd ] ||
	{ echo "vm-run.sh: --mode host-systemd needs systemd installed on the host" >&2; exit 2; }

mkdir -p "$CACHE/runs"
RUN=$(mktemp -d "$CACHE/runs/run.XXXXXX")
QPID=""
# shellcheck disable=SC2317 # invoked by the trap
cleanup() {
	[ -n "$QPID" ] && kill "$QPID" 2>/dev/null || true
	if [ "$KEEP" = 1 ]; then echo "vm-run.sh: kept $RUN" >&2; else rm -rf "$RUN"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$RUN/ctl"

# The command file: exports, then the command itself. Single-quote values.
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
{
	for kv in "${ENVS[@]+"${ENVS[@]}"}"; do
		echo "export ${kv%%=*}=$(q "${kv#*=}")"
	done
	printf '%s\n' "$CMD"
} >"$RUN/ctl/cmd"
printf '%s' "$HOSTDIR" >"$RUN/ctl/hostdir"

# Accelerator. VMLANE_ACCEL=auto|kvm|tcg (default auto).
# auto picks KVM only when it is hardware KVM (kvm_intel/kvm_amd). Where
# /dev/kvm comes from kvm_pvm (PVM, "Pagetable-based VM", used for nested
# virtualization inside Firecracker/cloud sandboxes) only PVM-patched guest
# kernels boot; a stock Debian kernel hangs right after the real-mode setup,
# so auto falls back to TCG (software emulation, multi-threaded).
ACCEL_MODE=${VMLANE_ACCEL:-auto}
if [ "$ACCEL_MODE" = auto ]; then
	ACCEL_MODE=tcg
	if [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ] &&
		{ [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then
		ACCEL_MODE=kvm
	fi
fi
# shellcheck disable=SC2054 # the commas are qemu option syntax
case "$ACCEL_MODE" in
# -arch-capabilities: some nested hosts refuse MSR 0x10a ("failed to set MSR").
kvm) ACCEL=(-machine "${VMLANE_MACHINE:-pc}",accel=kvm -cpu host,-arch-capabilities) ;;
tcg) ACCEL=(-machine "${VMLANE_MACHINE:-pc}",accel=tcg -cpu max) ;;
*) echo "vm-run.sh: bad VMLANE_ACCEL=$ACCEL_MODE" >&2; exit 2 ;;
esac

# console=ttyS0 -> $RUN/console.log; loglevel=4 keeps errors/warnings (OOM
# kills, oopses) there. cgroup_no_v1=all: no v1 hierarchy can ever bind a
# controller, so cgroup2 gets all of them.
KAPPEND="console=ttyS0 loglevel=4 panic=-1 oops=panic cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1"
KAPPEND+=" i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd no_timer_check mitigations=off"
fs9p() { # tag path extra-fsdev-options
	echo "-fsdev local,id=$1,path=$2,$3 -device virtio-9p-pci,fsdev=$1,mount_tag=$1"
}
DEV="$(fs9p ctl "$RUN/ctl" security_model=none)"
DEV+=" $(fs9p share "$HOSTDIR" security_model=passthrough,multidevs=remap)"
case "$MODE" in
initramfs) KAPPEND+=" vmlane.root=initramfs" ;;
host)
	KAPPEND+=" vmlane.root=host"
	DEV+=" $(fs9p hostroot / security_model=none,readonly=on,multidevs=remap)"
	DEV+=" $(fs9p kmods "$CACHE/kernel/modules" security_model=none,readonly=on)"
	;;
systemd | host-systemd)
	# systemd PID 1 booting into vmlane.target (units written by init.sh).
	# fstab=no: ignore the root's /etc/fstab (the host's, in host-systemd).
	KAPPEND+=" vmlane.init=/lib/systemd/systemd systemd.unit=vmlane.target fstab=no"
	KAPPEND+=" systemd.getty_auto=0 systemd.show_status=0 systemd.log_target=console"
	KAPPEND+=" systemd.log_level=warning systemd.firstboot=0"
	DEV+=" $(fs9p kmods "$CACHE/kernel/modules" security_model=none,readonly=on)"
	if [ "$MODE" = systemd ]; then
		# Read-only: the guest mounts it under a tmpfs overlay (init.sh) and
		# never writes to it, so runs can share it and nothing lands on the
		# host's disk (snapshot=on put a temp qcow2 in /var/tmp, and a failed
		# write there showed up as virtio I/O errors in the guest).
		KAPPEND+=" vmlane.root=disk"
		DEV+=" -drive file=$CACHE/systemd.img,if=virtio,format=raw,readonly=on"
	else
		KAPPEND+=" vmlane.root=host"
		DEV+=" $(fs9p hostroot / security_model=none,readonly=on,multidevs=remap)"
	fi
	;;
*) echo "vm-run.sh: bad --mode $MODE" >&2; exit 2 ;;
esac
KAPPEND+="$APPEND"

# -kernel vmlinux (uncompressed ELF, PVH entry): skips firmware real-mode
# setup and xz decompression, ~2.5 s faster than vmlinuz under TCG.
# stdio chardev -> virtconsole = /dev/hvc0 in the guest = command output.
boot() {
	rm -f "$RUN/console.log" "$RUN/ctl/started" "$RUN/ctl/rc" "$RUN/ctl/dmesg"
	# shellcheck disable=SC2086
	timeout -k 10 "$TIMEOUT" qemu-system-x86_64 -nodefaults -no-user-config \
		"${ACCEL[@]}" -smp "$SMP" -m "$MEM" \
		-kernel "$CACHE/kernel/vmlinux" -initrd "$INITRD" -append "$KAPPEND" \
		-display none -monitor none -no-reboot \
		-serial "file:$RUN/console.log" \
		-device virtio-serial-pci,id=vser -chardev stdio,id=out,signal=off \
		-device virtconsole,chardev=out,bus=vser.0 \
		-device virtio-rng-pci \
		$DEV </dev/null &
	QPID=$!
	if [ "$VERBOSE" = 1 ]; then
		tail -n +1 -s 0.2 -F --pid="$QPID" "$RUN/console.log" >&2 2>/dev/null &
	fi
	set +e
	wait "$QPID"
	qrc=$?
	set -e
	QPID=""
	wait 2>/dev/null || true
}
# A QEMU crash before the command started (ctl/started missing; seen once:
# a TCG assertion in msix_table_mmio_write) is retried: nothing ran yet.
tries=$((${VMLANE_RETRIES:-1} + 1))
while :; do
	boot
	tries=$((tries - 1))
	case "$qrc" in 0 | 124 | 137) break ;; esac
	[ ! -f "$RUN/ctl/started" ] && [ "$tries" -gt 0 ] || break
	echo "vm-run.sh: qemu failed (rc $qrc) before the command started; retrying" >&2
done

if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
	echo "vm-run.sh: guest timed out after ${TIMEOUT}s; console tail:" >&2
	tail -n 30 "$RUN/console.log" >&2 || true
	exit 124
fi
if [ ! -f "$RUN/ctl/rc" ]; then
	echo "vm-run.sh: guest did not report an exit status (qemu rc $qrc); console tail:" >&2
	tail -n 40 "$RUN/console.log" >&2 || true
	exit 125
fi
exit "$(cat "$RUN/ctl/rc")"
