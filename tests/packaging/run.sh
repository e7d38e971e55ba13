#!/usr/bin/env bash
# The Debian package, tested as installed (issue 16). As root on a machine it may install to (CI's):
#   1. builds graft_VERSION_ARCH.deb with dpkg-buildpackage from a copy of the source tree (the tree
#      itself stays untouched), checks every file the build wrote is in .gitignore and that
#      `debian/rules clean` leaves the copy as it was, and runs lintian;
#   2. installs the package, then with no build tree on any path (PATH=/usr/bin:/bin, a temporary
#      directory, no GRAFT_* variables):
#   3. builds tests/packaging/cmake (find_package(graft), graft_target(), graft_add_patch(); with gcc
#      and with clang) and tests/packaging/make (pkg-config graft and graft-target), runs each
#      ticker with the installed `graft run`, loads the patches with `graft load`, and checks
#      ticker's output;
#   4. checks that every man page agrees with `graft --help` / `graft SUB --help`, and the bash
#      completion;
#   5. builds every example with its Makefile against the installed package and runs the examples'
#      tests (Examples.*) with the installed `graft` (GRAFT_TEST_GRAFT), if a build tree has the
#      scenario tests ($GRAFT_BUILD_DIR, default build; the test driver is the only thing taken
#      from it).
# Prints one line per check and `packaging: N passed, M failed`; exits non-zero on any failure.
# The package stays installed (CI machines are thrown away). GRAFT_PACKAGING_KEEP=1 keeps the
# temporary directory; GRAFT_PACKAGING_DEB=FILE skips step 1's build and checks and uses FILE.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
start=$(date +%s)
passed=0
failed=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1"; failed=$((failed + 1)); }
check() { # check NAME COMMAND...: runs COMMAND (its output to $work/check.log), ok/FAIL by its status
    local name=$1
    shift
    if "$@" >"$work/check.log" 2>&1; then
        ok "$name"
    else
        sed 's/^/     /' "$work/check.log"
        bad "$name"
    fi
}
finish() {
    echo "packaging: $passed passed, $failed failed ($(($(date +%s) - start)) s)"
    [ "$failed" = 0 ]
    exit
}

[ "$(id -u)" = 0 ] || { echo "tests/packaging/run.sh: installs a package: run it as root"; exit 1; }
scripts/deps.sh --package || { bad "scripts/deps.sh --package"; finish; }

work=$(mktemp -d /tmp/graft-packaging-XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    [ -n "${GRAFT_PACKAGING_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

# ---- 1. the package --------------------------------------------------------------------------
if [ -n "${GRAFT_PACKAGING_DEB:-}" ]; then
    deb=$GRAFT_PACKAGING_DEB # iterating on the checks below: a .deb built before
    echo "     (using $deb: no package build, no lintian)"
else
    src=$work/src/graft
    mkdir -p "$src"
    # The tree as a clean checkout would have it, plus files not committed yet (not ignored ones).
    git ls-files -co --exclude-standard -z | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
        tar -c --null -T - | tar -x -C "$src"
    (cd "$src" && find . -path ./debian -prune -o -type f -print | sort) >"$work/before"
    t0=$(date +%s)
    if (cd "$src" && dpkg-buildpackage -b -us -uc -jauto) >"$work/dpkg-buildpackage.log" 2>&1; then
        ok "dpkg-buildpackage -b -us -uc ($(($(date +%s) - t0)) s)"
    else
        tail -40 "$work/dpkg-buildpackage.log"
        bad "dpkg-buildpackage -b -us -uc (log: $work/dpkg-buildpackage.log)"
        GRAFT_PACKAGING_KEEP=1
        finish
    fi
    deb=$(ls "$work"/src/graft_*.deb | grep -v dbgsym | head -1)
    echo "     $(basename "$deb"): $(dpkg-deb -c "$deb" | wc -l) entries"

    # Every file the build wrote is ignored by git, and `debian/rules clean` removes them all.
    unignored=$(cd "$src" && find . -newer "$work/before" -type f ! -path './.git/*' | sed 's|^\./||' |
        git -C "$root" check-ignore --no-index -v -n --stdin | awk -F'\t' '$1 == "::" { print $2 }')
    check "every file dpkg-buildpackage wrote is in .gitignore${unignored:+ (not: $unignored)}" [ -z "$unignored" ]
    (cd "$src" && fakeroot debian/rules clean) >>"$work/dpkg-buildpackage.log" 2>&1
    (cd "$src" && find . -path ./debian -prune -o -type f -print | sort) >"$work/after"
    leftover=$( (cd "$src" && find debian -type f | sort) | grep -v -x -F -f <(git ls-files -co --exclude-standard debian) || true)
    check "debian/rules clean leaves the tree as checked out" \
        bash -c "diff -q '$work/before' '$work/after' >/dev/null && [ -z '$leftover' ]"

    lintian_out=$(lintian --display-info "$work"/src/graft_*.changes 2>&1)
    echo "$lintian_out" | sed 's/^/     lintian: /'
    errors=$(echo "$lintian_out" | grep -c '^E:' || true)
    check "lintian: no errors ($(echo "$lintian_out" | grep -c '^[EWIP]:' || true) tags, listed above)" \
        [ "$errors" = 0 ]
fi

# ---- 2. installed ----------------------------------------------------------------------------
if apt-get install -y -qq --allow-downgrades --reinstall "$deb" >"$work/install.log" 2>&1; then
    ok "apt-get install $(basename "$deb")"
else
    cat "$work/install.log"
    bad "apt-get install $(basename "$deb")"
    finish
fi

# From here: nothing of a build tree on any path.
clean_env=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$work" LANG=C.UTF-8 TMPDIR=/tmp)
in_clean() { (cd "$work" && "${clean_env[@]}" "$@"); }

check "graft is /usr/bin/graft" [ "$(in_clean bash -c 'command -v graft')" = /usr/bin/graft ]
for f in /usr/bin/graft /usr/include/graft/graft.h /usr/lib/*/libgraft.so /usr/lib/*/libgraft-audit.so \
    /usr/lib/*/pkgconfig/graft.pc /usr/lib/*/pkgconfig/graft-target.pc \
    /usr/lib/*/cmake/graft/graftConfig.cmake /usr/share/man/man1/graft.1.gz \
    /usr/share/bash-completion/completions/graft; do
    check "installed: $f" test -e "$f"
done
check "graft flags target = pkg-config --cflags graft-target" \
    [ "$(in_clean graft flags target)" = "$(echo $(in_clean pkg-config --cflags graft-target))" ]
check "graft flags target --cc clang = pkg-config --variable=cflags_clang graft-target" \
    [ "$(in_clean graft flags target --cc clang)" = "$(in_clean pkg-config --variable=cflags_clang graft-target)" ]
check "graft flags patch names /usr/include" [ "$(in_clean graft flags patch)" = \
    "-shared -fPIC -fasynchronous-unwind-tables -I/usr/include" ]

# ---- 3. a CMake project and a Makefile project -----------------------------------------------
cp -r tests/packaging "$work/projects"
rm -rf "$work"/projects/cmake/build*

# wait_line FILE REGEX SECONDS: until FILE has a line matching REGEX.
wait_line() {
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        grep -qE "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "     no line matching '$2' in $1 after $3 s; its last lines:"
    tail -3 "$1" | sed 's/^/     /'
    return 1
}
# new_lines_match FILE REGEX: the lines ticker prints from now on (a few) all match REGEX.
next_line_matches() {
    local n
    n=$(wc -l <"$1")
    sleep 0.5
    tail -n +$((n + 1)) "$1" | head -3 | grep -qvE "$2" && return 1
    [ "$(wc -l <"$1")" -gt "$n" ]
}
# ticker_test NAME DIR PATCH...: runs DIR/ticker with `graft run`, loads each PATCH in turn
# (disabling the one before), checks 42 before and 43 with each patch.
ticker_test() {
    local name=$1 dir=$2
    shift 2
    local log=$work/$name.out
    (cd "$dir" && exec "${clean_env[@]}" graft run ./ticker >"$log" 2>&1) &
    local pid=$!
    pids+=("$pid")
    check "$name: ticker runs under graft run (42 from every thread)" \
        wait_line "$log" '^main=42 workers=42,42,42,42$' 20
    local prev=
    for so in "$@"; do
        if [ -n "$prev" ]; then
            check "$name: graft disable $pid $prev" in_clean graft disable "$pid" "$prev" --wait --timeout 60
            sleep 0.3
            check "$name: ticker prints 42 again" next_line_matches "$log" '^main=42 workers=42,42,42,42$'
        fi
        check "$name: graft load $pid $so" in_clean graft load "$pid" "$dir/$so" --timeout 60
        check "$name: the patch's effect: every thread gets 43" \
            wait_line "$log" '^main=43 workers=43,43,43,43$' 10
        check "$name: graft list shows ${so%.so} enabled" \
            bash -c "${clean_env[*]} graft list $pid --json | grep -q '\"${so%.so}\"'"
        prev=${so%.so}
    done
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}

p=$work/projects
for cc in gcc clang; do
    name="CMake project ($cc)"
    b=$p/cmake/build-$cc
    if [ "$cc" = gcc ]; then flag=-flive-patching=inline-only-static; else flag=-fsemantic-interposition; fi
    if in_clean env CC=$cc cmake -S "$p/cmake" -B "$b" >"$work/cmake-$cc.log" 2>&1 &&
        in_clean cmake --build "$b" -v >>"$work/cmake-$cc.log" 2>&1; then
        ok "$name: find_package(graft), graft_target(), graft_add_patch() build"
        check "$name: ticker compiled with the target flags for $cc" \
            grep -q -- "-fpatchable-function-entry=16,14 .*$flag" "$work/cmake-$cc.log"
        check "$name: the patch was built by /usr/bin/graft build --target" \
            grep -q "/usr/bin/graft build -o $b/fix_answer.so --target $b/ticker" "$work/cmake-$cc.log"
        check "$name: the patch records ticker's build-id" \
            bash -c "nm -D '$b/fix_answer.so' | grep -q graft_patch_targets"
        ticker_test "$name" "$b" fix_answer.so
    else
        tail -30 "$work/cmake-$cc.log"
        bad "$name: find_package(graft), graft_target(), graft_add_patch() build"
    fi
done

if in_clean make -C "$p/make" >"$work/make.log" 2>&1; then
    ok "Makefile project: pkg-config graft and graft-target build"
    check "Makefile project: ticker compiled with the target flags" \
        grep -q -- "-fpatchable-function-entry=16,14 .*-flive-patching=inline-only-static" "$work/make.log"
    ticker_test "Makefile project" "$p/make" fix_answer_pinned.so fix_answer.so
else
    cat "$work/make.log"
    bad "Makefile project: pkg-config graft and graft-target build"
fi

# ---- 4. man pages and completion -------------------------------------------------------------
if in_clean python3 "$root/scripts/help-to-man.py" --graft /usr/bin/graft \
    --version "$(dpkg-query -W -f='${Version}' graft)" --check /usr/share/man/man1 >"$work/man.log" 2>&1; then
    ok "every man page agrees with graft --help / graft SUB --help ($(grep -c '^ok' "$work/man.log") pages)"
else
    cat "$work/man.log"
    bad "every man page agrees with graft --help / graft SUB --help"
fi
for sub in $(in_clean graft --help | awk '/^Subcommands:/ { s = 1; next } s && NF { print $1 }'); do
    check "man graft-$sub renders" bash -c "${clean_env[*]} MANWIDTH=80 man graft-$sub 2>/dev/null | grep -q '^NAME'"
done
complete_words() { # complete_words WORD...: what the installed completion offers for the last word
    "${clean_env[@]}" bash -c 'source /usr/share/bash-completion/bash_completion
        source /usr/share/bash-completion/completions/graft
        COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
        _graft; echo "${COMPREPLY[*]}"' _ "$@"
}
check "bash completion: graft lo<TAB> gives load, log" [ "$(complete_words graft lo)" = "load log" ]
check "bash completion: graft load 1 x --t<TAB> gives --timeout" [ "$(complete_words graft load 1 x --t)" = "--timeout" ]
check "bash completion: graft flags <TAB> gives target patch" [ "$(complete_words graft flags '')" = "target patch" ]

# ---- 5. the examples against the installed package -------------------------------------------
for mk in examples/*/Makefile; do
    ex=$(basename "$(dirname "$mk")")
    rm -rf "$work/ex-$ex"
    cp -r "examples/$ex" "$work/ex-$ex"
    check "examples/$ex builds with make against the installed package" \
        bash -c "${clean_env[*]} make -C '$work/ex-$ex' >'$work/ex-$ex.log' 2>&1"
done
bdir=${GRAFT_BUILD_DIR:-build}
scen=$root/$bdir/bin/graft_scenarios
if [ -x "$scen" ]; then
    if in_clean env GRAFT_TEST_GRAFT=/usr/bin/graft "$scen" --gtest_filter='Examples.*' >"$work/examples.log" 2>&1; then
        ok "examples' tests with the installed graft: $(grep -o '[0-9]* tests\? from [0-9]* test suites\? ran' "$work/examples.log" | head -1) ($scen)"
    else
        grep -E '^\[  FAILED|Failure|error' "$work/examples.log" | head -20
        bad "examples' tests with the installed graft ($scen --gtest_filter=Examples.*)"
    fi
else
    echo "     (no $scen: build one with GRAFT_BUILD_DIR=$bdir scripts/build.sh to run the examples' tests here)"
fi

finish
