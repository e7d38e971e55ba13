#!/usr/bin/env bash
# Builds the real programs the Debian scenario tests patch, as their maintainers ship them but
# with `graft flags target`: memcached 1.6.18 from Debian 12's source package, and its patch.
# Also, for the test of code nobody built for graft: Debian's own binary package of the same
# version, unpacked (stripped, as shipped), and an unstripped rebuild of its source package made
# exactly as the maintainers build it (dpkg-buildpackage, with `apt-get build-dep` first), whose
# code and data are identical to the shipped binary's though its build-id differs; and the same
# patch compiled against that build's configuration (--enable-sasl --enable-tls). And, for
# `graft diff`, the sources without one of Debian's fixes, built under Bear.
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

# ---- graft diff on one of Debian's own fixes ----------------------------------------------------
# The same sources without debian/patches/0007-uninitialized-variables.patch (reversed), built
# with graft's flags under Bear, which writes the compilation database graft diff reads.
cd "$dir"
if [ ! -x memcached-unfixed/memcached ] || [ ! -f memcached-unfixed/compile_commands.json ]; then
  rm -rf memcached-unfixed
  cp -a memcached-1.6.18 memcached-unfixed
  (cd memcached-unfixed && make -s distclean >/dev/null 2>&1 || true
   patch -s -R -p1 < debian/patches/0007-uninitialized-variables.patch
   ./configure -q CFLAGS="-O2 -g $("$graft" flags target)" >/dev/null
   bear -- make -s -j2 memcached >/dev/null 2>&1) ||
    { echo "prepare.sh: the build of memcached without Debian's 0007 fix failed" >&2; exit 1; }
fi
echo "prepare.sh: $dir/memcached-unfixed (without debian/patches/0007, with compile_commands.json) ready"

# ---- Debian's binary package and a rebuild of its source package -------------------------------
cd "$dir"
ver=$(ls memcached_*.dsc | sed -n 's/^memcached_\(.*\)\.dsc$/\1/p' | head -1)
if [ ! -x pkg/usr/bin/memcached ]; then
  rm -rf pkg && mkdir -p pkg
  (cd pkg && apt-get download -qq "memcached=$ver" >/dev/null 2>&1) ||
    { echo "prepare.sh: apt-get download memcached=$ver failed" >&2; exit 1; }
  dpkg-deb -x pkg/memcached_*.deb pkg
fi
if [ ! -x memcached-deb/memcached ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get build-dep -y -qq memcached >/dev/null
  rm -rf memcached-deb
  dpkg-source -x -q "memcached_$ver.dsc" memcached-deb >dpkg-source.log 2>&1 || { cat dpkg-source.log >&2; exit 1; }
  (cd memcached-deb && DEB_BUILD_OPTIONS="nocheck nostrip parallel=2" dpkg-buildpackage -b -uc -us >build.log 2>&1) ||
    { tail -30 memcached-deb/build.log >&2; echo "prepare.sh: dpkg-buildpackage of memcached failed" >&2; exit 1; }
fi
"$graft" build -o "$dir/memcached_pkg_fix.so" --target pkg/usr/bin/memcached "$here/memcached_version_fix.c" \
  -- -I"$dir/memcached-deb"
echo "prepare.sh: $dir/pkg/usr/bin/memcached (Debian's), $dir/memcached-deb/memcached (rebuilt) and" \
  "$dir/memcached_pkg_fix.so ready"
