#!/bin/sh
# Compile a patchable target the way a user does: cc $(graft flags target) ...
#   cc_target.sh GRAFT CC OUTPUT SOURCE... [-- EXTRA_ARGS]
set -e
graft=$1; cc=$2; out=$3; shift 3
srcs=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do srcs="$srcs $1"; shift; done
[ "$1" = "--" ] && shift
# shellcheck disable=SC2046,SC2086
exec "$cc" $(CC="$cc" "$graft" flags target) -O2 -g -Wl,--build-id -o "$out" $srcs "$@" -lpthread
