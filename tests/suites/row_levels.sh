#!/bin/sh
# row_levels.sh — values computed at their row level (compiler/vlmc.h
# VlmcLevel): a net that does not read an enumerated value runs once per
# (item, sample), and a density that does not depend on it is counted once
# per (item, sample), not once per enumerated value. The checks that would
# catch double counting: adding an enumerated latent that nothing reads
# (c ~ Categorical over 3 values, uniform) must leave every number the
# same — the exact log-likelihood of a model whose densities are all at the
# item level, the ELBO and IWAE of a VAE whose decoder and log p(x | z) are
# at the sample level, and the parameters after SGD steps (SGD, unlike
# Adam, is not blind to a gradient scaled by a constant). Terms counted E
# times would multiply them by 3, a constant added inside the log-sum-exp
# once per row would add log 3, a coefficient not summed over the rows
# would scale the gradient by 1/3. The gradients through REPEAT nodes are
# checked against finite differences by codegen.sh (tests/codegen/
# vade_tiny.vlm, examples/vade.vlm).
# Last line: COUNTS passed=N failed=M.
. "$(dirname "$0")/../suite_lib.sh"
VLMC=$BINDIR/vlmc
suite_dir
# the value after `label` on the first line of a file that starts with it
value() { awk -v k="$2" 'index($0, k) == 1 { $0 = substr($0, length(k) + 1); print $1; exit }' "$1"; }

# --- the plan shows the levels: VaDE's decoder and encoder at B*S rows
"$VLMC" --plan examples/vade.vlm >"$T/vade_plan" 2>"$T/err"
check "vade plan: full level is 1280 rows for a batch of 128" \
    grep -q 'row levels (batch 128, 1 sample): global 1, item 128, sample 128, full 1280 rows' "$T/vade_plan"
check "vade plan: the decoder's layers at the sample level, 128 rows" \
    sh -c "[ \$(grep -c 'layer decoder.W[01] .* sample *128 rows' '$T/vade_plan') -eq 2 ]"
check "vade plan: the encoder at the item level, 128 rows" \
    grep -q 'layer enc.W0 (784 -> 400) *item *128 rows' "$T/vade_plan"
check "vade plan: log p(x) at the sample level, log p(z) at the full level" \
    sh -c "grep -q 'log p(x) *sample *128 rows' '$T/vade_plan' && grep -q 'log p(z) *full *1280 rows' '$T/vade_plan'"
# the plan's memory line: on top of the activations, 16 bytes per
# parameter (the value, its gradient and Adam's two moments, 4 floats)
"$VLMC" --plan examples/vae.vlm >"$T/vae_plan" 2>"$T/err"
check "vae plan: memory with parameters = activations + 16 B x (theta + phi)" \
    awk '/parameters: [0-9]+ model \(theta\), [0-9]+ guide \(phi\)/ { n = $2 + $5 }
         /memory: batch/ { for (i = 1; i <= NF; i++) { if ($(i + 1) == "MiB" && !a) a = $i; else if ($(i + 1) == "MiB") w = $i } }
         END { d = w - a - 16 * n / 1048576; if (d < 0) d = -d; exit !(n > 600000 && a > 0 && d < 0.011) }' "$T/vae_plan"
"$VLMC" --plan examples/m2.vlm >"$T/m2_plan" 2>"$T/err"
check "m2 plan: the classifier cls(x) at the item level" \
    sh -c "[ \$(grep -c 'layer cls.W[01] .* item *128 rows' '$T/m2_plan') -eq 2 ]"

# --- item-level densities next to an enumerated latent: exact log p(x)
cat > "$T/item.vlm" <<'EOF'
param mu[2] = uniform(-1, 1);
param ls[2] = -0.5;
observed x[2] ~ Normal(mu, exp(ls));
EOF
{ cat "$T/item.vlm"; printf 'param cl[3] = 0;\nlatent c ~ Categorical(logits = cl);\n'; } > "$T/item_c.vlm"
"$VLMC" "$T/item.vlm" -o "$T/item" 2>"$T/err" && "$VLMC" "$T/item_c.vlm" -o "$T/item_c" 2>"$T/err"
check "item models compile" [ $? -eq 0 ]
"$T/item" sample --seed 3 -n 200 --out "$T/item.csv" >"$T/out" 2>"$T/err"
"$T/item" train --data "$T/item.csv" --epochs 2 --batch 20 --optimizer sgd --lr 0.05 --seed 4 \
    --save "$T/item.ckpt" >"$T/out" 2>"$T/err"
"$T/item_c" train --data "$T/item.csv" --epochs 2 --batch 20 --optimizer sgd --lr 0.05 --seed 4 \
    --save "$T/item_c.ckpt" >"$T/out" 2>"$T/err"
check "item models train" [ $? -eq 0 ]
"$T/item" eval --data "$T/item.csv" --load "$T/item.ckpt" >"$T/e1" 2>"$T/err"
"$T/item_c" eval --data "$T/item.csv" --load "$T/item_c.ckpt" >"$T/e2" 2>"$T/err"
a=$(value "$T/e1" "  log p(x) "); b=$(value "$T/e2" "  log p(x) ")
check "an unread enumerated latent leaves the exact log p(x) of item-level terms ($a vs $b)" \
    sh -c "[ -n '$a' ] && [ -n '$b' ] && awk 'BEGIN { exit !(($a) - ($b) < 1e-5 && ($b) - ($a) < 1e-5) }'"
"$T/item" params --load "$T/item.ckpt" >"$T/p1" 2>"$T/err"
"$T/item_c" params --load "$T/item_c.ckpt" | grep -v '^cl,' >"$T/p2" 2>"$T/err"
check "... and the SGD steps on them (mu, ls after 20 steps)" \
    sh -c "paste -d, '$T/p1' '$T/p2' | awk -F, '{ n = NF / 2; for (i = 3; i <= n; i++) if ((\$i - \$(i + n))^2 > 1e-10) bad = 1 } END { exit bad }'"

# --- sample-level terms next to an enumerated latent: a VAE
{ sed 's/^latent z/param cl[3] = 0;\nlatent c ~ Categorical(logits = cl);\nlatent z/' tests/codegen/small_vae.vlm; } \
    > "$T/vae_c.vlm"
"$VLMC" tests/codegen/small_vae.vlm -o "$T/vae" 2>"$T/err" && "$VLMC" "$T/vae_c.vlm" -o "$T/vae_c" 2>"$T/err"
check "VAE models compile" [ $? -eq 0 ]
"$VLMC" --plan "$T/vae_c.vlm" >"$T/vae_c_plan" 2>"$T/err"
check "the VAE's decoder stays at the sample level next to c" \
    sh -c "grep -q 'layer dec.W1 (32 -> 16) *sample' '$T/vae_c_plan' && grep -q 'log p(c) *full' '$T/vae_c_plan'"
"$T/vae" sample --seed 11 -n 300 --out "$T/v.csv" >"$T/out" 2>"$T/err"
for m in vae vae_c; do
    "$T/$m" train --data "$T/v.csv" --epochs 2 --batch 30 --samples 2 --optimizer sgd --lr 0.01 --seed 2 \
        --save "$T/$m.ckpt" >"$T/out" 2>"$T/err" || bad "$m trains"
    "$T/$m" eval --data "$T/v.csv" --load "$T/$m.ckpt" --iw 8 --seed 5 >"$T/$m.eval" 2>"$T/err"
done
for k in "  ELBO" "  IWAE_8 "; do
    a=$(value "$T/vae.eval" "$k"); b=$(value "$T/vae_c.eval" "$k")
    check "an unread enumerated latent leaves the VAE's $k after SGD ($a vs $b)" \
        sh -c "[ -n '$a' ] && [ -n '$b' ] && awk 'BEGIN { exit !(($a) - ($b) < 1e-3 && ($b) - ($a) < 1e-3) }'"
done
"$T/vae" params --load "$T/vae.ckpt" >"$T/p1" 2>"$T/err"
"$T/vae_c" params --load "$T/vae_c.ckpt" | grep -v '^cl,' >"$T/p2" 2>"$T/err"
check "... and its parameters after 20 SGD steps of 2 samples" \
    sh -c "paste -d, '$T/p1' '$T/p2' | awk -F, '{ n = NF / 2; for (i = 3; i <= n; i++) if ((\$i - \$(i + n))^2 > 1e-8) bad = 1 } END { exit bad }'"

suite_end
