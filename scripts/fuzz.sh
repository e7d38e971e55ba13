#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/*, clang with ASan and UBSan) in build-fuzz, replays every
# input of fuzz/regressions/<name>/ (each once crashed graft: none may crash again), then fuzzes
# each target for GRAFT_FUZZ_SECONDS (default 60) from a scratch copy of its seed corpus
# fuzz/corpus/<name>/, where fuzzer <name>_fuzz takes corpus <name>. Prints each target's
# executions per second and coverage. Exits non-zero on any crash, leaving the input in
# build-fuzz/crashes/<fuzzer>/ to be added to fuzz/regressions/<name>/ once fixed.
# Environment: GRAFT_FUZZ_SECONDS, GRAFT_FUZZ_DIR (build directory, default build-fuzz),
# GRAFT_FUZZ_JOBS (ninja jobs, default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dir=${GRAFT_FUZZ_DIR:-build-fuzz}
seconds=${GRAFT_FUZZ_SECONDS:-60}
cmake -S . -B "$dir" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGRAFT_FUZZ=ON -DGRAFT_BENCH=OFF -DGRAFT_WERROR=ON >/dev/null
mapfile -t fuzzers < <(sed -n 's/^ *graft_fuzzer(\([A-Za-z0-9_]*_fuzz\)[ )].*/\1/p' fuzz/CMakeLists.txt)
if [ ${#fuzzers[@]} -eq 0 ]; then
  echo "fuzz.sh: no graft_fuzzer(...) in fuzz/CMakeLists.txt" >&2
  exit 1
fi
ninja -C "$dir" -j "${GRAFT_FUZZ_JOBS:-2}" "${fuzzers[@]}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
work=$(mktemp -d /tmp/graft-fuzz-XXXXXX)
trap 'rm -rf "$work"' EXIT
failed=0
summary=()
for f in "${fuzzers[@]}"; do
  bin=$dir/fuzz/$f
  name=${f%_fuzz}
  crashes=$root/$dir/crashes/$f
  mkdir -p "$crashes"
  # Regressions first: each input alone, so that a crash names its file.
  if [ -d "fuzz/regressions/$name" ]; then
    mapfile -t regs < <(find "fuzz/regressions/$name" -type f ! -name 'README*' | sort)
    if [ ${#regs[@]} -gt 0 ]; then
      if ! "$bin" -rss_limit_mb=2048 -timeout=25 "${regs[@]}" >"$work/$f.replay.log" 2>&1; then
        tail -n 60 "$work/$f.replay.log" >&2
        echo "fuzz.sh: $f crashes on a regression input of fuzz/regressions/$name/ (log above)" >&2
        failed=1
        continue
      fi
      echo "$f: ${#regs[@]} regression inputs replayed, no crash"
    fi
  fi
  corpus=$work/corpus-$name
  mkdir -p "$corpus"
  if [ -d "fuzz/corpus/$name" ]; then cp -r "fuzz/corpus/$name/." "$corpus/"; fi
  log=$work/$f.log
  set +e
  "$bin" "$corpus" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=25 -print_final_stats=1 \
    -artifact_prefix="$crashes/" >"$log" 2>&1
  rc=$?
  set -e
  stats=$(grep -E '^#[0-9]+[[:space:]]+(DONE|INITED|pulse|NEW|REDUCE)' "$log" | tail -n 1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$stats")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$stats")
  eps=$(sed -n 's/^stat::average_exec_per_sec:[[:space:]]*//p' "$log" | tail -n 1)
  runs=$(sed -n 's/^stat::number_of_executed_units:[[:space:]]*//p' "$log" | tail -n 1)
  line="$f: ${runs:-?} runs in ${seconds}s, ${eps:-?} exec/s, coverage ${cov:-?} edges (${ft:-?} features)"
  summary+=("$line")
  if [ $rc -ne 0 ]; then
    tail -n 80 "$log" >&2
    echo "fuzz.sh: $f crashed (exit $rc); the input is in $crashes/ (see above)." >&2
    echo "fuzz.sh: fix the crash, then add that file to fuzz/regressions/$name/." >&2
    failed=1
  fi
done
printf '%s\n' "${summary[@]}"
exit $failed
