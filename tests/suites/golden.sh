#!/bin/sh
# golden.sh — golden tests of the front end, run from the repo root:
#   examples/*.vlm   must pass `vlmc --check` silently;
#   tests/good/*.vlm must pass, and `vlmc --dump` must equal NAME.dump
#                    (stderr must equal NAME.warn if present, else be empty);
#   tests/bad/*.vlm  must fail with exit 1 and stderr equal to NAME.err.
# `sh tests/suites/golden.sh --update` rewrites the goldens: review the diff.
. "$(dirname "$0")/../suite_lib.sh"
VLMC=${VLMC:-$BINDIR/vlmc}
update=0
[ "$1" = "--update" ] && update=1
tmp=$BUILD/golden
mkdir -p "$tmp"

# only failures are printed: there are hundreds of goldens
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $1: $2"; }

# same(expected-file, actual-file): equal, or show the difference
same() {
    if cmp -s "$1" "$2"; then return 0; fi
    diff -u "$1" "$2" | head -20
    return 1
}

if [ ! -x "$VLMC" ]; then
    suite_abort "golden: $VLMC not built"
fi

for f in examples/*.vlm; do
    [ -f "$f" ] || continue
    "$VLMC" --check "$f" >"$tmp/out" 2>"$tmp/err"; rc=$?
    if [ $rc -ne 0 ] || [ -s "$tmp/err" ]; then bad "$f" "exit $rc"; cat "$tmp/err"; else ok; fi
done

for f in tests/good/*.vlm; do
    [ -f "$f" ] || continue
    exp=${f%.vlm}.dump
    warn=${f%.vlm}.warn
    "$VLMC" --dump "$f" >"$tmp/out" 2>"$tmp/err"; rc=$?
    if [ $update -eq 1 ] && [ $rc -eq 0 ]; then
        cp "$tmp/out" "$exp"
        if [ -s "$tmp/err" ]; then cp "$tmp/err" "$warn"; else rm -f "$warn"; fi
    fi
    if [ $rc -ne 0 ]; then bad "$f" "exit $rc, expected 0"; cat "$tmp/err"; continue; fi
    if [ ! -f "$exp" ]; then bad "$f" "no golden $exp"; continue; fi
    if ! same "$exp" "$tmp/out"; then bad "$f" "dump differs"; continue; fi
    if [ -f "$warn" ]; then
        if ! same "$warn" "$tmp/err"; then bad "$f" "warnings differ"; continue; fi
    elif [ -s "$tmp/err" ]; then bad "$f" "unexpected stderr"; cat "$tmp/err"; continue; fi
    ok
done

for f in tests/bad/*.vlm; do
    [ -f "$f" ] || continue
    exp=${f%.vlm}.err
    "$VLMC" --check "$f" >"$tmp/out" 2>"$tmp/err"; rc=$?
    [ $update -eq 1 ] && [ $rc -eq 1 ] && cp "$tmp/err" "$exp"
    if [ $rc -ne 1 ]; then bad "$f" "exit $rc, expected 1"; cat "$tmp/err"; continue; fi
    if [ ! -f "$exp" ]; then bad "$f" "no golden $exp"; continue; fi
    if ! same "$exp" "$tmp/err"; then bad "$f" "diagnostics differ"; continue; fi
    ok
done

suite_end
