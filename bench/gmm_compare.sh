#!/bin/sh
# gmm_compare.sh — vlm's `mog train` (EM) and scikit-learn's GaussianMixture
# back to back on Fashion-MNIST (K=10 diagonal, reg_covar 1e-3, tol 1e-3,
# k-means init), best wall time of REPEATS runs each; prints both and the
# ratio. Usage: sh bench/gmm_compare.sh [REPEATS] [THREADS]
R=${1:-2}; TH=${2:-2}
F=/usr/share/datasets/fashion-mnist
T=${TMPDIR:-/tmp}/gmm_compare.$$; mkdir -p "$T"
bin/vlmc examples/mog.vlm -o "$T/mog" || exit 1
i=0
while [ $i -lt "$R" ]; do
    s=$(date +%s.%N)
    "$T/mog" train --data $F/train-images-idx3-ubyte.gz --threads "$TH" --seed 1 \
        --save "$T/mog.ckpt" >"$T/vlm.out" 2>"$T/vlm.err"
    e=$(date +%s.%N)
    vt=$(echo "$e - $s" | bc)
    it=$(sed -n 's/.*after \([0-9]*\) iterations.*/\1/p' "$T/vlm.err")
    tl=$("$T/mog" eval --data $F/t10k-images-idx3-ubyte.gz --load "$T/mog.ckpt" --threads "$TH" |
         awk '/log p\(x\)/ { print $3 }')
    echo "vlm     run $i: wall ${vt}s (incl. data load)  iterations $it  test_ll $tl"
    OPENBLAS_NUM_THREADS=$TH OMP_NUM_THREADS=$TH /usr/bin/python3 bench/gmm_sklearn.py | sed "s/^/sklearn run $i: /"
    i=$((i + 1))
done
rm -rf "$T"
