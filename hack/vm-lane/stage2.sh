#!/run/vmlane/busybox sh
# shellcheck shell=dash
# vmlane stage2: mounts the API filesystems, the 9p shares, runs the host's
# command and hands its exit status back through the ctl share, then powers
# off. Runs either as PID 1 (variants A and host-root) or as the ExecStart of
# vmlane.service under systemd (variant B, with $VMLANE_UNDER_SYSTEMD=1).
#
# It only uses the busybox it was started with (/run/vmlane/busybox, or
# /bin/busybox inside the initramfs), so it works on any root filesystem.
BB=/run/vmlane/busybox
[ -x "$BB" ] || BB=/bin/busybox
bb() { "$BB" "$@"; }
# busybox-static has no mountpoint applet; look the path up in /proc/mounts.
ismnt() { bb grep -q "^[^ ]* $1 " /proc/mounts 2>/dev/null; }
P9="trans=virtio,version=9p2000.L,msize=262144"

if [ "$VMLANE_UNDER_SYSTEMD" != 1 ]; then
	# We are PID 1: set up what an init system would.
	bb mkdir -p /proc /sys /dev /tmp /run
	ismnt /proc || bb mount -t proc -o nosuid,nodev,noexec proc /proc
	ismnt /sys || bb mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
	ismnt /dev || bb mount -t devtmpfs -o nosuid,mode=0755 devtmpfs /dev
	bb mkdir -p /dev/pts /dev/shm /dev/mqueue
	bb mount -t devpts -o nosuid,noexec,gid=5,mode=620,ptmxmode=666 devpts /dev/pts
	bb mount -t tmpfs -o nosuid,nodev tmpfs /dev/shm
	bb mount -t mqueue -o nosuid,nodev,noexec mqueue /dev/mqueue 2>/dev/null
	[ -e /dev/ptmx ] || bb ln -sf pts/ptmx /dev/ptmx
	[ -e /dev/fd ] || bb ln -sf /proc/self/fd /dev/fd
	ismnt /run || bb mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs /run
	ismnt /tmp || bb mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /tmp
	# cgroup v2 only (kernel cmdline has cgroup_no_v1=all).
	bb mount -t cgroup2 -o nosuid,nodev,noexec,nsdelegate cgroup2 /sys/fs/cgroup
	bb mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
	bb mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
	bb mount -t bpf bpf /sys/fs/bpf 2>/dev/null
	bb mount -t hugetlbfs hugetlbfs /dev/hugepages 2>/dev/null
	bb hostname vmlane
	bb ip link set lo up 2>/dev/null
	# Make subtree controllers available to children, like systemd does.
	for c in $(bb cat /sys/fs/cgroup/cgroup.controllers); do
		echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
	done
fi

CTL=/run/vmlane/ctl
bb mkdir -p "$CTL"
ismnt "$CTL" || bb mount -t 9p -o "$P9,cache=none" ctl "$CTL" || {
	echo "vmlane-stage2: cannot mount ctl share" >&2
	bb poweroff -f
}

# Host folder: at /share and at its host path (read from ctl/hostdir) so
# absolute paths produced on the host (e.g. target/debug/...) work in the guest.
bb mkdir -p /share
bb mount -t 9p -o "$P9,cache=mmap,access=client" share /share 2>/dev/null ||
	bb mount -t 9p -o "$P9" share /share
HOSTDIR=$(bb cat "$CTL/hostdir" 2>/dev/null)
if [ -n "$HOSTDIR" ] && [ "$HOSTDIR" != /share ]; then
	bb mkdir -p "$HOSTDIR" 2>/dev/null
	bb mount --bind /share "$HOSTDIR"
fi

OUT=/dev/hvc0
[ -c "$OUT" ] || OUT=/dev/console
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb LANG=C.UTF-8
bb mkdir -p /root
cd "${HOSTDIR:-/share}" || cd /share || bb poweroff -f

# Run the command with the root filesystem's /bin/sh when it has one (dash on
# Debian), else busybox ash. stdin is /dev/null; stdout+stderr go to hvc0,
# which vm-run.sh streams to the host's stdout.
SH=/bin/sh
[ -x "$SH" ] || SH="$BB sh"
echo "vmlane-stage2: running command" >/dev/kmsg
: >"$CTL/started"
$SH "$CTL/cmd" </dev/null >"$OUT" 2>&1
rc=$?
echo "vmlane-stage2: command exited $rc" >/dev/kmsg
bb dmesg >"$CTL/dmesg" 2>/dev/null
echo "$rc" >"$CTL/rc.tmp" && bb mv "$CTL/rc.tmp" "$CTL/rc"
bb sync
# Immediate power-off (reboot(2)), also under systemd: the result is already
# on the host and every root's writable layer is a throw-away tmpfs.
bb poweroff -f
