#!/bin/sh
# driver_cli.sh — the generated executable's command line, end to end, on
# a hand-written mixture model (tests/fixtures/mog_fixture.c) linked with
# libvlm: sample -> train -> eval/posterior/impute/info, exact resume,
# and the failure paths (corrupt checkpoint, wrong data width, unwritable
# output), and misuse: option ranges, write errors on standard output,
# outputs checked before any work, two trainers on one file (locks), the
# temporaries of killed writers, --labels counts and CSV labels, another
# model's checkpoint, divergence before any save. Last line: COUNTS
# passed=N failed=M.
. "$(dirname "$0")/../suite_lib.sh"
suite_dir
suite_show() { head -5; }

M=$T/mog
require "compile fixture" cc -std=c11 -O2 $SANFLAGS -Iruntime tests/fixtures/mog_fixture.c "$LIBDIR/libvlm.a" \
    $(pkg-config --cflags --libs openblas libpng zlib) -ldnnl -lgomp \
    $(pkg-config --libs ompi-c 2>/dev/null || echo -lmpi) -lm -lpthread -o "$M" 2>"$T/err"

run() { "$M" "$@" >"$T/out" 2>"$T/err"; }

# --- help and usage
check "--help lists the commands" sh -c "'$M' --help | grep -q posterior"
for c in train eval sample posterior impute info; do
    check "$c --help" sh -c "'$M' $c --help | grep -q usage"
done
run train --bogus 1; check "unknown option exits 2" [ $? -eq 2 ]
check "bad usage: the error, the usage line and where the options are, not the whole list" \
    sh -c "[ \$(wc -l < '$T/err') -eq 3 ] && head -1 '$T/err' | grep -q 'error: unknown option .--bogus.' \
           && grep -q '^usage: .* train --data' '$T/err' && grep -q 'train --help. for the options' '$T/err'"
run train --set Q=3 --data x; rc=$?
check "--set unknown const exits 2 listing consts" sh -c "[ $rc -eq 2 ] && grep -q 'K=3, D=2' '$T/err'"

# --- data from known parameters (the initialisation at seed 7)
run sample --seed 7 -n 600 --out "$T/train.csv"; check "sample train.csv" [ $? -eq 0 ]
run sample --seed 7 -n 200 --out "$T/test.csv" ; check "sample test.csv" [ $? -eq 0 ]
check "train.csv has 601 lines" [ "$(wc -l < "$T/train.csv")" -eq 601 ]

# --- train, eval, posterior, impute, info
run train --data "$T/train.csv" --test "$T/test.csv" --epochs 30 --batch 50 \
    --lr 0.05 --seed 1 --save "$T/a.ckpt" --log "$T/log.csv"
check "train" [ $? -eq 0 ]
check "train printed per-epoch test objective" grep -q "test log p(x)" "$T/out"
check "metrics log has 30 rows" [ "$(wc -l < "$T/log.csv")" -eq 31 ]
first=$(sed -n 2p "$T/log.csv" | cut -d, -f3); last=$(tail -1 "$T/log.csv" | cut -d, -f3)
check "objective improved ($first -> $last)" awk "BEGIN{exit !($last > $first)}"
run eval --data "$T/test.csv" --load "$T/a.ckpt"; check "eval" [ $? -eq 0 ]
check "eval prints exact log p(x)" grep -q "log p(x).*exact" "$T/out"
run posterior --data "$T/test.csv" --load "$T/a.ckpt" --out "$T/post.csv"
check "posterior" [ $? -eq 0 ]
check "posterior columns" grep -q "p(z=0),p(z=1),p(z=2),z.argmax" "$T/post.csv"
run impute --data "$T/test.csv" --load "$T/a.ckpt" --mask top-half --out "$T/imp.csv"
check "impute" [ $? -eq 0 ]
check "impute reports MSE vs mean filling" grep -q "MSE.*mean of the data: MSE" "$T/out"
run info; check "info" sh -c "[ $? -eq 0 ] && grep -q 'log_sigma' '$T/out'"
run sample --load "$T/a.ckpt" -n 16 --mean --out "$T/means.csv"; check "sample --mean" [ $? -eq 0 ]

# --- resume is bit-identical: 2 epochs straight vs 1 + 1
run train --data "$T/train.csv" --epochs 2 --batch 64 --lr 0.01 --seed 3 --threads 1 --save "$T/straight.ckpt"
check "train 2 epochs" [ $? -eq 0 ]
run train --data "$T/train.csv" --epochs 1 --batch 64 --lr 0.01 --seed 3 --threads 1 --save "$T/half.ckpt"
check "train 1 epoch" [ $? -eq 0 ]
run train --data "$T/train.csv" --epochs 2 --batch 64 --lr 0.01 --seed 3 --threads 1 --load "$T/half.ckpt" --save "$T/resumed.ckpt"
check "resume 1 more epoch" [ $? -eq 0 ]
check "resumed == uninterrupted (cmp)" cmp -s "$T/straight.ckpt" "$T/resumed.ckpt"
run train --data "$T/train.csv" --epochs 4 --every 1 --batch 64 --lr 0.01 --seed 3 --save "$T/every.ckpt"
check "--every 1" [ $? -eq 0 ]

# --- failures: corrupt checkpoint, other model, wrong width, unwritable out
cp "$T/a.ckpt" "$T/corrupt.ckpt"
printf '\377\377\377\377' | dd of="$T/corrupt.ckpt" bs=1 seek=40 conv=notrunc 2>/dev/null
run eval --data "$T/test.csv" --load "$T/corrupt.ckpt"; rc=$?
check "corrupt checkpoint rejected (exit 1, message)" sh -c "[ $rc -eq 1 ] && grep -q 'error:.*corrupt' '$T/err'"
run eval --data "$T/test.csv" --load "$T/a.ckpt" --set K=4; rc=$?
check "checkpoint of another size rejected" sh -c "[ $rc -eq 1 ] && grep -q 'different model' '$T/err'"
printf 'a,b,c\n1,2,3\n4,5,6\n' > "$T/wide.csv"
run train --data "$T/wide.csv" --epochs 1; rc=$?
check "wrong data width: exit 1" [ $rc -eq 1 ]
check "wrong data width: each variable's width, remove the extra column, or --set D=3" \
    grep -q '(`x`: 2, sized by D). If the 1 extra column is not part of .*remove it from the file.*--set D=3' "$T/err"
printf '1\n2\n' > "$T/narrow.csv"
run train --data "$T/narrow.csv" --epochs 1; rc=$?
check "narrower data: the width wanted, or --set D=1" \
    sh -c "[ $rc -eq 1 ] && grep -q 'items have 1 value, .*(.x.: 2, sized by D): give data with 2 values per item, or change the size with --set D=1' '$T/err'"
check "error is one line 'prog: error:'" sh -c "[ \$(wc -l < '$T/err') -eq 1 ] && grep -q '^mog: error: ' '$T/err'"
echo keep > "$T/keep.csv"
run posterior --data "$T/test.csv" --load "$T/a.ckpt" --out "$T/nodir/x.csv"; rc=$?
check "unwritable --out rejected" [ $rc -eq 1 ]
chmod 500 "$T" 2>/dev/null
if [ "$(id -u)" != 0 ]; then
    run posterior --data "$T/test.csv" --load "$T/a.ckpt" --out "$T/keep.csv"; rc=$?
    check "read-only dir: exit 1" [ $rc -eq 1 ]
fi
chmod 700 "$T"
check "existing output untouched" [ "$(cat "$T/keep.csv")" = keep ]
run impute --data "$T/wide.csv" --load "$T/a.ckpt" --out "$T/keep.csv"; rc=$?
check "bad data never touches the output" sh -c "[ $rc -eq 1 ] && [ \"\$(cat '$T/keep.csv')\" = keep ]"
run eval --data "$T/missing.csv" --load "$T/a.ckpt"; rc=$?
check "missing data file: exit 1" [ $rc -eq 1 ]

# --- option ranges: the message states the range, and names -n as -n
run train --data "$T/train.csv" --batch 10000000; rc=$?
check "--batch 10000000: exit 2, states the maximum" \
    sh -c "[ $rc -eq 2 ] && grep -q -- '--batch expects an integer from 1 to 1048576' '$T/err'"
run sample -n 0 --out "$T/n0.csv"; rc=$?
check "sample -n 0: exit 2, names -n (not --n)" \
    sh -c "[ $rc -eq 2 ] && grep -q 'error: -n expects an integer from 1 to' '$T/err' && ! grep -q -- '--n ' '$T/err'"

# --- a write error on standard output is an error
for c in "params" "info" "eval --data $T/test.csv --load $T/a.ckpt" "info --help"; do
    "$M" $c >/dev/full 2>"$T/err"; rc=$?
    check "$c > /dev/full: exit 1 with a message" \
        sh -c "[ $rc -eq 1 ] && grep -q 'cannot write.*standard output' '$T/err'"
done

# --- output paths are checked before any long work: with bad data too,
# the unwritable output is what is reported (it was checked first)
run train --data "$T/wide.csv" --save "$T/nodir/a.ckpt"; rc=$?
check "train: unwritable --save refused before reading data" \
    sh -c "[ $rc -eq 1 ] && grep -q -- '--save .*nodir/a.ckpt' '$T/err'"
run train --data "$T/wide.csv" --log "$T/nodir/log.csv"; rc=$?
check "train: unwritable --log refused before reading data" \
    sh -c "[ $rc -eq 1 ] && grep -q -- '--log .*nodir/log.csv' '$T/err'"
run train --data "$T/train.csv" --epochs 1 --save "$T"; rc=$?
check "train: --save naming a directory refused before training" \
    sh -c "[ $rc -eq 1 ] && grep -q 'is a directory' '$T/err' && ! grep -q '^epoch' '$T/out'"
for c in posterior impute; do
    run $c --data "$T/wide.csv" --load "$T/a.ckpt" --out "$T/nodir/x.csv"; rc=$?
    check "$c: unwritable --out refused before reading data" \
        sh -c "[ $rc -eq 1 ] && grep -q -- '--out .*nodir/x.csv' '$T/err'"
done
run impute --data "$T/wide.csv" --load "$T/a.ckpt" --out "$T/i.csv" --png "$T/nodir/x.png"; rc=$?
check "impute: unwritable --png refused before reading data" \
    sh -c "[ $rc -eq 1 ] && grep -q -- '--png .*nodir/x.png' '$T/err'"
run impute --data "$T/wide.csv" --load "$T/a.ckpt" --out "$T/i.csv" --probs "$T/nodir/p.csv"; rc=$?
check "impute: unwritable --probs refused before reading data" \
    sh -c "[ $rc -eq 1 ] && grep -q -- '--probs .*nodir/p.csv' '$T/err'"
run sample -n 1000000 --out "$T/nodir/s.png"; rc=$?
check "sample: unwritable --out refused before sampling" \
    sh -c "[ $rc -eq 1 ] && grep -q -- '--out .*nodir/s.png' '$T/err'"

# --- two trainers on one --save or --log: the second is refused (an
# advisory lock held for the run); a dead holder's lock does not block
"$M" train --data "$T/train.csv" --epochs 100000000 --save "$T/busy.ckpt" --log "$T/busy.csv" \
    >/dev/null 2>&1 &
holder=$!
for i in $(seq 100); do [ -f "$T/.busy.csv.lock" ] && break; sleep 0.1; done
run train --data "$T/train.csv" --epochs 1 --save "$T/busy.ckpt"; rc=$?
check "second trainer on the same --save refused (exit 1, names the holder)" \
    sh -c "[ $rc -eq 1 ] && grep -q 'busy.ckpt is in use: another process (pid $holder)' '$T/err'"
run train --data "$T/train.csv" --epochs 1 --save "$T/other.ckpt" --log "$T/busy.csv"; rc=$?
check "second trainer on the same --log refused" \
    sh -c "[ $rc -eq 1 ] && grep -q 'busy.csv is in use' '$T/err' && [ ! -f '$T/other.ckpt' ]"
kill -9 $holder; wait $holder 2>/dev/null
check "a killed trainer leaves its lock files" [ -f "$T/.busy.ckpt.lock" ]
run train --data "$T/train.csv" --epochs 1 --save "$T/busy.ckpt" --log "$T/busy.csv"; rc=$?
check "a dead trainer's lock does not block; released on exit" \
    sh -c "[ $rc -eq 0 ] && [ ! -f '$T/.busy.ckpt.lock' ] && [ ! -f '$T/.busy.csv.lock' ]"

# --- a save removes the temporaries of killed writers to the same path,
# and only those: a live process's, an old-style name and another
# target's stay
dead=$(sh -c 'echo $$')
printf 'x%.0s' $(seq 1000) > "$T/.s.ckpt.tmp.$dead.AbC123"
for f in ".s.ckpt.tmp.$$.AbC123" ".s.ckpt.tmp.AbC123" ".t.ckpt.tmp.$dead.AbC123"; do
    echo keep > "$T/$f"
done
run train --data "$T/train.csv" --epochs 1 --save "$T/s.ckpt"; rc=$?
check "save removes a dead writer's temporary, keeps the rest" \
    sh -c "[ $rc -eq 0 ] && [ ! -f '$T/.s.ckpt.tmp.$dead.AbC123' ] && [ -f '$T/.s.ckpt.tmp.$$.AbC123' ] &&
           [ -f '$T/.s.ckpt.tmp.AbC123' ] && [ -f '$T/.t.ckpt.tmp.$dead.AbC123' ]"

# --- posterior --labels: a count that differs from the data's is an error
# before any output; with --limit, a label file for the whole data file
# is fine (its first N labels); one-column CSV labels (a header allowed)
# as well as idx1
run posterior --data "$T/test.csv" --load "$T/a.ckpt" --out "$T/lp.csv"
awk -F, 'NR == 1 { print "cluster" } NR > 1 { print $4 }' "$T/lp.csv" > "$T/labels.csv"
run posterior --data "$T/test.csv" --load "$T/a.ckpt" --out "$T/lp2.csv" --labels "$T/labels.csv"; rc=$?
check "--labels CSV (header, class ids): purity 1 against its own argmax" \
    sh -c "[ $rc -eq 0 ] && grep -q 'purity 1.0000  NMI 1.0000' '$T/out'"
awk 'BEGIN { printf "%c%c%c%c%c%c%c%c", 0, 0, 8, 1, 0, 0, 0, 200 }' > "$T/labels.idx1"
awk -F, 'NR > 1 { printf "%c", $4 + 48 }' "$T/lp.csv" | tr '012' '\000\001\002' >> "$T/labels.idx1"
run posterior --data "$T/test.csv" --load "$T/a.ckpt" --out "$T/lp3.csv" --labels "$T/labels.idx1"; rc=$?
check "--labels idx1 still read" sh -c "[ $rc -eq 0 ] && grep -q 'purity 1.0000' '$T/out'"
head -101 "$T/labels.csv" > "$T/labels100.csv"
rm -f "$T/lp4.csv"
run posterior --data "$T/test.csv" --load "$T/a.ckpt" --out "$T/lp4.csv" --labels "$T/labels100.csv"; rc=$?
check "100 labels for 200 items: exit 1 before any output" \
    sh -c "[ $rc -eq 1 ] && grep -q '100 labels for the 200 items' '$T/err' && [ ! -f '$T/lp4.csv' ] && ! grep -q purity '$T/out'"
run posterior --data "$T/train.csv" --load "$T/a.ckpt" --out "$T/lp4.csv" --labels "$T/labels.csv"; rc=$?
check "200 labels for 600 items: exit 1 before any output (no purity)" \
    sh -c "[ $rc -eq 1 ] && [ ! -f '$T/lp4.csv' ] && [ ! -s '$T/out' ]"
run posterior --data "$T/test.csv" --load "$T/a.ckpt" --out "$T/lp4.csv" --labels "$T/labels.csv" --limit 100; rc=$?
check "--limit 100 with the file's 200 labels: the first 100 used" \
    sh -c "[ $rc -eq 0 ] && grep -q 'purity 1.0000' '$T/out'"
run posterior --data "$T/test.csv" --load "$T/a.ckpt" --out "$T/lp5.csv" --labels "$T/labels100.csv" --limit 100; rc=$?
check "--limit 100 with 100 labels" [ $rc -eq 0 ]
run posterior --data "$T/test.csv" --load "$T/a.ckpt" --out "$T/lp6.csv" --labels "$T/labels100.csv" --limit 50; rc=$?
check "--limit 50 with 100 labels of a 200-item file: exit 1, says both counts" \
    sh -c "[ $rc -eq 1 ] && grep -q 'give one label per item of the file (200), or of those used (50)' '$T/err' && [ ! -f '$T/lp6.csv' ]"
printf 'cluster\n1\n2.5\n' > "$T/badlab.csv"
run posterior --data "$T/test.csv" --load "$T/a.ckpt" --out "$T/lp7.csv" --labels "$T/badlab.csv"; rc=$?
check "a label that is not a class id: file:line:col" \
    sh -c "[ $rc -eq 1 ] && grep -q \"badlab.csv:3:1: '2.5' is not a class id\" '$T/err'"

# --- another model's checkpoint: the message says what differs, and
# names --set only when --set was given
run eval --data "$T/test.csv" --load "$T/a.ckpt" --set K=4; rc=$?
check "checkpoint of another K: the consts and shapes that differ, and --set" \
    sh -c "[ $rc -eq 1 ] && grep -q 'saved with K=3 (here 4).*.mu. is 3x2 in it, 4x2 here' '$T/err' &&
           grep -q -- '--set was given' '$T/err'"
printf 'param m[2];\nobserved x[2] ~ Normal(m, 1);\n' > "$T/other.vlm"
if "${VLMC:-${BINDIR:-bin}/vlmc}" "$T/other.vlm" -o "$T/other" 2>"$T/err" &&
   "$T/other" train --data "$T/train.csv" --epochs 1 --save "$T/other.ckpt" >/dev/null 2>"$T/err"; then
    run eval --data "$T/test.csv" --load "$T/other.ckpt"; rc=$?
    check "another model's checkpoint: names the parameters, no --set advice" \
        sh -c "[ $rc -eq 1 ] && grep -q '.logits., .mu., .log_sigma. are missing from it; it has .m.' '$T/err' &&
               ! grep -q -- '--set' '$T/err'"
    run params --load "$T/other.ckpt" --set D=2; rc=$?
    check "another model's checkpoint with --set: --set not blamed (consts agree)" \
        sh -c "[ $rc -eq 1 ] && grep -q 'missing from it' '$T/err' && ! grep -q -- '--set' '$T/err'"
else
    bad "compile a second model with vlmc"
fi

# --- training that stops on a non-finite gradient before any save does
# not claim that a checkpoint is kept
printf 'param p = 0;\nobserved x ~ Normal(sqrt(p), 1);\n' > "$T/nangrad.vlm"
printf 'x\n0.5\n1.0\n-0.3\n0.7\n' > "$T/ng.csv"
if "${VLMC:-${BINDIR:-bin}/vlmc}" "$T/nangrad.vlm" -o "$T/nangrad" 2>"$T/err"; then
    "$T/nangrad" train --data "$T/ng.csv" --epochs 2 --batch 2 --save "$T/ng_new.ckpt" >"$T/out" 2>"$T/err"; rc=$?
    check "divergence before any save: says nothing was saved, claims no checkpoint" \
        sh -c "[ $rc -eq 1 ] && grep -q 'nothing was saved' '$T/err' && ! grep -q 'is kept' '$T/err' && [ ! -e '$T/ng_new.ckpt' ]"
    echo keep > "$T/ng_old.ckpt"
    "$T/nangrad" train --data "$T/ng.csv" --epochs 2 --batch 2 --save "$T/ng_old.ckpt" >"$T/out" 2>"$T/err"; rc=$?
    check "divergence with an older file at --save: kept as it was" \
        sh -c "[ $rc -eq 1 ] && grep -q 'ng_old.ckpt is kept as it was before this run' '$T/err' && [ \"\$(cat '$T/ng_old.ckpt')\" = keep ]"
else
    bad "compile nangrad.vlm"
fi

suite_end
