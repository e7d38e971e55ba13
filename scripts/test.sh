#!/usr/bin/env bash
# The README's test command: installs the dependencies, builds graft and runs every test.
# Environment: as scripts/build.sh; GRAFT_TESTS (a ctest -R regex) to run a subset, GRAFT_TESTS_EXCLUDE
# (a ctest -E regex) to leave some out, GRAFT_STRESS_SCALE (tests/README.md) to shorten the stress tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
dir=${GRAFT_BUILD_DIR:-build}
# Real programs from Debian source packages, built with graft's flags (tests/scenarios/debian_*).
tests/scenarios/debian_memcached/prepare.sh "$dir/bin/graft" "${GRAFT_DEBIAN_DIR:-/var/tmp/graft-debian}"
tests/scenarios/debian_fixes/prepare.sh "${GRAFT_DEBIAN_DIR:-/var/tmp/graft-debian}"
args=(--output-on-failure --test-dir "$dir" --timeout 900)
[ -n "${GRAFT_TESTS:-}" ] && args+=(-R "$GRAFT_TESTS")
[ -n "${GRAFT_TESTS_EXCLUDE:-}" ] && args+=(-E "$GRAFT_TESTS_EXCLUDE")
ctest "${args[@]}"
