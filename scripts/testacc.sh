#!/usr/bin/env bash
# What `make testacc` (and CI) runs: install the tools, build the provider binary the
# acceptance tests drive, then every test of the workspace, the #[ignore]d ones that need
# terraform, docker-registry, the Docker daemon and moto included. Extra arguments go to
# the test binaries, e.g. `scripts/testacc.sh image_manifest` to run a few.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/testenv.sh
# The release tests (acceptance-tests/tests/release.rs) run scripts/release.sh: zig,
# cargo-zigbuild, the musl targets, zip, gnupg and qemu-user-static.
bash scripts/release-tools.sh
cargo build --bin terraform-provider-stevedore
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# One test binary at a time keeps the 2-core machines responsive; tests inside a
# binary still run in parallel.
status=0
cargo test --workspace --no-fail-fast -- --include-ignored "$@" 2>&1 | tee "$log" || status=$?
# cargo prints one "test result" line per test binary (the last is often an empty
# doc-test run); close with the total over all of them.
# Ignored and filtered-out tests are counted too (a filter argument leaves some out).
awk '/^test result:/ { p += $4; f += $6; i += $8; x += $12 }
     END { printf "not run: %d ignored, %d filtered out\ntotal: %d passed, %d failed\n", i, x, p, f }' "$log"
exit "$status"
