#!/usr/bin/env bash
# `make demo`: install the tools, build the provider, then run the quickstart against a
# local docker-registry and moto (see acceptance-tests/src/bin/stevedore-demo.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/testenv.sh
cargo build --bin terraform-provider-stevedore
cargo run -q -p acceptance-tests --bin stevedore-demo
