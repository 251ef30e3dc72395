#!/bin/sh
# demo.sh — `make demo`: compile the deep VAE, train it for one epoch on
# Fashion-MNIST, evaluate it on the test set and draw samples.
# Outputs go to out/demo/ (override with DEMO_OUT=dir).
set -e
OUT=${DEMO_OUT:-out/demo}
DATA=/usr/share/datasets/fashion-mnist
THREADS=${THREADS:-2}
mkdir -p "$OUT"
if [ ! -f "$DATA/train-images-idx3-ubyte.gz" ]; then
    echo "demo: Fashion-MNIST not found under $DATA; run 'make deps' (package dataset-fashion-mnist)" >&2
    exit 1
fi
echo "== vlmc examples/vae.vlm -o $OUT/vae"
time_start=$(date +%s)
bin/vlmc --plan examples/vae.vlm
bin/vlmc examples/vae.vlm -o "$OUT/vae"
echo
echo "== train: 1 epoch, batch 128, Adam 1e-3, $THREADS threads"
"$OUT/vae" train --data "$DATA/train-images-idx3-ubyte.gz" --test "$DATA/t10k-images-idx3-ubyte.gz" \
    --epochs 1 --batch 128 --lr 1e-3 --threads "$THREADS" --save "$OUT/vae.ckpt" --log "$OUT/metrics.csv"
echo
echo "== eval on the 10,000 test images: ELBO, IWAE-20 and log p(x)"
"$OUT/vae" eval --data "$DATA/t10k-images-idx3-ubyte.gz" --load "$OUT/vae.ckpt" --iw 20 \
    --batch 128 --threads "$THREADS"
echo
echo "== samples: E[x | z] for 64 draws z ~ N(0, I)"
"$OUT/vae" sample --load "$OUT/vae.ckpt" -n 64 --mean --out "$OUT/samples.png"
echo
echo "demo finished in $(( $(date +%s) - time_start )) s; outputs in $OUT/:"
echo "  vae (the compiled trainer), vae.ckpt (checkpoint), metrics.csv, samples.png"
