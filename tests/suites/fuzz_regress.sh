#!/bin/sh
# fuzz_regress.sh — code generation bugs that the fuzz models found
# (tests/suites/fuzz_compile.sh) and that compiling alone does not show;
# their models live in tests/good/ (compiled and gradchecked by the
# codegen suite too). Last line: COUNTS passed=N failed=M.
. "$(dirname "$0")/../suite_lib.sh"
VLMC=${VLMC:-$BINDIR/vlmc}
suite_dir
export LC_ALL=C

# A [K] row of Categorical logits/probs shared by the D elements of a
# vector variable: every element draws from that one row, so every
# element's class frequencies agree with the pooled ones (within 6
# standard errors over 4000 draws). The bug read element i's row at i*K,
# past the parameter: elements drew from unrelated numbers.
if "$VLMC" tests/good/categorical_shared.vlm -o "$T/shared" 2>"$T/err" \
   && "$T/shared" sample -n 4000 --seed 1 --out "$T/s.csv" >/dev/null 2>"$T/err"; then
    for v in c d; do
        worst=$(awk -F, -v v=$v '
            NR == 1 { for (j = 1; j <= NF; j++) if (index($j, v "[") == 1) col[++n] = j; next }
            { rows++; for (i = 1; i <= n; i++) { f[i, $(col[i])]++; t[$(col[i])]++ } }
            END {
                w = 0
                for (i = 1; i <= n; i++) for (k = 0; k < 5; k++) {
                    p = t[k] / (n * rows); q = f[i, k] / rows
                    d = (q - p) / (sqrt(p * (1 - p) / rows) + 1e-9); if (d < 0) d = -d
                    if (d > w) w = d
                }
                printf "%.1f", n == 40 ? w : 1e9
            }' "$T/s.csv")
        if awk "BEGIN { exit !($worst < 6) }"; then
            ok "Categorical $v[40] with one shared [5] row: elements agree (worst ${worst} sd)"
        else
            : >"$T/err"; bad "Categorical $v[40] with one shared [5] row: elements disagree (worst ${worst} sd)"
        fi
    done
else
    bad "tests/good/categorical_shared.vlm: compile or sample"
fi

suite_end
