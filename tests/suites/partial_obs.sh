#!/bin/sh
# partial_obs.sh — an observed discrete variable that is a parent and is
# missing in some rows (tests/codegen/semisup.vlm: y ~ Categorical, x ~
# Normal(mu[y], sigma), y NaN in two rows of three). A batch mixes given
# and summed rows; everything the trainer computes is compared with a
# row-by-row computation in double precision (awk): the exact
# log-likelihood (log p(x, y) where y is given, log p(x) = logsumexp_y
# where it is missing), the gradient (one full-batch SGD step), the
# posterior p(y | x) and the accuracy against labels.
# Last line: COUNTS passed=N failed=M.
. "$(dirname "$0")/../suite_lib.sh"
suite_dir
suite_show() { head -5; }

M=$T/semisup
require "compile semisup.vlm" "$BINDIR/vlmc" tests/codegen/semisup.vlm -o "$M" 2>"$T/err"
check "plan says the variable is summed where missing" \
    sh -c "'$BINDIR/vlmc' --plan tests/codegen/semisup.vlm | grep -q 'summed out exactly'"

# 300 items from three well-separated clusters; y given in every third
# item, NaN elsewhere; true labels kept aside (labels.txt).
awk 'BEGIN { srand(3); mx[0]=-2; my[0]=0; mx[1]=2; my[1]=1; mx[2]=0; my[2]=-2.5;
      print "y,x[0],x[1]" > "'"$T"'/semi.csv";
      for (i = 0; i < 300; i++) {
          k = int(3 * rand()); if (k > 2) k = 2;
          u1 = rand(); u2 = rand(); if (u1 < 1e-12) u1 = 1e-12;
          g1 = sqrt(-2 * log(u1)) * cos(6.283185307 * u2);
          g2 = sqrt(-2 * log(u1)) * sin(6.283185307 * u2);
          printf "%s,%.6f,%.6f\n", (i % 3 == 0 ? k : "NaN"), mx[k] + 0.7 * g1, my[k] + 0.5 * g2 > "'"$T"'/semi.csv";
          print k > "'"$T"'/labels.txt" } }'

# The exact per-item log-likelihood and responsibilities, row by row, from
# the parameters as `params` prints them (logits, mu rows, log_sigma).
# mode "ll": mean log-lik; "post": p(y=k|...) per item; "grad": the
# gradient of the mean log-lik in `params` order.
exact() {  # mode params-file
    awk -F, -v mode="$1" '
    FNR == NR { if ($1 == "logits") for (k = 0; k < 3; k++) lg[k] = $(k + 3);
                if ($1 == "mu") for (d = 0; d < 2; d++) mu[$2, d] = $(d + 3);
                if ($1 == "log_sigma") for (d = 0; d < 2; d++) ls[d] = $(d + 3);
                next }
    FNR == 1 { mx = lg[0]; for (k = 1; k < 3; k++) if (lg[k] > mx) mx = lg[k];
               z = 0; for (k = 0; k < 3; k++) z += exp(lg[k] - mx);
               for (k = 0; k < 3; k++) lpi[k] = lg[k] - mx - log(z);
               next }
    { n++; x[0] = $2; x[1] = $3; best = -1e300
      for (k = 0; k < 3; k++) { lp[k] = lpi[k];
          for (d = 0; d < 2; d++) { s = exp(ls[d]); t = (x[d] - mu[k, d]) / s;
              lp[k] += -0.9189385332046727 - ls[d] - 0.5 * t * t }
          if (lp[k] > best) best = lp[k] }
      if ($1 == "NaN") { z = 0; for (k = 0; k < 3; k++) z += exp(lp[k] - best);
                         ll = best + log(z); for (k = 0; k < 3; k++) rho[k] = exp(lp[k] - ll) }
      else { ll = lp[$1 + 0]; for (k = 0; k < 3; k++) rho[k] = (k == $1 + 0) }
      sum += ll
      if (mode == "post") printf "%.9g,%.9g,%.9g\n", rho[0], rho[1], rho[2]
      for (k = 0; k < 3; k++) { gl[k] += rho[k] - exp(lpi[k]);
          for (d = 0; d < 2; d++) { s2 = exp(2 * ls[d]); t = x[d] - mu[k, d];
              gm[k, d] += rho[k] * t / s2; gs[d] += rho[k] * (t * t / s2 - 1) } } }
    END { if (mode == "ll") printf "%.9f\n", sum / n
          if (mode == "grad") { for (k = 0; k < 3; k++) print gl[k] / n
              for (k = 0; k < 3; k++) for (d = 0; d < 2; d++) print gm[k, d] / n
              for (d = 0; d < 2; d++) print gs[d] / n } }' "$2" "${3:-$T/semi.csv}"
}
values() { cut -d, -f3- "$1" | tr ',' '\n'; }   # params CSV -> one value per line

# 1. training and the exact log-likelihood
"$M" train --data "$T/semi.csv" --epochs 20 --batch 50 --lr 0.05 --seed 1 \
    --save "$T/a.ckpt" >"$T/out" 2>"$T/err"
check "train on a mixed batch" [ $? -eq 0 ]
"$M" params --load "$T/a.ckpt" >"$T/a.params" 2>"$T/err"
"$M" eval --data "$T/semi.csv" --load "$T/a.ckpt" >"$T/eval" 2>"$T/err"
got=$(sed -n 's/.*log p(x) *\(-*[0-9.]*\).*exact.*/\1/p' "$T/eval")
want=$(exact ll "$T/a.params")
check "eval's exact log-lik ($got) = row-by-row ($want)" \
    awk "BEGIN { exit !(\"$got\" != \"\" && ($got - $want) < 1e-5 && ($want - $got) < 1e-5) }"
check "the clusters are learned (log-lik $got > -3.2)" awk "BEGIN { exit !($got > -3.2) }"

# 2. the gradient: one full-batch SGD step from the initialisation moves
#    the parameters by lr times the gradient of the mean log-likelihood
"$M" params --seed 5 >"$T/p0" 2>"$T/err"
"$M" train --data "$T/semi.csv" --epochs 1 --batch 300 --optimizer sgd --lr 0.1 \
    --seed 5 --threads 1 --save "$T/b.ckpt" >"$T/out" 2>"$T/err"
"$M" params --load "$T/b.ckpt" >"$T/p1" 2>"$T/err"
exact grad "$T/p0" >"$T/grad"
paste -d' ' "$T/grad" "$(values "$T/p0" >"$T/v0"; echo "$T/v0")" "$(values "$T/p1" >"$T/v1"; echo "$T/v1")" \
    >"$T/gcmp"
check "11 gradient entries compared" [ "$(wc -l < "$T/gcmp")" -eq 11 ]
check "SGD step = lr x row-by-row gradient (every entry within 1e-4)" \
    awk '{ step = ($3 - $2) / 0.1; d = step - $1; if (d < 0) d = -d; if (d > 1e-4 + 1e-4 * ($1 < 0 ? -$1 : $1)) bad++ }
         END { exit bad > 0 || NR != 11 }' "$T/gcmp"
check "the gradient is not trivially zero" awk '{ if ($1 > 0.01 || $1 < -0.01) big++ } END { exit !(big >= 4) }' "$T/gcmp"

# 3. posterior: p(y | x) where y is missing, certainty where given
"$M" posterior --data "$T/semi.csv" --load "$T/a.ckpt" --out "$T/post.csv" >"$T/out" 2>"$T/err"
check "posterior writes p(y=k) and y.argmax" grep -q '^p(y=0),p(y=1),p(y=2),y.argmax$' "$T/post.csv"
exact post "$T/a.params" >"$T/post.want"
tail -n +2 "$T/post.csv" | cut -d, -f1-3 | paste -d, - "$T/post.want" >"$T/pcmp"
check "posterior = row-by-row p(y | x) (max error 1e-4)" \
    awk -F, '{ for (k = 1; k <= 3; k++) { d = $k - $(k + 3); if (d < 0) d = -d; if (d > m) m = d } }
             END { exit !(NR == 300 && m < 1e-4) }' "$T/pcmp"
tail -n +2 "$T/semi.csv" > "$T/semi.rows"; tail -n +2 "$T/post.csv" > "$T/post.rows"
cut -d, -f1-3 "$T/post.rows" > "$T/post.p"
check "given rows are certain of their value" \
    awk -F, 'NR == FNR { y[FNR] = $1; next } y[FNR] != "NaN" { n++; if ($(y[FNR] + 1) != 1) bad++ }
             END { exit !(n == 100 && bad == 0) }' "$T/semi.rows" "$T/post.rows"

# 4. --labels: accuracy of the most probable class where it was missing
n=$(wc -l < "$T/labels.txt")
{ printf '\000\000\010\001'; printf "\\$(printf '%03o' $((n >> 24 & 255)))\\$(printf '%03o' $((n >> 16 & 255)))\\$(printf '%03o' $((n >> 8 & 255)))\\$(printf '%03o' $((n & 255)))";
  while read -r k; do printf "\\$(printf '%03o' "$k")"; done < "$T/labels.txt"; } > "$T/labels.idx1"
"$M" posterior --data "$T/semi.csv" --load "$T/a.ckpt" --out "$T/post2.csv" \
    --labels "$T/labels.idx1" >"$T/out" 2>"$T/err"
acc=$(sed -n 's/.*accuracy \([0-9.]*\) on the 200 items where it was missing.*/\1/p' "$T/out")
check "accuracy on the 200 unlabelled items printed ($acc) and above 0.95" \
    awk "BEGIN { exit !(\"$acc\" != \"\" && $acc > 0.95) }"

# 5. a label outside the categories is an error, not a silent -inf
sed '2s/^0,/7,/; 2s/^1,/7,/; 2s/^2,/7,/' "$T/semi.csv" > "$T/badlabel.csv"
"$M" eval --data "$T/badlabel.csv" --load "$T/a.ckpt" >"$T/out" 2>"$T/err"; rc=$?
check "label 7 of 3 categories: error naming the value" sh -c "[ $rc -ne 0 ] && grep -q '7' '$T/err'"

# 6. M2 (tests/codegen/m2tiny.vlm: the guide's classifier q(y | x) =
#    softmax(x wq + bq)): where y is missing the bound is
#    U = sum_g pi_g (log p(x, g) - log pi_g); where given,
#    log p(x, y) + alpha log q(y | x). One full-batch SGD step from the
#    initialisation against the row-by-row value and gradient.
M2=$T/m2tiny
"$BINDIR/vlmc" tests/codegen/m2tiny.vlm -o "$M2" 2>"$T/err"; check "compile m2tiny.vlm" [ $? -eq 0 ]
check "m2tiny gradcheck" sh -c "'$M2' gradcheck >'$T/gc' 2>&1 && grep -q ': ok' '$T/gc'"
"$M2" params --seed 5 >"$T/q0" 2>"$T/err"
"$M2" train --data "$T/semi.csv" --epochs 1 --batch 300 --optimizer sgd --lr 0.1 \
    --seed 5 --threads 1 --aux-weight 0.5 --save "$T/m2.ckpt" >"$T/m2out" 2>"$T/m2err"
check "train M2" [ $? -eq 0 ]
check "M2 says what it weighs" grep -q "given in 100 of 300 items.*0.5 x log q" "$T/m2err"
"$M2" params --load "$T/m2.ckpt" >"$T/q1" 2>"$T/err"
m2() {  # mode (value | grad) params-file alpha
    awk -F, -v mode="$1" -v alpha="$3" '
    FNR == NR { if ($1 == "logits") for (k = 0; k < 3; k++) lg[k] = $(k + 3);
                if ($1 == "mu") for (d = 0; d < 2; d++) mu[$2, d] = $(d + 3);
                if ($1 == "log_sigma") for (d = 0; d < 2; d++) ls[d] = $(d + 3);
                if ($1 == "wq") for (k = 0; k < 3; k++) wq[$2, k] = $(k + 3);
                if ($1 == "bq") for (k = 0; k < 3; k++) bq[k] = $(k + 3);
                next }
    FNR == 1 { mx = -1e300; for (k = 0; k < 3; k++) if (lg[k] > mx) mx = lg[k];
               z = 0; for (k = 0; k < 3; k++) z += exp(lg[k] - mx);
               for (k = 0; k < 3; k++) lpi[k] = lg[k] - mx - log(z); next }
    { n++; x[0] = $2; x[1] = $3
      for (k = 0; k < 3; k++) { lp[k] = lpi[k];
          for (d = 0; d < 2; d++) { t = (x[d] - mu[k, d]) / exp(ls[d]); lp[k] += -0.9189385332046727 - ls[d] - 0.5 * t * t } }
      mx = -1e300; for (k = 0; k < 3; k++) { l[k] = bq[k] + x[0] * wq[0, k] + x[1] * wq[1, k]; if (l[k] > mx) mx = l[k] }
      z = 0; for (k = 0; k < 3; k++) z += exp(l[k] - mx)
      for (k = 0; k < 3; k++) { lq[k] = l[k] - mx - log(z); q[k] = exp(lq[k]) }
      if ($1 == "NaN") {
          u = 0; abar = 0; for (k = 0; k < 3; k++) { u += q[k] * (lp[k] - lq[k]); A[k] = lp[k] - lq[k] - 1; abar += q[k] * A[k] }
          val += u; for (k = 0; k < 3; k++) { w[k] = q[k]; dl[k] = q[k] * (A[k] - abar) }
      } else {
          y = $1 + 0; val += lp[y]
          for (k = 0; k < 3; k++) { w[k] = (k == y); dl[k] = alpha * ((k == y) - q[k]) }
      }
      for (k = 0; k < 3; k++) { glg[k] += w[k] - exp(lpi[k]); gb[k] += dl[k]
          for (d = 0; d < 2; d++) { s2 = exp(2 * ls[d]); t = x[d] - mu[k, d];
              gm[k, d] += w[k] * t / s2; gs[d] += w[k] * (t * t / s2 - 1); gw[d, k] += x[d] * dl[k] } } }
    END { if (mode == "value") printf "%.9f\n", val / n
          if (mode == "grad") { for (k = 0; k < 3; k++) print glg[k] / n
              for (k = 0; k < 3; k++) for (d = 0; d < 2; d++) print gm[k, d] / n
              for (d = 0; d < 2; d++) print gs[d] / n
              for (d = 0; d < 2; d++) for (k = 0; k < 3; k++) print gw[d, k] / n
              for (k = 0; k < 3; k++) print gb[k] / n } }' "$2" "${4:-$T/semi.csv}"
}
got=$(sed -n 's/.*train elbo \(-*[0-9.]*\).*/\1/p' "$T/m2out"); want=$(m2 value "$T/q0" 0.5)
check "M2 bound at the start ($got) = row-by-row ($want)" \
    awk "BEGIN { exit !(\"$got\" != \"\" && ($got - $want) < 1e-4 && ($want - $got) < 1e-4) }"
m2 grad "$T/q0" 0.5 >"$T/m2grad"
values "$T/q0" >"$T/w0"; values "$T/q1" >"$T/w1"
paste -d' ' "$T/m2grad" "$T/w0" "$T/w1" >"$T/m2cmp"
check "20 M2 gradient entries compared" [ "$(wc -l < "$T/m2cmp")" -eq 20 ]
check "M2 SGD step = lr x row-by-row gradient (every entry within 1e-4)" \
    awk '{ step = ($3 - $2) / 0.1; d = step - $1; if (d < 0) d = -d; if (d > 1e-4 + 1e-4 * ($1 < 0 ? -$1 : $1)) bad++ }
         END { exit bad > 0 || NR != 20 }' "$T/m2cmp"
check "the classifier's gradient is not trivially zero" \
    awk 'NR > 11 { if ($1 > 1e-3 || $1 < -1e-3) big++ } END { exit !(big >= 3) }' "$T/m2cmp"
"$M2" train --data "$T/semi.csv" --epochs 1 --batch 300 --seed 5 --save "$T/m2b.ckpt" >/dev/null 2>"$T/m2err"
check "default aux weight is 0.1 N / N_l = 0.3" grep -q "0.3 x log q" "$T/m2err"
"$M2" eval --data "$T/semi.csv" --load "$T/m2.ckpt" >"$T/m2eval" 2>"$T/err"
check "eval sums y exactly (the guide's q(y | x) is for training)" grep -q "exact" "$T/m2eval"

# 6b. a batch where every y is given is computed on one row per item (E 3
#     -> 1, no clamped rows): its SGD step is still the row-by-row
#     gradient, for the plain mixture and for M2 (log p(x, y) + alpha log
#     q(y | x)); a mixed batch above was computed on all 3 rows
awk -F, 'NR == 1 || $1 != "NaN"' "$T/semi.csv" > "$T/labelled.csv"
"$M" train --data "$T/labelled.csv" --epochs 1 --batch 100 --optimizer sgd --lr 0.1 \
    --seed 5 --threads 1 --save "$T/lb.ckpt" >"$T/lbout" 2>"$T/err"
check "a fully labelled batch runs at E = 1" grep -q "^1 batches had every summed variable given: computed on 1 rows per (item, sample) instead of 3" "$T/lbout"
check "a mixed batch does not (M2's full batch of section 6)" sh -c "[ -s '$T/m2out' ] && ! grep -q 'batches had every summed' '$T/m2out'"
"$M" params --load "$T/lb.ckpt" >"$T/lb1" 2>"$T/err"
exact grad "$T/p0" "$T/labelled.csv" | paste -d' ' - "$T/v0" "$(values "$T/lb1" >"$T/lbv"; echo "$T/lbv")" >"$T/lbcmp"
check "fully labelled SGD step = lr x row-by-row gradient (11 entries within 1e-4)" \
    awk '{ step = ($3 - $2) / 0.1; d = step - $1; if (d < 0) d = -d; if (d > 1e-4 + 1e-4 * ($1 < 0 ? -$1 : $1)) bad++ }
         END { exit bad > 0 || NR != 11 }' "$T/lbcmp"
# a file where every y is given has no mask at all (obs_mask NULL): eval
# and posterior still hold each item to its given y (log p(x, y), not
# log p(x); a one-hot posterior)
"$M" eval --data "$T/labelled.csv" --load "$T/a.ckpt" >"$T/lbeval" 2>"$T/err"
got=$(sed -n 's/.*log p(x) *\(-*[0-9.]*\).*exact.*/\1/p' "$T/lbeval")
want=$(exact ll "$T/a.params" "$T/labelled.csv")
check "eval on a file with every y given: log p(x, y) ($got) = row-by-row ($want)" \
    awk "BEGIN { exit !(\"$got\" != \"\" && ($got - $want) < 1e-5 && ($want - $got) < 1e-5) }"
"$M" posterior --data "$T/labelled.csv" --load "$T/a.ckpt" --out "$T/lbpost.csv" >"$T/out" 2>"$T/err"
check "posterior on a file with every y given is certain of each given value" \
    awk -F, 'NR == FNR { if (FNR > 1) y[FNR] = $1; next }
             FNR > 1 { n++; if ($(y[FNR] + 1) != 1) bad++ } END { exit !(n == 100 && bad == 0) }' \
    "$T/labelled.csv" "$T/lbpost.csv"
"$M2" train --data "$T/labelled.csv" --epochs 1 --batch 100 --optimizer sgd --lr 0.1 \
    --seed 5 --threads 1 --aux-weight 0.5 --save "$T/m2lb.ckpt" >"$T/m2lbout" 2>"$T/err"
check "M2 on a fully labelled batch runs at E = 1" grep -q "^1 batches had every summed variable given" "$T/m2lbout"
"$M2" params --load "$T/m2lb.ckpt" >"$T/m2lb1" 2>"$T/err"
m2 grad "$T/q0" 0.5 "$T/labelled.csv" | paste -d' ' - "$T/w0" "$(values "$T/m2lb1" >"$T/m2lbv"; echo "$T/m2lbv")" >"$T/m2lbcmp"
check "M2 fully labelled SGD step = lr x row-by-row gradient (20 entries within 1e-4)" \
    awk '{ step = ($3 - $2) / 0.1; d = step - $1; if (d < 0) d = -d; if (d > 1e-4 + 1e-4 * ($1 < 0 ? -$1 : $1)) bad++ }
         END { exit bad > 0 || NR != 20 }' "$T/m2lbcmp"

# 7. a guide that reads y (tests/codegen/semisup_z.vlm): z ~ q(z | x, y)
#    gets its own sample for every value of y, and the estimators subtract
#    each row's log q before summing y out. p(x | y) = N(mu_y, w w' + S)
#    in closed form: the importance-sampled log p(x) must land within 3 SE
#    of it, and the ELBO below it.
MZ=$T/semisup_z
"$BINDIR/vlmc" tests/codegen/semisup_z.vlm -o "$MZ" 2>"$T/err"; check "compile semisup_z.vlm" [ $? -eq 0 ]
check "semisup_z gradcheck" sh -c "'$MZ' gradcheck >'$T/gc' 2>&1 && grep -q ': ok' '$T/gc'"
"$MZ" train --data "$T/semi.csv" --epochs 30 --batch 50 --lr 0.03 --seed 2 --save "$T/sz.ckpt" >/dev/null 2>"$T/err"
check "train semisup_z" [ $? -eq 0 ]
"$MZ" params --load "$T/sz.ckpt" >"$T/sz.params" 2>"$T/err"
"$MZ" eval --data "$T/semi.csv" --load "$T/sz.ckpt" --iw 200 --seed 3 >"$T/sz.eval" 2>"$T/err"
exact_z=$(awk -F, '
    FNR == NR { if ($1 == "logits") for (k = 0; k < 3; k++) lg[k] = $(k + 3);
                if ($1 == "mu") for (d = 0; d < 2; d++) mu[$2, d] = $(d + 3);
                if ($1 == "w") for (d = 0; d < 2; d++) w[d] = $(d + 3);
                if ($1 == "log_s") for (d = 0; d < 2; d++) ls[d] = $(d + 3);
                next }
    FNR == 1 { mx = -1e300; for (k = 0; k < 3; k++) if (lg[k] > mx) mx = lg[k];
               z = 0; for (k = 0; k < 3; k++) z += exp(lg[k] - mx);
               for (k = 0; k < 3; k++) lpi[k] = lg[k] - mx - log(z);
               a = w[0] * w[0] + exp(2 * ls[0]); b = w[0] * w[1]; c = w[1] * w[1] + exp(2 * ls[1]);
               det = a * c - b * b; next }
    { n++; best = -1e300
      for (k = 0; k < 3; k++) { u = $2 - mu[k, 0]; v = $3 - mu[k, 1];
          q = (c * u * u - 2 * b * u * v + a * v * v) / det;
          lp[k] = lpi[k] - 1.8378770664093453 - 0.5 * log(det) - 0.5 * q; if (lp[k] > best) best = lp[k] }
      if ($1 == "NaN") { s = 0; for (k = 0; k < 3; k++) s += exp(lp[k] - best); sum += best + log(s) }
      else sum += lp[$1 + 0] }
    END { printf "%.6f\n", sum / n }' "$T/sz.params" "$T/semi.csv")
is=$(sed -n 's/.*log p(x) (IS) *\(-*[0-9.]*\) +- \([0-9.]*\).*/\1/p' "$T/sz.eval")
se=$(sed -n 's/.*log p(x) (IS) *\(-*[0-9.]*\) +- \([0-9.]*\).*/\2/p' "$T/sz.eval")
elbo=$(sed -n 's/.*ELBO *\(-*[0-9.]*\).*/\1/p' "$T/sz.eval")
check "IS log p(x) $is +- $se within 3 SE of the exact $exact_z" \
    awk "BEGIN { d = $is - $exact_z; if (d < 0) d = -d; exit !(\"$se\" != \"\" && $se < 0.05 && d <= 3 * $se) }"
check "ELBO $elbo <= exact $exact_z" awk "BEGIN { exit !(\"$elbo\" != \"\" && $elbo <= $exact_z + 3 * $se) }"

# 8. impute: a missing class becomes its most probable value (not a mean
#    class index), and --probs writes the probabilities posterior gives
"$M" impute --data "$T/semi.csv" --load "$T/a.ckpt" --out "$T/imp.csv" --probs "$T/probs.csv" >"$T/out" 2>"$T/err"
check "impute --probs" [ $? -eq 0 ]
tail -n +2 "$T/imp.csv" | cut -d, -f1 > "$T/imp.y"; tail -n +2 "$T/post.csv" | cut -d, -f4 > "$T/post.y"
check "imputed classes = posterior's argmax, integers" \
    sh -c "cmp -s '$T/imp.y' '$T/post.y' && ! grep -q '\.' '$T/imp.y'"
check "--probs = posterior's p(y=k)" sh -c "tail -n +2 '$T/probs.csv' | cmp -s - '$T/post.p'"

# 9. hiding labels: --keep-labels y=N keeps N per class (from --seed),
#    --labelled-only trains on those items alone, --hide y makes every y
#    missing (eval then equals the all-missing exact log-likelihood)
"$M2" train --data "$T/semi.csv" --epochs 1 --batch 50 --seed 5 --keep-labels y=10 \
    --save "$T/k.ckpt" >"$T/out" 2>"$T/kerr"
check "--keep-labels y=10: 30 of 300 kept" grep -q "kept in 30 of 300 items" "$T/kerr"
check "... and the M2 note counts 30 given" grep -q "given in 30 of 300 items" "$T/kerr"
"$M2" train --data "$T/semi.csv" --epochs 1 --batch 50 --seed 5 --keep-labels y=10 --labelled-only \
    --save "$T/k2.ckpt" >"$T/out" 2>"$T/kerr"
check "--labelled-only: trains on the 30" grep -q "training on the 30 items" "$T/kerr"
# (of the 100 labelled items, 30 keep theirs: from a stream of their own,
# not the batcher's, whose first batches would then hold exactly those)
"$M2" train --data "$T/labelled.csv" --epochs 1 --batch 10 --seed 5 --keep-labels y=10 >"$T/out" 2>"$T/kerr"
check "the kept labels are not the first epoch's first batches (no batch of 10 all labelled)" \
    sh -c "grep -q 'kept in 30 of 100' '$T/kerr' && ! grep -q 'batches had every summed' '$T/out'"
"$M2" train --data "$T/semi.csv" --epochs 1 --keep-labels z=3 >"$T/out" 2>"$T/kerr"; rc=$?
check "--keep-labels of an unknown variable: error" sh -c "[ $rc -ne 0 ] && grep -q 'no observed variable .z.' '$T/kerr'"
"$M2" train --data "$T/semi.csv" --epochs 1 --keep-labels x=3 >"$T/out" 2>"$T/kerr"; rc=$?
check "--keep-labels of a non-class: error" sh -c "[ $rc -ne 0 ] && grep -q 'not a partly observed class' '$T/kerr'"
sed 's/^[0-9],/NaN,/' "$T/semi.csv" > "$T/nolabels.csv"
"$M" eval --data "$T/nolabels.csv" --load "$T/a.ckpt" >"$T/e1" 2>&1
"$M" eval --data "$T/semi.csv" --load "$T/a.ckpt" --hide y >"$T/e2" 2>&1
check "eval --hide y = the data without labels" sh -c "grep 'log p' '$T/e1' > '$T/e1l'; grep 'log p' '$T/e2' > '$T/e2l'; [ -s '$T/e1l' ] && cmp -s '$T/e1l' '$T/e2l'"
"$M2" posterior --data "$T/semi.csv" --load "$T/m2.ckpt" --hide y --out "$T/m2post.csv" --labels "$T/labels.idx1" >"$T/out" 2>"$T/err"
check "posterior --hide y: accuracy on all 300, by the posterior and by q(y | x)" \
    sh -c "grep -q \"by the model's posterior .*on the 300 items\" '$T/out' && grep -q 'by the guide.s q(y | x) .*on the 300 items' '$T/out'"

suite_end
