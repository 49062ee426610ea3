#!/usr/bin/env bash
# `make release`: the files the Terraform Registry (and a filesystem mirror) takes, laid out as
# goreleaser lays them out for a provider, in $DIST (default dist/):
#
#   terraform-provider-stevedore_<V>_linux_amd64.zip   one file each:
#   terraform-provider-stevedore_<V>_linux_arm64.zip     terraform-provider-stevedore_v<V> (0755)
#   terraform-provider-stevedore_<V>_manifest.json     a copy of terraform-registry-manifest.json
#   terraform-provider-stevedore_<V>_SHA256SUMS        sha256sum of the three files above
#   terraform-provider-stevedore_<V>_SHA256SUMS.sig    detached binary signature, when
#                                                      GPG_FINGERPRINT names a secret key
#
# Variables: VERSION (default: the package version in Cargo.toml), DIST, GPG_FINGERPRINT
# (GNUPGHOME is honoured), SOURCE_DATE_EPOCH (the time stored in the zips; default: the
# commit time of HEAD). GPG_FINGERPRINT set, even to nothing, asks for a signature: the script
# fails, before building when it can tell, rather than leave the release unsigned or signed
# by another key. The binaries are statically linked musl builds (cargo zigbuild), so
# they run on Alpine as well as on glibc hosts; the script fails if one is not. Each is
# smoke-tested: run by hand it must explain that it is a plugin and exit 1, and with
# --debug it must serve and print TF_REATTACH_PROVIDERS; the binary for the other
# architecture runs under qemu-user. Zips are byte-identical from run to run for the same
# binaries and SOURCE_DATE_EPOCH. A second run rebuilds nothing that cargo finds fresh.
#
# Sourced (`source scripts/release.sh`), it only defines its functions, for tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

NAME=terraform-provider-stevedore
TOOLS="${STEVEDORE_TOOLS:-$HOME/.cache/stevedore}"
# Go's os/arch names, as the Registry and Terraform use them, and Rust's target for each.
PLATFORMS=(linux_amd64 linux_arm64)
declare -A RUST_TARGET=([linux_amd64]=x86_64-unknown-linux-musl [linux_arm64]=aarch64-unknown-linux-musl)
declare -A ELF_MACHINE=([linux_amd64]="Advanced Micro Devices X86-64" [linux_arm64]="AArch64")
declare -A QEMU=([linux_amd64]=qemu-x86_64-static [linux_arm64]=qemu-aarch64-static)

log() { printf 'release: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

cargo_version() {
  # The first `version = "..."` of the [package] table.
  awk '/^\[/{section=$0} section=="[package]" && /^version *=/ {gsub(/.*= *"|".*/, ""); print; exit}' Cargo.toml
}

VERSION="${VERSION:-$(cargo_version)}"
DIST="${DIST:-dist}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 315532800)}"
# A zip's DOS timestamps start in 1980.
[ "$EPOCH" -ge 315532800 ] || EPOCH=315532800

host_platform() {
  case "$(uname -m)" in
    x86_64) echo linux_amd64 ;;
    aarch64 | arm64) echo linux_arm64 ;;
    *) echo "unknown" ;;
  esac
}

# The RUSTFLAGS of the release builds. Absolute paths stay out of the binary (panic
# messages), so it does not depend on where it was built: cargo's registry sources and the
# target directory (generated code) are remapped; this checkout's files already reach rustc
# as relative paths. The flags name no path of the checkout, so a clone elsewhere that shares
# the target directory finds every dependency fresh (RUSTFLAGS are part of each crate's
# fingerprint).
release_rustflags() {
  local target_dir
  # As cargo spells it in OUT_DIR: an absolute CARGO_TARGET_DIR as given, else under here.
  case "$TARGET_DIR" in
    /*) target_dir=${TARGET_DIR%/} ;;
    *) target_dir=$PWD/${TARGET_DIR%/} ;;
  esac
  echo "--remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo --remap-path-prefix=$target_dir=/target"
}

build() {
  local target=$1
  log "cargo zigbuild --release --target $target"
  # Target-specific flags leave the host's build scripts and the dev builds' cache alone.
  local flags_var
  flags_var="CARGO_TARGET_$(tr 'a-z-' 'A-Z_' <<<"$target")_RUSTFLAGS"
  local started=$SECONDS
  env "$flags_var=$(release_rustflags)" cargo zigbuild --release --locked --bin "$NAME" --target "$target"
  local took="phase: cargo zigbuild $target took $((SECONDS - started)) s${STEVEDORE_PHASE_NOTE:-}"
  log "$took"
  # make testacc prints these after the suite (the tests keep the script's output).
  if [ -n "${STEVEDORE_PHASE_LOG:-}" ]; then echo "$took" >>"$STEVEDORE_PHASE_LOG"; fi
}

# Both release builds and nothing else: `make testacc` runs this beside the tests, so the
# release tests find them fresh.
build_all() {
  export PATH="$TOOLS/venv/bin:$PATH"
  local platform
  for platform in "${PLATFORMS[@]}"; do build "${RUST_TARGET[$platform]}"; done
}

# A static binary has no program interpreter and needs no shared library.
check_static() {
  local platform=$1 bin=$2 headers
  headers=$(readelf -h -l -d "$bin" 2>&1) || die "readelf $bin: $headers"
  grep -q "Machine: *${ELF_MACHINE[$platform]}" <<<"$headers" ||
    die "$bin is not a ${ELF_MACHINE[$platform]} binary: $(file -b "$bin")"
  if grep -q 'INTERP' <<<"$headers" || grep -q '(NEEDED)' <<<"$headers"; then
    die "$bin is dynamically linked: $(file -b "$bin")"
  fi
  log "$platform: $(file -b "$bin" | cut -d, -f1-2,4-5)"
}

# The binary runs directly on its own architecture, under qemu-user on another one.
runner() {
  local platform=$1
  if [ "$platform" = "$(host_platform)" ]; then
    echo ""
  else
    command -v "${QEMU[$platform]}" >/dev/null || die "${QEMU[$platform]} not found (scripts/release-tools.sh installs it)"
    echo "${QEMU[$platform]}"
  fi
}

smoke_test() {
  local platform=$1 bin=$2 run tmp code=0 pid i
  run=$(runner "$platform")
  tmp=$(mktemp -d)
  # Run by hand (no magic cookie), the plugin says what it is on stderr and exits 1.
  env -u TF_PLUGIN_MAGIC_COOKIE timeout 60 $run "$bin" </dev/null >"$tmp/out" 2>"$tmp/err" || code=$?
  if [ "$code" -ne 1 ] || ! grep -q "This binary is a plugin" "$tmp/err" || [ -s "$tmp/out" ]; then
    die "$platform binary run by hand${run:+ under $run}: exit $code, stdout: $(cat "$tmp/out"), stderr: $(cat "$tmp/err")"
  fi
  # With --debug it starts its gRPC server and prints how Terraform can attach to it.
  env -u TF_PLUGIN_MAGIC_COOKIE $run "$bin" --debug </dev/null >"$tmp/out" 2>"$tmp/err" &
  pid=$!
  for ((i = 0; i < 300; i++)); do
    grep -q "TF_REATTACH_PROVIDERS=" "$tmp/out" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  grep -q "TF_REATTACH_PROVIDERS=" "$tmp/out" ||
    die "$platform binary --debug${run:+ under $run} printed no TF_REATTACH_PROVIDERS: $(cat "$tmp/out") $(cat "$tmp/err")"
  rm -rf "$tmp"
  log "$platform: smoke test passed${run:+ under $run}"
}

# One file, mode 0755, fixed time, no extra fields (uid, gid, UTC times): the same bytes
# for the same binary whatever the umask, time zone or clock.
package() {
  local platform=$1 bin=$2 stage zip
  zip="$DIST/${NAME}_${VERSION}_${platform}.zip"
  stage=$(mktemp -d)
  cp "$bin" "$stage/${NAME}_v${VERSION}"
  chmod 0755 "$stage/${NAME}_v${VERSION}"
  TZ=UTC touch -d "@$EPOCH" "$stage/${NAME}_v${VERSION}"
  rm -f "$zip"
  (cd "$stage" && TZ=UTC zip -X -9 -q "$zip.tmp" "${NAME}_v${VERSION}")
  mv "$zip.tmp" "$zip"
  rm -rf "$stage"
}

# GPG_FINGERPRINT set, even empty, asks for a signature.
signing_asked() { [ -n "${GPG_FINGERPRINT+set}" ]; }

# The fingerprints of the secret keys GPG_FINGERPRINT names, one a line; none if it names none.
signing_keys() {
  gpg --batch --with-colons --list-secret-keys -- "$GPG_FINGERPRINT" 2>/dev/null |
    awk -F: '$1 == "fpr" { print $10 }'
}

# A signature asked for with no key to make it fails here, before the builds. Without gpg
# (release-tools.sh installs it) only the empty value is caught; signing checks again.
check_signing_key() {
  signing_asked || return 0
  [[ $GPG_FINGERPRINT =~ [^[:space:]] ]] ||
    die "GPG_FINGERPRINT is set but empty: set it to the fingerprint of the secret key to sign with (gpg --list-secret-keys shows them), or unset it for an unsigned release"
  command -v gpg >/dev/null || return 0
  [ -n "$(signing_keys)" ] ||
    die "GPG_FINGERPRINT=$GPG_FINGERPRINT names no secret key in ${GNUPGHOME:-~/.gnupg} (gpg --list-secret-keys shows them): import the key, point GNUPGHOME at its keyring, or unset GPG_FINGERPRINT for an unsigned release"
}

# Signs $DIST/$1 with GPG_FINGERPRINT into $1.sig and checks that signature: it verifies, and
# was made by the key asked for. Any failure removes the .sig and stops the release.
sign() {
  local file="$DIST/$1" out status signer
  check_signing_key
  log "signing $1 with $GPG_FINGERPRINT"
  if ! out=$(gpg --batch --yes --local-user "$GPG_FINGERPRINT" --output "$file.sig" \
    --detach-sign "$file" 2>&1); then
    rm -f "$file.sig"
    die "could not sign $1 with GPG_FINGERPRINT=$GPG_FINGERPRINT (gpg: $(tr '\n' ' ' <<<"$out")); the release is not signed"
  fi
  if ! status=$(gpg --batch --status-fd 1 --verify "$file.sig" "$file" 2>/dev/null); then
    rm -f "$file.sig"
    die "the signature just made of $1 does not verify"
  fi
  # VALIDSIG's last field is the fingerprint of the primary key that signed.
  signer=$(awk '$2 == "VALIDSIG" { print $NF }' <<<"$status")
  if [ -z "$signer" ] || ! grep -qxF "$signer" <<<"$(signing_keys)"; then
    rm -f "$file.sig"
    die "$1 was signed by ${signer:-an unknown key}, not by GPG_FINGERPRINT=$GPG_FINGERPRINT"
  fi
}

sums_and_signature() {
  local sums="${NAME}_${VERSION}_SHA256SUMS" files
  cp terraform-registry-manifest.json "$DIST/${NAME}_${VERSION}_manifest.json"
  files=("${NAME}_${VERSION}_manifest.json")
  for platform in "${PLATFORMS[@]}"; do files+=("${NAME}_${VERSION}_${platform}.zip"); done
  (cd "$DIST" && printf '%s\n' "${files[@]}" | LC_ALL=C sort | xargs sha256sum >"$sums.tmp" && mv "$sums.tmp" "$sums")
  rm -f "$DIST/$sums.sig"
  if signing_asked; then
    sign "$sums"
  else
    log "GPG_FINGERPRINT not set: $sums left unsigned (the Registry needs the .sig)"
  fi
}

main() {
  [[ $VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] ||
    die "VERSION '$VERSION' is not a semantic version (the Registry needs MAJOR.MINOR.PATCH[-PRE])"
  check_signing_key
  grep -q '"6.0"' terraform-registry-manifest.json ||
    die "terraform-registry-manifest.json does not declare protocol 6.0"
  bash scripts/release-tools.sh
  export PATH="$TOOLS/venv/bin:$PATH"
  mkdir -p "$DIST"
  DIST=$(cd "$DIST" && pwd)
  rm -f "$DIST/${NAME}_${VERSION}_"*
  local started=$SECONDS platform target bin
  for platform in "${PLATFORMS[@]}"; do
    target=${RUST_TARGET[$platform]}
    build "$target"
    bin="$TARGET_DIR/$target/release/$NAME"
    check_static "$platform" "$bin"
    smoke_test "$platform" "$bin"
    package "$platform" "$bin"
  done
  sums_and_signature
  log "version $VERSION in $DIST/ ($((SECONDS - started)) s):"
  (cd "$DIST" && ls -l "${NAME}_${VERSION}_"* >&2)
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
