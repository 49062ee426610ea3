#!/usr/bin/env bash
# What `make testacc` (and CI) runs: install the tools, build the tests and the provider
# binary the acceptance tests drive, then every test of the workspace, the #[ignore]d ones
# that need terraform, docker-registry, the Docker daemon and moto included. Extra
# arguments go to the test binaries, e.g. `scripts/testacc.sh image_manifest` to run a few.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each phase says how long it took (the release builds say it in release.sh's log).
phase() {
  local name=$1 started=$SECONDS
  shift
  "$@"
  printf 'phase: %s took %d s\n' "$name" $((SECONDS - started))
}
phase "test tools (testenv.sh)" bash scripts/testenv.sh
# The release tests (acceptance-tests/tests/release.rs) run scripts/release.sh: zig,
# cargo-zigbuild, the musl targets, zip, gnupg and qemu-user-static.
phase "release tools (release-tools.sh)" bash scripts/release-tools.sh
# One build of every test target; it also builds the provider binary the acceptance tests
# drive (target/debug), with the features the tests' build unifies. A separate
# `cargo build --bin` first would compile much of the dependency tree a second time, with
# the fewer features the binary alone asks for, only for the test build to replace it.
phase "test build (every test target and the provider)" cargo test --workspace --no-run
log=$(mktemp)
# One test binary at a time; inside a binary, three tests at once by default: the
# acceptance tests mostly wait on terraform, registries and daemons, so a third thread
# keeps two cores busier (STEVEDORE_TEST_THREADS overrides it).
export RUST_TEST_THREADS="${STEVEDORE_TEST_THREADS:-3}"
status=0
phases=$(mktemp)
prebuild_log=$(mktemp)
prebuild=""
trap 'rm -f "$log" "$phases" "$prebuild_log"; [ -z "$prebuild" ] || kill "$prebuild" 2>/dev/null || true' EXIT
started=$SECONDS
# The two static release builds (about 8 minutes each with nothing compiled) run beside
# the tests, at low priority: most tests wait on terraform, registries and daemons, and
# the release tests later find both builds fresh (or wait for cargo's lock on them). With
# a filter (arguments) only what it selects runs, and nothing is built ahead.
if [ "$#" -eq 0 ]; then
  STEVEDORE_PHASE_LOG="$phases" STEVEDORE_PHASE_NOTE=" (beside the tests)" \
    nice -n 10 bash -c 'source scripts/release.sh && build_all' >"$prebuild_log" 2>&1 &
  prebuild=$!
fi
if [ -n "$prebuild" ]; then
  # Every test but the release ones first, so the builds have all that time beside them.
  others=()
  for file in tests/*.rs acceptance-tests/tests/*.rs; do
    name=$(basename "$file" .rs)
    [ "$name" = release ] || others+=(--test "$name")
  done
  cargo test --workspace --no-fail-fast --lib --bins "${others[@]}" -- --include-ignored 2>&1 |
    tee "$log" || status=$?
  # --workspace, not -p: the same features as the test build, so nothing is compiled again.
  STEVEDORE_PHASE_LOG="$phases" cargo test --workspace --no-fail-fast --test release \
    -- --include-ignored 2>&1 | tee -a "$log" || status=$?
  cargo test --workspace --no-fail-fast --doc 2>&1 | tee -a "$log" || status=$?
else
  STEVEDORE_PHASE_LOG="$phases" cargo test --workspace --no-fail-fast -- --include-ignored "$@" 2>&1 |
    tee "$log" || status=$?
fi
if [ -n "$prebuild" ]; then
  # Normally long done: the release tests needed it.
  wait "$prebuild" || { echo "the release builds beside the tests failed:"; tail -n 30 "$prebuild_log"; }
  prebuild=""
fi
cat "$phases"
printf 'phase: the test suite (release builds and tests) took %d s\n' $((SECONDS - started))
# cargo prints one "test result" line per test binary (the last is often an empty
# doc-test run); close with the total over all of them.
# Ignored and filtered-out tests are counted too (a filter argument leaves some out).
awk '/^test result:/ { p += $4; f += $6; i += $8; x += $12 }
     END { printf "not run: %d ignored, %d filtered out\ntotal: %d passed, %d failed\n", i, x, p, f }' "$log"
exit "$status"
