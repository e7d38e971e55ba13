#!/usr/bin/env bash
# The README's demo: builds graft, starts a multi-threaded "pricing server" under load, and patches
# it live while its threads keep serving; one request is in the middle of the old function, so
# the transition is visible: the other threads switch at once, that one when its request ends.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
GRAFT_BENCH=OFF scripts/build.sh >/dev/null
G=$PWD/build/bin/graft
work=$(mktemp -d)
server=
# Under set -e a failing command in the trap would end it early (leaving $work behind) and make
# the script's status 1 after a good run: nothing in it may fail.
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
echo "== building the server with \$(graft flags target) and the fix with graft build"
cc -O2 -g $($G flags target) -pthread examples/demo/server.c -o "$work/server"
$G build -o "$work/fix_rounding.so" examples/demo/fix_rounding.c
echo "== graft run ./server   (8 worker threads; it prints a report every second)"
$G run "$work/server" 8 > "$work/server.out" &
server=$!
tail -f "$work/server.out" --pid=$server | sed -u 's/^/   server| /' &
until $G list $server >/dev/null 2>&1; do sleep 0.1; done
sleep 3.3
echo "== graft load $server fix_rounding.so   (a slow request holds the old price() for ~2 s)"
$G load $server "$work/fix_rounding.so"
sleep 2
echo "== graft status $server"
$G status $server
echo "== graft threads $server"
$G threads $server | head -6
echo "== graft disable $server fix_rounding --wait"
$G disable $server fix_rounding --wait
sleep 1.5
echo "== graft log $server"
$G log $server
kill $server 2>/dev/null || true
wait $server 2>/dev/null || true
server=
echo "== done"
