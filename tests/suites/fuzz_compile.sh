#!/bin/sh
# fuzz_compile.sh — what `vlmc --check` accepts, `vlmc -o` compiles. Two
# corpora, both from fixed seeds (every run makes the same models):
# mutants of examples/*.vlm and tests/good/*.vlm (tests/fuzz/mutate.awk:
# dropped/duplicated lines, swapped tokens, changed numbers, distributions,
# names, operators, constraints, guide statements, ...), which mostly probe
# the checker, and random well-typed models (tests/fuzz/generate.awk),
# which mostly pass it and probe code generation. Taken in turns, each is
# checked; then
#   rejected -> exit 1 and a `FILE:LINE:COL: error:` line on stderr;
#   accepted -> `vlmc -o` builds a trainer (the first FUZZ_COMPILE of them),
#               or refuses with a `FILE:LINE:COL: error:`; a failing C
#               compile is vlmc's "internal error", a bug;
#   never a crash (exit >= 128) or a hang (timeout).
# FUZZ_SEED, FUZZ_ROUNDS (mutants per model), FUZZ_GEN (generated models)
# and FUZZ_COMPILE override the defaults for longer hunts. A model that once
# broke vlmc is kept in tests/good or tests/bad, so it is checked for good.
# Last line: COUNTS passed=N failed=M.
. "$(dirname "$0")/../suite_lib.sh"
VLMC=${VLMC:-$BINDIR/vlmc}
SEED=${FUZZ_SEED:-20250101}
ROUNDS=${FUZZ_ROUNDS:-25}
GEN=${FUZZ_GEN:-150}
MAXC=${FUZZ_COMPILE:-60}
dir=$BUILD/fuzz
export LC_ALL=C

if [ ! -x "$VLMC" ]; then
    suite_abort "fuzz_compile: $VLMC not built"
fi
limit=10; climit=120
if grep -q __asan_init "$VLMC" 2>/dev/null; then limit=60; climit=600; fi

rm -rf "$dir"; mkdir -p "$dir/tmp"
TMPDIR=$(cd "$dir/tmp" && pwd); export TMPDIR
awk -v seed="$SEED" -v rounds="$ROUNDS" -v out="$dir" -f tests/fuzz/mutate.awk \
    examples/*.vlm tests/good/*.vlm
awk -v seed="$SEED" -v count="$GEN" -v out="$dir" -f tests/fuzz/generate.awk
# in turns: a mutant, a generated model, ...
paste -d '\n' "$dir/index.mut" "$dir/index.gen" | grep -v '^$' >"$dir/index"

# a failure shows vlmc's stderr; a model that passes is only counted
SUITE_ERR=$dir/err
suite_show() { head -12; }
# a diagnostic with a position in the mutant
located() { grep -qE "^$1:[0-9]+:[0-9]+: error: " "$dir/err"; }

n_checked=0; n_accepted=0; n_compiled=0; n_refused=0
while read -r m src ops; do
    f=$dir/$m
    n_checked=$((n_checked + 1))
    timeout $limit "$VLMC" --check "$f" >"$dir/out" 2>"$dir/err"; rc=$?
    what="$m (from $src:$ops)"
    if [ $rc -eq 124 ]; then bad "$what: vlmc --check hangs"; continue; fi
    if [ $rc -ge 128 ]; then bad "$what: vlmc --check crashes (exit $rc)"; continue; fi
    if [ $rc -eq 1 ]; then
        if located "$f"; then pass=$((pass + 1)); else bad "$what: rejected without a FILE:LINE:COL error"; fi
        continue
    fi
    if [ $rc -ne 0 ]; then bad "$what: vlmc --check exit $rc"; continue; fi
    n_accepted=$((n_accepted + 1))
    if [ $n_compiled -ge "$MAXC" ]; then pass=$((pass + 1)); continue; fi
    n_compiled=$((n_compiled + 1))
    timeout $climit "$VLMC" "$f" -o "$dir/trainer" >"$dir/out" 2>"$dir/err"; rc=$?
    if [ $rc -eq 124 ]; then bad "$what: vlmc -o hangs"
    elif [ $rc -ge 128 ]; then bad "$what: vlmc -o crashes (exit $rc)"
    elif grep -q "internal error" "$dir/err"; then bad "$what: vlmc -o: internal error"
    elif [ $rc -eq 0 ] && [ -x "$dir/trainer" ]; then pass=$((pass + 1))
    elif [ $rc -eq 1 ] && located "$f"; then pass=$((pass + 1)); n_refused=$((n_refused + 1))
    else bad "$what: vlmc -o exit $rc without a FILE:LINE:COL error"
    fi
    rm -f "$dir/trainer"
done <"$dir/index"

echo "fuzz_compile: $n_checked models (seed $SEED), $n_accepted accepted by --check," \
     "$n_compiled compiled with -o ($n_refused refused with a located error)"
if [ -n "$(ls -A "$TMPDIR")" ]; then fail=$((fail + 1)); echo "FAIL vlmc left temporary files"; fi
[ $fail -eq 0 ] && rm -rf "$dir"
suite_end
