#!/bin/sh
# hostile.sh — inputs that must never crash or hang vlmc: each run gets
# `timeout 5` (20 under ASan), must exit with the expected status (1 with a diagnostic, or
# 0 when valid) and must not trip a sanitizer. Big inputs are generated
# here under $BUILD/hostile, never committed.
. "$(dirname "$0")/../suite_lib.sh"
VLMC=${VLMC:-$BINDIR/vlmc}
dir=$BUILD/hostile
# The 5 s budget (--check lowers the model too: about 1.1 s for the 10 MB one
# on an idle machine) is for optimised builds; sanitizer builds check memory
# safety on the same inputs with a longer budget.
limit=5
if grep -q __asan_init "$VLMC" 2>/dev/null; then limit=20; fi
mkdir -p "$dir"
export LC_ALL=C

if [ ! -x "$VLMC" ]; then
    suite_abort "hostile: $VLMC not built"
fi

# run NAME EXPECTED-EXIT FILE [PATTERN]: stderr must match PATTERN if given
# (or be non-empty when EXPECTED-EXIT is 1)
run() {
    name=$1; want=$2; file=$3; pat=$4
    start=$(date +%s.%N)
    timeout $limit "$VLMC" --check "$file" >"$dir/out" 2>"$dir/err"; rc=$?
    end=$(date +%s.%N)
    secs=$(echo "$end $start" | awk '{printf "%.2f", $1 - $2}')
    why=""
    if [ $rc -ge 124 ]; then why="exit $rc (timeout or crash)"
    elif [ $rc -ne "$want" ]; then why="exit $rc, expected $want"
    elif grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:|Segmentation' "$dir/err"; then why="sanitizer report"
    elif [ "$want" -eq 1 ] && [ ! -s "$dir/err" ]; then why="no diagnostic"
    elif [ -n "$pat" ] && ! grep -q -- "$pat" "$dir/err"; then why="diagnostic lacks '$pat'"
    fi
    if [ -n "$why" ]; then
        fail=$((fail + 1)); echo "FAIL $name: $why (${secs}s)"; head -5 "$dir/err"
    else
        ok "$name (${secs}s)"
    fi
}

: >"$dir/empty.vlm"
run empty 1 "$dir/empty.vlm" "no observed variables"

awk 'BEGIN { srand(7); for (i = 0; i < 65536; i++) printf "%c", int(rand() * 256) }' >"$dir/garbage.vlm"
run binary-garbage 1 "$dir/garbage.vlm" "too many errors"

printf 'observed x ~ Normal(0, 1);\000\n' >"$dir/nul.vlm"
run nul-byte 1 "$dir/nul.vlm" "stray NUL byte"

awk 'BEGIN { printf "observed x ~ Normal("; for (i = 0; i < 1048576; i++) printf "a"; print ", 1);" }' >"$dir/longident.vlm"
run long-identifier 1 "$dir/longident.vlm" "identifier is too long"

awk 'BEGIN { printf "observed x ~ Normal("; for (i = 0; i < 100000; i++) printf "(";
             printf "0"; for (i = 0; i < 100000; i++) printf ")"; print ", 1);" }' >"$dir/parens.vlm"
run nested-parens 1 "$dir/parens.vlm" "nested too deeply"

awk 'BEGIN { printf "observed x ~ Normal("; for (i = 0; i < 100000; i++) printf "-"; print "1, 1);" }' >"$dir/minus.vlm"
run nested-minus 1 "$dir/minus.vlm" "nested too deeply"

awk 'BEGIN { printf "observed x ~ Normal(0"; for (i = 0; i < 200000; i++) printf " + 1"; print ", 1);" }' >"$dir/longsum.vlm"
run long-sum-chain 1 "$dir/longsum.vlm" "nested too deeply"

awk 'BEGIN { printf "observed x ~ Normal("; for (i = 0; i < 100000; i++) printf "exp(";
             printf "0"; for (i = 0; i < 100000; i++) printf ")"; print ", 1);" }' >"$dir/calls.vlm"
run nested-calls 1 "$dir/calls.vlm" "nested too deeply"

# ~10 MB of valid declarations: consts and a chain of lets, all used
awk 'BEGIN { n = 125000; print "let hidden_000000 = 1;";
             for (i = 1; i <= n; i++)
                 printf "const width_%06d = %d;\nlet hidden_%06d = hidden_%06d * 0.5 + width_%06d;\n", i, i % 97 + 1, i, i - 1, i;
             printf "observed x ~ Normal(hidden_%06d, 1);\n", n }' >"$dir/big.vlm"
run big-valid-10MB 0 "$dir/big.vlm"
echo "     (big-valid-10MB: $(wc -c <"$dir/big.vlm") bytes)"

awk 'BEGIN { for (i = 0; i < 200000; i++) print "observed x ~ Normal(undefined_name, 1);"; }' >"$dir/bigbad.vlm"
run big-semantic-errors 1 "$dir/bigbad.vlm" "too many errors"

awk 'BEGIN { for (i = 0; i < 200000; i++) print "observed x ~ ;"; }' >"$dir/bigsyntax.vlm"
run big-syntax-errors 1 "$dir/bigsyntax.vlm" "too many errors"

awk 'BEGIN { print "observed x ~ Normal(0, 1);"; printf "/*"; for (i = 0; i < 500000; i++) print "* not closed *"; }' >"$dir/comment.vlm"
run unterminated-comment 1 "$dir/comment.vlm" "unterminated comment"

awk 'BEGIN { for (i = 0; i < 100000; i++) printf "guide { "; print "" }' >"$dir/guides.vlm"
run many-open-guides 1 "$dir/guides.vlm"

awk 'BEGIN { printf "observed x ~ Normal(0, 1);"; for (i = 0; i < 300000; i++) printf " "; print "$" }' >"$dir/longline.vlm"
run long-line 1 "$dir/longline.vlm" "stray"

run missing-file 1 "$dir/does-not-exist.vlm" "cannot open"

printf 'observed x ~ Normal(0, 1);\n' >"$dir/unreadable.vlm"
chmod 000 "$dir/unreadable.vlm"
if [ -r "$dir/unreadable.vlm" ]; then
    run unreadable-as-root 0 "$dir/unreadable.vlm"   # root reads anyway
else
    run unreadable 1 "$dir/unreadable.vlm" "cannot open"
fi
chmod 644 "$dir/unreadable.vlm"

mkdir -p "$dir/a_directory.vlm"
run directory 1 "$dir/a_directory.vlm" "is a directory"

suite_end
