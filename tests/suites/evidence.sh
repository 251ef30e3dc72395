#!/bin/sh
# evidence.sh — eval's importance-sampled log p(x) against exact answers,
# with default settings and fixed seeds: |estimate - exact| <= 3 SE (the SE
# eval prints), and SE < 0.5 nats so that the check cannot pass vacuously.
#   * pPCA, D = 10, q = 2 (tests/codegen/ppca.vlm, automatic local guide):
#     log N(x; b, W W^T + 0.5^2 I) in closed form (evidence_exact.c);
#   * a mixture with a per-item guide (tests/codegen/mix2d_guided.vlm):
#     against mix2d.vlm's exact enumeration under the same parameters;
#   * the lecture's 2-D VAE (examples/vae_lecture.vlm): by quadrature.
# Then the diagnostics: the old fixed refinement (200 steps at 1e-2) and no
# refinement are poor guides that must draw the k-hat warning, the
# converged default must not; --iw 1 prints n/a; posterior and impute
# print their k-hat line. Last line: COUNTS passed=N failed=M.
. "$(dirname "$0")/../suite_lib.sh"
VLMC=$BINDIR/vlmc
suite_dir; suite_tmpdir
# the estimate and SE eval printed, the exact log p(x) of an exact model
est() { awk '/log p\(x\) \(IS\)/ { print $4 }' "$1"; }
se()  { awk '/log p\(x\) \(IS\)/ { print $6 }' "$1"; }
exact_ll() { awk '/log p\(x\)  / { print $3; exit }' "$1"; }
# |estimate - exact| <= 3 SE and 0 < SE < 0.5
within() {  # name, eval output, exact value
    e=$(est "$2"); s=$(se "$2")
    check "$1: IS $e +- $s vs exact $3 (within 3 SE, SE < 0.5)" \
        holds "\"$e\" != \"\" && \"$3\" != \"\" && $s > 0 && $s < 0.5 && ($e - $3) <= 3 * $s && ($3 - $e) <= 3 * $s"
}
split() {  # file of 2N rows + header -> $2 (first half), $3 (second half)
    n=$(($(wc -l < "$1") - 1)); h=$((n / 2))
    { head -1 "$1"; sed -n "2,$((h + 1))p" "$1"; } > "$2"
    { head -1 "$1"; sed -n "$((h + 2)),$((n + 1))p" "$1"; } > "$3"
}

cc -O2 -o "$T/exact" tests/suites/evidence_exact.c -lm 2>"$T/err"
check "the exact-answer helper compiles" [ -x "$T/exact" ]

# ------------------------------------------------------------ pPCA, D = 10
P=$T/ppca
"$VLMC" tests/codegen/ppca.vlm -o "$P" 2>"$T/err" &&
"$P" sample --set D=10 --seed 3 -n 1600 --out "$T/p_all.csv" >"$T/out" 2>"$T/err" &&
split "$T/p_all.csv" "$T/p_train.csv" "$T/p_test.csv" &&
"$P" train --set D=10 --data "$T/p_train.csv" --epochs 100 --batch 50 --lr 0.02 --save "$T/p.ckpt" >"$T/out" 2>"$T/err" &&
"$P" params --load "$T/p.ckpt" >"$T/p.params" 2>"$T/err"
check "ppca D=10 trains" [ $? -eq 0 ]
px=$("$T/exact" ppca "$T/p.params" "$T/p_test.csv" 0.5)
"$P" eval --data "$T/p_test.csv" --load "$T/p.ckpt" >"$T/p_def" 2>"$T/p_def.err"
within "ppca D=10, defaults" "$T/p_def" "$px"
check "ppca: refinement says how many steps it took and stopped on its own" \
    grep -q 'refine: [0-9]* steps, ELBO .* -> .* (stopped improving)' "$T/p_def.err"
check "ppca, defaults: k-hat line, and no warning" \
    sh -c "grep -q '  k-hat           max 0\.[0-6][0-9]; 0\.0% of items above 0\.7' '$T/p_def' && ! grep -q warning '$T/p_def'"
# the old fixed refinement: 200 Adam steps at 1e-2 cannot move a location
# by more than about 2; the estimate is then confidently wrong, and k-hat says so
"$P" eval --data "$T/p_test.csv" --load "$T/p.ckpt" --refine 200 --refine-lr 1e-2 --refine-tol 0 >"$T/p_old" 2>"$T/err"
check "ppca, the old 200 steps at 1e-2: the warning in words" \
    sh -c "grep -q '^warning: this log p(x) estimate is unreliable: k-hat is above 0.7 on' '$T/p_old' &&
           grep -q 'more samples (--iw, now 1000), a longer refinement' '$T/p_old'"
e=$(est "$T/p_old"); s=$(se "$T/p_old")
check "ppca, the old refinement is off by more than 3 SE ($e +- $s vs $px)" holds "($px - $e) > 3 * $s"
"$P" eval --data "$T/p_test.csv" --load "$T/p.ckpt" --refine 0 --iw 100 >"$T/p_none" 2>"$T/err"
check "ppca, no refinement at all: ESS below 2 named in the warning" \
    grep -q 'effective sample size is below 2 on' "$T/p_none"
"$P" eval --data "$T/p_test.csv" --load "$T/p.ckpt" --iw 1 --limit 50 >"$T/p_iw1" 2>"$T/err"
check "--iw 1: SE and k-hat are n/a, no verdict" \
    sh -c "grep -q 'log p(x) (IS) .* +- n/a' '$T/p_iw1' && grep -q 'k-hat           n/a' '$T/p_iw1' && ! grep -q warning '$T/p_iw1'"
"$P" eval --data "$T/p_test.csv" --load "$T/p.ckpt" --refine 30 --limit 50 >"$T/out" 2>"$T/err"
check "--refine N caps the steps" grep -q 'refine: 30 steps, .*(reached --refine, the cap)' "$T/err"
"$P" eval --data "$T/p_test.csv" --load "$T/p.ckpt" --refine-tol -1 >"$T/out" 2>"$T/err"
check "--refine-tol must be a non-negative number" [ $? -eq 2 ]
"$P" posterior --data "$T/p_test.csv" --load "$T/p.ckpt" --samples 1000 --out "$T/post.csv" >"$T/out" 2>"$T/err"
check "posterior prints its k-hat line" \
    grep -q '^posterior: importance weights of 1000 samples per item: ESS mean .*; k-hat max' "$T/err"
"$P" impute --data "$T/p_test.csv" --load "$T/p.ckpt" --mask top-half --samples 50 --limit 100 --refine 0 \
    --out "$T/imp.csv" >"$T/out" 2>"$T/err"
check "impute prints its k-hat line, and the warning for a poor guide" \
    sh -c "grep -q '^impute: importance weights of 50 samples' '$T/err' && grep -q '^warning: summaries weighted' '$T/err'"

# ------------------------------------------------------------ a mixture
M=$T/mix2d; G=$T/mix2d_guided
"$VLMC" tests/codegen/mix2d.vlm -o "$M" 2>"$T/err" &&
"$VLMC" tests/codegen/mix2d_guided.vlm -o "$G" 2>"$T/err" &&
"$M" sample --seed 7 -n 1000 --out "$T/m_all.csv" >"$T/out" 2>"$T/err" &&
split "$T/m_all.csv" "$T/m_train.csv" "$T/m_test.csv" &&
"$M" train --data "$T/m_train.csv" --save "$T/m.ckpt" >"$T/out" 2>"$T/err" &&
"$M" eval --data "$T/m_test.csv" --load "$T/m.ckpt" >"$T/m_exact" 2>"$T/err" &&
"$G" eval --data "$T/m_test.csv" --init-from "$T/m.ckpt" >"$T/m_is" 2>"$T/m_is.err"
check "mixture: trained, exact and guided evaluations run" [ $? -eq 0 ]
within "mixture with a per-item guide, defaults" "$T/m_is" "$(exact_ll "$T/m_exact")"
check "mixture: no warning (k-hat n/a: a discrete guide's largest weights tie)" \
    sh -c "! grep -q warning '$T/m_is' && grep -q 'k-hat           n/a' '$T/m_is'"

# ------------------------------------------------------------ lecture VAE
V=$T/vae_lecture
"$VLMC" examples/vae_lecture.vlm -o "$V" 2>"$T/err" &&
"$V" sample -n 2300 --seed 7 --out "$T/v_all.csv" >"$T/out" 2>"$T/err" &&
{ head -1 "$T/v_all.csv"; sed -n 2,2001p "$T/v_all.csv"; } > "$T/v_train.csv" &&
{ head -1 "$T/v_all.csv"; sed -n 2002,2301p "$T/v_all.csv"; } > "$T/v_test.csv" &&
"$V" train --data "$T/v_train.csv" --epochs 20 --batch 100 --lr 1e-2 --seed 1 --save "$T/v.ckpt" >"$T/out" 2>"$T/err" &&
"$V" params --load "$T/v.ckpt" >"$T/v.params" 2>"$T/err"
check "lecture VAE trains" [ $? -eq 0 ]
vx=$("$T/exact" vae2d "$T/v.params" "$T/v_test.csv")
"$V" eval --data "$T/v_test.csv" --load "$T/v.ckpt" >"$T/v_def" 2>"$T/err"
within "lecture VAE (2-D), defaults, vs quadrature" "$T/v_def" "$vx"

suite_end
