# shellcheck shell=bash
# Local images for the engine tests, with no registry: the rootfs of the "app" image
# (busybox, a non-root user and a shell-script entrypoint) and an OCI image archive
# built by hand (one uncompressed tar layer, config, manifest, index) that
# `ctr image import` and `podman load` accept. Needs hack/lib/bundle.sh sourced first.

APP_UID=1000
APP_USER=app

# make_app_rootfs DIR: the busybox rootfs plus user app (uid 1000, home /home/app)
# and /entrypoint.sh, which prints who runs it, from where, and its arguments.
make_app_rootfs() {
    local root=$1
    make_busybox_rootfs "$root" || return 1
    echo "$APP_USER:x:$APP_UID:$APP_UID:app:/home/$APP_USER:/bin/sh" >>"$root/etc/passwd"
    echo "$APP_USER:x:$APP_UID:" >>"$root/etc/group"
    mkdir -p "$root/home/$APP_USER"
    chown "$APP_UID:$APP_UID" "$root/home/$APP_USER"
    cat >"$root/entrypoint.sh" <<'EOF'
#!/bin/sh
echo "entrypoint: user=$(id -un) uid=$(id -u) cwd=$(pwd) args=$*"
EOF
    chmod 755 "$root/entrypoint.sh"
}

# _oci_blob LAYOUT FILE MEDIATYPE: move FILE into LAYOUT/blobs/sha256 and print its
# descriptor as JSON.
_oci_blob() {
    local layout=$1 file=$2 mt=$3 dg size
    dg=$(sha256sum "$file" | cut -d' ' -f1)
    size=$(stat -c %s "$file")
    mv "$file" "$layout/blobs/sha256/$dg"
    printf '{"mediaType":"%s","digest":"sha256:%s","size":%s}' "$mt" "$dg" "$size"
}

# make_oci_archive ROOTFS OUT NAME [CONFIG_JSON]: OUT is an OCI image archive (tar of
# an OCI layout) whose one layer is ROOTFS, named NAME (e.g.
# docker.io/berth-test/busybox:latest). CONFIG_JSON is the image's "config" object
# (default: Cmd sh, PATH set).
make_oci_archive() {
    local rootfs=$1 out=$2 name=$3
    local cfg=${4:-'{"Env":["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]}'}
    local layout diff layer config manifest
    layout=$(mktemp -d "${TMPDIR:-/tmp}/oci-layout.XXXXXX") || return 1
    mkdir -p "$layout/blobs/sha256"
    tar -C "$rootfs" --numeric-owner -cf "$layout/layer.tar" . || return 1
    diff=$(sha256sum "$layout/layer.tar" | cut -d' ' -f1)
    layer=$(_oci_blob "$layout" "$layout/layer.tar" application/vnd.oci.image.layer.v1.tar)
    printf '{"architecture":"amd64","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
        "$cfg" "$diff" >"$layout/config.json"
    config=$(_oci_blob "$layout" "$layout/config.json" application/vnd.oci.image.config.v1+json)
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":%s,"layers":[%s]}' \
        "$config" "$layer" >"$layout/manifest.json"
    manifest=$(_oci_blob "$layout" "$layout/manifest.json" application/vnd.oci.image.manifest.v1+json)
    manifest=${manifest%\}}
    printf '{"schemaVersion":2,"manifests":[%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
        "$manifest" "$name" "${name##*:}" >"$layout/index.json"
    echo '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
    tar -C "$layout" -cf "$out" oci-layout index.json blobs || return 1
    rm -rf "$layout"
}
