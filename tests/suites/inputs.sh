#!/bin/sh
# inputs.sh — `input` variables and the data binding, end to end: a
# regression trained on data its trainer sampled (the weights recovered),
# `sample` conditioned on the inputs of --data rows, images and labels from
# separate aligned files (--data x=IDX3 --data y=IDX1, labels raw), and the
# errors: NaN in an input, a category out of range, files whose row counts
# differ, unknown, unbound and twice-bound names, wrong widths.
# Last line: COUNTS passed=N failed=M.
. "$(dirname "$0")/../suite_lib.sh"
VLMC=$BINDIR/vlmc
suite_dir; suite_tmpdir
# fails(): the last command exited 1 and its stderr has the pattern
fails() { [ "$rc" -eq 1 ] && grep -q -- "$1" "$T/err"; }

# --- a regression: y | u ~ Normal(W u + b, s), W recovered from data the
# trainer itself sampled at known parameters (the initialisation at seed 3)
cat > "$T/reg.vlm" <<'EOF'
const C = 3;
const P = 2;
input u[C];
param W[P, C] = normal(0, 1);
param b[P];
param log_s = -1;
observed y[P] ~ Normal(W @ u + b, exp(log_s));
EOF
R=$T/reg
"$VLMC" "$T/reg.vlm" -o "$R" 2>"$T/err"
check "regression with an input compiles" [ $? -eq 0 ]
check "regression gradcheck" sh -c "'$R' gradcheck >'$T/out' 2>'$T/err'"
# 500 rows of 3 standard normal inputs (Box-Muller in awk, fixed seed)
awk 'BEGIN { srand(5); print "a,b,c";
  for (i = 0; i < 500; i++) { l = "";
    for (k = 0; k < 3; k++) { v = sqrt(-2 * log(1 - rand())) * cos(6.283185307 * rand());
      l = l (k ? "," : "") sprintf("%.4f", v) } print l } }' > "$T/u.csv"
"$R" sample --seed 3 --data "$T/u.csv" --out "$T/s.csv" >"$T/out" 2>"$T/err"
check "sample conditioned on the inputs of --data rows" [ $? -eq 0 ]
check "sample output: one row per --data row, inputs and observed columns" \
    sh -c "[ \$(wc -l < '$T/s.csv') -eq 501 ] && head -1 '$T/s.csv' | grep -qx 'u\[0\],u\[1\],u\[2\],y\[0\],y\[1\]'"
check "sample output carries the inputs as given" \
    sh -c "paste -d, '$T/u.csv' '$T/s.csv' | awk -F, 'NR > 1 { for (k = 1; k <= 3; k++) if (\$k - \$(k + 3) > 1e-6 || \$(k + 3) - \$k > 1e-6) exit 1 }'"
"$R" params --seed 3 > "$T/true.csv"
"$R" train --data "$T/s.csv" --epochs 40 --batch 50 --lr 0.05 --seed 1 --save "$T/r.ckpt" >"$T/out" 2>"$T/err"
check "regression trains on its own samples" [ $? -eq 0 ]
"$R" params --load "$T/r.ckpt" > "$T/fit.csv"
# sd of an estimated weight: s / sqrt(n) = exp(-1) / sqrt(500) = 0.017;
# the tolerance is 6 of them
worst=$(paste -d, "$T/true.csv" "$T/fit.csv" | awk -F, '/^W,/ { n = (NF) / 2;
    for (k = 3; k <= n; k++) { d = $k - $(k + n); if (d < 0) d = -d; if (d > w) w = d } }
    END { printf "%.4f", w }')
check "W recovered within 0.1 (worst |error| $worst)" holds "$worst < 0.1 && $(grep -c '^W,' "$T/fit.csv") == 2"
"$R" eval --data "$T/s.csv" --load "$T/r.ckpt" >"$T/out" 2>"$T/err"
check "eval with inputs" grep -q "log p(x)" "$T/out"
"$R" info >"$T/out" 2>"$T/err"
check "info lists the input and the column order" sh -c "grep -q '^  input  *u' '$T/out' && grep -q 'data columns, in order: u y' '$T/out'"
"$R" impute --data "$T/s.csv" --load "$T/r.ckpt" --reconstruct --limit 5 --out "$T/rec.csv" >"$T/out" 2>"$T/err"
check "impute never imputes an input (copied as given)" \
    sh -c "head -6 '$T/s.csv' | paste -d, - '$T/rec.csv' | awk -F, 'NR > 1 { for (k = 1; k <= 3; k++) if (\$k != \$(k + 5)) exit 1 }'"

# --- a mixture of experts: an enumerated latent whose gate reads the input
E=$T/moe
"$VLMC" tests/codegen/moe_inputs.vlm -o "$E" 2>"$T/err" &&
awk 'BEGIN { srand(9); print "a,b"; for (i = 0; i < 600; i++) printf "%.3f,%.3f\n", 2 * rand() - 1, 2 * rand() - 1 }' > "$T/u2.csv" &&
"$E" sample --seed 4 --data "$T/u2.csv" --out "$T/moe.csv" >"$T/out" 2>"$T/err" &&
"$E" train --data "$T/moe.csv" --epochs 0 --save "$T/moe0.ckpt" >"$T/out" 2>"$T/err" &&
"$E" train --data "$T/moe.csv" --epochs 30 --lr 0.05 --save "$T/moe.ckpt" >"$T/out" 2>"$T/err"
check "mixture of experts with an input trains (E = 3 rows per item)" [ $? -eq 0 ]
"$E" eval --data "$T/moe.csv" --load "$T/moe0.ckpt" >"$T/e0" 2>"$T/err"
"$E" eval --data "$T/moe.csv" --load "$T/moe.ckpt" >"$T/e1" 2>"$T/err"
l0=$(awk '/log p\(x\)/ { print $3 }' "$T/e0"); l1=$(awk '/log p\(x\)/ { print $3 }' "$T/e1")
check "mixture of experts: exact log p(y | u) improves ($l0 -> $l1)" holds "${l1:--99} > ${l0:-0}"
"$E" posterior --data "$T/moe.csv" --load "$T/moe.ckpt" --out "$T/mp.csv" >"$T/out" 2>"$T/err"
check "posterior of a model with inputs" sh -c "head -1 '$T/mp.csv' | grep -q 'p(z=2),z.argmax' && [ \$(wc -l < '$T/mp.csv') -eq 601 ]"

# --- a partly observed class whose prior reads an input: the same numbers
# from one file and from one file per variable (NaN labels summed out)
cat > "$T/po.vlm" <<'EOF'
const K = 3;
input u[2];
param W[K, 2];
param mu[K] = normal(0, 2);
observed y ~ Categorical(logits = W @ u);
observed x ~ Normal(mu[y], 0.3);
EOF
PO=$T/po
"$VLMC" "$T/po.vlm" -o "$PO" 2>"$T/err" &&
"$PO" sample --seed 2 --data "$T/u2.csv" --out "$T/po_s.csv" >"$T/out" 2>"$T/err" &&
awk -F, 'NR == 1 { print; next } { print $1 "," $2 "," (NR % 2 ? $3 : "NaN") "," $4 }' "$T/po_s.csv" > "$T/po.csv" &&
"$PO" train --data "$T/po.csv" --epochs 10 --lr 0.05 --save "$T/po.ckpt" >"$T/out" 2>"$T/err"
check "partly observed class with an input: trains" [ $? -eq 0 ]
cut -d, -f1,2 "$T/po.csv" > "$T/po_u.csv"; cut -d, -f3 "$T/po.csv" > "$T/po_y.csv"; cut -d, -f4 "$T/po.csv" > "$T/po_x.csv"
"$PO" eval --data "$T/po.csv" --load "$T/po.ckpt" >"$T/e0" 2>"$T/err"
"$PO" eval --data u="$T/po_u.csv" --data y="$T/po_y.csv" --data x="$T/po_x.csv" --load "$T/po.ckpt" >"$T/e1" 2>"$T/err"
l0=$(awk '/log p/ { print $3 }' "$T/e0"); l1=$(awk '/log p/ { print $3 }' "$T/e1")
check "one file or one per variable: the same exact log-likelihood ($l0, $l1)" sh -c "[ -n '$l0' ] && [ '$l0' = '$l1' ]"
"$PO" posterior --data "$T/po.csv" --load "$T/po.ckpt" --out "$T/pp0.csv" >"$T/out" 2>"$T/err"
"$PO" posterior --data "$T/po_u.csv" --data y="$T/po_y.csv" --data x="$T/po_x.csv" --load "$T/po.ckpt" \
    --out "$T/pp1.csv" >"$T/out" 2>"$T/err"
check "posterior of the summed class: the same from files bound by name" cmp -s "$T/pp0.csv" "$T/pp1.csv"
sed 's/^1$/5/' "$T/po_y.csv" > "$T/po_ybad.csv"
"$PO" eval --data u="$T/po_u.csv" --data y="$T/po_ybad.csv" --data x="$T/po_x.csv" --load "$T/po.ckpt" 2>"$T/err"; rc=$?
check "a given class out of range in its own file: item and column named" fails 'po_ybad.csv: item [0-9]*, column 1: `y` = 5'

# --- sample's misuse
"$R" sample -n 5 --out "$T/x.csv" 2>"$T/err"; rc=$?
check "sample without --data on a model with inputs says to give --data" fails "sample needs --data"
"$R" sample -n 5 --data "$T/u.csv" --out "$T/x.csv" 2>"$T/err"; rc=$?
check "sample: -n with --data is refused" fails "once per row of --data"
"$R" sample --data "$T/s.csv" --limit 7 --out "$T/x.csv" >"$T/out" 2>"$T/err"
check "sample --data with every column (observed ignored), --limit 7" \
    sh -c "[ \$(wc -l < '$T/x.csv') -eq 8 ]"
"$R" sample --data y="$T/u.csv" --out "$T/x.csv" 2>"$T/err"; rc=$?
check "sample --data binds inputs only" fails "the data of \`sample\` give its inputs only"

# --- NaN in an input is an error naming the row and the column
printf 'a,b,c,y1,y2\n1,2,3,4,5\n1,NaN,3,4,5\n' > "$T/nan.csv"
"$R" train --data "$T/nan.csv" --epochs 1 2>"$T/err"; rc=$?
check "NaN input: error naming row 2, column 2" fails "input \`u\` is missing (NaN) at row 2, column 2"
printf 'a,b,c,y1,y2\n1,2,3,4,5\n1,2,3,NaN,5\n' > "$T/nan_y.csv"
"$R" train --data "$T/nan_y.csv" --epochs 1 >"$T/out" 2>"$T/err"
check "NaN in an observed column stays missing (marginalized)" [ $? -eq 0 ]
printf '1,2\n' > "$T/narrow.csv"
"$R" train --data "$T/narrow.csv" 2>"$T/err"; rc=$?
check "a plain file of the wrong width names the observed and input variables" \
    fails "observed and input variables take 5 (\`u\`: 3, sized by C; \`y\`: 2, sized by P)"

# --- several aligned files: images (idx3, scaled) and labels (idx1, raw)
# 30 items of 2x2 pixels; item i has label i % 3 and every pixel
# 0, 128 or 255 by its label
be32() { printf "\\$(printf %03o $(($1 >> 24 & 255)))\\$(printf %03o $(($1 >> 16 & 255)))\\$(printf %03o $(($1 >> 8 & 255)))\\$(printf %03o $(($1 & 255)))"; }
mkidx() {  # file n labels|images
    f=$1; n=$2
    if [ "$3" = labels ]; then printf '\000\000\010\001' > "$f"; be32 "$n" >> "$f"
    else printf '\000\000\010\003' > "$f"; be32 "$n" >> "$f"; be32 2 >> "$f"; be32 2 >> "$f"; fi
    i=0
    while [ $i -lt "$n" ]; do
        k=$((i % 3))
        if [ "$3" = labels ]; then printf "\\$(printf %03o $k)" >> "$f"
        else p=$(printf %03o $((k * 128 > 255 ? 255 : k * 128))); printf "\\$p\\$p\\$p\\$p" >> "$f"; fi
        i=$((i + 1))
    done
}
mkidx "$T/img-idx3-ubyte" 30 images; mkidx "$T/lab-idx1-ubyte" 30 labels
mkidx "$T/lab24-idx1-ubyte" 24 labels
cat > "$T/ccond.vlm" <<'EOF'
const K = 3;
const D = 4;
input y : category(K);
param mu[K, D];
observed x[D] ~ Normal(mu[y], 0.1);
EOF
CC=$T/ccond
"$VLMC" "$T/ccond.vlm" -o "$CC" 2>"$T/err"
check "class-conditional model with a category input compiles" [ $? -eq 0 ]
"$CC" train --data x="$T/img-idx3-ubyte" --data y="$T/lab-idx1-ubyte" --epochs 150 --batch 10 \
    --lr 0.05 --save "$T/cc.ckpt" >"$T/out" 2>"$T/err"
check "train on --data x=IDX3 --data y=IDX1" [ $? -eq 0 ]
"$CC" params --load "$T/cc.ckpt" > "$T/mu.csv"
# the class means: labels read raw (0, 1, 2), pixels scaled (0, 0.502, 1)
check "labels raw, images scaled: mu = class means $(awk -F, '/^mu/ { printf "%s ", $3 }' "$T/mu.csv")" \
    awk -F, '/^mu,/ { want = $2 == 0 ? 0 : $2 == 1 ? 128 / 255 : 1;
        for (k = 3; k <= NF; k++) { d = $k - want; if (d > 0.03 || d < -0.03) bad = 1 } n++ }
        END { exit bad || n != 3 }' "$T/mu.csv"
"$CC" train --data y="$T/lab-idx1-ubyte" --data x="$T/img-idx3-ubyte" --test x="$T/img-idx3-ubyte" \
    --test y="$T/lab-idx1-ubyte" --epochs 1 >"$T/out" 2>"$T/err"
check "named files in any order; --test NAME=FILE" grep -q "test log p(x)" "$T/out"
"$CC" sample --data y="$T/lab-idx1-ubyte" --load "$T/cc.ckpt" --mean --limit 4 --out "$T/cs.csv" >"$T/out" 2>"$T/err"
check "sample given raw labels: y column 0,1,2,0" sh -c "[ \"\$(cut -d, -f1 '$T/cs.csv' | tr '\n' ' ')\" = 'y 0 1 2 0 ' ]"
"$CC" train --data x="$T/img-idx3-ubyte" --data y="$T/lab24-idx1-ubyte" 2>"$T/err"; rc=$?
check "files with different row counts: error naming both files and counts" \
    fails "img-idx3-ubyte has 30 items but .*lab24-idx1-ubyte has 24"
"$CC" train --data x="$T/img-idx3-ubyte" --data z="$T/lab-idx1-ubyte" 2>"$T/err"; rc=$?
check "unknown variable name lists the model's data variables" \
    fails "no observed or input variable \`z\` (its data: \`y\` (1) and \`x\` (4))"
"$CC" train --data x="$T/img-idx3-ubyte" 2>"$T/err"; rc=$?
check "a variable bound to no file" fails "input \`y\` has no data: give --data y=FILE"
"$CC" train --data x="$T/lab-idx1-ubyte" --data y="$T/img-idx3-ubyte" 2>"$T/err"; rc=$?
check "a file of the wrong width names the variable and both widths" \
    fails "\`x\` takes 4 values per item, but the file's items have 1"
"$CC" train --data y="$T/lab-idx1-ubyte" --data y="$T/lab-idx1-ubyte" --data x="$T/img-idx3-ubyte" 2>"$T/err"; rc=$?
check "a variable bound twice" fails "\`y\` is bound to two files"
"$CC" train --data "$T/img-idx3-ubyte" --data y="$T/lab-idx1-ubyte" --epochs 1 >"$T/out" 2>"$T/err"
check "a plain file holds the variables not named" [ $? -eq 0 ]
printf '0,1,0,0,0\n4,1,1,1,1\n' > "$T/c4.csv"
"$CC" train --data "$T/c4.csv" 2>"$T/err"; rc=$?
check "category input out of 0..K-1: error naming row and column" \
    fails "input \`y\` is a category(3): an integer in 0..2, but row 2, column 1 holds 4"
printf '0.5,1,0,0,0\n' > "$T/c5.csv"
"$CC" train --data "$T/c5.csv" 2>"$T/err"; rc=$?
check "category input not an integer" fails "row 1, column 1 holds 0.5"

# --- Fashion-MNIST: images and labels from their own files
FM=/usr/share/datasets/fashion-mnist
if [ -r "$FM/train-labels-idx1-ubyte.gz" ] && [ -r "$FM/t10k-images-idx3-ubyte.gz" ]; then
    cat > "$T/clf.vlm" <<'EOF'
const D = 784;
const K = 10;
input x[D];
net f = linear(D, K);
observed y ~ Categorical(logits = f(x));
EOF
    "$VLMC" "$T/clf.vlm" -o "$T/clf" 2>"$T/err" &&
    "$T/clf" train --data x="$FM/train-images-idx3-ubyte.gz" --data y="$FM/train-labels-idx1-ubyte.gz" \
        --limit 2000 --epochs 3 --lr 0.01 --save "$T/clf.ckpt" >"$T/out" 2>"$T/err" &&
    "$T/clf" eval --data x="$FM/t10k-images-idx3-ubyte.gz" --data y="$FM/t10k-labels-idx1-ubyte.gz" \
        --limit 1000 --load "$T/clf.ckpt" >"$T/out" 2>"$T/err"
    lp=$(awk '/log p\(x\)/ { print $3 }' "$T/out")
    check "Fashion-MNIST classifier (input x, labels raw): test log p(y|x) $lp > -1.2 (chance -2.30)" \
        holds "${lp:--99} > -1.2"
    "$T/clf" train --data x="$FM/train-images-idx3-ubyte.gz" --data y="$FM/t10k-labels-idx1-ubyte.gz" \
        2>"$T/err"; rc=$?
    check "Fashion-MNIST images with the test labels: 60000 vs 10000 items" \
        fails "has 60000 items but .*t10k-labels-idx1-ubyte.gz has 10000"
else
    echo "skip Fashion-MNIST (not installed)"
fi

suite_end
