#!/usr/bin/env bash
# What `make testacc` (and CI) runs: install the tools, build the provider binary the
# acceptance tests drive, then every test of the workspace, the #[ignore]d ones that need
# terraform, docker-registry, the Docker daemon and moto included. Extra arguments go to
# the test binaries, e.g. `scripts/testacc.sh image_manifest` to run a few.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/testenv.sh
cargo build --bin terraform-provider-stevedore
# One test binary at a time keeps the 2-core machines responsive; tests inside a
# binary still run in parallel.
cargo test --workspace --no-fail-fast -- --include-ignored "$@"
