#!/bin/sh
# profile_statements.sh — where a generated trainer's time goes, statement
# by statement: compiles MODEL.vlm's generated C with a clock around every
# runtime call of its passes (guide_fwd, guide_bwd, model_fwd, model_bwd,
# sample_fwd), runs it with the arguments given, and prints each
# statement's seconds, calls and share of the timed total, largest first.
# What is not inside those statements (the optimizer step left after the
# backward passes, reading the batch, the loop) is the difference between
# the run's own clock and that total.
# Usage: bench/profile_statements.sh MODEL.vlm COMMAND [ARGS...]
#   e.g. bench/profile_statements.sh examples/vae.vlm train \
#          --data /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz \
#          --epochs 2 --batch 128 --threads 2
# VLMC (default bin/vlmc) and TOP (rows printed, default 25) are overridable.
set -e
[ $# -ge 2 ] || { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
MODEL=$1; shift
VLMC=${VLMC:-$(dirname "$0")/../bin/vlmc}
[ -x "$VLMC" ] || { echo "profile_statements: $VLMC not found; run 'make' first" >&2; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/vlm-prof.XXXXXX")
trap 'rm -rf "$T"' EXIT

# the C compiler command vlmc uses for this model (-v prints it)
if ! "$VLMC" -v "$MODEL" -o "$T/plain" 2> "$T/cc.txt" >/dev/null; then
    grep -v -- ' -o ' "$T/cc.txt" >&2; exit 1
fi
CCLINE=$(grep -m1 -- ' -o ' "$T/cc.txt") || { cat "$T/cc.txt" >&2; exit 1; }
"$VLMC" --no-line --emit-c "$T/model.c" "$MODEL"

LINES=$(($(wc -l < "$T/model.c") + 1))   # one counter per line of the C
{ echo "#define PROF_LINES $LINES"; cat <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double prof_s[PROF_LINES];
static long prof_n[PROF_LINES];
static inline double prof_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
__attribute__((destructor)) static void prof_dump(void)
{
    const char *path = getenv("VLM_PROFILE_OUT");
    FILE *f = path ? fopen(path, "w") : NULL;
    if (!f)
        return;
    for (int i = 0; i < PROF_LINES; i++)
        if (prof_n[i])
            fprintf(f, "%d %.6f %ld\n", i, prof_s[i], prof_n[i]);
    fclose(f);
}
EOF
} > "$T/prolog.h"
# one-line statements of the pass functions, each in its own timed block
awk '
/^static void (guide_fwd|guide_bwd|model_fwd|model_bwd|sample_fwd)\(/ { inside = 1 }
/^}/ { inside = 0 }
{
    if (inside && $0 ~ /^ +((vlm_|memset|memcpy)|[gms]_val\[[0-9]+\] = vlm_)/ && $0 ~ /;$/)
        printf "{ double prof_t0 = prof_now();\n%s\nprof_s[%d] += prof_now() - prof_t0; prof_n[%d]++; }\n", $0, NR, NR
    else
        print
}' "$T/model.c" > "$T/timed.c"

# vlmc's command with the timed source in, the prolog included, our output
# (the words of the line are the compiler's arguments: no quoting in them)
ARGS=""; prev=""
for w in $CCLINE; do
    if [ "$prev" = -o ]; then
        ARGS="$ARGS $T/timed"
    else
        case $w in
            *.c) ARGS="$ARGS -include $T/prolog.h $T/timed.c" ;;
            *) ARGS="$ARGS $w" ;;
        esac
    fi
    prev=$w
done
# shellcheck disable=SC2086  # the compiler's words, split on purpose
$ARGS
[ -x "$T/timed" ] || { echo "profile_statements: the timed build failed" >&2; exit 1; }

start=$(date +%s.%N)
VLM_PROFILE_OUT="$T/prof.txt" "$T/timed" "$@" > "$T/run.out" 2>&1 || {
    cat "$T/run.out" >&2; echo "profile_statements: the run failed" >&2; exit 1; }
end=$(date +%s.%N)
[ -s "$T/prof.txt" ] || { echo "profile_statements: no statement ran" >&2; exit 1; }

total=$(awk '{ s += $2 } END { printf "%.6f", s }' "$T/prof.txt")
printf "%10s %8s %6s  %s\n" seconds calls share statement
sort -k2 -gr "$T/prof.txt" | head -n "${TOP:-25}" | while read -r line s n; do
    printf "%10.4f %8d %5.1f%%  %s\n" "$s" "$n" "$(awk -v s="$s" -v t="$total" 'BEGIN { print (t > 0 ? 100 * s / t : 0) }')" \
        "$(sed -n "${line}p" "$T/model.c" | sed 's/^ *//' | cut -c1-100)"
done
awk -v t="$total" -v a="$start" -v b="$end" 'BEGIN {
    printf "%10.4f          all timed statements\n", t
    printf "%10.4f          the whole run (start-up, data, optimizer, loop)\n", b - a }'
