#!/bin/sh
# bench_smoke.sh — the benchmark programs on tiny sizes (seconds), so they
# never rot: kernel_bench --quick, the PyTorch VAE peer on 512 images,
# the sklearn mixture peer on 512 images, vlmc's compile-time loop on one
# example, the statement profiler and the threads' timeline on 256-320
# images, and bench/run.sh end to end in its tiny mode. Checks that each
# runs and prints what run.sh parses — never a speed. A peer or data set
# that is not installed gives a `skip` line, counted as neither passed nor
# failed. Last line: COUNTS passed=N failed=M.
. "$(dirname "$0")/../suite_lib.sh"
export BUILD BINDIR LIBDIR
PY=${PYTHON:-/usr/bin/python3}
DIR=${BENCH_DIR:-/usr/share/datasets/fashion-mnist}
suite_dir
suite_show() { tail -8; }
# check NAME CMD...: CMD's output is kept in $T/out and $T/err, both shown on failure
check() { name=$1; shift; if "$@" >"$T/out" 2>"$T/err"; then ok "$name"; else cat "$T/out" >> "$T/err"; bad "$name"; fi; }

have_data=0
[ -f "$DIR/train-images-idx3-ubyte.gz" ] && [ -f "$DIR/t10k-images-idx3-ubyte.gz" ] && have_data=1
have_torch=0; have_sk=0
[ -x "$PY" ] && "$PY" -c 'import torch, numpy' 2>/dev/null && have_torch=1
[ -x "$PY" ] && "$PY" -c 'import sklearn, numpy' 2>/dev/null && have_sk=1

# --- the kernel benchmark builds and prints both thread counts
check "kernel_bench --quick" sh -c "sh bench/kernel_bench.sh --quick > '$T/kernel.out'"
check "kernel_bench prints efficiency at 1 and 2 threads" \
    sh -c "grep -c '^threads=.*efficiency *[0-9.]*%' '$T/kernel.out' | grep -qx 2"
check "kernel_bench --info names OpenBLAS and oneDNN's implementation" sh -c \
    "sh bench/kernel_bench.sh --info > '$T/info.out' && grep -qi openblas '$T/info.out' && grep -q 'matmul fp32 [a-z]' '$T/info.out'"
check "kernel_bench --peak --quick prints the peak at 1 and 2 threads" sh -c \
    "sh bench/kernel_bench.sh --peak --quick | grep -c '^peak n=.*fp32 onednn *[0-9.]* GFLOP/s  fp32 openblas *[0-9.]* GFLOP/s' | grep -qx 2"

# --- vlmc compile-time loop on one example
check "vlmc compiles examples/vae.vlm (timed loop)" sh -c "
    for i in 1 2; do '$BINDIR/vlmc' examples/vae.vlm -o '$T/vae' || exit 1; done; [ -x '$T/vae' ]"

# --- the per-statement profile of a generated trainer
check "profile_statements.sh without a model prints its usage, exit 2" sh -c "
    sh bench/profile_statements.sh > /dev/null 2> '$T/pu.err'; [ \$? = 2 ] && grep -q Usage '$T/pu.err'"
if [ $have_data = 1 ]; then
    check "profile_statements.sh times each statement of examples/vae.vlm (256 images)" sh -c "
        VLMC='$BINDIR/vlmc' sh bench/profile_statements.sh examples/vae.vlm train \
            --data '$DIR/t10k-images-idx3-ubyte.gz' --limit 256 --epochs 1 --threads 1 > '$T/prof.out' &&
        awk '\$4 ~ /^vlm_nn_linear_fwd/ && \$2 > 0 { n++ } END { exit n != 5 }' '$T/prof.out' &&
        grep -q 'all timed statements' '$T/prof.out'"
else
    skip "profile_statements.sh on examples/vae.vlm (no Fashion-MNIST in $DIR)"
fi

# --- the threads' timeline of a generated trainer (VLM_TIMELINE)
check "timeline.sh without a model prints its usage, exit 2" sh -c "
    sh bench/timeline.sh > /dev/null 2> '$T/tu.err'; [ \$? = 2 ] && grep -q Usage '$T/tu.err'"
if [ $have_data = 1 ]; then
    # 5 batches of 64 at 2 threads: every batch read (5 fill_items runs or
    # more), the products' slices, the caller's busy time, a step
    check "timeline.sh records the pool's slices and shows one step of examples/vae.vlm" sh -c "
        VLMC='$BINDIR/vlmc' sh bench/timeline.sh examples/vae.vlm train \
            --data '$DIR/t10k-images-idx3-ubyte.gz' --limit 320 --batch 64 --epochs 1 --threads 2 \
            > '$T/tl.out' 2> '$T/tl.err' &&
        awk '\$3 == \"fill_items\" { f += \$2 } \$3 == \"job_slice\" { j += \$2 } END { exit !(f >= 5 && j >= 20) }' '$T/tl.out' &&
        grep -q '^thread 0: ' '$T/tl.out' &&
        grep -q 'the step\$' '$T/tl.out'"
else
    skip "timeline.sh on examples/vae.vlm (no Fashion-MNIST in $DIR)"
fi

# --- the peers on tiny subsets
if [ $have_data = 0 ]; then
    skip "vae_torch.py (no Fashion-MNIST in $DIR)"
    skip "gmm_sklearn.py (no Fashion-MNIST in $DIR)"
else
    if [ $have_torch = 1 ]; then
        check "vae_torch.py: 512 images, 1 epoch, prints epoch line" sh -c "
            '$PY' bench/vae_torch.py --dir '$DIR' --n 512 --test-n 256 --epochs 1 --threads 1 > '$T/torch.out' &&
            awk '\$1 == \"epoch\" && \$3 == \"seconds\" && \$8 < 0 && \$8 > -1000 { n++ } END { exit n != 1 }' '$T/torch.out'"
        check "vae_torch.py --bf16 (autocast): 512 images, 1 epoch" sh -c "
            '$PY' bench/vae_torch.py --dir '$DIR' --n 512 --test-n 256 --epochs 1 --threads 1 --bf16 > '$T/torch16.out' &&
            grep -q 'precision bf16-autocast' '$T/torch16.out' &&
            awk '\$1 == \"epoch\" && \$8 < 0 && \$8 > -1000 { n++ } END { exit n != 1 }' '$T/torch16.out'"
    else
        skip "vae_torch.py (torch not importable by $PY)"
    fi
    if [ $have_sk = 1 ] && [ -f bench/gmm_sklearn.py ]; then
        check "gmm_sklearn.py: 512 images, prints fit time and test_ll" sh -c "
            '$PY' bench/gmm_sklearn.py --dir '$DIR' --n 512 > '$T/sk.out' &&
            grep -q '^sklearn fit_seconds [0-9.]* .*test_ll -*[0-9.]' '$T/sk.out'"
    else
        skip "gmm_sklearn.py (sklearn not importable by $PY, or the script is missing)"
    fi
fi

# --- run.sh end to end, tiny mode, into a scratch doc
if [ $have_data = 1 ]; then
    printf '# Performance\n\nkept text above\n\n<!-- bench:begin -->\nold\n<!-- bench:end -->\n\nkept text below\n' > "$T/perf.md"
    check "bench/run.sh (BENCH_TINY) runs" env BENCH_TINY=1 BENCH_WORK="$T/run" BENCH_OUT="$T/perf.md" sh bench/run.sh
    check "run.sh table has the VAE (both backends, bf16 or its skip), sbn, mixture, vlmc and kernel rows" sh -c "
        grep -q '^| vlm onednn fp32, 2 thread' '$T/perf.md' && grep -q '^| vlm openblas fp32, 2 thread' '$T/perf.md' &&
        grep -q '^| vlm onednn bf16, 2 thread\|^| VAE bf16 | skipped' '$T/perf.md' &&
        grep -q '^| sbn, onednn: s/epoch.* | [0-9.]* s |' '$T/perf.md' && grep -q 'vlm examples/mog.vlm' '$T/perf.md' &&
        grep -q '^| vlmc examples/vae.vlm | [0-9.]* s' '$T/perf.md' && grep -q '^| linear kernel, 1 thread' '$T/perf.md'"
    check "run.sh table has the VaDE / VAE epoch ratio (oneDNN fp32)" sh -c "
        [ \$(grep -c '^| VaDE (examples/vade.vlm.* | [0-9.]* s | [0-9.]*x | target <= 1.5x: m' '$T/perf.md') -ge 1 ]"
    check "run.sh reports the CPU, its features, oneDNN and the matmul peak" sh -c "
        grep -q '^- CPU features:' '$T/perf.md' && grep -q '^- oneDNN: onednn' '$T/perf.md' &&
        grep -q '^- measured matmul peak' '$T/perf.md' && grep -q 'GFLOP of matrix products' '$T/perf.md' &&
        grep -q '^- measured matmul peak after the VAE runs: threads=1' '$T/perf.md'"
    check "run.sh keeps the text outside the markers, replaces inside" sh -c "
        grep -q 'kept text above' '$T/perf.md' && grep -q 'kept text below' '$T/perf.md' &&
        ! grep -qx old '$T/perf.md' && [ \$(grep -c 'bench:begin' '$T/perf.md') -eq 1 ]"
    if [ $have_torch = 1 ]; then
        check "run.sh reports torch rows and the VAE ratio" sh -c "
            grep -q '^| torch fp32, 1 thread' '$T/perf.md' && grep -q 'VAE fp32 epoch time vlm/PyTorch .* | [0-9.]*x |' '$T/perf.md' &&
            grep -q '^| VAE fp32 target (issue 15) | .*0.35x.* | either criterion | m' '$T/perf.md'"
    else
        check "run.sh reports the missing torch as skipped" grep -q 'PyTorch VAE | skipped' "$T/perf.md"
    fi
else
    skip "bench/run.sh (no Fashion-MNIST in $DIR)"
fi

echo "SKIPPED $skip"
suite_end
