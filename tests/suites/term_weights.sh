#!/bin/sh
# term_weights.sh — train --kl-weight B and --kl-warmup N (beta-VAE, KL
# warm-up) on tests/codegen/small_vae.vlm: weight 1 is the ELBO bit for
# bit, another weight changes training and says the objective is not a
# bound, eval stays the unweighted bound, the warm-up resumes exactly, and
# a model without guided latents refuses the options. The weighted
# gradient itself is checked against finite differences by `gradcheck`
# (its estimator check at KL weight 0.3). Last line: COUNTS passed=N failed=M.
. "$(dirname "$0")/../suite_lib.sh"
suite_dir
suite_show() { head -5; }

M=$T/vae
require "compile small_vae.vlm" "$BINDIR/vlmc" tests/codegen/small_vae.vlm -o "$M" 2>"$T/err"
"$M" sample --seed 4 -n 600 --out "$T/data.csv" >/dev/null 2>"$T/err"
tr() { "$M" train --data "$T/data.csv" --batch 50 --lr 0.01 --seed 2 --threads 1 "$@" >"$T/out" 2>"$T/err"; }

tr --epochs 2 --save "$T/plain.ckpt";                 check "train (default)" [ $? -eq 0 ]
tr --epochs 2 --kl-weight 1 --save "$T/one.ckpt";     check "train --kl-weight 1" [ $? -eq 0 ]
check "--kl-weight 1 is the ELBO bit for bit" cmp -s "$T/plain.ckpt" "$T/one.ckpt"
tr --epochs 2 --kl-weight 0.2 --save "$T/beta.ckpt" --log "$T/beta.csv"
check "train --kl-weight 0.2" [ $? -eq 0 ]
check "the log says the objective is not a bound" grep -q "not a bound" "$T/err"
check "... and the epoch line names it" grep -q "KL-weighted objective" "$T/out"
check "--kl-weight 0.2 trains differently" sh -c "! cmp -s '$T/plain.ckpt' '$T/beta.ckpt'"
"$M" eval --data "$T/data.csv" --load "$T/beta.ckpt" --iw 50 >"$T/eval" 2>"$T/err"
check "eval of the weighted run reports the ELBO and IWAE" sh -c "grep -q '^  ELBO' '$T/eval' && grep -q IWAE_50 '$T/eval'"
elbo=$(sed -n 's/^  ELBO *\(-*[0-9.]*\).*/\1/p' "$T/eval"); iwae=$(sed -n 's/^  IWAE_50 *\(-*[0-9.]*\).*/\1/p' "$T/eval")
check "unweighted: ELBO $elbo <= IWAE_50 $iwae" awk "BEGIN { exit !(\"$elbo\" != \"\" && $elbo <= $iwae + 1e-9) }"

# weight 0: the objective is E_q log p(x | z) >= the ELBO at the same weights
tr --epochs 1 --kl-weight 0 --save "$T/zero.ckpt"
obj0=$(sed -n 's/.*train KL-weighted objective (not a bound) \(-*[0-9.e+-]*\).*/\1/p' "$T/out")
check "--kl-weight 0 trains (objective $obj0)" [ -n "$obj0" ]

# at fixed parameters (lr 1e-30: Adam's steps vanish in float) and the
# same batches and noise, the weighted objective E log p(x | z) - B KL is
# linear in B: the weight-0 objective exceeds the ELBO by the KL (> 0)
# and B = 0.5 lies halfway
fixed_obj() {
    tr --epochs 1 --lr 1e-30 --kl-weight "$1"
    sed -n 's/.*train \(KL-weighted objective (not a bound)\|elbo\) \(-*[0-9.e+-]*\).*/\2/p' "$T/out" | tail -1
}
f0=$(fixed_obj 0); fh=$(fixed_obj 0.5); f1=$(fixed_obj 1)
check "fixed parameters: objective at B = 0 ($f0) > at B = 1 ($f1)" \
    holds "\"$f0\" != \"\" && \"$f1\" != \"\" && $f0 > $f1 + 1e-3"
check "... and B = 0.5 ($fh) halfway (within 1e-4 of $f0 - $f1)" \
    holds "\"$fh\" != \"\" && ($fh - ($f0 + $f1) / 2) < 1e-4 * ($f0 - $f1) + 1e-6 && (($f0 + $f1) / 2 - $fh) < 1e-4 * ($f0 - $f1) + 1e-6"

# warm-up: 2 epochs straight = 1 epoch, then resumed for the second
tr --epochs 2 --kl-warmup 3 --save "$T/w2.ckpt";        check "train --kl-warmup 3" [ $? -eq 0 ]
tr --epochs 1 --kl-warmup 3 --save "$T/w1.ckpt"
tr --epochs 2 --kl-warmup 3 --load "$T/w1.ckpt" --save "$T/w11.ckpt"
check "a resumed warm-up continues its ramp exactly" cmp -s "$T/w2.ckpt" "$T/w11.ckpt"
check "warm-up differs from no warm-up" sh -c "! cmp -s '$T/w2.ckpt' '$T/plain.ckpt'"

# a model whose latents are all summed out has no KL to weigh
"$BINDIR/vlmc" examples/mog.vlm -o "$T/mog" 2>"$T/err"
"$T/mog" sample --seed 1 -n 50 --set D=2 --out "$T/mog.csv" >/dev/null 2>&1
"$T/mog" train --data "$T/mog.csv" --set D=2 --optimizer adam --epochs 1 --kl-weight 0.5 >"$T/out" 2>"$T/err"; rc=$?
check "--kl-weight without guided latents: error" sh -c "[ $rc -ne 0 ] && grep -q 'has none' '$T/err'"

suite_end
