#!/bin/bash
# hack/vm-lane/prepare.sh: installs what the VM test lane needs and builds its cache.
#
#   prepare.sh [--systemd] [--host-systemd] [--kernel PKG] [--no-apt]
#
#   --systemd     also debootstrap the variant-B image (systemd + dbus PID 1)
#   --host-systemd  also install systemd and dbus on the host if missing, for
#                 `vm-run.sh --mode host-systemd` (the guest boots the host's
#                 systemd; PID 1 of this machine is left as it is)
#   --kernel PKG  Debian kernel package (default linux-image-amd64, i.e. the
#                 bookworm 6.1 generic kernel; e.g. '-t bookworm-backports'
#                 is used automatically for PKG names containing "bpo" — or
#                 set VMLANE_KERNEL_SUITE=bookworm-backports). Cloud kernels
#                 have no 9p, do not use them.
#   --no-apt      do not apt-get install anything (everything already there)
#
# Cache: $VMLANE_CACHE (default /var/cache/vmlane). Idempotent: reruns only
# rebuild what is missing (delete the cache dir to start over).
#   $VMLANE_CACHE/kernel/vmlinuz      guest kernel
#   $VMLANE_CACHE/kernel/modules/     guest modules (trimmed, depmod'ed)
#   $VMLANE_CACHE/initramfs-KEY.cpio  busybox + virtio/9p/overlay/ext4 modules + init;
#                                     KEY hashes init.sh + stage2.sh (see initramfs-key.sh)
#   $VMLANE_CACHE/systemd.img         variant B: ext4 image, bookworm minbase + systemd
#   $VMLANE_CACHE/apparmor/apparmor_parser  Debian's parser (from the `apparmor`
#                                     package, extracted, not installed: the host
#                                     keeps its own LSM setup) for the AppArmor checks
#   $VMLANE_CACHE/selinux/secilc      Debian's CIL compiler (`secilc`, with `libsepol2`'s
#                                     library in selinux/lib/; extracted, not installed)
#                                     for the SELinux guest's policy
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${VMLANE_CACHE:-/var/cache/vmlane}
KPKG=linux-image-amd64
KSUITE=${VMLANE_KERNEL_SUITE:-}
SYSTEMD=0
HOST_SYSTEMD=0
APT=1
while [ $# -gt 0 ]; do
	case "$1" in
	--systemd) SYSTEMD=1 ;;
	--host-systemd) HOST_SYSTEMD=1 ;;
	--kernel) KPKG=$2; shift ;;
	--no-apt) APT=0 ;;
	-h | --help) sed -n '2,26p' "$0"; exit 0 ;;
	*) echo "prepare.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done

log() { echo "[vmlane-prepare] $*" >&2; }
UPDATED=0
apt_update_once() { # apt lists may be missing or stale on a fresh machine
	[ "$APT" = 1 ] && [ "$UPDATED" = 0 ] || return 0
	apt-get -o DPkg::Lock::Timeout=600 update -qq || log "apt-get update failed (continuing)"
	UPDATED=1
}
APTGET=(apt-get -o DPkg::Lock::Timeout=600 -y --no-install-recommends)

# A fresh machine's apt sources lack bookworm-backports, which the machine's own
# qemu-utils came from; add it so qemu-system-x86 can match that version.
ensure_backports() {
	[ "$APT" = 1 ] || return 0
	grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/ && return 0
	# reuse the mirror that the machine's own bookworm entry names
	local uri
	uri=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | grep -v security | head -n 1 | awk '{print $2}')
	[ -n "$uri" ] || uri=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
	[ -n "$uri" ] || { log "no Debian mirror found in apt sources; cannot add backports"; return 0; }
	log "adding bookworm-backports to apt sources"
	printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" \
		>/etc/apt/sources.list.d/bookworm-backports.sources
	UPDATED=0
}

# ---------------------------------------------------------------- packages
if [ "$APT" = 1 ]; then
	need=()
	command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
	[ -x /bin/busybox ] && grep -qx switch_root < <(/bin/busybox --list) || need+=(busybox-static)
	command -v depmod >/dev/null || need+=(kmod)
	command -v cpio >/dev/null || need+=(cpio)
	command -v xz >/dev/null || need+=(xz-utils)
	command -v zstd >/dev/null || need+=(zstd)
	command -v mke2fs >/dev/null || need+=(e2fsprogs)
	if [ "$SYSTEMD" = 1 ]; then command -v debootstrap >/dev/null || need+=(debootstrap); fi
	if [ "$HOST_SYSTEMD" = 1 ]; then
		[ -x /lib/systemd/systemd ] || need+=(systemd)
		command -v dbus-daemon >/dev/null || need+=(dbus)
	fi
	if [ ${#need[@]} -gt 0 ]; then
		log "apt-get install ${need[*]}"
		ensure_backports
		apt_update_once
		# qemu-utils from bookworm-backports (10.x) Breaks qemu-system-common 7.2;
		# when that happens install qemu-system-x86 from backports as well.
		if ! "${APTGET[@]}" install "${need[@]}"; then
			log "retrying with -t bookworm-backports"
			"${APTGET[@]}" -t bookworm-backports install "${need[@]}"
		fi
	fi
fi
[ -r /dev/kvm ] || log "note: no /dev/kvm: guests run under TCG (software emulation)"
[ -d /sys/module/kvm_pvm ] && log "note: /dev/kvm is PVM (kvm_pvm): stock kernels cannot use it, guests run under TCG"

mkdir -p "$CACHE"
# One prepare at a time per cache (several checkouts share it): a second run waits,
# then finds everything built. Without this two runs could rebuild the kernel dir or
# the systemd image over each other.
exec 9>"$CACHE/.prepare.lock"
flock -w 900 9 || { log "ERROR: another prepare.sh holds $CACHE/.prepare.lock"; exit 1; }

# ------------------------------------------------------------------ kernel
if [ ! -f "$CACHE/kernel/vmlinuz" ]; then
	rm -rf "$CACHE/kernel" "$CACHE/kernel.tmp"
	mkdir -p "$CACHE/kernel.tmp/deb"
	[ -z "$KSUITE" ] && case "$KPKG" in *bpo* | *+deb12*) KSUITE=bookworm-backports ;; esac
	apt_update_once
	# Resolve the metapackage (linux-image-amd64) to the concrete image package.
	real=$KPKG
	dep=$(apt-cache ${KSUITE:+-t $KSUITE} depends "$KPKG" 2>/dev/null |
		awk '/Depends: linux-image-[0-9]/{print $2; exit}') || true
	[ -n "$dep" ] && real=$dep
	log "downloading $real ${KSUITE:+($KSUITE)}"
	(cd "$CACHE/kernel.tmp/deb" && apt-get download ${KSUITE:+-t $KSUITE} "$real" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2)
	dpkg-deb -x "$CACHE"/kernel.tmp/deb/*.deb "$CACHE/kernel.tmp/x"
	kv=$(basename "$(ls -d "$CACHE"/kernel.tmp/x/lib/modules/*)")
	grep -q '^CONFIG_NET_9P_VIRTIO=[ym]' "$CACHE/kernel.tmp/x/boot/config-$kv" ||
		{ log "ERROR: $real has no 9p/virtio transport (cloud kernels lack it)"; exit 1; }
	mkdir -p "$CACHE/kernel"
	cp "$CACHE/kernel.tmp/x/boot/vmlinuz-$kv" "$CACHE/kernel/vmlinuz"
	# Uncompressed ELF vmlinux for PVH direct boot (Debian kernels have
	# CONFIG_PVH=y): find the xz (6.1) or zstd (6.12) stream in the bzImage.
	# (awk, not head: head would SIGPIPE grep and trip pipefail.)
	vz=$CACHE/kernel/vmlinuz
	off=$(LC_ALL=C grep -abo $'\xfd7zXZ\x00' "$vz" | awk -F: 'NR==1{print $1}' || true)
	if [ -n "$off" ]; then
		tail -c +$((off + 1)) "$vz" | xz -dc 2>/dev/null >"$CACHE/kernel/vmlinux" || true
	else
		off=$(LC_ALL=C grep -abo $'\x28\xb5\x2f\xfd' "$vz" | awk -F: 'NR==1{print $1}' || true)
		tail -c +$((off + 1)) "$vz" | zstd -qdc 2>/dev/null >"$CACHE/kernel/vmlinux" || true
	fi
	grep -q ELF < <(head -c 4 "$CACHE/kernel/vmlinux") || { log "ERROR: could not extract vmlinux"; exit 1; }
	cp "$CACHE/kernel.tmp/x/boot/config-$kv" "$CACHE/kernel/config"
	mv "$CACHE/kernel.tmp/x/lib/modules/$kv" "$CACHE/kernel/modules"
	echo "$kv" >"$CACHE/kernel/release"
	echo "$real" >"$CACHE/kernel/package"
	# Trim modules nobody needs in a virtio guest (hardware, sound, wifi...):
	# ~400 MB -> ~90 MB. Everything a container runtime may modprobe (net/,
	# fs/, netfilter, veth, bridge, macvlan, vxlan, tun, dm, loop...) stays.
	m=$CACHE/kernel/modules/kernel
	rm -rf "$m/sound" "$m"/net/{mac80211,wireless,bluetooth,nfc,ieee802154,mac802154,6lowpan}
	for d in "$m"/drivers/*; do
		case "${d##*/}" in virtio | block | char | md | net | vhost | vdpa | crypto | nvdimm | dax) ;;
		*) rm -rf "$d" ;; esac
	done
	rm -rf "$m"/drivers/net/{wireless,ethernet,usb,can,wwan,ieee802154,hamradio,arcnet,fddi,plip,slip,wan,phy,pcs,mdio,dsa}
	mkdir -p "$CACHE/kernel.tmp/root/lib/modules"
	ln -sfn "$CACHE/kernel/modules" "$CACHE/kernel.tmp/root/lib/modules/$kv"
	depmod -b "$CACHE/kernel.tmp/root" "$kv"
	rm -rf "$CACHE/kernel.tmp"
	log "kernel $kv ready ($(du -sh "$CACHE/kernel" | cut -f1))"
fi
KV=$(cat "$CACHE/kernel/release")

# --------------------------------------------------------------- initramfs
# Named by the hash of init.sh + stage2.sh, so a changed script gets its own image
# (~1 s to build) and other checkouts sharing the cache keep theirs.
INITRD=$CACHE/initramfs-$("$HERE/initramfs-key.sh").cpio
if [ ! -f "$INITRD" ]; then
	log "building initramfs"
	R=$CACHE/initramfs.tmp.$$
	rm -rf "$R"
	mkdir -p "$R"/{bin,dev,proc,sys,run,tmp,mnt,vmlane,lib/modules,etc,root}
	cp /bin/busybox "$R/bin/busybox"
	for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$R/bin/$a"; done
	ln -s bin "$R/sbin"
	mkdir -p "$R/usr" && ln -s ../bin "$R/usr/bin" && ln -s ../bin "$R/usr/sbin"
	install -m 0755 "$HERE/init.sh" "$R/init"
	install -m 0755 "$HERE/stage2.sh" "$R/vmlane/stage2"
	echo 'root:x:0:0:root:/root:/bin/sh' >"$R/etc/passwd"
	echo 'root:x:0:' >"$R/etc/group"
	# Modules the guest needs before any root fs exists, in dependency order
	# (modprobe --show-depends against the trimmed tree prints insmod lines).
	mkdir -p "$CACHE/kernel.root/lib/modules"
	ln -sfn "$CACHE/kernel/modules" "$CACHE/kernel.root/lib/modules/$KV"
	for mod in virtio_pci virtio_console virtio_rng 9pnet_virtio 9p overlay virtio_blk ext4; do
		modprobe -d "$CACHE/kernel.root" -S "$KV" --show-depends "$mod" |
			awk '$1=="insmod"{print $2}'
	done | sed "s|^$CACHE/kernel.root/lib/modules/$KV/||; s|^$CACHE/kernel/modules/||" |
		awk '!seen[$0]++' >"$R/lib/modules/load.list"
	# busybox insmod cannot read compressed modules (bookworm-backports 6.12
	# ships .ko.xz): store them decompressed in the initramfs.
	while read -r f; do
		mkdir -p "$R/lib/modules/$(dirname "$f")"
		case "$f" in
		*.ko.xz) xz -dc "$CACHE/kernel/modules/$f" >"$R/lib/modules/${f%.xz}" ;;
		*.ko.zst) zstd -qdc "$CACHE/kernel/modules/$f" >"$R/lib/modules/${f%.zst}" ;;
		*) cp "$CACHE/kernel/modules/$f" "$R/lib/modules/$f" ;;
		esac
	done <"$R/lib/modules/load.list"
	sed -i 's/\.ko\.\(xz\|zst\)$/.ko/' "$R/lib/modules/load.list"
	# Uncompressed newc cpio: the kernel unpacks it faster than gunzip.
	(cd "$R" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet -R 0:0) >"$INITRD.new"
	mv "$INITRD.new" "$INITRD"
	rm -rf "$R"
	log "initramfs ready ($(du -sh "$INITRD" | cut -f1))"
fi

# ------------------------------------------------------- apparmor_parser
# The guest loads the AppArmor checks' profiles with Debian's parser. It is extracted
# from the package, not installed: the host needs no AppArmor and keeps what it has.
# The parser links only libc, which the guest shares with the host.
if [ ! -x "$CACHE/apparmor/apparmor_parser" ]; then
	rm -rf "$CACHE/apparmor.tmp"
	mkdir -p "$CACHE/apparmor.tmp/deb"
	apt_update_once
	log "downloading apparmor (for apparmor_parser)"
	(cd "$CACHE/apparmor.tmp/deb" && apt-get download apparmor 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2)
	dpkg-deb -x "$CACHE"/apparmor.tmp/deb/apparmor_*.deb "$CACHE/apparmor.tmp/x"
	[ -x "$CACHE/apparmor.tmp/x/sbin/apparmor_parser" ] || { log "ERROR: no sbin/apparmor_parser in the apparmor package"; exit 1; }
	mkdir -p "$CACHE/apparmor"
	cp "$CACHE/apparmor.tmp/x/sbin/apparmor_parser" "$CACHE/apparmor/apparmor_parser.new"
	mv "$CACHE/apparmor/apparmor_parser.new" "$CACHE/apparmor/apparmor_parser"
	rm -rf "$CACHE/apparmor.tmp"
	log "apparmor_parser ready"
fi

# ------------------------------------------------------- secilc
# The SELinux guest's policy (hack/vm-lane/selinux-policy.cil) is compiled on the host
# by Debian's secilc, extracted with its libsepol (as apparmor_parser above: the host
# installs no SELinux package). run-tests.sh runs it with LD_LIBRARY_PATH=selinux/lib.
if [ ! -x "$CACHE/selinux/secilc" ] || [ ! -f "$CACHE/selinux/lib/libsepol.so.2" ]; then
	rm -rf "$CACHE/selinux.tmp"
	mkdir -p "$CACHE/selinux.tmp/deb"
	apt_update_once
	log "downloading secilc and libsepol2"
	(cd "$CACHE/selinux.tmp/deb" && apt-get download secilc libsepol2 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2)
	for deb in "$CACHE"/selinux.tmp/deb/*.deb; do dpkg-deb -x "$deb" "$CACHE/selinux.tmp/x"; done
	[ -x "$CACHE/selinux.tmp/x/usr/bin/secilc" ] || { log "ERROR: no usr/bin/secilc in the secilc package"; exit 1; }
	lib=$(find "$CACHE/selinux.tmp/x" -name 'libsepol.so.2' | head -n 1)
	[ -n "$lib" ] || { log "ERROR: no libsepol.so.2 in the libsepol2 package"; exit 1; }
	rm -rf "$CACHE/selinux.new"
	mkdir -p "$CACHE/selinux.new/lib"
	cp "$CACHE/selinux.tmp/x/usr/bin/secilc" "$CACHE/selinux.new/secilc"
	cp -L "$lib" "$CACHE/selinux.new/lib/libsepol.so.2"
	rm -rf "$CACHE/selinux" && mv "$CACHE/selinux.new" "$CACHE/selinux"
	rm -rf "$CACHE/selinux.tmp"
	log "secilc ready"
fi

# ------------------------------------------------------- variant B (systemd)
if [ "$SYSTEMD" = 1 ] && [ ! -f "$CACHE/systemd.img" ]; then
	"$HERE/build-systemd-image.sh"
fi

log "done: $(du -sh "$CACHE" | cut -f1) in $CACHE"
