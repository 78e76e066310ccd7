#!/usr/bin/env bash
# Sets up and runs the tests: restore, build, test. Prints "N passed, N failed, N skipped" last
# and exits non-zero on any failure.
#
#   scripts/test.sh          every tier: the engine tier (Attribution.Tests) and the service tier
#                            (GraphFunctions.Tests: hosts, Durable, storage emulators, browsers,
#                            infrastructure), then the GPU check's CPU dry run
#   scripts/test.sh --fast   the engine tier alone: no emulators, hosts or browsers
#
# Further arguments go to `dotnet test` (e.g. --filter). The viewer's d3 (npm) and, from Debian,
# chromium (for the viewer's browser tests) and curl and jq (for the README tour's test) are
# installed where missing. Storage emulators (Azurite, s3rver) are installed from npm into .tools/
# and started here on 127.0.0.1 for the duration of the run.
set -euo pipefail
cd "$(dirname "$0")/.."

fast=false
if [ "${1:-}" = "--fast" ]; then fast=true; shift; fi

scripts/fetch-test-data.sh   # real tokenizer files and the Jinja reference (both tiers)

if $fast; then
  target=Attribution.Tests
else
  target=GraphFunctions.slnx
  scripts/install-viewer.sh
  scripts/install-debian-tools.sh chromium curl jq libjemalloc2:libjemalloc.so.2   # the browser tests, the README tour, the hosts' allocator
  scripts/test-services.sh start
  trap 'scripts/test-services.sh stop' EXIT
fi

log=$(mktemp)
set +e
dotnet test "$target" --nologo "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# Sum the runner's per-assembly summaries ("Failed: a, Passed: b, Skipped: c, Total: d").
read -r passed failed skipped < <(grep -Eo 'Failed: +[0-9]+, Passed: +[0-9]+, Skipped: +[0-9]+' "$log" |
  awk -F'[:,]' '{f+=$2; p+=$4; s+=$6} END {printf "%d %d %d\n", p, f, s}')
rm -f "$log"

if ! $fast; then
  # The GPU check's CPU dry run (build, device tests, scale benchmark at a small shape), counted as one test.
  mkdir -p .data
  if scripts/gpu-check.sh --cpu --report .data/gpu-check-dry-run.md > .data/gpu-check-dry-run.log 2>&1; then
    passed=$((passed + 1)); echo "gpu-check dry run: passed (.data/gpu-check-dry-run.md)"
  else
    failed=$((failed + 1)); echo "gpu-check dry run: FAILED"; tail -n 40 .data/gpu-check-dry-run.log
  fi
fi
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ]; then
  exit 1
fi
