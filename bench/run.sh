#!/bin/sh
# graft's benchmark suite: one command.
#
#   bench/run.sh [BUILD_DIR]        (default: build-bench next to this repository's sources)
#
# Installs missing Debian packages (scripts/deps.sh --bench), configures BUILD_DIR if needed
# (Release, Ninja when available), builds graft and the benchmark
# programs (target bench_programs), runs every measurement (bench/driver.py), prints the results
# as JSON on stdout, writes bench/results/latest.json, docs/performance.md and the plots
# docs/transition_time.png and docs/latency.png. Progress goes to stderr.
#
# Environment: JOBS=N (build parallelism), GRAFT_BENCH_QUICK=1 (a short trial run: fewer
# repetitions and sizes), GRAFT_BENCH_PERF=0 (skip the perf profiles), GRAFT_BENCH_ONLY=a,b
# (only these sections), GRAFT_BENCH_NO_BUILD=1 (set by the CMake target `bench`).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
build=${1:-$repo/build-bench}
mkdir -p "$build"
build=$(cd "$build" && pwd)

if [ -z "${GRAFT_BENCH_NO_BUILD:-}" ]; then
    # Debian packages the build, the plots and the profiles need (installs only what is missing).
    "$repo/scripts/deps.sh" --bench >&2
    if [ ! -f "$build/CMakeCache.txt" ]; then
        gen=""
        command -v ninja >/dev/null 2>&1 && gen="-G Ninja"
        # shellcheck disable=SC2086
        cmake -S "$repo" -B "$build" $gen -DCMAKE_BUILD_TYPE=Release >&2
    fi
    cmake --build "$build" --target bench_programs -j "${JOBS:-$(nproc)}" >&2
fi

# A Python with matplotlib for the plots (the driver itself needs only the standard library).
py=""
for cand in python3 /usr/bin/python3 /usr/local/bin/python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import matplotlib' >/dev/null 2>&1; then
        py=$cand
        break
    fi
done
if [ -z "$py" ]; then
    echo "bench/run.sh: no python3 with matplotlib found; results without plots" >&2
    py=python3
fi

set --  --build "$build" --command "bench/run.sh ${1:-}"
[ -n "${GRAFT_BENCH_QUICK:-}" ] && set -- "$@" --quick
[ -n "${GRAFT_BENCH_ONLY:-}" ] && set -- "$@" --only "$GRAFT_BENCH_ONLY"
exec "$py" "$here/driver.py" "$@"
