#!/usr/bin/env bash
# Installs cargo-deb, which builds the Debian package (Cargo.toml's
# [package.metadata.deb]; tests/package.rs), into a project-local root, target/tools
# (the binary is target/tools/bin/cargo-deb). Pinned; idempotent: does nothing when
# that version is already there. Built without its default features (the bundled
# liblzma and the ELF debug-id reader): the package is then compressed by the system's
# `xz` (`cargo deb --compress-system`, xz-utils), and the build is shorter.
set -euo pipefail
cd "$(dirname "$0")/.."

version=3.8.0
root=target/tools
log() { printf 'install-cargo-deb: %s\n' "$*"; }

if [ -x "$root/bin/cargo-deb" ] && [ "$("$root/bin/cargo-deb" --version 2>/dev/null)" = "cargo-deb $version" ]; then
    log "cargo-deb $version already in $root"
    exit 0
fi
if ! command -v cargo >/dev/null 2>&1; then
    log "cargo not found: install a Rust toolchain first" >&2
    exit 1
fi
start=$(date +%s)
# A build directory of its own: the workspace's target/ is not disturbed, and a second
# run after an interrupted one starts clean.
CARGO_TARGET_DIR=target/tools/build cargo install --locked --quiet --no-default-features \
    --root "$root" --version "=$version" cargo-deb
rm -rf target/tools/build
log "installed cargo-deb $version in $root ($(( $(date +%s) - start ))s)"
