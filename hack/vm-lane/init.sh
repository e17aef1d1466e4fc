#!/bin/sh
# vmlane initramfs /init (runs under the static busybox copied into the
# initramfs by prepare.sh; every applet is a symlink in /bin).
#
# Kernel command line knobs (set by vm-run.sh):
#   vmlane.root=initramfs  stay in this busybox initramfs (variant A, fastest)
#   vmlane.root=host       overlay: host "/" (9p tag hostroot, read-only) + tmpfs
#   vmlane.root=disk       ext4 on /dev/vda (debootstrap image, variant B)
#   vmlane.init=PATH       exec PATH as PID 1 in the new root (e.g. systemd);
#                          default: /run/vmlane/stage2 (our own test runner)
#   vmlane.debug=1         drop to a shell on failure instead of powering off
#   vmlane.hostcache=MODE  9p cache mode of the host root (default mmap; loose
#                          is faster for re-reads but on 6.1 floods the console
#                          with "FS-Cache: Duplicate cookie" errors)
#
# 9p tags: ctl (run dir: cmd, rc; rw), share (host folder; rw),
#          hostroot (host /; ro), kmods (guest kernel modules; ro)
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

die() {
	echo "vmlane-init: FATAL: $*" >&2
	[ "$DEBUG" = 1 ] && exec sh </dev/console >/dev/console 2>&1
	poweroff -f
}

mount -t proc -o nosuid,nodev,noexec proc /proc
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mount -t devtmpfs -o nosuid,mode=0755 devtmpfs /dev

ROOT=initramfs INIT=/run/vmlane/stage2 DEBUG=0 HCACHE=mmap
for kv in $(cat /proc/cmdline); do
	case "$kv" in
	vmlane.root=*) ROOT=${kv#*=} ;;
	vmlane.init=*) INIT=${kv#*=} ;;
	vmlane.debug=*) DEBUG=${kv#*=} ;;
	vmlane.hostcache=*) HCACHE=${kv#*=} ;;
	esac
done

# Load the modules prepare.sh resolved (in dependency order). The Debian
# generic kernel builds virtio, virtio_pci, 9p, overlay, virtio_blk, ext4 and
# virtio_console as modules, so nothing works without this step.
while read -r m; do
	insmod "/lib/modules/$m" 2>/dev/null || echo "vmlane-init: insmod $m failed" >&2
done </lib/modules/load.list

P9="trans=virtio,version=9p2000.L,msize=262144"

if [ "$ROOT" = initramfs ]; then
	# Variant A: the busybox initramfs is the root. Run stage2 as PID 1.
	exec /bin/busybox sh /vmlane/stage2
fi

mkdir -p /newroot
case "$ROOT" in
host)
	# Writable overlay over the read-only host root; upper layer is tmpfs.
	mkdir -p /ovl
	mount -t tmpfs -o mode=0755 tmpfs /ovl || die "tmpfs"
	mkdir -p /ovl/lower /ovl/upper /ovl/work
	mount -t 9p -o "$P9,ro,cache=$HCACHE" hostroot /ovl/lower || die "9p hostroot"
	mount -t overlay -o lowerdir=/ovl/lower,upperdir=/ovl/upper,workdir=/ovl/work overlay /newroot ||
		die "overlay over 9p"
	# Sandbox hosts built from container images carry /.dockerenv: systemd
	# would then detect "docker", ignore the kernel command line and boot the
	# host's whole default.target. The guest is a VM: hide the markers.
	rm -f /newroot/.dockerenv /newroot/run/.containerenv 2>/dev/null
	# Fresh, empty /tmp and /var/tmp: the host's would be scanned (and
	# "cleaned" into overlay whiteouts) by systemd-tmpfiles over 9p: +9 s.
	mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /newroot/tmp
	mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /newroot/var/tmp
	;;
disk)
	# The image is attached read-only and never written: the writable layer is a
	# tmpfs overlay, as in vmlane.root=host. (With qemu's snapshot=on the guest's
	# writes went to a temp qcow2 on the host, and the guest saw virtio write I/O
	# errors whenever that host-side write failed.)
	i=0
	while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	mkdir -p /ovl
	mount -t tmpfs -o mode=0755 tmpfs /ovl || die "tmpfs"
	mkdir -p /ovl/lower /ovl/upper /ovl/work
	mount -t ext4 -o ro,noload /dev/vda /ovl/lower || die "mount /dev/vda"
	mount -t overlay -o lowerdir=/ovl/lower,upperdir=/ovl/upper,workdir=/ovl/work overlay /newroot ||
		die "overlay over /dev/vda"
	;;
*) die "unknown vmlane.root=$ROOT" ;;
esac

# stage2 + static busybox travel into the new root through a tmpfs on /run,
# so stage2 does not depend on what the root filesystem contains.
mkdir -p /newroot/run
mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs /newroot/run
mkdir -p /newroot/run/vmlane
cp /bin/busybox /vmlane/stage2 /newroot/run/vmlane/
# Kernel modules of the guest kernel, so `modprobe veth` etc. work in the guest.
KV=$(uname -r)
mkdir -p /newroot/run/vmlane/kmods
if mount -t 9p -o "$P9,ro,cache=mmap" kmods /newroot/run/vmlane/kmods 2>/dev/null; then
	mkdir -p "/newroot/lib/modules/$KV" 2>/dev/null
	mount --bind /newroot/run/vmlane/kmods "/newroot/lib/modules/$KV" 2>/dev/null ||
		echo "vmlane-init: cannot bind guest modules at /lib/modules/$KV" >&2
fi
# systemd as PID 1: put the runner units in /run/systemd/system (a runtime
# unit dir, so the root filesystem is not modified) and boot straight into
# vmlane.target (kernel cmdline systemd.unit=vmlane.target): sysinit +
# basic + dbus + vmlane.service only, nothing from multi-user.target.
case "$INIT" in
*systemd*)
	U=/newroot/run/systemd/system
	mkdir -p "$U"
	cat >"$U/vmlane.target" <<-EOF
	[Unit]
	Description=vmlane test target
	Requires=basic.target
	Wants=vmlane.service dbus.socket
	After=basic.target
	AllowIsolate=yes
	EOF
	cat >"$U/vmlane.service" <<-EOF
	[Unit]
	Description=vmlane: run the host's test command, then power off
	After=basic.target dbus.socket
	Wants=dbus.socket
	[Service]
	Type=simple
	Environment=VMLANE_UNDER_SYSTEMD=1
	ExecStart=/run/vmlane/busybox sh /run/vmlane/stage2
	# The test may create and manage sub-cgroups (cgroup v2 delegation), as a
	# container manager running under systemd would.
	Delegate=yes
	StandardInput=null
	StandardOutput=journal+console
	StandardError=journal+console
	TimeoutStartSec=infinity
	EOF
	# Units that prompt, wait for hardware/network or only cost boot time.
	for u in systemd-firstboot.service getty@tty1.service serial-getty@ttyS0.service \
		serial-getty@hvc0.service console-getty.service systemd-timesyncd.service \
		systemd-networkd-wait-online.service systemd-hwdb-update.service \
		proc-sys-fs-binfmt_misc.automount systemd-pstore.service apt-daily.timer \
		apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer fstrim.timer \
		systemd-repart.service; do
		ln -sf /dev/null "$U/$u"
	done
	;;
esac
# Hand the API filesystems over (as initramfs-tools does). Do not leave them
# to stage2: in --mode host the root's /proc is the *host's* procfs seen
# through 9p, so "is /proc mounted?" checks would read the host's mount table.
for d in dev proc sys; do
	mkdir -p "/newroot/$d" 2>/dev/null
	mount --move "/$d" "/newroot/$d" || umount "/$d"
done
# shellcheck disable=SC2093 # the die below runs only if switch_root fails
exec switch_root /newroot "$INIT"
die "switch_root failed"
