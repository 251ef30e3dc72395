#!/bin/sh
# timeline.sh — what each of a generated trainer's threads does, and when:
# compiles MODEL.vlm, runs it with the arguments given and VLM_TIMELINE
# on (runtime/timeline.c: every slice of the pool's parallel loops and
# every background task, with its thread, start, end and function), and
# prints (1) each thread's busy time, (2) each function's thread-seconds,
# and (3) one training step from the middle of the run, event by event.
# The caller's time between its events is the generated code's own
# statements outside the pool (the 20-wide layers, noise, ...), or
# waiting for a slice of the other thread.
# Usage: bench/timeline.sh MODEL.vlm COMMAND [ARGS...]
#   e.g. bench/timeline.sh examples/vae.vlm train \
#          --data /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz \
#          --epochs 2 --batch 128 --threads 2
# VLMC (default bin/vlmc) is overridable; the run's own output goes to
# standard error.
set -e
[ $# -ge 2 ] || { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
MODEL=$1; shift
VLMC=${VLMC:-$(dirname "$0")/../bin/vlmc}
[ -x "$VLMC" ] || { echo "timeline: $VLMC not found; run 'make' first" >&2; exit 1; }
command -v addr2line >/dev/null || { echo "timeline: addr2line (binutils) not found" >&2; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/vlm-timeline.XXXXXX")
trap 'rm -rf "$T"' EXIT

"$VLMC" "$MODEL" -o "$T/prog" >&2
VLM_TIMELINE="$T/events" "$T/prog" "$@" >&2
[ -s "$T/events" ] || { echo "timeline: the run wrote no timeline" >&2; exit 1; }

# function offsets -> names
awk 'NR > 1 { print $5 }' "$T/events" | sort -u > "$T/offsets"
addr2line -f -e "$T/prog" $(cat "$T/offsets") | awk 'NR % 2 == 1' > "$T/names"
paste -d' ' "$T/offsets" "$T/names" > "$T/map"

head -1 "$T/events"
awk 'NR == FNR { name[$1] = $2; next }
     FNR == 1 { next }
     { print $3, $4, $1, $2, name[$5] }' "$T/map" "$T/events" | sort -n > "$T/ev"

echo
echo "== busy time per thread (slices and tasks), over the recorded span"
awk '{ if (NR == 1 || $1 < lo) lo = $1; if ($2 > hi) hi = $2; busy[$3] += $2 - $1 }
     END { printf "span %.3f s\n", (hi - lo) / 1e6
           for (t in busy) printf "thread %d: %.3f s busy (%.0f%%)\n", t, busy[t] / 1e6, 100 * busy[t] / (hi - lo) }' "$T/ev"

echo
echo "== thread-seconds per function (s = loop slice, t = background task, i = loop run whole)"
awk '{ k = $5 " (" $4 ")"; s[k] += $2 - $1; n[k]++ }
     END { for (k in s) printf "%10.4f %8d  %s\n", s[k] / 1e6, n[k], k }' "$T/ev" | sort -rn

# one step: from one start of the batch filler (fill_items) to the next,
# taken from the middle of the run
awk '$5 == "fill_items" && ($1 > last + 50 || !seen) { print $1; seen = 1 } $5 == "fill_items" { last = $2 }' "$T/ev" > "$T/steps"
N=$(wc -l < "$T/steps")
if [ "$N" -lt 3 ]; then
    echo
    echo "(fewer than 3 training batches recorded: no step to show)"
    exit 0
fi
A=$(sed -n "$((N / 2))p" "$T/steps"); B=$(sed -n "$((N / 2 + 1))p" "$T/steps")
echo
echo "== one training step (batch $((N / 2)) of $N), microseconds from its start"
echo "   start      end  length  thread  function"
awk -v a="$A" -v b="$B" '$1 >= a && $1 < b {
         printf "%8.1f %8.1f %7.1f  %6d  %s (%s)\n", $1 - a, $2 - a, $2 - $1, $3, $5, $4 }
     END { printf "%8.1f                   the step\n", b - a }' "$T/ev"
