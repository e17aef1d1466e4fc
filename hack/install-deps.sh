#!/usr/bin/env bash
# Install what a fresh Debian 12 (bookworm) machine, as root, needs to build, demo,
# test and benchmark berth. Idempotent and quiet: when everything is present it only
# checks (no apt-get update, no network).
#
# A Rust toolchain is not installed from the network: this script finds cargo >= 1.80
# (sourcing ~/.cargo/env if present) and fails with a clear message otherwise.
# Debian's own cargo/rustc (1.63 in bookworm) is too old for the workspace.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

PACKAGES=(
    build-essential pkg-config libseccomp-dev busybox-static
    # protoc: hack/cri-client generates its CRI client from the protos at build time.
    protobuf-compiler
    runc crun podman conmon uidmap jq hyperfine iproute2 util-linux time
    # What the engine tests use from Podman's recommends (installed without them):
    # --init, the default network, rootfs storage; rootless Podman
    # (hack/engines/podman-rootless.sh) needs slirp4netns, fuse-overlayfs and uidmap's
    # setuid newuidmap/newgidmap. bc: the engine scripts time their stops with it.
    catatonit slirp4netns fuse-overlayfs netavark aardvark-dns containernetworking-plugins bc
    # The other engines and checkpointing (hack/engines, berth checkpoint).
    containerd docker.io criu
)
MIN_RUST_MINOR=80

die() {
    echo "install-deps: error: $*" >&2
    exit 1
}

if [ "$(id -u)" -ne 0 ]; then
    die "must run as root (apt-get install and the tests need it)"
fi
command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: this script expects Debian 12"

# --- Debian packages -------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    if [ "$status" != "installed" ]; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    log=$(mktemp /tmp/berth-install-deps.XXXXXX)
    if ! apt-get update -qq >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        die "apt-get update failed (output above)"
    fi
    # Packages such as docker.io and containerd start their system daemons from
    # their maintainer scripts; the tests start their own, privately. A policy-rc.d
    # that refuses every start keeps the host clean (only when there is none already).
    policy=/usr/sbin/policy-rc.d
    own_policy=false
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=true
    fi
    ok=true
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$log" 2>&1 || ok=false
    if $own_policy; then rm -f "$policy"; fi
    if ! $ok; then
        cat "$log" >&2
        rm -f "$log"
        die "apt-get install ${missing[*]} failed (output above)"
    fi
    rm -f "$log"
fi

# --- Rust toolchain --------------------------------------------------------
if [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi
command -v cargo >/dev/null 2>&1 ||
    die "cargo not found on PATH (nor in ~/.cargo/env); install a Rust toolchain >= 1.$MIN_RUST_MINOR (rustup); Debian's cargo (1.63) is too old"

ver=$(cargo --version 2>/dev/null | awk '{print $2}')
major=${ver%%.*}
rest=${ver#*.}
minor=${rest%%.*}
case "$major$minor" in
    '' | *[!0-9]*) die "cannot parse cargo version '$ver' from $(command -v cargo)" ;;
esac
if [ "$major" -lt 1 ] || { [ "$major" -eq 1 ] && [ "$minor" -lt "$MIN_RUST_MINOR" ]; }; then
    die "cargo $ver at $(command -v cargo) is too old: berth needs >= 1.$MIN_RUST_MINOR (install rustup's stable toolchain; Debian's cargo is 1.63)"
fi
for sub in fmt clippy; do
    cargo "$sub" --version >/dev/null 2>&1 ||
        echo "install-deps: warning: 'cargo $sub' is missing (rustup component add ${sub/fmt/rustfmt}); make test needs it" >&2
done

# --- Fuzzing (only with --fuzz: `make fuzz` and the fuzz stage) -------------
# cargo-fuzz from crates.io, built once (a few minutes); the targets need a nightly
# toolchain (libFuzzer's instrumentation flags), which is not fetched here.
if [ "${1:-}" = --fuzz ]; then
    cargo +nightly --version >/dev/null 2>&1 ||
        die "the fuzz targets need rustup's nightly toolchain (rustup toolchain install nightly)"
    if ! cargo fuzz --version >/dev/null 2>&1; then
        echo "install-deps: installing cargo-fuzz (cargo install --locked)"
        log=$(mktemp /tmp/berth-install-deps.XXXXXX)
        if ! cargo install --locked cargo-fuzz >"$log" 2>&1; then
            cat "$log" >&2
            rm -f "$log"
            die "cargo install cargo-fuzz failed (output above)"
        fi
        rm -f "$log"
    fi
    echo "install-deps: fuzz ok ($(cargo fuzz --version), $(cargo +nightly --version))"
    exit 0
fi

echo "install-deps: ok (cargo $ver, ${#PACKAGES[@]} packages present)"
