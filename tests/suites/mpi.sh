#!/bin/sh
# mpi.sh — the same trainer alone and under `mpirun -np 2`: data-parallel
# SGD equals one process (enumerated mixture: no noise), EM's iterations
# and log-likelihood equal one process, eval/posterior/impute figures and
# files equal one process, local guide parameters are gathered into the
# checkpoint and resume at another rank count, ranks running different
# models or --set values stop at startup, and a rank killed with SIGKILL
# stops the job within seconds with the checkpoint intact and resumable.
# Skipped, with the reason printed, only where MPI cannot start.
# Last line: COUNTS passed=N failed=M.
. "$(dirname "$0")/../suite_lib.sh"
VLMC=$BINDIR/vlmc
suite_dir
suite_tmpdir
suite_show() { tail -8; }

# CI runs as root; OpenMPI refuses root without these
OMPI_ALLOW_RUN_AS_ROOT=1; OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_ALLOW_RUN_AS_ROOT OMPI_ALLOW_RUN_AS_ROOT_CONFIRM
# LeakSanitizer (make check-asan): OpenMPI's own allocations at exit are
# suppressed by library (tests/lsan_mpi.supp); its plugins stay loaded and
# stacks are unwound in full, so those frames have names to match
OMPI_MCA_mca_base_component_disable_dlclose=1; PMIX_MCA_mca_base_component_disable_dlclose=1
export OMPI_MCA_mca_base_component_disable_dlclose PMIX_MCA_mca_base_component_disable_dlclose
LSAN_OPTIONS="suppressions=$(pwd)/tests/lsan_mpi.supp:fast_unwind_on_malloc=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export LSAN_OPTIONS
# its session directory under the system's temporary directory (a long or
# relative $TMPDIR breaks its socket paths)
MPIRUN="env TMPDIR=/tmp mpirun --oversubscribe"
if ! command -v mpirun >/dev/null 2>&1; then
    skip "mpi: mpirun is not installed (run 'make deps': openmpi-bin)"
    suite_end
fi
if ! timeout 30 $MPIRUN -np 2 true >"$T/err" 2>&1; then
    skip "mpi: 'mpirun -np 2 true' fails here:"; sed 's/^/     | /' "$T/err" | head -5
    suite_end
fi
run2() { timeout 60 $MPIRUN -np 2 "$@"; }
# max |a - b| over the numeric fields of two `params` outputs
maxdiff() {
    paste -d, "$1" "$2" | awk -F, '{ n = NF / 2
        for (i = 3; i <= n; i++) { d = $i - $(i + n); if (d < 0) d = -d; if (d > m) m = d } }
        END { print m + 0 }'
}

# --- a 2-D mixture (z summed out: no noise) and a tiny VAE, with data
M=$T/mix
"$VLMC" tests/codegen/mix2d.vlm -o "$M" 2>"$T/err"
check "mix2d compiles (linked with MPI)" [ $? -eq 0 ]
"$M" sample --seed 7 -n 3000 --out "$T/mix.csv" >"$T/out" 2>"$T/err"
V=$T/vae; VS="--set D=16 --set H=8 --set Z=2"
"$VLMC" examples/vae.vlm -o "$V" 2>"$T/err" &&
"$V" sample $VS -n 600 --seed 3 --out "$T/v.csv" >"$T/out" 2>"$T/err"
check "vae compiles; 600 16-pixel images sampled" [ $? -eq 0 ]

# --- run alone it is the trainer of before: no MPI_Init, same bytes as -np 1
A="train --data $T/mix.csv --optimizer adam --epochs 3 --batch 50 --lr 0.05 --threads 1"
"$M" $A --save "$T/alone.ckpt" >"$T/alone.out" 2>"$T/alone.err"
check "alone: trains" [ $? -eq 0 ]
check "alone: says nothing about MPI" sh -c "! grep -qi 'mpi' '$T/alone.err'"
timeout 60 $MPIRUN -np 1 "$M" $A --save "$T/np1.ckpt" >"$T/out" 2>"$T/err"
check "mpirun -np 1: the same checkpoint, byte for byte" cmp -s "$T/alone.ckpt" "$T/np1.ckpt"

# --- data-parallel SGD: 2 ranks x half of each global batch of 50
run2 "$M" $A --save "$T/np2.ckpt" >"$T/np2.out" 2>"$T/err"
check "mpirun -np 2 train: exit 0" [ $? -eq 0 ]
check "... 2 ranks took the steps (allreduce time reported)" grep -q "mpi: 2 ranks, 180 steps" "$T/err"
check "... one copy of the output (rank 0 alone prints)" sh -c "[ \$(grep -c '^epoch' '$T/np2.out') -eq 3 ]"
"$M" params --load "$T/alone.ckpt" >"$T/p1.csv" 2>"$T/err"
"$M" params --load "$T/np2.ckpt" >"$T/p2.csv" 2>"$T/err"
"$M" params --seed 1 >"$T/p0.csv" 2>"$T/err"
d=$(maxdiff "$T/p1.csv" "$T/p2.csv"); moved=$(maxdiff "$T/p0.csv" "$T/p1.csv")
check "every parameter after 3 epochs: 2 ranks = 1 process (max |diff| $d <= 1e-4)" holds "$d <= 1e-4"
check "... and training moved them (max $moved from the initialisation)" holds "$moved > 0.1"
check "... train figures equal" sh -c "[ \"\$(grep '^epoch' '$T/alone.out')\" = \"\$(grep '^epoch' '$T/np2.out')\" ]"

# --- EM: statistics allreduced in double
E="train --data $T/mix.csv --threads 1 --tol 1e-7 --kmeans-iters 1"
"$M" $E --log "$T/em1.csv" >"$T/out" 2>"$T/em1.err"
run2 "$M" $E --log "$T/em2.csv" >"$T/out" 2>"$T/em2.err"
i1=$(sed -n 's/.*converged after \([0-9]*\) iterations.*/\1/p' "$T/em1.err")
i2=$(sed -n 's/.*converged after \([0-9]*\) iterations.*/\1/p' "$T/em2.err")
check "EM: the same iterations alone and on 2 ranks ($i1, $i2)" sh -c "[ -n '$i1' ] && [ '$i1' = '$i2' ] && [ '$i1' -gt 2 ]"
l1=$(tail -n 1 "$T/em1.csv" | cut -d, -f3); l2=$(tail -n 1 "$T/em2.csv" | cut -d, -f3)
check "EM: the same final log p(x) to 1e-9 relative ($l1, $l2)" \
    sh -c "[ -n '$l1' ] && [ -n '$l2' ] && awk 'BEGIN { r = ($l1 - $l2) / $l1; exit !(r < 1e-9 && r > -1e-9) }'"

# --- eval, posterior, impute: shards, reduced figures, rows in input order
"$M" eval --data "$T/mix.csv" --load "$T/alone.ckpt" --threads 1 >"$T/ev1" 2>"$T/err"
run2 "$M" eval --data "$T/mix.csv" --load "$T/alone.ckpt" --threads 1 >"$T/ev2" 2>"$T/err"
check "eval: 2 ranks print what 1 process prints" sh -c "grep -q 'log p(x)' '$T/ev1' && cmp -s '$T/ev1' '$T/ev2'"
"$M" posterior --data "$T/mix.csv" --load "$T/alone.ckpt" --out "$T/post1.csv" >"$T/out" 2>"$T/err"
run2 "$M" posterior --data "$T/mix.csv" --load "$T/alone.ckpt" --out "$T/post2.csv" >"$T/out" 2>"$T/err"
check "posterior: the same file from 2 ranks (3000 rows, input order)" \
    sh -c "[ \$(wc -l <'$T/post1.csv') -eq 3001 ] && cmp -s '$T/post1.csv' '$T/post2.csv'"
"$M" impute --data "$T/mix.csv" --load "$T/alone.ckpt" --mask top-half --out "$T/imp1.csv" >"$T/out" 2>"$T/err"
run2 "$M" impute --data "$T/mix.csv" --load "$T/alone.ckpt" --mask top-half --out "$T/imp2.csv" >"$T/out" 2>"$T/err"
check "impute: the same file from 2 ranks" sh -c "[ -s '$T/imp1.csv' ] && cmp -s '$T/imp1.csv' '$T/imp2.csv'"
# a guide: each rank its own noise, so within Monte Carlo error
VT="train --data $T/v.csv $VS --epochs 3 --batch 32 --threads 1"
"$V" $VT --save "$T/v1.ckpt" >"$T/out" 2>"$T/err"
"$V" eval --data "$T/v.csv" --load "$T/v1.ckpt" --iw 50 --threads 1 >"$T/vev1" 2>"$T/err"
run2 "$V" eval --data "$T/v.csv" --load "$T/v1.ckpt" --iw 50 --threads 1 >"$T/vev2" 2>"$T/err"
w1=$(awk '/log p\(x\) \(IS\)/ { print $4; exit }' "$T/vev1")
se=$(awk '/log p\(x\) \(IS\)/ { print $6; exit }' "$T/vev1")
w2=$(awk '/log p\(x\) \(IS\)/ { print $4; exit }' "$T/vev2")
check "vae eval: 2 ranks within 5 SE of 1 process ($w1 +- $se; $w2)" \
    sh -c "[ -n '$w1' ] && [ -n '$w2' ] && [ -n '$se' ] && awk 'BEGIN { exit !(($w1 - $w2)^2 < 25 * 2 * $se^2) }'"

# --- the VAE on 2 ranks: each rank draws its slice of one process's noise,
# so 3 epochs give one process's parameters; resumes on 2 ranks and alone
run2 "$V" $VT --save "$T/v2.ckpt" >"$T/out" 2>"$T/err"
"$V" params --load "$T/v1.ckpt" >"$T/vp1.csv" 2>"$T/err"
"$V" params --load "$T/v2.ckpt" >"$T/vp2.csv" 2>"$T/err"
"$V" params $VS --seed 1 >"$T/vp0.csv" 2>"$T/err"
d=$(maxdiff "$T/vp1.csv" "$T/vp2.csv"); moved=$(maxdiff "$T/vp0.csv" "$T/vp1.csv")
check "vae (guide noise): every parameter after 3 epochs, 2 ranks = 1 process (max |diff| $d <= 1e-4; moved $moved)" \
    holds "$d <= 1e-4 && $moved > 0.01"
# 3 ranks, 2 samples, 3 latent dimensions (odd offsets into the normal
# pairs), 577 items (the last batch of 1 leaves two ranks without items)
V3="train --data $T/v.csv --set D=16 --set H=8 --set Z=3 --epochs 2 --batch 32 --samples 2 --limit 577 --threads 1"
"$V" $V3 --save "$T/z1.ckpt" >"$T/out" 2>"$T/err"
timeout 60 $MPIRUN -np 3 "$V" $V3 --save "$T/z3.ckpt" >"$T/out" 2>"$T/err"
"$V" params --load "$T/z1.ckpt" >"$T/zp1.csv" 2>"$T/err"
"$V" params --load "$T/z3.ckpt" >"$T/zp3.csv" 2>"$T/err"
d=$(maxdiff "$T/zp1.csv" "$T/zp3.csv")
check "... 3 ranks, Z = 3, 2 samples, ranks without items: = 1 process (max |diff| $d <= 1e-4)" \
    sh -c "[ -s '$T/zp3.csv' ] && awk 'BEGIN { exit !($d <= 1e-4) }'"
run2 "$V" train --data "$T/v.csv" --load "$T/v2.ckpt" --save "$T/v2.ckpt" --epochs 4 --threads 1 >"$T/out" 2>"$T/err"
check "vae: 2 ranks train 3 epochs and resume to 4" grep -q '^epoch 4 ' "$T/out"
"$V" train --data "$T/v.csv" --load "$T/v2.ckpt" --epochs 5 --threads 1 >"$T/out" 2>"$T/err"
check "... and that checkpoint resumes alone" grep -q '^epoch 5 ' "$T/out"

# --- local guide parameters: owned by a fixed partition, gathered by rank 0
L=$T/vl
"$VLMC" examples/vae_local.vlm -o "$L" 2>"$T/err"
run2 "$L" train --data "$T/v.csv" $VS --epochs 2 --batch 32 --threads 1 --save "$T/l2.ckpt" >"$T/out" 2>"$T/err"
check "vae_local: 2 ranks train" [ $? -eq 0 ]
# the `local` tensor (600 x width): m[0] of every item left 0 (its
# initial value) counts the items whose rows were not gathered
zeros=$(off=$(grep -obUa 'local' "$T/l2.ckpt" | head -1 | cut -d: -f1)
    w=$(od -A n -t d8 -j $((off + 5 + 4 + 8)) -N 8 "$T/l2.ckpt" | tr -d ' ')
    od -A n -t f4 -v -j $((off + 5 + 4 + 16)) -N $((600 * w * 4)) "$T/l2.ckpt" |
    tr -s ' ' '\n' | grep -v '^$' | awk -v w="$w" '(NR - 1) % w == 0 { n++; z[int((NR - 1) / w) < 300] += ($1 == 0) }
        END { print n, z[1] + 0, z[0] + 0 }')
check "... the checkpoint holds both ranks' items, trained (items, untrained of rank 0, of rank 1: $zeros)" \
    [ "$zeros" = "600 0 0" ]
"$L" train --data "$T/v.csv" --load "$T/l2.ckpt" --epochs 3 --batch 32 --threads 1 --save "$T/l1.ckpt" >"$T/out" 2>"$T/err"
check "... resumes alone (2 ranks -> 1)" grep -q '^epoch 3 ' "$T/out"
timeout 60 $MPIRUN -np 3 "$L" train --data "$T/v.csv" --load "$T/l1.ckpt" --epochs 4 --threads 1 >"$T/out" 2>"$T/err"
check "... and on 3 ranks (1 -> 3)" grep -q '^epoch 4 ' "$T/out"

# --- ranks that disagree stop at startup, naming the rank
timeout 60 $MPIRUN -np 1 "$M" $A : -np 1 "$M" $A --set K=4 >"$T/out" 2>"$T/err"; rc=$?
check "different --set on rank 1: exit != 0, 'ranks run different models' naming rank 1" \
    sh -c "[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q 'different models.*rank 1 differs' '$T/err'"
timeout 60 $MPIRUN -np 1 "$V" $VT : -np 1 "$L" $VT >"$T/out" 2>"$T/err"; rc=$?
check "a different model on rank 1: the same error" \
    sh -c "[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q 'different models' '$T/err'"
timeout 60 $MPIRUN -np 1 "$M" $A : -np 1 "$M" eval --data "$T/mix.csv" --load "$T/alone.ckpt" >"$T/out" 2>"$T/err"; rc=$?
check "a different command on rank 1: 'different command lines'" \
    sh -c "[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q 'different command lines' '$T/err'"
timeout 60 $MPIRUN -np 1 "$M" $A : -np 1 "$M" $A --lr 0.1 >"$T/out" 2>"$T/err"; rc=$?
check "another option on rank 1 (--lr): the same error" \
    sh -c "[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q 'different command lines' '$T/err'"
head -1001 "$T/mix.csv" >"$T/mix_short.csv"; mkdir -p "$T/r1"; cp "$T/mix.csv" "$T/r1/x.csv"; cp "$T/mix_short.csv" "$T/x.csv"
timeout 60 $MPIRUN -np 1 sh -c "cd '$T' && exec ./mix train --data x.csv --epochs 1" : \
    -np 1 sh -c "cd '$T/r1' && exec ../mix train --data x.csv --epochs 1" >"$T/out" 2>"$T/err"; rc=$?
check "the same path, other data on rank 1 (1000 vs 3000 items): 'different data'" \
    sh -c "[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q 'different data' '$T/err'"
run2 "$M" params --load "$T/alone.ckpt" >"$T/out" 2>"$T/err"
check "params under mpirun: rank 0 alone prints (once)" sh -c "cmp -s '$T/out' '$T/p1.csv'"

# --- a rank killed with SIGKILL: the job ends within seconds, names the
# rank; the checkpoint of the last epoch loads and resumes
rm -f "$T/k.ckpt"
timeout 60 $MPIRUN -np 2 "$V" train --data "$T/v.csv" $VS --epochs 100000 --batch 8 --threads 1 \
    --every 1 --save "$T/k.ckpt" >"$T/k.out" 2>"$T/k.err" &
tp=$!
i=0; while [ ! -e "$T/k.ckpt" ] && [ $i -lt 150 ]; do sleep 0.2; i=$((i + 1)); done
sleep 0.3
victim=""
mp=$(ps --ppid $tp -o pid= | tr -d ' ')
for p in $(ps --ppid "$mp" -o pid= 2>/dev/null); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1' && victim=$p
done
t0=$(date +%s)
[ -n "$victim" ] && kill -9 "$victim"
wait $tp; rc=$?
took=$(( $(date +%s) - t0 ))
check "kill -9 rank 1 (pid ${victim:-not found}): the job ends in $took s (<= 10), exit != 0" \
    sh -c "[ -n '$victim' ] && [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $took -le 10 ]"
check "... mpirun names the lost rank" grep -q 'rank 1 .*exited on signal 9' "$T/k.err"
"$V" params --load "$T/k.ckpt" >"$T/out" 2>"$T/err"
check "... the last checkpoint is intact" [ $? -eq 0 ]
n=$(grep -c '^epoch' "$T/k.out")
run2 "$V" train --data "$T/v.csv" --load "$T/k.ckpt" --save "$T/k.ckpt" --epochs $((n + 2)) --threads 1 >"$T/out" 2>"$T/err"
check "... and resuming on 2 ranks works (to epoch $((n + 2)))" grep -q "^epoch $((n + 2)) " "$T/out"

suite_end
