#!/bin/sh
# markov.sh — Markov chains (`Markov(init, trans)`) end to end: generated
# gradients against finite differences (gradcheck, both parameter forms),
# the forward algorithm's log p(x) and posterior marginals against the
# same chain unrolled into enumerated Categorical latents (summed over
# all K^T paths), NaN steps marginalised, training from another seed on
# data sampled from known parameters, the Viterbi path against the true
# one, and the commands' errors. Last line: COUNTS passed=N failed=M.
. "$(dirname "$0")/../suite_lib.sh"
VLMC=$BINDIR/vlmc
suite_dir; suite_tmpdir
# log p(x) printed by eval
eval_ll() { awk '/log p\(x\)/ { for (i = 3; i <= NF; i++) if ($i ~ /^-?[0-9]/) { print $i; exit } }' "$1"; }
compile() { "$VLMC" "$1" -o "$2" 2>"$T/err"; }
gradcheck_ok() { "$1" gradcheck --seed "$2" >"$T/gc.out" 2>"$T/err" && [ "$(grep -c ': ok$' "$T/gc.out")" -eq 2 ]; }

# --- gradients: the generated backward passes (per-step emission terms,
# init, trans) and the driver's forward-backward gradient vs differences
H=$T/hmm
check "hmm.vlm compiles" compile examples/hmm.vlm "$H"
check "hmm.vlm: gradcheck (logits form)" gradcheck_ok "$H" 1
check "hmm.vlm at T=7, K=4: gradcheck" sh -c "'$H' gradcheck --seed 3 --set T=7 --set K=4 | grep -c ': ok$' | grep -qx 2"
P=$T/probs
cat >"$P.vlm" <<'EOF'
const T = 4;  const K = 3;  const D = 2;
param p[K] : simplex;  param A[K, K] : simplex;
param mu[K, D] = normal(0, 1);  param s[K, D] : positive = 0.7;
param m0;
latent z[T] ~ Markov(init = p, trans = A);
observed x[T, D] ~ Normal(mu[z], s[z] * 1);
observed y ~ Normal(m0, 1);           // not read by the chain: one term per item
EOF
check "probs form with simplex params compiles" compile "$P.vlm" "$P"
check "probs form, with an observed variable beside the chain: gradcheck" gradcheck_ok "$P" 2
check "markov_forms.vlm (Categorical emission, guided latent): gradcheck" \
    sh -c "'$VLMC' tests/good/markov_forms.vlm -o '$T/forms' && '$T/forms' gradcheck | grep -c ': ok$' | grep -qx 2"

# --- exact: the chain against the same model unrolled into K^T enumerated
# paths (z0, z1, z2 Categorical), with the same parameters (--init-from)
C=$T/chain3
cat >"$C.vlm" <<'EOF'
const T = 3;  const K = 2;
param init[K] : simplex;  param trans[K, K] : simplex;
param mu[K] = normal(0, 2);  param log_sd[K] = normal(0, 0.3);
latent z[T] ~ Markov(init = init, trans = trans);
observed x[T] ~ Normal(mu[z], exp(log_sd[z]));
EOF
U=$T/unrolled
cat >"$U.vlm" <<'EOF'
const K = 2;
param init[K] : simplex;  param trans[K, K] : simplex;
param mu[K] = normal(0, 2);  param log_sd[K] = normal(0, 0.3);
latent z0 ~ Categorical(probs = init);
observed x0 ~ Normal(mu[z0], exp(log_sd[z0]));
latent z1 ~ Categorical(probs = trans[z0]);
observed x1 ~ Normal(mu[z1], exp(log_sd[z1]));
latent z2 ~ Categorical(probs = trans[z1]);
observed x2 ~ Normal(mu[z2], exp(log_sd[z2]));
EOF
compile "$C.vlm" "$C" && compile "$U.vlm" "$U"
check "the chain and its unrolled form compile" [ $? -eq 0 ]
"$C" sample --seed 4 -n 40 --out "$T/c.csv" >/dev/null 2>"$T/err"
# a missing step in two items (NaN: marginalised)
awk -F, 'BEGIN { OFS = "," } NR == 3 { $2 = "NaN" } NR == 5 { $3 = "NaN" } { print }' "$T/c.csv" >"$T/cn.csv"
"$C" train --data "$T/cn.csv" --epochs 0 --seed 11 --save "$T/c.ckpt" >/dev/null 2>"$T/err"
"$C" eval --data "$T/cn.csv" --load "$T/c.ckpt" >"$T/ce.out" 2>"$T/err"
"$U" eval --data "$T/cn.csv" --init-from "$T/c.ckpt" >"$T/ue.out" 2>"$T/err"
a=$(eval_ll "$T/ce.out"); b=$(eval_ll "$T/ue.out")
echo "     log p(x): forward algorithm $a, all K^T paths $b"
check "eval: exact log p(x)" grep -q 'exact' "$T/ce.out"
check "eval: forward algorithm = sum over all paths (NaN steps included)" \
    holds "\"$a\" != \"\" && \"$b\" != \"\" && ($a - $b)^2 < 1e-8"
"$C" posterior --data "$T/cn.csv" --load "$T/c.ckpt" --out "$T/cp.csv" >/dev/null 2>"$T/err"
"$U" posterior --data "$T/cn.csv" --init-from "$T/c.ckpt" --out "$T/up.csv" >/dev/null 2>"$T/err"
# both files: p(z[t]=k) (chain) and p(zt=k) (unrolled) in the same order
worst=$(awk -F, 'FNR == 1 { f++; for (i = 1; i <= NF; i++) if ($i ~ /^p\(/) col[f, ++n[f]] = i; next }
    f == 1 { for (j = 1; j <= n[1]; j++) v[FNR, j] = $col[1, j] }
    f == 2 { for (j = 1; j <= n[2]; j++) { d = v[FNR, j] - $col[2, j]; if (d < 0) d = -d; if (d > w) w = d } }
    END { if (n[1] != 6 || n[2] != 6) print 1; else printf "%.3g\n", w }' "$T/cp.csv" "$T/up.csv")
echo "     posterior marginals: largest difference $worst"
check "posterior: forward-backward marginals = the unrolled model's" holds "$worst < 1e-5"

# NaN padding: the items' log p(x) with the last step NaN equals that of
# the chain of T - 1 steps (the same parameters: they do not depend on T)
awk -F, 'BEGIN { OFS = "," } NR > 1 { $3 = "NaN" } { print }' "$T/c.csv" >"$T/pad.csv"
cut -d, -f1-2 "$T/c.csv" >"$T/short.csv"
"$C" eval --data "$T/pad.csv" --load "$T/c.ckpt" >"$T/pe.out" 2>"$T/err"
"$C" eval --data "$T/short.csv" --init-from "$T/c.ckpt" --set T=2 >"$T/se.out" 2>"$T/err"
a=$(eval_ll "$T/pe.out"); b=$(eval_ll "$T/se.out")
check "NaN padding = the shorter chain ($a vs $b)" holds "\"$a\" != \"\" && ($a - $b)^2 < 1e-8"

# --- recovery: sequences from the parameters of --seed 8, fit from --seed
# 2; test log-likelihood near the true parameters', Viterbi near the truth
"$H" sample --seed 8 -n 700 --set T=30 --out "$T/all.csv" --latents "$T/lat.csv" >/dev/null 2>"$T/err"
check "sample --latents writes the true paths" sh -c "[ \$(head -1 '$T/lat.csv' | tr ',' '\n' | grep -c '^z\[') -eq 30 ]"
head -501 "$T/all.csv" >"$T/train.csv"
{ head -1 "$T/all.csv"; tail -200 "$T/all.csv"; } >"$T/test.csv"
{ head -1 "$T/lat.csv"; tail -200 "$T/lat.csv"; } >"$T/testlat.csv"
"$H" train --data "$T/train.csv" --epochs 0 --seed 8 --set T=30 --save "$T/true.ckpt" >/dev/null 2>"$T/err"
"$H" train --data "$T/train.csv" --epochs 80 --batch 32 --lr 0.05 --schedule cosine --seed 2 --set T=30 --save "$T/fit.ckpt" >/dev/null 2>"$T/err"
"$H" eval --data "$T/test.csv" --load "$T/true.ckpt" --set T=30 >"$T/te.out" 2>"$T/err"
"$H" eval --data "$T/test.csv" --load "$T/fit.ckpt" --set T=30 >"$T/fe.out" 2>"$T/err"
lt=$(eval_ll "$T/te.out"); lf=$(eval_ll "$T/fe.out")
echo "     test log p(x) per sequence: true parameters $lt, fitted $lf"
check "fitted test log-likelihood within 0.2 nats of the true parameters'" \
    holds "\"$lt\" != \"\" && \"$lf\" != \"\" && $lf > $lt - 0.2"
"$H" posterior --data "$T/test.csv" --load "$T/fit.ckpt" --set T=30 --map --out "$T/map.csv" >/dev/null 2>"$T/err"
# accuracy of the Viterbi path up to relabelling (the best of the K! maps)
acc=$(awk -f tests/path_accuracy.awk -v K=3 "$T/testlat.csv" "$T/map.csv")
echo "     Viterbi accuracy against the true paths: $acc"
check "posterior --map: Viterbi accuracy >= 0.95" holds "$acc >= 0.95"
"$H" posterior --data "$T/test.csv" --load "$T/fit.ckpt" --set T=30 --out "$T/post.csv" >/dev/null 2>"$T/err"
sums=$(awk -F, 'NR > 1 { for (t = 0; t < 30; t++) { s = $(4*t+1) + $(4*t+2) + $(4*t+3); d = s - 1; if (d < 0) d = -d; if (d > w) w = d } }
    END { printf "%.3g\n", w }' "$T/post.csv")
check "posterior: each step's marginals sum to 1 ($sums)" holds "$sums < 1e-5"

# --- errors of the commands
"$H" impute --data "$T/test.csv" --set T=30 --load "$T/fit.ckpt" --out "$T/imp.csv" >/dev/null 2>"$T/err"
check "impute refuses a chain, saying why" sh -c "[ $? -ne 0 ] && grep -q 'does not support Markov chains' '$T/err'"
"$VLMC" tests/codegen/mix2d.vlm -o "$T/mix" 2>"$T/err"
"$T/mix" sample -n 5 --out "$T/m.csv" >/dev/null 2>&1
"$T/mix" train --data "$T/m.csv" --epochs 0 --save "$T/m.ckpt" >/dev/null 2>&1
"$T/mix" posterior --data "$T/m.csv" --load "$T/m.ckpt" --map --out "$T/mp.csv" >/dev/null 2>"$T/err"
check "posterior --map without a chain: a clear error" sh -c "[ $? -ne 0 ] && grep -q -- '--map needs a Markov chain' '$T/err'"
printf 'observed x ~ Normal(0, 1);\n' >"$T/nolat.vlm"
compile "$T/nolat.vlm" "$T/nolat"
"$T/nolat" sample -n 3 --out "$T/n.csv" --latents "$T/nl.csv" >/dev/null 2>"$T/err"
check "sample --latents without latents: a clear error" sh -c "[ $? -ne 0 ] && grep -q 'no latent variables' '$T/err'"

suite_end
