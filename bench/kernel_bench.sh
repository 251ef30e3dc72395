#!/bin/sh
# kernel_bench.sh — build bench/kernel_bench.c against the runtime library
# and run it: linear fwd+bwd on each backend vs plain sgemm, 1 and 2
# threads; --peak: the matmul peak; --info: the BLAS/oneDNN report.
# Usage: bench/kernel_bench.sh [--quick | --peak [--quick] | --info] [R in out]
# LIBVLM (default lib/libvlm.a) and BUILD (default build) are overridable.
set -e
cd "$(dirname "$0")/.."
LIBVLM=${LIBVLM:-${LIBDIR:-lib}/libvlm.a}
BUILD=${BUILD:-build}
if [ ! -f "$LIBVLM" ]; then
    echo "kernel_bench: $LIBVLM not found; run 'make' first" >&2
    exit 1
fi
mkdir -p "$BUILD/bench"
# shellcheck disable=SC2046  # pkg-config output is meant to split
cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra $SANFLAGS -Iruntime \
   -o "$BUILD/bench/kernel_bench" bench/kernel_bench.c "$LIBVLM" \
   $(pkg-config --cflags --libs openblas) -ldnnl -lgomp -lm -lpthread
exec "$BUILD/bench/kernel_bench" "$@"
