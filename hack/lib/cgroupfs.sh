# shellcheck shell=bash
# private_cgroupfs SAVE_DIR [HIDDEN...]
#
# Call inside a private mount namespace (`unshare -m`). Replaces the /sys/fs/cgroup
# tmpfs by a fresh one and binds the host's cgroup hierarchies back into it, except the
# ones named in HIDDEN (e.g. "unified"). Whatever an engine or runtime then mkdirs or
# writes on that tmpfs (podman's hugetlb/net_cls dirs, crun's files in a hidden
# "unified" directory) stays in this namespace instead of landing on the host's shared
# tmpfs, and /proc/self/mountinfo lists only what is visible (the old tmpfs and a hidden
# hierarchy are unmounted here, not merely covered, so cgroup-mode detection is right).
# On a host where /sys/fs/cgroup is not a tmpfs (cgroup v2 only) it changes nothing.
# SAVE_DIR is an empty scratch directory for the moves.
private_cgroupfs() {
    local save=$1 m n h skip
    shift
    mount --make-rprivate / || return 1
    if [ "$(findmnt -n -o FSTYPE /sys/fs/cgroup)" != tmpfs ]; then
        return 0
    fi
    local -a mounts
    mapfile -t mounts < <(findmnt -rn -o TARGET -R /sys/fs/cgroup | tail -n +2)
    for m in "${mounts[@]}"; do
        n=$(basename "$m")
        skip=0
        for h in "$@"; do [ "$n" = "$h" ] && skip=1; done
        [ "$skip" -eq 1 ] && continue
        mkdir -p "$save/$n"
        mount --bind "$m" "$save/$n" || return 1
    done
    umount -l /sys/fs/cgroup || return 1
    mount -t tmpfs -o mode=755,nosuid,nodev,noexec berth-cgroup /sys/fs/cgroup || return 1
    for m in "$save"/*; do
        [ -d "$m" ] || continue
        n=$(basename "$m")
        mkdir -p "/sys/fs/cgroup/$n"
        mount --move "$m" "/sys/fs/cgroup/$n" || return 1
    done
}
