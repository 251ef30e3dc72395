#!/bin/sh
# init_values.sh — a param's initializer gives its *constrained* value
# (docs/language.md). tests/codegen/init_pairs.vlm declares every accepted
# initializer x constraint pair; its trainer's `params` prints the stored
# (raw) values, which are mapped through the constraint here (exp for
# positive, sigmoid for unit, softmax over rows for simplex) and must lie in
# the promised range, with the promised mean and spread (fixed seeds;
# tolerances of 5 standard errors); `guide local` params per data point
# too (tests/codegen/init_local.vlm). The rejected pairs are the golden
# tests/bad/init_constraint_pairs. Last line: COUNTS passed=N failed=M.
. "$(dirname "$0")/../suite_lib.sh"
VLMC=${VLMC:-$BINDIR/vlmc}
suite_dir
export LC_ALL=C

if ! "$VLMC" tests/codegen/init_pairs.vlm -o "$T/trainer" 2>"$T/err"; then
    cat "$T/err"; suite_abort
fi

for seed in 1 2; do
    if ! "$T/trainer" params --seed $seed >"$T/params.csv" 2>"$T/err"; then
        cat "$T/err"; fail=$((fail + 1)); continue
    fi
    # name  min  max  mean  mean-tol  sd  sd-tol (relative); "-" skips a check
    out=$(awk -F, -v seed=$seed '
    function sigm(r) { return 1 / (1 + exp(-r)) }
    {
        name = $1
        if (name == "d_simplex") {   # one row per line: softmax of the logits
            m = $3; for (i = 4; i <= NF; i++) if ($i > m) m = $i
            z = 0; for (i = 3; i <= NF; i++) z += exp($i - m)
            for (i = 3; i <= NF; i++) add(name, exp($i - m) / z)
            next
        }
        for (i = 3; i <= NF; i++) {
            r = $i
            v = name ~ /_pos/ ? exp(r) : name ~ /_unit/ ? sigm(r) : r
            add(name, v)
        }
    }
    function add(k, v) {
        if (!(k in n)) { lo[k] = v; hi[k] = v }
        n[k]++; s[k] += v; ss[k] += v * v
        if (v < lo[k]) lo[k] = v; if (v > hi[k]) hi[k] = v
    }
    function expect(k, a, b, mean, mtol, sd, stol,    mu, sdv, why) {
        why = ""
        if (!(k in n)) why = "missing"
        else {
            mu = s[k] / n[k]; sdv = sqrt((ss[k] - n[k] * mu * mu) / (n[k] > 1 ? n[k] - 1 : 1))
            if (sdv != sdv) sdv = 0
            if (a != "-" && lo[k] < a - 1e-6 * (a < 0 ? -a : a)) why = why sprintf(" min %.9g < %s", lo[k], a)
            if (b != "-" && hi[k] > b + 1e-6 * (b < 0 ? -b : b)) why = why sprintf(" max %.9g > %s", hi[k], b)
            if (mean != "-" && (mu - mean > mtol || mean - mu > mtol)) why = why sprintf(" mean %.6g, expected %s +- %.3g", mu, mean, mtol)
            if (sd != "-" && (sdv - sd > stol * sd || sd - sdv > stol * sd)) why = why sprintf(" sd %.6g, expected %s", sdv, sd)
        }
        printf "%s seed %d %s: values in [%.6g, %.6g]%s\n", why == "" ? "ok  " : "FAIL", seed, k, lo[k], hi[k], why
    }
    END {
        se = 5 / sqrt(1000)            # 5 standard errors of a mean, per unit sd
        expect("d_none",   "-", "-", 0, 0.01 * se, 0.01, 0.1)
        expect("d_pos",    0.94, 1.06, 1, 0.01 * se * 1.01, "-", 0)
        expect("d_unit",   0.48, 0.52, 0.5, 0.0025 * se * 1.01, "-", 0)
        expect("d_simplex", 0.22, 0.28, 0.25, 0.001, "-", 0)
        expect("c_none",   -2.5, -2.5, -2.5, 0, 0, 0)
        expect("c_pos",    5, 5, 5, 5e-6, "-", 0)
        expect("c_unit",   0.25, 0.25, 0.25, 1e-7, "-", 0)
        expect("s_pos",    3, 3, 3, 3e-6, "-", 0)
        expect("n_none",   "-", "-", 3, 0.5 * se, 0.5, 0.1)
        expect("u_none",   -2, 3, 0.5, 5 / sqrt(12) * se, 5 / sqrt(12), 0.1)
        expect("u_pos",    1, 20, 10.5, 19 / sqrt(12) * se, 19 / sqrt(12), 0.1)
        expect("u_pos0",   1e-38, 0.001, 0.0005, 0.001 / sqrt(12) * se, 0.001 / sqrt(12), 0.1)
        expect("u_unit",   0.2, 0.3, 0.25, 0.1 / sqrt(12) * se, 0.1 / sqrt(12), 0.1)
        expect("u_unit01", 1e-38, 0.99999995, 0.5, 1 / sqrt(12) * se, 1 / sqrt(12), 0.1)
    }' "$T/params.csv")
    printf '%s\n' "$out"
    pass=$((pass + $(printf '%s\n' "$out" | grep -c '^ok')))
    fail=$((fail + $(printf '%s\n' "$out" | grep -c '^FAIL')))
done

# local params (one row per data point): the guide's mean and scale that
# `posterior --refine 0` prints are m and s as initialized
L=$T/local
if "$VLMC" tests/codegen/init_local.vlm -o "$L" 2>"$T/err" \
   && "$L" sample -n 50 --seed 4 --out "$T/x.csv" >/dev/null 2>&1 \
   && "$L" train --data "$T/x.csv" --epochs 0 --save "$T/l.ckpt" >/dev/null 2>&1 \
   && "$L" posterior --data "$T/x.csv" --load "$T/l.ckpt" --refine 0 --out "$T/post.csv" >/dev/null 2>"$T/err"; then
    out=$(awk -F, '
    NR == 1 { for (j = 1; j <= NF; j++) kind[j] = $j ~ /mean/ ? "m" : "s"; next }
    { for (j = 1; j <= NF; j++) { k = kind[j]; v = $j; n[k]++; sum[k] += v
          if (!(k in lo) || v < lo[k]) lo[k] = v; if (!(k in hi) || v > hi[k]) hi[k] = v } }
    function expect(k, a, b, mean, tol,    mu, why) {
        mu = sum[k] / n[k]; why = ""
        if (lo[k] < a * (1 - 1e-6) || hi[k] > b * (1 + 1e-6)) why = why sprintf(" outside [%s, %s]", a, b)
        if (mu - mean > tol || mean - mu > tol) why = why sprintf(" mean %.6g, expected %s", mu, mean)
        printf "%s local %s: %d values in [%.6g, %.6g]%s\n", why == "" ? "ok  " : "FAIL", k == "m" ? "m : unit = uniform(0.2, 0.3)" : "s : positive = uniform(1, 20)", n[k], lo[k], hi[k], why
    }
    END {
        expect("m", 0.2, 0.3, 0.25, 5 * 0.1 / sqrt(12 * n["m"]))
        expect("s", 1, 20, 10.5, 5 * 19 / sqrt(12 * n["s"]))
    }' "$T/post.csv")
    printf '%s\n' "$out"
    pass=$((pass + $(printf '%s\n' "$out" | grep -c '^ok')))
    fail=$((fail + $(printf '%s\n' "$out" | grep -c '^FAIL')))
else
    cat "$T/err"; fail=$((fail + 1)); echo "FAIL local params: compile, sample, train or posterior"
fi

suite_end
