#!/bin/sh
# Two commits side by side in one run: the call-cost and transition rows of bench/run.sh, each
# measured on both builds in alternation (bench/compare.py).
#
#   bench/compare.sh BASE_REV [OUT.json]      e.g. bench/compare.sh HEAD~3
#
# Builds BASE_REV in a git worktree (build-bench-base, Release) and this tree (build-bench),
# then prints JSON with each build's medians and the ratios; also written to OUT.json (default
# bench/results/compare.json). Progress goes to stderr.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
base=${1:?usage: bench/compare.sh BASE_REV [OUT.json]}
out=${2:-$here/results/compare.json}
rev=$(git -C "$repo" rev-parse --short "$base")
"$repo/scripts/deps.sh" --bench >&2
wt=$repo/build-bench-base/src
if [ ! -d "$wt" ]; then
    mkdir -p "$repo/build-bench-base"
    git -C "$repo" worktree add --detach "$wt" "$rev" >&2
else
    git -C "$wt" checkout -q --detach "$rev"
fi
gen=""
command -v ninja >/dev/null 2>&1 && gen="-G Ninja"
for pair in "$wt:$repo/build-bench-base/build" "$repo:$repo/build-bench"; do
    src=${pair%%:*}
    dir=${pair#*:}
    # shellcheck disable=SC2086
    [ -f "$dir/CMakeCache.txt" ] || cmake -S "$src" -B "$dir" $gen -DCMAKE_BUILD_TYPE=Release >&2
    cmake --build "$dir" --target bench_programs -j "${JOBS:-$(nproc)}" >&2
done
here_rev=$(git -C "$repo" rev-parse --short HEAD)
[ -z "$(git -C "$repo" status --porcelain --untracked-files=no)" ] || here_rev="$here_rev+changes"
mkdir -p "$(dirname "$out")"
python3 "$here/compare.py" --a "$repo/build-bench-base/build" --b "$repo/build-bench" \
    --label-a "$rev" --label-b "$here_rev" | tee "$out"
