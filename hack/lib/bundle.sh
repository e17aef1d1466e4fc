# shellcheck shell=bash
# Helpers shared by the hack/ scripts: a busybox rootfs and bundle from Debian's
# busybox-static, and resolving the runtime under test. Source it; it defines
# functions only.

# resolve_runtime NAME_OR_PATH: print an absolute path to an executable runtime, or
# fail with a message naming what was looked for.
resolve_runtime() {
    local r=$1 p
    if [[ $r == */* ]]; then
        [ -x "$r" ] || { echo "runtime '$r' is not an executable file (build it: make build)" >&2; return 1; }
        p=$(realpath "$r")
    else
        p=$(command -v "$r") || { echo "runtime '$r' not found on PATH" >&2; return 1; }
    fi
    printf '%s\n' "$p"
}

# make_busybox_rootfs DIR: a minimal rootfs with busybox, its applet links,
# /etc/passwd and /etc/group.
make_busybox_rootfs() {
    local root=$1 bb=/bin/busybox a
    [ -x "$bb" ] || { echo "$bb not found: install busybox-static (hack/install-deps.sh)" >&2; return 1; }
    mkdir -p "$root"/{bin,etc,proc,sys,dev,tmp,root}
    cp "$bb" "$root/bin/busybox"
    for a in $("$root/bin/busybox" --list); do
        [ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"
    done
    echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
    echo 'nobody:x:65534:65534:nobody:/:/bin/false' >>"$root/etc/passwd"
    echo 'root:x:0:' >"$root/etc/group"
    echo 'nogroup:x:65534:' >>"$root/etc/group"
    chmod 1777 "$root/tmp"
}

# make_busybox_bundle DIR RUNTIME: DIR/rootfs plus DIR/config.json from `RUNTIME spec`.
make_busybox_bundle() {
    local dir=$1 rt=$2
    make_busybox_rootfs "$dir/rootfs" || return 1
    (cd "$dir" && "$rt" spec) || { echo "'$rt spec' failed in $dir" >&2; return 1; }
    [ -s "$dir/config.json" ] || { echo "'$rt spec' wrote no config.json in $dir" >&2; return 1; }
}
