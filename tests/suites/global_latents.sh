#!/bin/sh
# global_latents.sh — `global latent` and priors on params, end to end,
# against closed forms: a Normal mean with known variance (q(mu) within 1%
# of the exact posterior, with the automatic guide and with a written one
# in `guide local`), Bayesian linear regression with an input (q(beta)
# against the mean-field optimum of the exact Gaussian posterior), the
# minibatch objective's unbiasedness (batch 10 and batch N against the
# exact expected ELBO / N), eval's ELBO share and posterior predictive,
# a positive global latent (LogNormal guide against the Gamma posterior),
# and a param's prior (MAP equals the closed-form posterior mode).
# Gradients are checked by finite differences in codegen.sh
# (tests/codegen/global_*.vlm, prior_params.vlm).
# Last line: COUNTS passed=N failed=M.
. "$(dirname "$0")/../suite_lib.sh"
VLMC=$BINDIR/vlmc
suite_dir; suite_tmpdir
# near(got, want, rel, abs): |got - want| <= rel |want| + abs
near() { awk -v g="$1" -v w="$2" -v r="$3" -v a="$4" 'BEGIN { d = g - w; if (d < 0) d = -d;
    m = w < 0 ? -w : w; exit !(g != "" && d <= r * m + a) }'; }
# param(file, name, index): element `index` of a param in `params` output
# (name, row, values...)
param() { awk -F, -v n="$2" -v i="$3" '$1 == n { print $(3 + i) }' "$1"; }

# normal(seed, n, cols): rows of standard normal draws (Box-Muller in awk)
normal() {
    awk -v s="$1" -v n="$2" -v c="$3" 'BEGIN { srand(s);
      for (i = 0; i < n; i++) { l = "";
        for (k = 0; k < c; k++) { v = sqrt(-2 * log(1 - rand())) * cos(6.283185307 * rand());
          l = l (k ? "," : "") sprintf("%.6f", v) } print l } }'
}

# --- a Normal mean: x_i ~ N(mu, 1), mu ~ N(0, 2^2); 200 items, mean 1.5
normal 7 200 1 | awk 'BEGIN { print "x" } { printf "%.6f\n", $1 + 1.5 }' > "$T/x.csv"
normal 8 200 1 | awk 'BEGIN { print "x" } { printf "%.6f\n", $1 + 1.5 }' > "$T/xt.csv"
# exact posterior: precision 1/4 + N, mean sum(x) / precision
exact=$(awk -F, 'NR > 1 { s += $1; n++ } END { p = 0.25 + n; printf "%.9g %.9g", s / p, 1 / sqrt(p) }' "$T/x.csv")
em=${exact% *}; es=${exact#* }

M=$T/mean
"$VLMC" tests/codegen/global_mean.vlm -o "$M" 2>"$T/err"
check "Normal mean with a global latent compiles" [ $? -eq 0 ]
# Adam with a decaying rate: the one draw of mu per step is the noise
"$M" train --data "$T/x.csv" --epochs 10000 --batch 10 --lr 3e-4 --schedule cosine --seed 1 --threads 1 \
    --save "$T/m.ckpt" >"$T/out" 2>"$T/err"
check "it trains (batch 10 of 200)" [ $? -eq 0 ]
"$M" params --load "$T/m.ckpt" > "$T/p.csv"
qm=$(param "$T/p.csv" auto.mu.loc 0); qs=$(awk "BEGIN { print exp($(param "$T/p.csv" auto.mu.log_scale 0)) }")
check "q(mu) mean $qm within 1% of the exact $em" holds "($qm - $em) / $em < 0.01 && ($em - $qm) / $em < 0.01"
check "q(mu) sd $qs within 1% of the exact $es" holds "($qs - $es) / $es < 0.01 && ($es - $qs) / $es < 0.01"

# eval: the ELBO with the global terms' 1/N share, and the posterior
# predictive log p(x* | data) = mean log N(x*; m, sqrt(1 + s^2)) under q
"$M" eval --data "$T/xt.csv" --load "$T/m.ckpt" --iw 200 --seed 3 --threads 1 >"$T/out" 2>"$T/err"
check "eval runs" [ $? -eq 0 ]
pred=$(awk -F, -v m="$qm" -v s="$qs" 'NR > 1 { v = 1 + s * s; t += -0.5 * log(6.283185307 * v) - ($1 - m) ^ 2 / (2 * v); n++ }
    END { printf "%.6f", t / n }' "$T/xt.csv")
elbo=$(awk -F, -v m="$qm" -v s="$qs" 'NR > 1 { t += -0.5 * log(6.283185307) - (($1 - m) ^ 2 + s * s) / 2; n++ }
    END { g = -0.5 * log(6.283185307 * 4) - (m * m + s * s) / 8 + 0.5 * log(6.283185307 * 2.718281828 * s * s);
          printf "%.6f", (t + g) / n }' "$T/xt.csv")
got_p=$(grep '^  log p(x) (IS)' "$T/out" | sed 's/.*)  *//; s/ .*//')
got_se=$(grep '^  log p(x) (IS)' "$T/out" | sed 's/.*+- *//; s/ .*//')
got_e=$(awk '$1 == "ELBO" { print $2 }' "$T/out")
check "eval: posterior predictive $got_p = exact $pred (+- 4 SE + 1e-3)" \
    holds "($got_p - $pred) < 4 * $got_se + 1e-3 && ($pred - $got_p) < 4 * $got_se + 1e-3"
# the ELBO's Monte Carlo error: sd of log N(x | mu, 1) over mu ~ q is ~ s |x - m|,
# averaged over 200 items x 200 draws: below 2e-3
check "eval: ELBO $got_e = exact $elbo (within 5e-3)" holds "($got_e - $elbo) < 5e-3 && ($elbo - $got_e) < 5e-3"
check "eval names the posterior predictive" grep -q "posterior predictive" "$T/out"

# --- N/B: at fixed parameters (lr 1e-30) the mean training objective of
# an epoch is unbiased for the exact ELBO / N, whatever the batch; the
# initial q(mu) is N(0, exp(-1))
init=$(awk -F, 'NR > 1 { t += -0.5 * log(6.283185307) - ($1 ^ 2 + exp(-2)) / 2; n++ }
    END { s = exp(-1); g = -0.5 * log(6.283185307 * 4) - s * s / 8 + 0.5 * log(6.283185307 * 2.718281828 * s * s);
          printf "%.6f", (t + g) / n }' "$T/x.csv")
for B in 10 200; do
    "$M" train --data "$T/x.csv" --epochs 400 --batch $B --lr 1e-30 --seed 2 --threads 1 >"$T/out" 2>"$T/err"
    r=$(awk '/train elbo/ { v = $NF; s += v; q += v * v; n++ } END { m = s / n; printf "%.6f %.6f", m, sqrt((q / n - m * m) / n) }' "$T/out")
    mb=${r% *}; se=${r#* }
    check "batch $B: mean objective $mb = exact ELBO/N $init (+- 4 SE, SE $se)" \
        holds "($mb - $init) < 4 * $se + 1e-6 && ($init - $mb) < 4 * $se + 1e-6"
done

# --- resume: 2 + 2 epochs from a checkpoint equal 4 in one run, bit for
# bit (the draw of mu comes from the checkpointed noise stream)
"$M" train --data "$T/x.csv" --epochs 4 --batch 10 --lr 0.01 --seed 1 --threads 1 --save "$T/r4.ckpt" >/dev/null 2>&1
"$M" train --data "$T/x.csv" --epochs 2 --batch 10 --lr 0.01 --seed 1 --threads 1 --save "$T/r2.ckpt" >/dev/null 2>&1
"$M" train --data "$T/x.csv" --epochs 4 --load "$T/r2.ckpt" --threads 1 --save "$T/r22.ckpt" >/dev/null 2>&1
"$M" params --load "$T/r4.ckpt" > "$T/r4.csv"; "$M" params --load "$T/r22.ckpt" > "$T/r22.csv"
check "resume with a global latent is bit-exact" sh -c "[ -s '$T/r4.csv' ] && cmp -s '$T/r4.csv' '$T/r22.csv'"

# --- the same model with a written guide in `guide local`: its params
# are global (one q(mu)), and it reaches the same posterior
cat > "$T/mean_g.vlm" <<'EOF'
global latent mu ~ Normal(0, 2);
observed x ~ Normal(mu, 1);
guide local {
  param m;
  param ls = -1;
  mu ~ Normal(m, exp(ls));
}
EOF
G=$T/mean_g
"$VLMC" "$T/mean_g.vlm" -o "$G" 2>"$T/err"
check "a written guide for a global latent in guide local compiles" [ $? -eq 0 ]
"$G" info > "$T/info" 2>&1
check "its params are global, not per data point" sh -c "! grep -q 'per data point' '$T/info' && grep -q 'one q(mu) for the data set' '$T/info'"
"$G" train --data "$T/x.csv" --epochs 10000 --batch 10 --lr 3e-4 --schedule cosine --seed 1 --threads 1 \
    --save "$T/g.ckpt" >"$T/out" 2>"$T/err"
"$G" params --load "$T/g.ckpt" > "$T/p.csv"
qm=$(param "$T/p.csv" m 0); qs=$(awk "BEGIN { print exp($(param "$T/p.csv" ls 0)) }")
check "written guide: q(mu) mean $qm, sd $qs within 1% of $em, $es" \
    holds "($qm - $em) / $em < 0.01 && ($em - $qm) / $em < 0.01 && ($qs - $es) / $es < 0.01 && ($es - $qs) / $es < 0.01"

# --- Bayesian linear regression: y = u . beta + N(0, 0.5^2), beta ~ N(0, I).
# The posterior is Gaussian with precision L = I + U'U / 0.25 and mean
# L^-1 U'y / 0.25; the mean-field Normal q that maximises the ELBO has the
# exact mean and sd 1 / sqrt(L_ii).
normal 11 300 3 > "$T/u.txt"
normal 12 300 1 > "$T/e.txt"
paste -d, "$T/u.txt" "$T/e.txt" | awk -F, 'BEGIN { print "u0,u1,u2,y" }
    { printf "%s,%s,%s,%.6f\n", $1, $2, $3, $1 - 2 * $2 + 0.5 * $3 + 0.5 * $4 }' > "$T/reg.csv"
awk -F, 'NR > 1 { for (i = 1; i <= 3; i++) { b[i] += $i * $4 * 4; for (j = 1; j <= 3; j++) L[i, j] += $i * $j * 4 } }
    END { for (i = 1; i <= 3; i++) L[i, i] += 1;
          for (i = 1; i <= 3; i++) d[i] = L[i, i];
          # Gaussian elimination (L is positive definite)
          for (k = 1; k <= 3; k++) for (i = k + 1; i <= 3; i++) { f = L[i, k] / L[k, k];
              for (j = k; j <= 3; j++) L[i, j] -= f * L[k, j]; b[i] -= f * b[k] }
          for (i = 3; i >= 1; i--) { s = b[i]; for (j = i + 1; j <= 3; j++) s -= L[i, j] * x[j]; x[i] = s / L[i, i] }
          for (i = 1; i <= 3; i++) printf "%.9g %.9g\n", x[i], 1 / sqrt(d[i]) }' "$T/reg.csv" > "$T/reg_exact"
L=$T/linreg
"$VLMC" tests/codegen/global_linreg.vlm -o "$L" 2>"$T/err"
check "Bayesian linear regression (global beta, input u) compiles" [ $? -eq 0 ]
"$L" train --data "$T/reg.csv" --epochs 20000 --batch 60 --lr 1e-3 --schedule cosine --seed 1 --threads 1 \
    --save "$T/l.ckpt" >"$T/out" 2>"$T/err"
check "it trains" [ $? -eq 0 ]
"$L" params --load "$T/l.ckpt" > "$T/p.csv"
for i in 0 1 2; do
    line=$(sed -n "$((i + 1))p" "$T/reg_exact"); xm=${line% *}; xs=${line#* }
    qm=$(param "$T/p.csv" auto.beta.loc $i); qs=$(awk "BEGIN { print exp($(param "$T/p.csv" auto.beta.log_scale $i)) }")
    # the means: within 1% or 1e-3 (a coefficient near 0); the sds within 1%
    check "beta[$i]: q mean $qm, sd $qs against the closed form $xm, $xs" \
        eval "near '$qm' '$xm' 0.01 1e-3 && near '$qs' '$xs' 0.01 0"
done

# --- a positive global latent gets the automatic LogNormal guide: with a
# Gamma(a, b) posterior (x_i ~ Poisson(rate), rate ~ Gamma(2, 1): a = 2 +
# sum x, b = 1 + N), the LogNormal(m, s) that maximises the ELBO has
# E_q[rate] = exp(m + s^2 / 2) = a / b and s^2 = 1 / a exactly
awk 'BEGIN { srand(9); print "x"; for (i = 0; i < 200; i++) { L = exp(-3); k = 0; p = 1;
    do { k++; p *= rand() } while (p > L); print k - 1 } }' > "$T/counts.csv"
ab=$(awk -F, 'NR > 1 { s += $1; n++ } END { printf "%.9g %.9g", (2 + s) / (1 + n), 1 / sqrt(2 + s) }' "$T/counts.csv")
am=${ab% *}; as=${ab#* }
Q=$T/positive
"$VLMC" tests/codegen/global_positive.vlm -o "$Q" 2>"$T/err"
check "a positive global latent (automatic LogNormal guide) compiles" [ $? -eq 0 ]
"$Q" train --data "$T/counts.csv" --epochs 10000 --batch 10 --lr 3e-4 --schedule cosine --seed 1 --threads 1 \
    --save "$T/q.ckpt" >"$T/out" 2>"$T/err"
"$Q" params --load "$T/q.ckpt" > "$T/p.csv"
lm=$(param "$T/p.csv" auto.rate.loc 0); ls=$(param "$T/p.csv" auto.rate.log_scale 0)
qm=$(awk "BEGIN { s = exp($ls); print exp($lm + s * s / 2) }"); qs=$(awk "BEGIN { print exp($ls) }")
check "LogNormal q(rate): mean $qm within 1% of a/b = $am, s $qs within 1% of 1/sqrt(a) = $as" \
    eval "near '$qm' '$am' 0.01 0 && near '$qs' '$as' 0.01 0"

# --- a prior on a param (MAP): mu's mode is sum(x) / (N + 1/4), exactly
# the posterior mean above; no latent, so the objective is deterministic
cat > "$T/map.vlm" <<'EOF'
param mu ~ Normal(0, 2);
observed x ~ Normal(mu, 1);
EOF
P=$T/map
"$VLMC" "$T/map.vlm" -o "$P" 2>"$T/err"
check "a param with a prior compiles" [ $? -eq 0 ]
"$P" train --data "$T/x.csv" --epochs 300 --batch 10 --lr 0.01 --schedule cosine --optimizer adam --seed 1 --threads 1 \
    --save "$T/p.ckpt" >"$T/out" 2>"$T/err"
"$P" params --load "$T/p.ckpt" > "$T/p.csv"
pm=$(param "$T/p.csv" mu 0)
check "MAP mu $pm = sum(x) / (N + 1/4) = $em (within 1e-3)" holds "($pm - $em) < 1e-3 && ($em - $pm) < 1e-3"
# and the objective counts the prior once per data set: at mu = 0 (lr tiny,
# init 0 is not the default: the default draws normal(0, 0.01))
"$P" train --data "$T/x.csv" --epochs 1 --batch 200 --lr 1e-30 --seed 1 --threads 1 >"$T/out" 2>"$T/err"
"$P" params --seed 1 > "$T/p0.csv"
p0=$(param "$T/p0.csv" mu 0)
want=$(awk -F, -v m="$p0" 'NR > 1 { t += -0.5 * log(6.283185307) - ($1 - m) ^ 2 / 2; n++ }
    END { printf "%.6f", (t - 0.5 * log(6.283185307 * 4) - m * m / 8) / n }' "$T/x.csv")
got=$(awk '/^epoch .* train/ { print $NF }' "$T/out" | tail -1)
check "the objective with the prior: $got = (sum log p(x_i | mu) + log p(mu)) / N = $want" \
    holds "($got - $want) < 1e-4 && ($want - $got) < 1e-4"

suite_end
