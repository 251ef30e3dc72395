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
vae_row() {  # label, then the launcher and its arguments
    label=$1; shift
    t0=$(now)
    "$@" train $TRAIN $TEST --epochs "$EPOCHS" --batch "$BATCH" --seed 1 \
        >"$W/vae.$label.out" 2>"$W/vae.$label.err"
    t1=$(now)
    # "epoch 1/2: 20000 items in 9.81s (2039 items/s) ..." (rank 0's, whole batch)
    ips=$(sed -n 's/^epoch [0-9]*\/[0-9]*: .* items in .*(\([0-9.]*\) items\/s).*/\1/p' "$W/vae.$label.err" |
          awk '{ s += $1; n++ } END { if (n) printf "%.0f", s / n }')
    wait_ms=$(sed -n 's/^mpi: .* \([0-9.]*\) ms per step waiting.*/\1/p' "$W/vae.$label.err")
    elbo=$(awk '/^epoch/ { for (i = 1; i < NF; i++) if ($i == "elbo" && $(i - 1) == "test") v = $(i + 1) } END { print v }' "$W/vae.$label.out")
    step=$(calc "1000 * $BATCH / ${ips:-1}")
    echo "| VAE, $label, B = $BATCH, $N items | ${ips:--} | $step | ${wait_ms:--} | ${elbo:--} |"
}
vae_row "1 process x 2 threads" sh -c '"$0" "$@" --threads 2' "$W/vae"
vae_row "2 ranks x 1 thread" sh -c "$MPIRUN -np 2 \"\$0\" \"\$@\" --threads 1" "$W/vae"

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
    ll=$(awk '/^epoch/ { v = $5 } END { print v }' "$W/mog.$label.out")
    echo "| mixture EM, $label | $it | ${km:--} | ${ll:--} |"
}
mog_row "1 process x 2 threads" sh -c '"$0" "$@" --threads 2' "$W/mog"
mog_row "2 ranks x 1 thread" sh -c "$MPIRUN -np 2 \"\$0\" \"\$@\" --threads 1" "$W/mog"
echo
echo "(outputs in $W)"
