#!/usr/bin/env bash
# Real fixes from Debian 12's source packages for `graft diff -o` (debian_fixes_test.cpp): for
# each project, its sources without one of Debian's own CVE fixes (that patch and those after it
# in debian/patches/series reversed), built as its maintainers build it (dpkg-buildflags, their
# build system; not graft's flags: graft rewrites the entries of such code) with a compilation
# database, and the same sources with the fix built the same way (another build, for the
# build-id refusal: every Debian patch for cjson and tinyxml, up to the fix for expat, whose later
# backports do not build with its CMake files); plus a small program that uses the library the
# way a service does.
#   cjson 1.7.15 (C, CMake):      debian/patches/0001-allocate-memory-for-the-temporary-buffer.patch
#                                 (CVE-2023-26819: a number of more than 63 characters fails to parse)
#   tinyxml 2.6.2 (C++, Makefile, compilation database from Bear): debian/patches/CVE-2023-34194.patch
#                                 (a declaration that ends after whitespace aborts the process)
#   expat 2.5.0 (C, its CMake build with Debian's flags): debian/patches/CVE-2024-45490.patch
#                                 (XML_ParseBuffer takes a negative length)
#   tests/scenarios/debian_fixes/prepare.sh [DIR]   (DIR: /var/tmp/graft-debian)
# Needs a deb-src entry (added from the Debian .sources file when there is none), dpkg-dev, cmake
# and bear (scripts/deps.sh installs them); scripts/test.sh runs it. Idempotent.
set -euo pipefail
dir=${1:-/var/tmp/graft-debian}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir"
cd "$dir"

source_of() {  # PACKAGE VERSION DIR: the source package, Debian's patches applied
  local pkg=$1 ver=$2 d=$3
  [ -d "$d" ] && return 0
  if ! apt-cache showsrc "$pkg" 2>/dev/null | grep -q '^Version:'; then
    local src=/etc/apt/sources.list.d/debian.sources SUDO=""
    [ -f "$src" ] || { echo "prepare.sh: no $src to derive a deb-src entry from" >&2; exit 1; }
    [ "$(id -u)" = 0 ] || SUDO=sudo
    sed 's/^Types: deb$/Types: deb-src/' "$src" | $SUDO tee /etc/apt/sources.list.d/graft-deb-src.sources >/dev/null
    $SUDO apt-get update -qq
  fi
  apt-get source -qq "$pkg=$ver" >/dev/null 2>&1 || apt-get source -qq "$pkg" >/dev/null
  [ -d "$d" ] || { echo "prepare.sh: apt-get source $pkg gave no $d" >&2; exit 1; }
}

unfix() {  # TREE FIX [after]: reverse FIX and every patch after it in the series, last first
  local tree=$1 fix=$2 after=${3:-} p
  for p in $(grep -v '^#' "$tree/debian/patches/series" | grep -v '^$' | tac); do
    [ "$p" = "$fix" ] && [ -n "$after" ] && return 0  # [after]: FIX itself stays
    patch -s -R -p1 -d "$tree" < "$tree/debian/patches/$p"
    [ "$p" = "$fix" ] && return 0
  done
  echo "prepare.sh: $fix is not in $tree/debian/patches/series" >&2
  exit 1
}

export DEB_BUILD_MAINT_OPTIONS=hardening=+all
cflags="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)"
cxxflags="$(dpkg-buildflags --get CXXFLAGS) $(dpkg-buildflags --get CPPFLAGS)"
ldflags="$(dpkg-buildflags --get LDFLAGS)"

# ---- cjson: CMake, as debian/rules builds it (dh --buildsystem=cmake) --------------------------
source_of cjson 1.7.15-1+deb12u4 cjson-1.7.15
build_cjson() {  # TREE
  [ -f "$1/build/libcjson.so.1.7.15" ] && return 0
  cmake -Wno-dev -Wno-deprecated -S "$1" -B "$1/build" -G Ninja -DCMAKE_BUILD_TYPE=None -DCMAKE_C_FLAGS="$cflags" \
    -DCMAKE_SHARED_LINKER_FLAGS="$ldflags" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON -DENABLE_CJSON_TEST=OFF >/dev/null
  ninja -C "$1/build" >/dev/null
}
build_cjson cjson-1.7.15
if [ ! -d cjson-unfixed ]; then
  cp -a cjson-1.7.15 cjson-unfixed.tmp && rm -rf cjson-unfixed.tmp/build
  unfix cjson-unfixed.tmp 0001-allocate-memory-for-the-temporary-buffer.patch
  mv cjson-unfixed.tmp cjson-unfixed
fi
build_cjson cjson-unfixed
if [ ! -x cjson-unfixed/json_server ]; then
  mkdir -p cjson-unfixed/include/cjson && cp cjson-unfixed/cJSON.h cjson-unfixed/include/cjson/
  gcc -O2 -g "$here/json_server.c" -Icjson-unfixed/include -Lcjson-unfixed/build -lcjson \
    -Wl,-rpath,"$dir/cjson-unfixed/build" -pthread -o cjson-unfixed/json_server
fi
echo "prepare.sh: $dir/cjson-unfixed (without CVE-2023-26819's fix) and json_server ready"

# ---- tinyxml: its Makefile with the flags debian/rules passes, under Bear ------------------------
source_of tinyxml 2.6.2-6+deb12u1 tinyxml-2.6.2
build_tinyxml() {  # TREE
  [ -f "$1/libtinyxml.so.2.6.2" ] && return 0
  (cd "$1" && bear -- make -s CXXFLAGS="$cxxflags -DTIXML_USE_STL -fPIC" LDFLAGS="$ldflags" CXX=g++ LD=g++ \
     >/dev/null 2>&1 &&
   g++ -shared -Wl,-soname,libtinyxml.so.2.6.2 -o libtinyxml.so.2.6.2 $ldflags tinyxml.o tinyxmlparser.o tinyxmlerror.o)
}
build_tinyxml tinyxml-2.6.2
if [ ! -d tinyxml-unfixed ]; then
  cp -a tinyxml-2.6.2 tinyxml-unfixed.tmp
  (cd tinyxml-unfixed.tmp && make -s clean >/dev/null 2>&1 || true; rm -f libtinyxml.so.2.6.2 compile_commands.json)
  unfix tinyxml-unfixed.tmp CVE-2023-34194.patch
  mv tinyxml-unfixed.tmp tinyxml-unfixed
fi
build_tinyxml tinyxml-unfixed
if [ ! -x tinyxml-unfixed/xml_server ]; then
  g++ -O2 -g -DTIXML_USE_STL "$here/xml_server.cpp" -Itinyxml-unfixed -Ltinyxml-unfixed -l:libtinyxml.so.2.6.2 \
    -Wl,-rpath,"$dir/tinyxml-unfixed" -pthread -o tinyxml-unfixed/xml_server
fi
echo "prepare.sh: $dir/tinyxml-unfixed (without CVE-2023-34194's fix) and xml_server ready"

# ---- expat: its CMake build (Debian's rules use the autotools one) with Debian's flags ---------
source_of expat 2.5.0-1+deb12u2 expat-2.5.0
# Debian's later backports do not build with expat's CMake files: the other build stops at the fix.
if [ ! -d expat-fixed ]; then
  cp -a expat-2.5.0 expat-fixed.tmp && rm -rf expat-fixed.tmp/build
  unfix expat-fixed.tmp CVE-2024-45490.patch after
  mv expat-fixed.tmp expat-fixed
fi
build_expat() {  # TREE
  [ -f "$1/build/libexpat.so.1.8.10" ] && return 0
  cmake -Wno-dev -Wno-deprecated -S "$1/expat" -B "$1/build" -G Ninja -DCMAKE_BUILD_TYPE=None \
    -DCMAKE_C_FLAGS="$cflags -Wall" -DCMAKE_SHARED_LINKER_FLAGS="-Wl,-Bsymbolic-functions $ldflags" \
    -DCMAKE_EXPORT_COMPILE_COMMANDS=ON -DEXPAT_BUILD_TESTS=OFF -DEXPAT_BUILD_TOOLS=OFF \
    -DEXPAT_BUILD_EXAMPLES=OFF -DEXPAT_BUILD_DOCS=OFF >/dev/null
  ninja -C "$1/build" >/dev/null
}
build_expat expat-fixed
if [ ! -d expat-unfixed ]; then
  cp -a expat-2.5.0 expat-unfixed.tmp && rm -rf expat-unfixed.tmp/build
  unfix expat-unfixed.tmp CVE-2024-45490.patch
  mv expat-unfixed.tmp expat-unfixed
fi
build_expat expat-unfixed
if [ ! -x expat-unfixed/expat_server ]; then
  gcc -O2 -g "$here/expat_server.c" -Iexpat-unfixed/expat/lib -Iexpat-unfixed/build -Lexpat-unfixed/build -lexpat \
    -Wl,-rpath,"$dir/expat-unfixed/build" -pthread -o expat-unfixed/expat_server
fi
echo "prepare.sh: $dir/expat-unfixed (without CVE-2024-45490's fix) and expat_server ready"
