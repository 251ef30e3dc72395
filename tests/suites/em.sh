#!/bin/sh
# em.sh — EM for conjugate Gaussian mixtures end to end: vlmc recognises
# the supported forms (and only those), a compiled 2-D mixture trained by
# EM on data sampled from known parameters recovers the means (within 0.1
# after matching components), its log-likelihood is at least gradient
# training's on the same data, and checkpoints and `params` work.
# Last line: COUNTS passed=N failed=M.
. "$(dirname "$0")/../suite_lib.sh"
VLMC=$BINDIR/vlmc
suite_dir; suite_tmpdir
# log p(x) printed by eval
eval_ll() { awk '/log p\(x\)/ { print $3; exit }' "$1"; }
# max over true components of |mu_true - mu_fit| after matching each true
# component to its nearest fitted one (files from `params`, rows mu,k,x,y)
match_err() {
    awk -F, 'FNR == 1 { f++ } $1 == "mu" { m[f, $2] = $3 " " $4; n[f]++ }
        END { worst = 0
              for (i = 0; i < n[1]; i++) { split(m[1, i], a, " "); best = 1e9
                  for (j = 0; j < n[2]; j++) { split(m[2, j], b, " ")
                      e = a[1] - b[1]; if (e < 0) e = -e
                      g = a[2] - b[2]; if (g < 0) g = -g
                      if (g > e) e = g
                      if (e < best) best = e }
                  if (best > worst) worst = best }
              print worst }' "$1" "$2"
}

# --- recognition: the plan names the training
plan_says() { "$VLMC" --plan "$1" 2>"$T/err" | grep -q "training: $2"; }
check "mog.vlm: EM" plan_says examples/mog.vlm "EM with closed-form M-step"
check "mix2d.vlm: EM" plan_says tests/codegen/mix2d.vlm "EM with closed-form M-step"
check "vae.vlm: not EM" plan_says examples/vae.vlm "stochastic gradient"
head='const K = 3; const D = 2; param mu[K, D] = normal(0, 2);'
form() {  # name, declarations, scale expression, expected training
    printf '%s\n%s\nlatent z ~ Categorical(%s);\nobserved x[D] ~ Normal(%s, %s);\n' \
        "$head" "$2" "$5" "$6" "$3" >"$T/$1.vlm"
    plan_says "$T/$1.vlm" "$4"
}
check "exp(ls[z]) with probs = simplex: EM" \
    form f1 'param p[K] : simplex; param ls[K, D] = -1;' 'exp(ls[z])' "EM.*log sd" 'probs = p' 'mu[z]'
check "s[z], s positive: EM (log sd)" \
    form f2 'param l[K]; param s[K, D] : positive = 0.5;' 's[z]' "EM.*log sd" 'logits = l' 'mu[z]'
check "sqrt(v[z]), v positive: EM (log variance)" \
    form f3 'param l[K]; param v[K, D] : positive = 0.25;' 'sqrt(v[z])' "EM.*log variance" 'logits = l' 'mu[z]'
check "exp(0.5 * lv[z]): EM (log variance)" \
    form f4 'param l[K]; param lv[K, D];' 'exp(0.5 * lv[z])' "EM.*log variance" 'logits = l' 'mu[z]'
check "mu[z] + 1: gradient" \
    form f5 'param l[K]; param ls[K, D];' 'exp(ls[z])' "gradient" 'logits = l' 'mu[z] + 1'
check "shared scale exp(ls): gradient" \
    form f6 'param l[K]; param ls[D];' 'exp(ls)' "gradient" 'logits = l' 'mu[z]'
check "s[z] unconstrained: gradient" \
    form f7 'param l[K]; param s[K, D] = 1;' 'exp(s[z]) * 2' "gradient" 'logits = l' 'mu[z]'
check "an input beside the mixture: gradient (EM has no inputs)" \
    form f8 'input c; param l[K]; param ls[K, D];' 'exp(ls[z])' "gradient" 'logits = l' 'mu[z]'
check "scale from the mean's own table, exp(mu[z]): gradient" \
    form f9 'param l[K];' 'exp(mu[z])' "gradient" 'logits = l' 'mu[z]'
check "logits = l with l positive (stored as log l): gradient" \
    form f10 'param l[K] : positive; param ls[K, D];' 'exp(ls[z])' "gradient" 'logits = l' 'mu[z]'

# --- mix2d: data from the parameters of --seed 7, fit by EM and by Adam
M=$T/mix2d
"$VLMC" tests/codegen/mix2d.vlm -o "$M" 2>"$T/err"
check "mix2d compiles" [ $? -eq 0 ]
"$M" params --seed 7 >"$T/truth.csv" 2>"$T/err"
check "params prints the initial parameters" sh -c "[ \$(grep -c '^mu,' '$T/truth.csv') -eq 3 ]"
# sample --mean: E[x | z] = mu[z], each row one of the three means
"$M" sample --seed 7 -n 20 --mean --out "$T/means.csv" >"$T/out" 2>"$T/err"
check "sample --mean writes mu[z]: every row is one of the means" \
    awk -F, 'NR == FNR { if ($1 == "mu") { m[++k] = $3 " " $4 }; next }
             FNR > 1 { n++; hit = 0
                       for (j = 1; j <= k; j++) { split(m[j], a, " ")
                           d = $1 - a[1]; e = $2 - a[2]; if (d < 0) d = -d; if (e < 0) e = -e
                           if (d < 1e-5 && e < 1e-5) hit = 1 }
                       if (!hit) bad++ }
             END { exit !(k == 3 && n == 20 && bad == 0) }' "$T/truth.csv" "$T/means.csv"
"$M" sample --seed 7 -n 2500 --out "$T/all.csv" >"$T/out" 2>"$T/err"
head -2001 "$T/all.csv" >"$T/train.csv"
{ head -1 "$T/all.csv"; tail -500 "$T/all.csv"; } >"$T/test.csv"
"$M" train --data "$T/train.csv" --test "$T/test.csv" --seed 1 --save "$T/em.ckpt" \
    --log "$T/em_log.csv" >"$T/out" 2>"$T/err"
check "EM trains" [ $? -eq 0 ]
check "EM converges" grep -q "em: converged after" "$T/err"
check "EM prints test log p(x) per iteration" grep -q "test log p(x)" "$T/out"
"$M" params --load "$T/em.ckpt" >"$T/fit.csv" 2>"$T/err"
e=$(match_err "$T/truth.csv" "$T/fit.csv")
check "EM recovers the means (max error $e < 0.1)" holds "$e < 0.1"
"$M" eval --data "$T/train.csv" --load "$T/em.ckpt" >"$T/out" 2>"$T/err"
em_ll=$(eval_ll "$T/out")
last=$(tail -1 "$T/em_log.csv" | cut -d, -f3)
check "eval agrees with EM's last E-step ($em_ll vs $last)" holds "$em_ll - $last > -1e-3 && $em_ll - $last < 1e-2"
"$M" train --data "$T/train.csv" --optimizer adam --epochs 15 --batch 50 --lr 0.05 --seed 1 \
    --save "$T/gd.ckpt" >"$T/out" 2>"$T/err"
check "--optimizer adam trains by gradient" sh -c "! grep -q 'em:' '$T/err'"
"$M" eval --data "$T/train.csv" --load "$T/gd.ckpt" >"$T/out" 2>"$T/err"
gd_ll=$(eval_ll "$T/out")
check "EM log p(x) >= gradient's ($em_ll >= $gd_ll)" holds "$em_ll >= $gd_ll - 1e-4"
"$M" posterior --data "$T/test.csv" --load "$T/em.ckpt" --out "$T/post.csv" >"$T/out" 2>"$T/err"
check "posterior reads the EM checkpoint" [ $? -eq 0 ]
# resume: a checkpoint after 2 iterations, continued, reaches the same optimum
"$M" train --data "$T/train.csv" --epochs 2 --seed 1 --save "$T/r.ckpt" >"$T/out" 2>"$T/err" &&
"$M" train --data "$T/train.csv" --load "$T/r.ckpt" --save "$T/r.ckpt" >"$T/out" 2>"$T/err"
check "EM resumes from a checkpoint" [ $? -eq 0 ]
"$M" params --load "$T/r.ckpt" >"$T/fit2.csv" 2>"$T/err"
e2=$(match_err "$T/fit.csv" "$T/fit2.csv")
check "resumed EM reaches the same means ($e2 < 0.01)" holds "$e2 < 0.01"

# --- the log-variance form trains by EM too
"$VLMC" "$T/f3.vlm" -o "$T/f3" 2>"$T/err" &&
"$T/f3" sample --seed 3 -n 1500 --out "$T/f3.csv" >"$T/out" 2>"$T/err" &&
"$T/f3" params --seed 3 >"$T/f3_truth.csv" 2>"$T/err" &&
"$T/f3" train --data "$T/f3.csv" --save "$T/f3.ckpt" >"$T/out" 2>"$T/f3_train.err" &&
"$T/f3" params --load "$T/f3.ckpt" >"$T/f3_fit.csv" 2>"$T/err"
check "sqrt(v[z]) model trains by EM" grep -q "em: converged" "$T/f3_train.err"
e3=$(match_err "$T/f3_truth.csv" "$T/f3_fit.csv")
check "sqrt(v[z]) model recovers the means ($e3 < 0.1)" holds "$e3 < 0.1"
"$T/f3" train --data "$T/f3.csv" --tol x >"$T/out" 2>"$T/err"
check "bad --tol is a usage error" [ $? -eq 2 ]

# --- a component collapsing onto one point with --reg-covar 0: an error
# that names the collapse and --reg-covar, never a meaningless optimum
printf 'x0,x1\n0,0\n0.1,0.2\n-0.1,0.1\n0.2,-0.1\n5,5\n5.1,5.2\n4.9,5.1\n5.2,4.8\n100,100\n' > "$T/collapse.csv"
"$M" train --data "$T/collapse.csv" --reg-covar 0 --save "$T/collapse.ckpt" >"$T/out" 2>"$T/err"; rc=$?
check "--reg-covar 0, a component on one point: exit 1, names the collapse and --reg-covar" \
    sh -c "[ $rc -eq 1 ] && grep -q 'component [0-9] collapsed.*holds 1 item.*use --reg-covar R > 0' '$T/err' && [ ! -e '$T/collapse.ckpt' ]"
"$M" train --data "$T/collapse.csv" --save "$T/collapse.ckpt" >"$T/out" 2>"$T/err"
check "... the default --reg-covar fits the same data" [ $? -eq 0 ]
awk 'BEGIN { srand(3); print "a,b"; for (i = 0; i < 300; i++) printf "%f,0\n", (i % 3) * 4 + rand() }' > "$T/constcol.csv"
"$M" train --data "$T/constcol.csv" --reg-covar 0 >"$T/out" 2>"$T/err"; rc=$?
check "--reg-covar 0, a constant column: exit 1, names the collapse" \
    sh -c "[ $rc -eq 1 ] && grep -q 'collapsed.*variance in dimension 1 is 0 ' '$T/err'"

suite_end
