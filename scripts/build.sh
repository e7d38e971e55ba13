#!/usr/bin/env bash
# Configures and builds graft. Environment: GRAFT_BUILD_DIR (default build), GRAFT_CC=gcc|clang,
# GRAFT_SANITIZE (e.g. address,undefined or thread), GRAFT_BUILD_TYPE.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${GRAFT_BUILD_DIR:-build}
cc=${GRAFT_CC:-gcc}
if [ "$cc" = clang ]; then ccx=clang++; else ccx=g++; fi
cmake -S . -B "$dir" -G Ninja -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$ccx" \
  -DCMAKE_BUILD_TYPE="${GRAFT_BUILD_TYPE:-RelWithDebInfo}" -DGRAFT_WERROR=ON \
  -DGRAFT_SANITIZE="${GRAFT_SANITIZE:-}" -DGRAFT_BENCH="${GRAFT_BENCH:-ON}" >/dev/null
ninja -C "$dir"
