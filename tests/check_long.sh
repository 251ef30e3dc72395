#!/bin/sh
# check_long.sh — `make check-long`: every example of examples/ at full size
# on Fashion-MNIST (or on data the model samples), with the thresholds of
# docs/tutorial.md. Prints one "met" / "NOT met" line per figure and exits
# non-zero if any threshold is missed. Not part of `make test` (about 15
# minutes on 2 cores). Runs are sequential; outputs under $OUT (out/long).
#
#   sh tests/check_long.sh [EXAMPLE...]     # default: all, in this order:
#   vae vae_local vae_missing sbn vae_lecture mog m2 cvae vade hmm bayes_pca vae_bf16
set -u
OUT=${OUT:-out/long}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
THREADS=${THREADS:-2}
VLMC=${VLMC:-bin/vlmc}
TRAIN=$DATA/train-images-idx3-ubyte.gz
TEST=$DATA/t10k-images-idx3-ubyte.gz
TEST_LABELS=$DATA/t10k-labels-idx1-ubyte.gz
TRAIN_LABELS=$DATA/train-labels-idx1-ubyte.gz
T="--threads $THREADS"
mkdir -p "$OUT"
met=0; missed=0; errors=0

# figure NAME VALUE ge|le THRESHOLD: one line, counted
figure() {
    if [ -z "$2" ]; then
        echo "  $1: no value (the run failed)  NOT met"; missed=$((missed + 1)); return
    fi
    r=$(awk -v v="$2" -v t="$4" -v op="$3" 'BEGIN {
        ok = (op == "ge") ? (v >= t) : (v <= t); print ok ? "met" : "NOT met" }')
    sym=">="; [ "$3" = le ] && sym="<="
    printf '  %-52s %12s   (threshold %s %s)  %s\n' "$1" "$2" "$sym" "$4" "$r"
    if [ "$r" = met ]; then met=$((met + 1)); else missed=$((missed + 1)); fi
}
# report NAME VALUE: a measured figure without a threshold
report() { printf '  %-52s %12s\n' "$1" "$2"; }
# run LOG CMD...: run, append stdout+stderr to LOG (progress lines dropped)
run() {
    log=$1; shift
    echo "\$ $*" >> "$log"
    "$@" > "$log.tmp" 2>&1; rc=$?
    tr '\r' '\n' < "$log.tmp" | grep -v ' ETA ' >> "$log"; rm -f "$log.tmp"
    if [ $rc -ne 0 ]; then echo "  command failed (exit $rc): $*"; errors=$((errors + 1)); fi
    return $rc
}
# field LOG LABEL: the number after LABEL in the last matching line of LOG
field() { grep -E "^ *$2 " "$1" | tail -1 | sed -E "s/^ *$2 +([-+0-9.eE]+).*/\1/"; }
calc() { awk "BEGIN { printf \"%.4f\", $1 }"; }
compile() { run "$OUT/build.log" "$VLMC" "examples/$1.vlm" -o "$OUT/$1"; }

if [ ! -f "$TRAIN" ]; then
    echo "check-long: Fashion-MNIST not found under $DATA (make deps)"; exit 1
fi

# ---------------------------------------------------------------- vae
ex_vae() {
    echo "== vae: deep VAE 784-400-20, batch 128, Adam 1e-3"
    L=$OUT/vae.log; : > "$L"; compile vae || return
    run "$L" "$OUT/vae" train --data "$TRAIN" --epochs 1 --batch 128 --lr 1e-3 $T --save "$OUT/vae1.ckpt" || return
    run "$L" "$OUT/vae" eval --data "$TEST" --load "$OUT/vae1.ckpt" --iw 1 --batch 256 $T || return
    figure "test ELBO after 1 epoch (nats/image)" "$(field "$L" ELBO)" ge -263.5
    run "$L" "$OUT/vae" train --data "$TRAIN" --load "$OUT/vae1.ckpt" --epochs 3 $T --save "$OUT/vae.ckpt" || return
    run "$L" "$OUT/vae" eval --data "$TEST" --load "$OUT/vae.ckpt" --iw 100 --batch 128 $T || return
    e=$(field "$L" ELBO); i=$(field "$L" IWAE_100)
    figure "test ELBO after 3 epochs (K=100 average)" "$e" ge -251
    report "IWAE-100 log p(x) estimate after 3 epochs" "$i +- $(grep 'log p(x) (IS)' "$L" | tail -1 | sed -E 's/.*\+- ([0-9.]+).*/\1/')"
    figure "ELBO <= IWAE-100 (IWAE - ELBO)" "$(calc "$i - ($e)")" ge 0
    run "$L" "$OUT/vae" sample --load "$OUT/vae.ckpt" -n 64 --mean --out "$OUT/vae_samples.png"
    run "$L" "$OUT/vae" impute --data "$TEST" --limit 10 --load "$OUT/vae.ckpt" --mask none --out "$OUT/vae_recon.csv" --png "$OUT/vae_recon.png" $T
}

# ---------------------------------------------------------------- vae_bf16
# --precision bf16 against fp32: 3 epochs from seeds 1-3 each, the mean
# test ELBO (one sample per image) within 0.5 nats (issue 15). Skipped,
# with oneDNN's reason, on a CPU without bf16 units.
ex_vae_bf16() {
    echo "== vae_bf16: the deep VAE trained with bf16 products vs fp32, 3 epochs, seeds 1-3"
    L=$OUT/vae_bf16.log; : > "$L"; : > "$OUT/vae_bf16.res"; compile vae || return
    if ! "$OUT/vae" info | grep -q 'bf16 training: available'; then
        echo "  skip: $("$OUT/vae" info | grep 'bf16 training' | sed 's/^ *//')"; return
    fi
    for p in fp32 bf16; do
        for s in 1 2 3; do
            run "$L" "$OUT/vae" train --data "$TRAIN" --epochs 3 --batch 128 --lr 1e-3 --seed $s \
                --precision $p $T --save "$OUT/vae_$p.$s.ckpt" || return
            run "$L" "$OUT/vae" eval --data "$TEST" --load "$OUT/vae_$p.$s.ckpt" --iw 1 --batch 1000 $T || return
            echo "$p $s $(field "$L" ELBO)" >> "$OUT/vae_bf16.res"
        done
    done
    f=$(awk '$1 == "fp32" { s += $3; n++ } END { printf "%.4f", s / n }' "$OUT/vae_bf16.res")
    b=$(awk '$1 == "bf16" { s += $3; n++ } END { printf "%.4f", s / n }' "$OUT/vae_bf16.res")
    report "fp32 test ELBO after 3 epochs, mean of seeds 1-3" "$f"
    report "bf16 test ELBO after 3 epochs, mean of seeds 1-3" "$b"
    d=$(calc "$b - ($f)"); ad=$(calc "$d < 0 ? -($d) : $d")
    figure "|bf16 - fp32| mean test ELBO (nats/image)" "$ad" le 0.5
}

# ---------------------------------------------------------------- vae_local
ex_vae_local() {
    echo "== vae_local: per-image Gaussians under vae.vlm's decoder (1,000 test images)"
    L=$OUT/vae_local.log; : > "$L"; compile vae_local || return
    [ -f "$OUT/vae.ckpt" ] || { echo "  needs vae.ckpt: run the vae example first"; errors=$((errors + 1)); return; }
    run "$L" "$OUT/vae" eval --data "$TEST" --limit 1000 --load "$OUT/vae.ckpt" --iw 100 $T || return
    a=$(field "$L" ELBO); ai=$(field "$L" IWAE_100)
    run "$L" "$OUT/vae_local" eval --data "$TEST" --limit 1000 --init-from "$OUT/vae.ckpt" --refine 1000 --refine-lr 1e-2 --iw 100 $T || return
    l=$(field "$L" ELBO); li=$(field "$L" IWAE_100)
    report "amortised ELBO (encoder q(z|x))" "$a"
    report "local ELBO (1000 Adam steps per image)" "$l"
    report "IWAE-100: amortised / local" "$ai / $li"
    figure "amortisation gap: local - amortised ELBO" "$(calc "$l - ($a)")" ge 0
}

# ---------------------------------------------------------------- vae_missing
ex_vae_missing() {
    # Every test image loses its top half; in training, every other image
    # does (--mask-frac 0.5): a model never shown a top half cannot learn
    # one (with --mask-frac 1 the imputation MSE is 0.188, docs/tutorial.md).
    echo "== vae_missing: top halves missing (every other training image, every test image)"
    L=$OUT/vae_missing.log; : > "$L"; compile vae_missing || return
    run "$L" "$OUT/vae_missing" train --data "$TRAIN" --mask top-half --mask-frac 0.5 --epochs 3 --batch 128 --lr 1e-3 $T --save "$OUT/vae_missing.ckpt" || return
    run "$L" "$OUT/vae_missing" eval --data "$TEST" --mask top-half --load "$OUT/vae_missing.ckpt" --iw 100 $T || return
    e=$(field "$L" ELBO); i=$(field "$L" IWAE_100)
    report "ELBO of the observed bottom halves (nats/image)" "$e"
    report "IWAE-100 log p(x_obs) (nats/image)" "$i"
    figure "ELBO <= IWAE-100 (IWAE - ELBO)" "$(calc "$i - ($e)")" ge 0
    run "$L" "$OUT/vae_missing" impute --data "$TEST" --limit 2000 --load "$OUT/vae_missing.ckpt" --mask top-half --samples 100 --out "$OUT/vae_missing_filled.npy" --png "$OUT/vae_missing_rows.png" $T || return
    line=$(grep 'hidden entries' "$L" | tail -1)
    mse=$(echo "$line" | sed -E 's/.*  MSE ([0-9.]+) .*/\1/')
    base=$(echo "$line" | sed -E 's/.*data: MSE ([0-9.]+).*/\1/')
    report "MSE of mean-image imputation (hidden pixels)" "$base"
    figure "MSE of VAE imputation (2,000 test images)" "$mse" le "$base"
}

# ---------------------------------------------------------------- sbn
ex_sbn() {
    echo "== sbn: 30 binary latents, score function + baselines, binarized data"
    L=$OUT/sbn.log; : > "$L"; compile sbn || return
    run "$L" "$OUT/sbn" train --data "$TRAIN" --binarize --epochs 10 --batch 128 --lr 1e-3 $T --save "$OUT/sbn.ckpt" || return
    first=$(grep -E '^epoch 1 ' "$L" | sed -E 's/.*elbo ([-0-9.]+).*/\1/')
    last=$(grep -E '^epoch 10 ' "$L" | sed -E 's/.*elbo ([-0-9.]+).*/\1/')
    report "train ELBO after epoch 1 / epoch 10" "$first / $last"
    figure "train ELBO improves over 10 epochs" "$(calc "$last - ($first)")" ge 0
    run "$L" "$OUT/sbn" eval --data "$TEST" --binarize --load "$OUT/sbn.ckpt" --iw 100 $T || return
    e=$(field "$L" ELBO); i=$(field "$L" IWAE_100)
    report "test ELBO (nats/image)" "$e"
    report "test IWAE-100 (nats/image)" "$i"
    figure "ELBO <= IWAE-100 (IWAE - ELBO)" "$(calc "$i - ($e)")" ge 0
    run "$L" "$OUT/sbn" gradvar --data "$TEST" --binarize --load "$OUT/sbn.ckpt" --batch 128 -n 200 --samples 4 $T || return
    report "grad variance, no baseline" "$(grep 'no baseline' "$L" | tail -1 | awk '{print $7}')"
    report "grad variance, moving-average baseline" "$(grep 'moving-average baseline' "$L" | tail -1 | awk '{print $4}')"
    figure "variance ratio none / moving average" "$(grep 'ratio none / moving' "$L" | tail -1 | awk '{print $6}')" ge 2
    report "variance ratio none / leave-one-out (S=4)" "$(grep 'ratio none / leave' "$L" | tail -1 | awk '{print $5}')"
    run "$L" "$OUT/sbn" sample --load "$OUT/sbn.ckpt" -n 64 --mean --out "$OUT/sbn_samples.png"
}

# ---------------------------------------------------------------- vae_lecture
ex_vae_lecture() {
    echo "== vae_lecture: the 2-D VAE, data sampled from known theta (seed 7)"
    L=$OUT/vae_lecture.log; : > "$L"; compile vae_lecture || return
    M=$OUT/vae_lecture
    run "$L" "$M" sample -n 20000 --seed 7 --out "$OUT/lec_all.csv" || return
    { head -1 "$OUT/lec_all.csv"; sed -n 2,10001p "$OUT/lec_all.csv"; } > "$OUT/lec_train.csv"
    { head -1 "$OUT/lec_all.csv"; sed -n 10002,20001p "$OUT/lec_all.csv"; } > "$OUT/lec_test.csv"
    # the true theta as a checkpoint: zero epochs from the same seed
    run "$L" "$M" train --data "$OUT/lec_train.csv" --epochs 0 --seed 7 --save "$OUT/lec_true.ckpt" || return
    run "$L" "$M" train --data "$OUT/lec_train.csv" --epochs 100 --batch 100 --lr 1e-2 --seed 1 --save "$OUT/lec_fit.ckpt" || return
    run "$L" "$M" eval --data "$OUT/lec_test.csv" --load "$OUT/lec_true.ckpt" --iw 1000 --seed 3 || return
    t=$(field "$L" IWAE_1000)
    run "$L" "$M" eval --data "$OUT/lec_test.csv" --load "$OUT/lec_fit.ckpt" --iw 1000 --seed 3 || return
    f=$(field "$L" IWAE_1000)
    report "held-out log p(x), true theta (IS, K=1000)" "$t"
    report "held-out log p(x), fitted theta (IS, K=1000)" "$f"
    figure "|fitted - true| (nats/item)" "$(calc "($f - ($t)) < 0 ? $t - ($f) : $f - ($t)")" le 0.05
    run "$L" "$M" sample --load "$OUT/lec_fit.ckpt" -n 10000 --seed 3 --out "$OUT/lec_fit_samples.csv"
    run "$L" "$M" sample --load "$OUT/lec_true.ckpt" -n 10000 --seed 3 --mean --out "$OUT/lec_true_means.csv"
    run "$L" "$M" sample --load "$OUT/lec_fit.ckpt" -n 10000 --seed 3 --mean --out "$OUT/lec_fit_means.csv"
    if command -v python3 >/dev/null; then
        python3 examples/plot2d.py "$OUT/vae_lecture_density.png" "$OUT/lec_test.csv" "$OUT/lec_fit_samples.csv" >> "$L"
        python3 examples/plot2d.py "$OUT/vae_lecture_means.png" "$OUT/lec_true_means.csv" "$OUT/lec_fit_means.csv" >> "$L"
    fi
}

# ---------------------------------------------------------------- mog
ex_mog() {
    echo "== mog: K=10 diagonal Gaussians on Fashion-MNIST (EM, as vlmc --plan says)"
    L=$OUT/mog.log; : > "$L"; compile mog || return
    "$VLMC" --plan examples/mog.vlm >> "$L"
    run "$L" "$OUT/mog" train --data "$TRAIN" --epochs 100 $T --save "$OUT/mog.ckpt" || return
    run "$L" "$OUT/mog" eval --data "$TEST" --load "$OUT/mog.ckpt" $T || return
    ll=$(field "$L" 'log p\(x\)')
    figure "test log-likelihood (nats/image; sklearn 653.6)" "$ll" ge 652.6
    run "$L" "$OUT/mog" posterior --data "$TEST" --load "$OUT/mog.ckpt" --labels "$TEST_LABELS" --out "$OUT/mog_posterior.csv" $T || return
    report "cluster purity / NMI vs labels" "$(grep 'purity' "$L" | tail -1 | sed -E 's/.*purity ([0-9.]+)  NMI ([0-9.]+).*/\1 \/ \2/')"
    if command -v python3 >/dev/null; then
        "$OUT/mog" params --load "$OUT/mog.ckpt" | python3 examples/params_png.py mu 28x28 "$OUT/mog_means.png" >> "$L"
    fi
    # recovery: 6,000 points of a known 2-D mixture (means (0,0) (3,0)
    # (0,3), sd 0.5, equal weights), fitted with --set K=3 --set D=2
    awk 'BEGIN { srand(7); print "x[0],x[1]"; split("0 0 3 0 0 3", m, " ");
        for (i = 0; i < 6000; i++) { k = int(rand() * 3);
            for (d = 0; d < 2; d++) { g = sqrt(-2 * log(rand() + 1e-300)) * cos(6.283185307 * rand());
                v[d] = m[2 * k + d + 1] + 0.5 * g }
            printf "%.6f,%.6f\n", v[0], v[1] } }' > "$OUT/mix2.csv"
    run "$L" "$OUT/mog" train --data "$OUT/mix2.csv" --set K=3 --set D=2 --epochs 100 --save "$OUT/mix2.ckpt" || return
    "$OUT/mog" params --load "$OUT/mix2.ckpt" --set K=3 --set D=2 > "$OUT/mix2_params.csv"
    # the largest coordinate error after matching each true mean to its
    # nearest fitted mean
    err=$(awk -F, '$1 == "mu" { fx[n] = $3; fy[n] = $4; n++ }
        END { split("0 0 3 0 0 3", m, " "); worst = 0
            for (k = 0; k < 3; k++) { best = 1e9
                for (j = 0; j < n; j++) { dx = fx[j] - m[2*k+1]; dy = fy[j] - m[2*k+2]
                    e = (dx < 0 ? -dx : dx); if ((dy < 0 ? -dy : dy) > e) e = (dy < 0 ? -dy : dy)
                    if (e < best) best = e }
                if (best > worst) worst = best }
            printf "%.4f", worst }' "$OUT/mix2_params.csv")
    figure "2-D mixture: max |fitted - true| mean coordinate" "$err" le 0.1
}

# ---------------------------------------------------------------- m2
# Semi-supervised M2 against the same classifier trained on the labelled
# images alone (--labelled-only), both from the same 1,000 kept labels.
M2_EPOCHS=${M2_EPOCHS:-30}; M2_AUX=${M2_AUX:-300}; BASE_EPOCHS=${BASE_EPOCHS:-50}
ex_m2() {
    echo "== m2: semi-supervised, 100 labels per class kept (1,000 of 60,000), against the labelled-only classifier"
    L=$OUT/m2.log; : > "$L"; compile m2 || return
    TR="--data x=$TRAIN --data y=$TRAIN_LABELS"
    TE="--data x=$TEST --data y=$TEST_LABELS"
    run "$L" "$OUT/m2" train $TR --keep-labels y=100 --aux-weight "$M2_AUX" --epochs "$M2_EPOCHS" --batch 64 $T --save "$OUT/m2.ckpt" || return
    run "$L" "$OUT/m2" posterior $TE --hide y --samples 1 --load "$OUT/m2.ckpt" --out "$OUT/m2_posterior.csv" --labels "$TEST_LABELS" $T || return
    m2=$(grep "guide's q(y | x)" "$L" | tail -1 | sed -E 's/.*accuracy ([0-9.]+).*/\1/')
    run "$L" "$OUT/m2" train $TR --keep-labels y=100 --labelled-only --aux-weight "$M2_AUX" --epochs "$BASE_EPOCHS" --batch 64 $T --save "$OUT/m2_base.ckpt" || return
    run "$L" "$OUT/m2" posterior $TE --hide y --samples 1 --load "$OUT/m2_base.ckpt" --out "$OUT/m2_base_posterior.csv" --labels "$TEST_LABELS" $T || return
    base=$(grep "guide's q(y | x)" "$L" | tail -1 | sed -E 's/.*accuracy ([0-9.]+).*/\1/')
    report "M2: test accuracy of q(y | x) (10,000 images)" "$m2"
    report "labelled-only classifier: test accuracy" "$base"
    figure "M2 - labelled-only accuracy" "$(calc "$m2 - $base")" ge 0
}

# ---------------------------------------------------------------- cvae
# The class-conditional VAE; its samples are classified by m2's
# labelled-only classifier (run m2 first) to measure whether each
# conditioning class shows.
ex_cvae() {
    echo "== cvae: class-conditional VAE 784+10-400-20, batch 128, 20 epochs"
    L=$OUT/cvae.log; : > "$L"; compile cvae || return
    run "$L" "$OUT/cvae" train --data x="$TRAIN" --data y="$TRAIN_LABELS" --epochs 20 --batch 128 $T --save "$OUT/cvae.ckpt" || return
    run "$L" "$OUT/cvae" eval --data x="$TEST" --data y="$TEST_LABELS" --load "$OUT/cvae.ckpt" --iw 100 $T || return
    e=$(field "$L" ELBO); i=$(field "$L" IWAE_100)
    figure "test ELBO after 20 epochs (nats/image)" "$e" ge -241
    report "test IWAE-100 (nats/image)" "$i"
    # one row per class: 10 draws of E[x | z, y] for y = 0..9
    awk 'BEGIN { print "y"; for (k = 0; k < 10; k++) for (j = 0; j < 10; j++) print k }' > "$OUT/cvae_grid_labels.csv"
    run "$L" "$OUT/cvae" sample --load "$OUT/cvae.ckpt" --data y="$OUT/cvae_grid_labels.csv" --mean --out "$OUT/cvae_grid.png" || return
    awk 'BEGIN { print "y"; for (k = 0; k < 10; k++) for (j = 0; j < 100; j++) print k }' > "$OUT/cvae_labels1000.csv"
    run "$L" "$OUT/cvae" sample --load "$OUT/cvae.ckpt" --data y="$OUT/cvae_labels1000.csv" --mean --out "$OUT/cvae_samples.csv" || return
    if [ -f "$OUT/m2_base.ckpt" ]; then
        run "$L" "$OUT/m2" posterior --data "$OUT/cvae_samples.csv" --hide y --samples 1 --load "$OUT/m2_base.ckpt" --out "$OUT/cvae_classified.csv" --labels "$OUT/cvae_labels1000.csv" $T || return
        a=$(grep "guide's q(y | x)" "$L" | tail -1 | sed -E 's/.*accuracy ([0-9.]+).*/\1/')
        figure "1,000 samples classified as their class (m2 baseline)" "$a" ge 0.6
    else
        echo "  class check of the samples skipped: needs m2's baseline classifier (run m2 first)"
    fi
}

# ---------------------------------------------------------------- hmm
# Sequences sampled from the parameters of --seed 8 (the example's
# initializers), fitted from --seed 2; test log-likelihoods under both,
# Viterbi accuracy against the true paths (up to relabelling), then the
# same on test sequences cut to random lengths (NaN padding).
ex_hmm() {
    echo "== hmm: K=3 states, T=50 steps, 5,000 training sequences"
    L=$OUT/hmm.log; : > "$L"; compile hmm || return
    H=$OUT/hmm
    run "$L" "$H" sample --seed 8 -n 6000 --out "$OUT/hmm_all.csv" --latents "$OUT/hmm_lat.csv" || return
    head -5001 "$OUT/hmm_all.csv" > "$OUT/hmm_train.csv"
    { head -1 "$OUT/hmm_all.csv"; tail -1000 "$OUT/hmm_all.csv"; } > "$OUT/hmm_test.csv"
    { head -1 "$OUT/hmm_lat.csv"; tail -1000 "$OUT/hmm_lat.csv"; } > "$OUT/hmm_test_lat.csv"
    run "$L" "$H" train --data "$OUT/hmm_train.csv" --epochs 0 --seed 8 --save "$OUT/hmm_true.ckpt" || return
    run "$L" "$H" train --data "$OUT/hmm_train.csv" --epochs 20 --lr 0.05 --schedule cosine --seed 2 $T --save "$OUT/hmm.ckpt" || return
    run "$L" "$H" eval --data "$OUT/hmm_test.csv" --load "$OUT/hmm_true.ckpt" $T || return
    lt=$(grep 'log p(x)' "$L" | tail -1 | awk '{ print $3 }')
    run "$L" "$H" eval --data "$OUT/hmm_test.csv" --load "$OUT/hmm.ckpt" $T || return
    lf=$(grep 'log p(x)' "$L" | tail -1 | awk '{ print $3 }')
    report "test log p(x) per sequence, true parameters" "$lt"
    report "test log p(x) per sequence, fitted parameters" "$lf"
    figure "fitted - true test log-likelihood (nats/sequence)" "$(calc "$lf - ($lt)")" ge -0.05
    run "$L" "$H" posterior --data "$OUT/hmm_test.csv" --load "$OUT/hmm_true.ckpt" --map --out "$OUT/hmm_map_true.csv" $T || return
    run "$L" "$H" posterior --data "$OUT/hmm_test.csv" --load "$OUT/hmm.ckpt" --map --out "$OUT/hmm_map.csv" $T || return
    report "Viterbi accuracy, true parameters" "$(awk -f tests/path_accuracy.awk -v K=3 "$OUT/hmm_test_lat.csv" "$OUT/hmm_map_true.csv")"
    figure "Viterbi accuracy, fitted parameters (up to relabelling)" \
        "$(awk -f tests/path_accuracy.awk -v K=3 "$OUT/hmm_test_lat.csv" "$OUT/hmm_map.csv")" ge 0.95
    # variable lengths: each test sequence keeps its first 10..50 steps
    awk -F, 'BEGIN { OFS = ","; srand(3) } NR == 1 { print; next }
        { n = 10 + int(rand() * 41); for (i = n + 1; i <= NF; i++) $i = "NaN"; print }' \
        "$OUT/hmm_test.csv" > "$OUT/hmm_test_var.csv"
    run "$L" "$H" eval --data "$OUT/hmm_test_var.csv" --load "$OUT/hmm.ckpt" $T || return
    report "variable lengths 10..50: test log p(x) per sequence" "$(grep 'log p(x)' "$L" | tail -1 | awk '{ print $3 }')"
    run "$L" "$H" posterior --data "$OUT/hmm_test_var.csv" --load "$OUT/hmm.ckpt" --map --out "$OUT/hmm_map_var.csv" $T || return
    figure "variable lengths: Viterbi accuracy on the given steps" \
        "$(awk -f tests/path_accuracy.awk -v K=3 "$OUT/hmm_test_lat.csv" "$OUT/hmm_map_var.csv" "$OUT/hmm_test_var.csv")" ge 0.95
}

# ---------------------------------------------------------------- vade
ex_vade() {
    echo "== vade: the VAE's nets with a 10-cluster prior summed out (VaDE), batch 128, Adam 1e-3"
    L=$OUT/vade.log; : > "$L"; compile vade || return
    "$VLMC" --plan examples/vade.vlm >> "$L"
    levels=$(grep -c 'layer \(decoder\|enc\)\.W[01] .* \(item\|sample\) *128 rows' "$L")
    figure "decoder and encoder layers at B (or B*S) rows in the plan" "$levels" ge 3
    run "$L" "$OUT/vade" train --data "$TRAIN" --epochs 10 --batch 128 --lr 1e-3 $T \
        --log "$OUT/vade_train.csv" --save "$OUT/vade.ckpt" || return
    report "seconds per epoch (fastest of 10)" \
        "$(awk -F, 'NR > 1 { d = $5 - p; p = $5; if (m == "" || d < m) m = d } END { printf "%.2f", m }' "$OUT/vade_train.csv")"
    run "$L" "$OUT/vade" eval --data "$TEST" --load "$OUT/vade.ckpt" --iw 1 --batch 256 $T || return
    figure "test ELBO after 10 epochs (nats/image)" "$(field "$L" ELBO)" ge -245
    run "$L" "$OUT/vade" posterior --data "$TEST" --load "$OUT/vade.ckpt" --labels "$TEST_LABELS" \
        --out "$OUT/vade_posterior.csv" $T || return
    report "cluster purity / NMI vs labels (mog: 0.522 / 0.523)" \
        "$(grep 'purity' "$L" | tail -1 | sed -E 's/.*purity ([0-9.]+)  NMI ([0-9.]+).*/\1 \/ \2/')"
}

# ---------------------------------------------------------------- bayes_pca
# fit_pca NAME LOG: train, eval; sets FIT_ELBO (test ELBO) and FIT_LP
# (log p(x) by IS with 100 samples on 1,000 test images)
fit_pca() {
    run "$2" "$OUT/$1" train --data "$TRAIN" --epochs 10 --batch 128 --lr 3e-3 $T --save "$OUT/$1.ckpt" || return 1
    run "$2" "$OUT/$1" eval --data "$TEST" --load "$OUT/$1.ckpt" --iw 1 --batch 256 $T || return 1
    FIT_ELBO=$(field "$2" ELBO)
    run "$2" "$OUT/$1" eval --data "$TEST" --limit 1000 --load "$OUT/$1.ckpt" --iw 100 --batch 256 $T || return 1
    FIT_LP=$(grep '^  log p(x) (IS)' "$2" | tail -1 | sed -E 's/^ *log p[(]x[)] [(]IS[)] +([-+0-9.eE]+).*/\1/')
    "$OUT/$1" params --load "$OUT/$1.ckpt" > "$OUT/$1.params.csv"
}
ex_bayes_pca() {
    echo "== bayes_pca: pPCA with K = 16 and a global W (q(W)) against its MAP fit, batch 128, Adam 3e-3, 10 epochs"
    L=$OUT/bayes_pca.log; : > "$L"; compile bayes_pca || return; compile pca_map || return
    fit_pca bayes_pca "$L" || return
    figure "global W: test ELBO (1/N share of KL(q(W) || p(W)))" "$FIT_ELBO" ge 340
    figure "global W: test log p(x | data), posterior predictive" "$FIT_LP" ge 350
    fit_pca pca_map "$L" || return
    report "MAP W: test ELBO" "$FIT_ELBO"
    report "MAP W: test log p(x) (IS, 1000 images)" "$FIT_LP"
    set -- $(awk -F, -f examples/bayes_pca_compare.awk "$OUT/bayes_pca.params.csv" "$OUT/pca_map.params.csv")
    report "q(W): mean sd of a loading" "$1"
    report "q(W): mean |mean| of a loading (MAP: mean |W|)" "$2 ($4)"
    report "q(W): loadings with |mean| > 2 sd" "$3"
    report "subspace of q(W)'s mean vs MAP W (rel. Frobenius)" "$5"
}

all="vae vae_local vae_missing sbn vae_lecture mog m2 cvae vade hmm bayes_pca vae_bf16"
for e in ${*:-$all}; do
    case " $all " in *" $e "*) "ex_$e" ;; *) echo "unknown example $e"; errors=$((errors + 1)) ;; esac
done
echo
echo "check-long: $met met, $missed not met, $errors failed commands (logs in $OUT/)"
[ $missed -eq 0 ] && [ $errors -eq 0 ]
