#!/bin/sh
# codegen.sh — vlmc's code generation end to end: every model in
# tests/good/, examples/ and tests/codegen/ compiles through
# `cc -Wall -Wextra -Werror` and its generated backward passes agree with
# finite differences of its generated forward passes (`gradcheck`); then
# compiled models are trained, evaluated, sampled, clustered and imputed,
# a resumed run is bit-identical, and the estimators are ordered.
# Last line: COUNTS passed=N failed=M.
. "$(dirname "$0")/../suite_lib.sh"
VLMC=$BINDIR/vlmc
suite_dir

# --- every model compiles, and its gradients are right
# vlmc's temporary directories go to $TMPDIR: a private one, checked below
suite_tmpdir
for f in tests/good/*.vlm examples/*.vlm tests/codegen/*.vlm; do
    n=$(echo "$f" | tr '/.' '__')
    if "$VLMC" "$f" -o "$T/$n" 2>"$T/err"; then
        if "$T/$n" gradcheck --seed 1 >"$T/out" 2>"$T/err"; then
            ok "$f: compiles, gradcheck ($(tail -1 "$T/out" | sed 's/.*worst/worst/'))"
        else
            cp "$T/out" "$T/err"; bad "$f: gradcheck"
        fi
    else
        bad "$f: compile"
    fi
    rm -f "$T/$n"
done

# --- the driver of the generated C: -o, --emit-c, --plan, errors
check "vlmc --plan prints the estimator" sh -c "'$VLMC' --plan examples/sbn.vlm | grep -q score-function"
check "vlmc --emit-c writes C with #line" sh -c "'$VLMC' examples/mog.vlm --emit-c '$T/mog.c' && grep -q '#line' '$T/mog.c'"
CC=/nonexistent/cc "$VLMC" examples/mog.vlm -o "$T/x" 2>"$T/err"
check "missing C compiler is a clear error" sh -c "[ $? -eq 1 ] && grep -q 'cannot run the C compiler' '$T/err'"
"$VLMC" examples/mog.vlm -o /nonexistent-dir/x 2>"$T/err"
check "unwritable -o is an error" [ $? -eq 1 ]
check "no temporary files left behind" [ -z "$(ls -A "$TMPDIR")" ]

"$VLMC" -O0 --keep-temps examples/mog.vlm -o "$T/mog_O0" 2>"$T/err"
check "vlmc -O0 --keep-temps keeps the generated C" sh -c "[ -x '$T/mog_O0' ] && ls \"\$TMPDIR\"/vlmc-*/mog.c >/dev/null 2>&1"
rm -rf "$TMPDIR"/vlmc-*
mkdir -p "$T/cwd"
(cd "$T/cwd" && "$(abs "$VLMC")" "$top/tests/codegen/mix2d.vlm" 2>"$(abs "$T")/err")
check "vlmc FILE writes ./STEM by default" [ -x "$T/cwd/mix2d" ]
"$VLMC" --no-line examples/mog.vlm --emit-c "$T/nl.c" 2>"$T/err"
check "--no-line: no #line directives" sh -c "! grep -q '#line' '$T/nl.c'"
"$VLMC" --bogus examples/mog.vlm 2>"$T/err"
check "unknown vlmc option exits 2" [ $? -eq 2 ]
"$VLMC" tests/bad/$(ls tests/bad | grep '\.vlm$' | head -1) -o "$T/bad" 2>"$T/err"
check "a model with errors is not compiled (exit 1, no output)" sh -c "[ $? -eq 1 ] && [ ! -e '$T/bad' ]"

# --- a model named with C keywords and runtime symbols runs
K=$T/keywords
"$VLMC" tests/codegen/keywords.vlm -o "$K" 2>"$T/err"
check "keywords model compiles" [ $? -eq 0 ]
"$K" sample --seed 2 -n 200 --out "$T/kw.csv" >"$T/out" 2>"$T/err" &&
"$K" train --data "$T/kw.csv" --epochs 3 --batch 20 --lr 0.05 --save "$T/kw.ckpt" >"$T/out" 2>"$T/err"
check "keywords model trains" [ $? -eq 0 ]

# --- mixture: train, exact eval, posterior, impute, sample
M=$T/mix2d
"$VLMC" tests/codegen/mix2d.vlm -o "$M" 2>"$T/err"
check "mix2d compiles" [ $? -eq 0 ]
"$M" sample --seed 7 -n 600 --out "$T/m_train.csv" >"$T/out" 2>"$T/err"
"$M" sample --seed 7 -n 200 --out "$T/m_test.csv" >"$T/out" 2>"$T/err"
# gradient training on the exact marginal (EM has its own suite, em.sh)
"$M" train --data "$T/m_train.csv" --test "$T/m_test.csv" --epochs 15 --batch 50 --lr 0.05 \
    --optimizer adam --seed 1 --save "$T/m.ckpt" --log "$T/m_log.csv" >"$T/out" 2>"$T/err"
check "mix2d trains" [ $? -eq 0 ]
first=$(sed -n 2p "$T/m_log.csv" | cut -d, -f3); last=$(tail -1 "$T/m_log.csv" | cut -d, -f3)
check "mix2d objective improves ($first -> $last)" holds "$last > $first"
"$M" eval --data "$T/m_test.csv" --load "$T/m.ckpt" >"$T/out" 2>"$T/err"
check "mix2d eval is exact" grep -q "exact" "$T/out"
"$M" posterior --data "$T/m_test.csv" --load "$T/m.ckpt" --out "$T/m_post.csv" >"$T/out" 2>"$T/err"
check "mix2d posterior responsibilities" sh -c "head -1 '$T/m_post.csv' | grep -q 'p(z=2)' && [ \$(wc -l < '$T/m_post.csv') -eq 201 ]"
"$M" sample --load "$T/m.ckpt" -n 10 --out "$T/m_s.csv" >"$T/out" 2>"$T/err"
check "mix2d samples" [ $? -eq 0 ]

# --- PPCA with an automatic local guide: ELBO <= IWAE_10 <= IWAE_100
P=$T/ppca
"$VLMC" tests/codegen/ppca.vlm -o "$P" 2>"$T/err" &&
"$P" sample --seed 3 -n 300 --out "$T/p.csv" >"$T/out" 2>"$T/err" &&
"$P" train --data "$T/p.csv" --epochs 20 --batch 50 --lr 0.02 --save "$T/p.ckpt" >"$T/out" 2>"$T/err"
check "ppca trains" [ $? -eq 0 ]
for k in 10 100; do
    "$P" eval --data "$T/p.csv" --load "$T/p.ckpt" --iw $k --seed 5 >"$T/e$k" 2>"$T/err"
done
elbo=$(awk '/^  ELBO/ {print $2}' "$T/e10")
i10=$(awk '/IWAE_10 / {print $2}' "$T/e10"); se10=$(awk '/log p\(x\) \(IS\)/ {print $6}' "$T/e10")
i100=$(awk '/IWAE_100 / {print $2}' "$T/e100"); se100=$(awk '/log p\(x\) \(IS\)/ {print $6}' "$T/e100")
check "ppca ELBO $elbo <= IWAE_10 $i10" holds "$elbo <= $i10"
check "ppca IWAE_10 $i10 <= IWAE_100 $i100 (+3 SE)" holds "$i10 <= $i100 + 3 * ($se10 + $se100)"

# --- consts changed with --set are recorded in the checkpoint
"$P" sample --set D=6 -n 100 --out "$T/p6.csv" >"$T/out" 2>"$T/err" &&
"$P" train --data "$T/p6.csv" --set D=6 --epochs 1 --save "$T/p6.ckpt" >"$T/out" 2>"$T/err" &&
"$P" eval --data "$T/p6.csv" --load "$T/p6.ckpt" --iw 5 >"$T/out" 2>"$T/err"
check "eval takes --set D=6 from the checkpoint" sh -c "[ $? -eq 0 ] && grep -q 'trained with D=6' '$T/err'"
"$P" eval --data "$T/p6.csv" --load "$T/p6.ckpt" --set D=5 >"$T/out" 2>"$T/err"
check "an explicit --set that disagrees is refused" [ $? -eq 1 ]

# --- small VAE: train, eval, sample PNG, impute; resume is bit-identical
V=$T/small_vae
"$VLMC" tests/codegen/small_vae.vlm -o "$V" 2>"$T/err"
check "small_vae compiles" [ $? -eq 0 ]
"$V" sample --seed 11 -n 500 --out "$T/v.csv" >"$T/out" 2>"$T/err"
"$V" train --data "$T/v.csv" --epochs 8 --batch 50 --lr 0.01 --seed 2 --log "$T/v_log.csv" \
    --save "$T/v.ckpt" >"$T/out" 2>"$T/err"
check "small_vae trains" [ $? -eq 0 ]
first=$(sed -n 2p "$T/v_log.csv" | cut -d, -f3); last=$(tail -1 "$T/v_log.csv" | cut -d, -f3)
check "small_vae ELBO improves ($first -> $last)" holds "$last > $first"
"$V" eval --data "$T/v.csv" --load "$T/v.ckpt" --iw 20 >"$T/out" 2>"$T/err"
elbo=$(awk '/^  ELBO/ {print $2}' "$T/out"); iw=$(awk '/IWAE_20 / {print $2}' "$T/out")
check "small_vae eval ELBO $elbo <= IWAE_20 $iw" holds "$elbo <= $iw"
"$V" sample --load "$T/v.ckpt" -n 16 --shape 4x4 --mean --out "$T/v.png" >"$T/out" 2>"$T/err"
check "small_vae sample PNG" sh -c "[ -s '$T/v.png' ] && head -c 4 '$T/v.png' | grep -q PNG"
"$V" impute --data "$T/v.csv" --load "$T/v.ckpt" --mask top-half --samples 20 --out "$T/v_imp.csv" \
    >"$T/out" 2>"$T/err"
check "small_vae impute top half" [ $? -eq 0 ]
"$V" impute --data "$T/v.csv" --load "$T/v.ckpt" --reconstruct --samples 10 --limit 20 --out "$T/v_rec.csv" \
    --png "$T/v_rec.png" --shape 4x4 >"$T/out" 2>"$T/err"
check "small_vae reconstructions (impute --reconstruct)" sh -c "grep -q reconstructed '$T/out' && [ \$(wc -l < '$T/v_rec.csv') -eq 21 ] && [ -s '$T/v_rec.png' ]"
"$V" posterior --data "$T/v.csv" --load "$T/v.ckpt" --out "$T/v_post.csv" >"$T/out" 2>"$T/err"
check "small_vae posterior (guide mean and scale)" [ $? -eq 0 ]
"$V" train --data "$T/v.csv" --epochs 2 --batch 50 --lr 0.01 --seed 4 --threads 1 --save "$T/v2.ckpt" >"$T/out" 2>"$T/err"
"$V" train --data "$T/v.csv" --epochs 1 --batch 50 --lr 0.01 --seed 4 --threads 1 --save "$T/v1.ckpt" >"$T/out" 2>"$T/err"
"$V" train --data "$T/v.csv" --epochs 2 --load "$T/v1.ckpt" --threads 1 --save "$T/v11.ckpt" >"$T/out" 2>"$T/err"
check "small_vae resume is bit-identical" cmp -s "$T/v2.ckpt" "$T/v11.ckpt"
# each tensor stepped where the backward passes report it ready = one
# optimizer pass after them (Adam and SGD are elementwise), on 2 threads
for opt in adam sgd; do
    "$V" train --data "$T/v.csv" --epochs 2 --batch 50 --lr 0.01 --seed 4 --threads 2 --optimizer $opt \
        --save "$T/vt_$opt.ckpt" >"$T/out" 2>"$T/err"
    VLM_STEP_AFTER_BACKWARD=1 "$V" train --data "$T/v.csv" --epochs 2 --batch 50 --lr 0.01 --seed 4 --threads 2 \
        --optimizer $opt --save "$T/va_$opt.ckpt" >"$T/out" 2>"$T/err"
    check "small_vae: per-tensor $opt steps train bit for bit as one pass after the backward" \
        cmp -s "$T/vt_$opt.ckpt" "$T/va_$opt.ckpt"
done
# a gradient that is Inf at a finite forward pass (d sqrt(p)/dp at p = 0):
# training stops naming the parameter, and an earlier checkpoint is kept
printf 'param p = 0;\nobserved x ~ Normal(sqrt(p), 1);\n' > "$T/nangrad.vlm"
printf 'x\n0.5\n1.0\n-0.3\n0.7\n' > "$T/ng.csv"
echo keep > "$T/ng.ckpt"
"$VLMC" "$T/nangrad.vlm" -o "$T/nangrad" 2>"$T/err" &&
    "$T/nangrad" train --data "$T/ng.csv" --epochs 2 --batch 2 --save "$T/ng.ckpt" >"$T/out" 2>"$T/err"
rc=$?
check "an Inf gradient stops training: exit 1, names the parameter, checkpoint kept" \
    sh -c "[ $rc -eq 1 ] && grep -q 'gradient of parameter .p. is Inf' '$T/err' && [ \"\$(cat '$T/ng.ckpt')\" = keep ]"
"$V" eval --data "$T/m_test.csv" --load "$T/v.ckpt" >"$T/out" 2>"$T/err"
check "wrong data width is refused" sh -c "[ $? -eq 1 ] && grep -q 'error' '$T/err'"
"$M" eval --data "$T/m_test.csv" --load "$T/v.ckpt" >"$T/out" 2>"$T/err"
check "another model's checkpoint is refused" sh -c "[ $? -eq 1 ] && grep -qi 'model' '$T/err'"

suite_end
