#!/bin/sh
# mpi_scaling.sh — the measured rows of docs/scaling.md: the VAE
# (examples/vae.vlm) on Fashion-MNIST and the mixture's EM
# (examples/mog.vlm), as 1 process x 2 threads and as 2 MPI ranks x 1
# thread (`mpirun -np 2 --oversubscribe --bind-to none`; as root it adds
# --allow-run-as-root through the OMPI_ALLOW_RUN_AS_ROOT variables):
# throughput, the allreduce wait per step, and the test ELBO of both
# after the same epochs (the same global batch and learning rate).
#
#   sh bench/mpi_scaling.sh [--quick]       (after `make`)
#   N=20000 EPOCHS=2 MOG_N=20000 MOG_IT=10 sh bench/mpi_scaling.sh
#
# Prints markdown rows on stdout; the runs' output is kept in $W.
set -u
BINDIR=${BINDIR:-bin}; VLMC=$BINDIR/vlmc
DIR=${DIR:-/usr/share/datasets/fashion-mnist}
N=${N:-20000}; EPOCHS=${EPOCHS:-2}; TEST_N=${TEST_N:-5000}
MOG_N=${MOG_N:-20000}; MOG_IT=${MOG_IT:-10}; BATCH=${BATCH:-128}
[ "${1:-}" = --quick ] && { N=3000; EPOCHS=1; TEST_N=1000; MOG_N=3000; MOG_IT=3; }
W=${W:-$(mktemp -d "${TMPDIR:-/tmp}/mpi_scaling.XXXXXX")}
mkdir -p "$W"
OMPI_ALLOW_RUN_AS_ROOT=1; OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_ALLOW_RUN_AS_ROOT OMPI_ALLOW_RUN_AS_ROOT_CONFIRM
MPIRUN="mpirun --oversubscribe --bind-to none"
command -v mpirun >/dev/null 2>&1 || { echo "mpi_scaling: no mpirun (make deps)" >&2; exit 1; }
[ -f "$DIR/train-images-idx3-ubyte.gz" ] || { echo "mpi_scaling: no Fashion-MNIST in $DIR" >&2; exit 1; }
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.6g\", $1 }"; }

"$VLMC" examples/vae.vlm -o "$W/vae" || exit 1
"$VLMC" examples/mog.vlm -o "$W/mog" || exit 1
TRAIN="--data $DIR/train-images-idx3-ubyte.gz --limit $N"
TEST="--test $DIR/t10k-images-idx3-ubyte.gz"

echo "| run | items/s (train, mean over epochs) | step ms | allreduce wait ms/step | test ELBO after $EPOCHS epochs |"
echo "|---|---|---|---|---|"
vae_row() {  # label, global batch, learning rate, then the launcher and its arguments
    label=$1; b=$2; lr=$3; shift 3
    "$@" train $TRAIN $TEST --epochs "$EPOCHS" --batch "$b" --lr "$lr" --seed 1 \
        >"$W/vae.$label.out" 2>"$W/vae.$label.err"
    # "epoch 1/2: 20000 items in 9.81s (2039 items/s) ..." (rank 0's, whole batch)
    ips=$(sed -n 's/^epoch [0-9]*\/[0-9]*: .* items in .*(\([0-9.]*\) items\/s).*/\1/p' "$W/vae.$label.err" |
          awk '{ s += $1; n++ } END { if (n) printf "%.0f", s / n }')
    wait_ms=$(sed -n 's/^mpi: .* \([0-9.]*\) ms per step waiting.*/\1/p' "$W/vae.$label.err")
    elbo=$(awk '/^epoch/ { for (i = 1; i < NF; i++) if ($i == "elbo" && $(i - 1) == "test") v = $(i + 1) } END { print v }' "$W/vae.$label.out")
    step=$(calc "1000 * $b / ${ips:-1}")
    echo "| VAE, $label, global batch $b, lr $lr, $N items | ${ips:--} | $step | ${wait_ms:--} | ${elbo:--} |" | tee -a "$W/rows"
}
ONE='"$0" "$@" --threads 2'
TWO="$MPIRUN -np 2 \"\$0\" \"\$@\" --threads 1"
vae_row "1 process x 2 threads" "$BATCH" 1e-3 sh -c "$ONE" "$W/vae"
vae_row "2 ranks x 1 thread" "$BATCH" 1e-3 sh -c "$TWO" "$W/vae"
# the other rule: each rank keeps the batch, the global batch doubles and
# the learning rate with it (linear scaling; the trainer has no warm-up)
vae_row "2 ranks x 1 thread, linear scaling" $((2 * BATCH)) 2e-3 sh -c "$TWO" "$W/vae"
vae_row "1 process x 1 thread" "$BATCH" 1e-3 sh -c '"$0" "$@" --threads 1' "$W/vae"

# the cost model (docs/scaling.md): ring allreduce of G bytes moves
# 2(N-1)/N G per rank in 2(N-1) messages of latency ALPHA; compute per step
# c1 = the 1-thread step time measured above, split over the N ranks
# (strong scaling, global batch fixed) or kept per rank (weak scaling,
# global batch N x B)
c1=$(sed -n 's/^| VAE, 1 process x 1 thread, [^|]*| [^|]*| \([0-9.]*\) |.*/\1/p' "$W/rows" 2>/dev/null)
G=${G:-2611296}; ALPHA=${ALPHA:-5e-6}
if [ -n "$c1" ]; then
    echo
    echo "Predicted speedup over one rank (c1 = $c1 ms per $BATCH-item step on one core; G = $G bytes; latency $ALPHA s per message):"
    echo
    echo "| link | allreduce ms at N=4 / 256 | strong scaling (global batch $BATCH): N = 4, 8, 16, 32, 64, 128 | weak scaling (batch $BATCH per rank): N = 4, 16, 64, 256 |"
    echo "|---|---|---|---|"
    for gb in 10 25 100; do
        awk -v c="$c1" -v G="$G" -v a="$ALPHA" -v gb="$gb" 'function tc(N) { return 1000 * (2 * (N - 1) / N * G / (gb * 1e9 / 8) + 2 * (N - 1) * a) }
            BEGIN { s = ""; split("4 8 16 32 64 128", n1, " "); split("4 16 64 256", n2, " ")
                    for (i = 1; i <= 6; i++) s = s sprintf("%s%.1f", i > 1 ? ", " : "", c / (c / n1[i] + tc(n1[i])))
                    w = ""; for (i = 1; i <= 4; i++) w = w sprintf("%s%.0f", i > 1 ? ", " : "", n2[i] * c / (c + tc(n2[i])))
                    printf "| %d Gb/s | %.2f / %.2f | %s | %s |\n", gb, tc(4), tc(256), s, w }'
    done
fi
echo
echo "| run | EM s/iteration ($MOG_IT iterations, $MOG_N items) | k-means start s | final train log p(x) |"
echo "|---|---|---|---|"
mog_row() {
    label=$1; shift
    "$@" train --data "$DIR/train-images-idx3-ubyte.gz" --limit "$MOG_N" --epochs "$MOG_IT" \
        --tol 0 --seed 1 >"$W/mog.$label.out" 2>"$W/mog.$label.err"
    km=$(sed -n 's/^em: k-means.*(\([0-9.]*\) s).*/\1/p' "$W/mog.$label.err")
    tot=$(sed -n 's/^em: .* after [0-9]* iterations (\([0-9.]*\) s).*/\1/p' "$W/mog.$label.err")
    it=$(calc "(${tot:-0} - ${km:-0}) / $MOG_IT")
    ll=$(awk '/^epoch/ { v = $6 } END { print v }' "$W/mog.$label.out")
    echo "| mixture EM, $label | $it | ${km:--} | ${ll:--} |"
}
mog_row "1 process x 2 threads" sh -c "$ONE" "$W/mog"
mog_row "2 ranks x 1 thread" sh -c "$TWO" "$W/mog"
# the allreduce alone, on this machine's shared memory: the VAE's gradient
if command -v mpicc >/dev/null 2>&1 && mpicc -O2 bench/allreduce_bench.c -o "$W/allreduce_bench" 2>"$W/ar.err"; then
    echo
    $MPIRUN -np 2 "$W/allreduce_bench" $((G / 4)) 50 2>>"$W/ar.err" | sed 's/^/    2 ranks, one host: /'
fi
echo
echo "(outputs in $W)"
