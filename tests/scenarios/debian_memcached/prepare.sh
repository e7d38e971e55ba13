#!/usr/bin/env bash
# Builds the real programs the Debian scenario tests patch, as their maintainers ship them but
# with `graft flags target`: memcached 1.6.18 from Debian 12's source package, and its patch.
#   tests/scenarios/debian_memcached/prepare.sh GRAFT_BIN [DIR]   (DIR: /var/tmp/graft-debian)
# Needs a deb-src entry (added from the Debian .sources file when there is none), dpkg-dev and
# libevent-dev (scripts/deps.sh installs them); scripts/test.sh runs it before the tests.
# Idempotent: what is built already is kept.
set -euo pipefail
graft=$(realpath "$1")
dir=${2:-/var/tmp/graft-debian}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir"
cd "$dir"
if [ ! -d memcached-1.6.18 ]; then
  if ! apt-cache showsrc memcached 2>/dev/null | grep '^Version: 1.6.18' >/dev/null; then
    src=/etc/apt/sources.list.d/debian.sources
    [ -f "$src" ] || { echo "prepare.sh: no $src to derive a deb-src entry from" >&2; exit 1; }
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    sed 's/^Types: deb$/Types: deb-src/' "$src" | $SUDO tee /etc/apt/sources.list.d/graft-deb-src.sources >/dev/null
    $SUDO apt-get update -qq
  fi
  apt-get source -qq memcached=1.6.18-1+deb12u1 >/dev/null 2>&1 || apt-get source -qq memcached >/dev/null
  [ -d memcached-1.6.18 ] || { echo "prepare.sh: apt-get source memcached gave no memcached-1.6.18" >&2; exit 1; }
fi
cd memcached-1.6.18
if [ ! -x memcached ]; then
  # Debian's patches are applied by apt-get source (3.0 quilt); the flags are graft's.
  ./configure -q CFLAGS="-O2 -g $("$graft" flags target)" >/dev/null
  make -s -j2 memcached >/dev/null
fi
# The patch: out_string() answers the version command with a marked version string.
"$graft" build -o "$dir/memcached_version_fix.so" --target memcached "$here/memcached_version_fix.c" -- -I"$dir/memcached-1.6.18"
echo "prepare.sh: $dir/memcached-1.6.18/memcached and $dir/memcached_version_fix.so ready"
