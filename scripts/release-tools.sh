#!/usr/bin/env bash
# Installs what `make release` (scripts/release.sh) needs, skipping whatever is already there:
#   - Debian packages: zip, gnupg (signing), file and binutils (the static-link check),
#     qemu-user-static (running the arm64 binary on an amd64 host);
#   - Rust's musl standard libraries for x86_64 and aarch64 (rustup target add);
#   - zig and cargo-zigbuild (pinned, from PyPI) in the venv scripts/testenv.sh makes, at
#     ${STEVEDORE_TOOLS:-$HOME/.cache/stevedore}/venv: zig is the C compiler and linker for
#     both musl targets, so aws-lc and ring cross-compile with no other toolchain.
# Safe to run again and again; used by `make release` and by the release acceptance tests.
set -euo pipefail

TOOLS="${STEVEDORE_TOOLS:-$HOME/.cache/stevedore}"
VENV="$TOOLS/venv"
ZIGLANG="ziglang==0.15.2"
CARGO_ZIGBUILD="cargo-zigbuild==0.24.1"
RUST_TARGETS=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)

log() { printf 'release-tools: %s\n' "$*" >&2; }

# shellcheck source=scripts/debs.sh
source "$(dirname "${BASH_SOURCE[0]}")/debs.sh"

install_debs() {
  local missing
  mapfile -t missing < <(missing_debs zip gnupg file binutils qemu-user-static python3-venv)
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  apt_install "${missing[@]}" >/dev/null
}

install_targets() {
  local installed target
  installed=$(rustup target list --installed)
  for target in "${RUST_TARGETS[@]}"; do
    if ! grep -qx "$target" <<<"$installed"; then
      log "rustup target add $target"
      rustup target add "$target"
    fi
  done
}

# `pip install` of a pinned version that is already there is a quick no-op, but it still
# asks the index; compare versions first so a warm machine needs no network.
pip_pinned() {
  local spec=$1 name=${1%%==*} version=${1##*==} have
  have=$("$VENV/bin/python" -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p' || true)
  [ "$have" = "$version" ] && return 0
  log "installing $spec"
  "$VENV/bin/python" -m pip install -q "$spec"
}

install_venv() {
  [ -x "$VENV/bin/python" ] || { log "creating $VENV"; python3 -m venv "$VENV"; }
  pip_pinned "$ZIGLANG"
  pip_pinned "$CARGO_ZIGBUILD"
}

check() {
  local tool
  for tool in zip gpg file readelf qemu-aarch64-static sha256sum; do
    command -v "$tool" >/dev/null || { log "missing after install: $tool"; exit 1; }
  done
  [ -x "$VENV/bin/cargo-zigbuild" ] || { log "missing after install: $VENV/bin/cargo-zigbuild"; exit 1; }
  "$VENV/bin/python" -m ziglang version >/dev/null || { log "zig does not run"; exit 1; }
}

install_debs
install_targets
install_venv
check
