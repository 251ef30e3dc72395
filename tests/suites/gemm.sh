#!/bin/sh
# gemm.sh — the GEMM backends end to end: every example's generated
# gradients pass `gradcheck` on either backend (--gemm and $VLM_GEMM);
# bad backend names are clear errors; `info` reports the backend, oneDNN's
# implementation and OpenBLAS's core; the OpenBLAS generic-core remedy
# (re-exec with OPENBLAS_CORETYPE) never touches a core the environment
# set; bf16 training where the CPU has bf16 units (else a clear error,
# checked on every CPU by hiding the units with DNNL_MAX_CPU_ISA); the
# threads that use CPU time are exactly --threads (no second pool).
# Last line: COUNTS passed=N failed=M.
. "$(dirname "$0")/../suite_lib.sh"
VLMC=$BINDIR/vlmc
suite_dir; suite_tmpdir
unset OPENBLAS_CORETYPE VLM_GEMM VLM_OPENBLAS_REEXEC VLM_TEST_OPENBLAS_CORE
DATA=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz

# --- gradcheck on both backends: every example on OpenBLAS here (the
#     codegen suite runs every model on the default, oneDNN), two of them
#     on oneDNN through $VLM_GEMM at 1 and 2 threads
for f in examples/*.vlm tests/codegen/small_vae.vlm; do
    n=$(basename "$f" .vlm)
    if ! "$VLMC" "$f" -o "$T/$n" 2>"$T/err"; then bad "$f: compile"; continue; fi
    check "$n: gradcheck --gemm openblas" sh -c "'$T/$n' gradcheck --gemm openblas >'$T/err' 2>&1"
    case $n in vae|small_vae)
        for th in 1 2; do
            check "$n: gradcheck with VLM_GEMM=onednn, $th thread(s)" \
                sh -c "VLM_GEMM=onednn '$T/$n' gradcheck --threads $th >'$T/err' 2>&1"
        done ;;
    esac
done
V=$T/vae

# --- names and reports
"$V" info --gemm mkl >"$T/out" 2>"$T/err"
check "--gemm mkl: usage error (exit 2) naming the choices" sh -c "[ $? -eq 2 ] && grep -q 'openblas or onednn' '$T/err'"
VLM_GEMM=mkl "$V" info >"$T/out" 2>"$T/err"
check "VLM_GEMM=mkl: error (exit 1) naming the variable" sh -c "[ $? -eq 1 ] && grep -q 'VLM_GEMM=mkl' '$T/err'"
"$V" train --data "$DATA" --limit 10 --precision fp16 >"$T/out" 2>"$T/err"
check "--precision fp16: usage error" [ $? -eq 2 ]
"$V" info >"$T/info" 2>"$T/err"
check "info: default backend onednn, oneDNN's implementation, OpenBLAS's core" sh -c \
    "grep -q 'gemm backend: onednn' '$T/info' && grep -q 'matmul fp32 [a-z]' '$T/info' && grep -q 'openblas core: [A-Za-z]' '$T/info'"
check "info: oneDNN's fp32 matmul is a JIT, not its reference loops" sh -c \
    "! grep -q 'matmul fp32 ref' '$T/info'"
check "info --gemm openblas" sh -c "'$V' info --gemm openblas | grep -q 'gemm backend: openblas'"
check "VLM_GEMM=openblas info" sh -c "VLM_GEMM=openblas '$V' info | grep -q 'gemm backend: openblas'"
check "--gemm overrides VLM_GEMM" sh -c "VLM_GEMM=openblas '$V' info --gemm onednn | grep -q 'gemm backend: onednn'"

# --- OpenBLAS's core: a core the environment set is kept; a generic core
#     chosen by OpenBLAS on a CPU with AVX2+FMA is replaced by re-executing
#     (VLM_TEST_OPENBLAS_CORE stands in for OpenBLAS's own choice)
check "OPENBLAS_CORETYPE=Prescott set by the user is never changed" sh -c \
    "OPENBLAS_CORETYPE=Prescott '$V' info | grep -q 'openblas core: Prescott (OPENBLAS_CORETYPE=Prescott from the environment)'"
check "OPENBLAS_CORETYPE unset, OpenBLAS's own choice is reported" sh -c \
    "'$V' info | grep -q 'openblas core: .*(chosen by OpenBLAS\\|set by vlm'"
if grep -q ' avx2 ' /proc/cpuinfo && grep -q ' fma ' /proc/cpuinfo; then
    VLM_TEST_OPENBLAS_CORE=Prescott "$V" info >"$T/out" 2>"$T/err"
    check "generic core on an AVX2 CPU: re-executed with Haswell or SkylakeX kernels" sh -c \
        "grep -q 'openblas core: \\(Haswell\\|SkylakeX\\) (OPENBLAS_CORETYPE=\\(Haswell\\|SkylakeX\\) set by vlm: OpenBLAS chose its generic Prescott' '$T/out'"
    VLM_OPENBLAS_REEXEC=0 VLM_TEST_OPENBLAS_CORE=Prescott "$V" info >"$T/out" 2>"$T/err"
    check "VLM_OPENBLAS_REEXEC=0 keeps OpenBLAS's choice, with a note" sh -c \
        "grep -q 'note: OpenBLAS runs its generic Prescott kernels' '$T/err' && ! grep -q 'set by vlm' '$T/out'"
    check "the re-executed trainer trains (same result as without)" sh -c \
        "VLM_TEST_OPENBLAS_CORE=Prescott '$V' train --data '$DATA' --limit 256 --epochs 1 --batch 64 --threads 1 2>&1 | tail -1 > '$T/a' &&
         '$V' train --data '$DATA' --limit 256 --epochs 1 --batch 64 --threads 1 2>&1 | tail -1 > '$T/b' && cmp -s '$T/a' '$T/b'"
else
    echo "skip generic-core remedy: this CPU has no AVX2+FMA, so no OpenBLAS core beats the generic one"
fi

# --- bf16 training
if [ ! -f "$DATA" ]; then
    echo "skip bf16 training: $DATA missing (make deps)"
elif grep -q 'bf16 training: available' "$T/info"; then
    tr() { "$V" train --data "$DATA" --limit 2000 --batch 64 --threads 2 --seed 3 "$@" 2>"$T/err"; }
    tr --epochs 2 --save "$T/f32.ckpt" --log "$T/f32.csv" >/dev/null
    tr --epochs 2 --precision bf16 --save "$T/bf.ckpt" --log "$T/bf.csv" >/dev/null
    check "bf16 training runs" [ -s "$T/bf.ckpt" ]
    a=$(tail -1 "$T/f32.csv" | cut -d, -f3); b=$(tail -1 "$T/bf.csv" | cut -d, -f3)
    check "bf16's train ELBO within 1% of fp32's after 2 epochs ($b vs $a)" holds "($b - ($a)) ^ 2 < (0.01 * ($a)) ^ 2"
    check "bf16 really ran (its ELBO differs from fp32's)" holds "$a != $b"
    e1=$("$V" eval --data "$DATA" --limit 500 --load "$T/bf.ckpt" --iw 1 2>"$T/err" | grep -i elbo | head -1)
    check "a bf16-trained checkpoint evaluates in fp32 (unchanged format)" [ -n "$e1" ]
    tr --epochs 1 --precision bf16 --save "$T/r1.ckpt" >/dev/null
    tr --epochs 2 --precision bf16 --load "$T/r1.ckpt" --save "$T/r2.ckpt" >/dev/null
    check "bf16 resume is bit-exact (1+1 epochs = 2 epochs)" cmp -s "$T/r2.ckpt" "$T/bf.ckpt"
else
    echo "skip bf16 training: $(grep 'bf16 training' "$T/info" | sed 's/^ *//') on this CPU"
fi
DNNL_MAX_CPU_ISA=AVX2 "$V" train --data "$DATA" --limit 10 --precision bf16 >"$T/out" 2>"$T/err"
check "without bf16 units (DNNL_MAX_CPU_ISA=AVX2): error naming AVX512-BF16, exit 1" sh -c \
    "[ $? -eq 1 ] && grep -q 'needs a CPU with AVX512-BF16' '$T/err'"
"$V" train --data "$DATA" --limit 10 --precision bf16 --gemm openblas >"$T/out" 2>"$T/err"
check "bf16 on OpenBLAS: error naming the backend" sh -c "[ $? -eq 1 ] && grep -q 'needs the onednn GEMM backend' '$T/err'"

# --- threads: only --threads threads use the CPU (no OpenMP team, no
#     OpenBLAS threads beside vlm's pool), and user time stays near
#     wall time x threads
busy_threads() {  # trainer args...: threads with >= 5% of the process's CPU time after 3 s
    "$V" train --data "$DATA" --epochs 1000 --batch 128 "$@" >/dev/null 2>&1 &
    pid=$!
    sleep 3
    cat /proc/$pid/task/*/stat 2>/dev/null | awk '{ sub(/^.*\) /, ""); t[NR] = $12 + $13; s += t[NR] }
        END { for (i in t) if (t[i] >= 0.05 * s) n++; print n + 0 }'
    kill $pid 2>/dev/null; wait $pid 2>/dev/null
}
if [ -f "$DATA" ]; then
    for be in onednn openblas; do
        for th in 1 2; do
            n=$(busy_threads --threads $th --gemm $be)
            check "$be --threads $th: $n busy thread(s)" [ "$n" = "$th" ]
        done
    done
    /usr/bin/time -f '%e %U %S' -o "$T/time" "$V" train --data "$DATA" --limit 5000 --epochs 2 --batch 128 --threads 1 >/dev/null 2>"$T/err"
    read -r wall user sys < "$T/time"
    check "--threads 1: user+sys $user+$sys s <= 1.1 x wall $wall s" holds "$user + $sys <= 1.1 * $wall + 0.1"
fi

suite_end
