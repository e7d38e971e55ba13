#!/usr/bin/env bash
# Installs what graft needs to build and test on Debian 12 (run as root, or with sudo available).
#   scripts/deps.sh           build and test
#   scripts/deps.sh --bench   also what bench/run.sh uses for its profiles (perf)
#   scripts/deps.sh --package also what tests/packaging/run.sh uses to build, check and use the .deb
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
      libelf-dev libdw-dev libzydis-dev zlib1g-dev libssl3 libc6-dbg nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev
      python3 python3-matplotlib util-linux procps libevent-dev dpkg-dev xz-utils patch bear)
[ "${1:-}" = --bench ] && pkgs+=(linux-perf)
[ "${1:-}" = --package ] && pkgs+=(debhelper dpkg-dev fakeroot lintian bash-completion man-db)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
