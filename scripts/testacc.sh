#!/usr/bin/env bash
# What `make testacc` runs: install the tools, build the provider binary the tests drive, then
# run every acceptance test (the #[ignore]d ones included). Extra arguments go to the test
# binaries, e.g. `scripts/testacc.sh image_manifest::docker` to run a few.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/testenv.sh
cargo build --bin terraform-provider-stevedore
cargo test -p acceptance-tests -- --include-ignored "$@"
