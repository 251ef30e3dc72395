#!/bin/sh
# run.sh — `make bench`: vlm and its peers side by side in one run, on the
# same data, on this machine; prints a Markdown table and writes it, with
# the machine and the commands, between the bench markers of
# docs/performance.md (the rest of that file, e.g. the profile, is kept).
# Judges nothing against absolute thresholds: it reports times, ratios and
# "met"/"missed" against the targets of issues 7 and 15. A peer that is not
# installed is reported as "skipped", never as a win.
#
#   make bench                  # full (~10 min on 2 cores)
#   BENCH_QUICK=1 make bench    # 1 VAE epoch, 10k-image mixture, --quick kernel
#   BENCH_TINY=1 BENCH_OUT=/tmp/p.md sh bench/run.sh   # seconds (make test)
#
# Overridable: BENCH_OUT (the doc; "-" = stdout only), BENCH_DIR (data),
# BENCH_ROUNDS, BENCH_VAE_EPOCHS, BENCH_MOG_EPOCHS, BENCH_N (train subset),
# BENCH_TEST_N, PYTHON (default /usr/bin/python3: Debian's torch/sklearn).
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}; BINDIR=${BINDIR:-bin}; LIBDIR=${LIBDIR:-lib}
export BUILD LIBDIR
VLMC=$BINDIR/vlmc
PY=${PYTHON:-/usr/bin/python3}
DIR=${BENCH_DIR:-/usr/share/datasets/fashion-mnist}
OUT=${BENCH_OUT:-docs/performance.md}
W=${BENCH_WORK:-$BUILD/bench/run}
rm -rf "$W"; mkdir -p "$W"

MODE=full; TORCH_CONFIGS=; VLM_CONFIGS=
ROUNDS=3; VAE_E=3; MOG_E=6; MOG_N=0; N=0; TEST_N=0; COMPILE_REPS=3
KQUICK=; EXAMPLES=$(ls examples/*.vlm)
if [ "${BENCH_QUICK:-0}" != 0 ]; then
    MODE=quick; ROUNDS=1; VAE_E=1; MOG_E=3; MOG_N=10000; COMPILE_REPS=1; KQUICK=--quick
fi
if [ "${BENCH_TINY:-0}" != 0 ]; then
    MODE=tiny; ROUNDS=1; VAE_E=1; MOG_E=2; N=512; TEST_N=256; MOG_N=512
    COMPILE_REPS=1; KQUICK=--quick; EXAMPLES=examples/vae.vlm; TORCH_CONFIGS="1:default 1:bf16"
    VLM_CONFIGS="2:onednn:fp32 2:openblas:fp32 2:onednn:bf16"
fi
ROUNDS=${BENCH_ROUNDS:-$ROUNDS}; VAE_E=${BENCH_VAE_EPOCHS:-$VAE_E}
MOG_E=${BENCH_MOG_EPOCHS:-$MOG_E}; N=${BENCH_N:-$N}; TEST_N=${BENCH_TEST_N:-$TEST_N}
[ "$N" != 0 ] && MOG_N=$N

if [ ! -x "$VLMC" ] || [ ! -f "$LIBDIR/libvlm.a" ]; then
    echo "bench: $VLMC or $LIBDIR/libvlm.a missing; run 'make' first" >&2; exit 1
fi
have_data=1
[ -f "$DIR/train-images-idx3-ubyte.gz" ] && [ -f "$DIR/t10k-images-idx3-ubyte.gz" ] || have_data=0
have_torch=0; have_sk=0
[ -x "$PY" ] && "$PY" -c 'import torch, numpy' 2>/dev/null && have_torch=1
[ -x "$PY" ] && "$PY" -c 'import sklearn, numpy' 2>/dev/null && have_sk=1
[ -f bench/gmm_sklearn.py ] || have_sk=0
have_time=0; [ -x /usr/bin/time ] && have_time=1

now() { date +%s.%N; }
# awk helpers: arithmetic and formatting of numbers the programs printed
calc() { awk "BEGIN { x = $1; printf \"%s\", x }"; }
fmt()  { awk -v f="$1" -v x="$2" 'BEGIN { if (x == "" || x == "-") print "-"; else printf f, x }'; }
minof() { awk 'NF { if (m == "" || $1 < m) m = $1 } END { print (m == "" ? "-" : m) }'; }
# run CMD... with peak RSS (KiB) written to $RSSF (when /usr/bin/time exists)
timed() {
    if [ $have_time = 1 ]; then /usr/bin/time -f '%M' -o "$RSSF" "$@"
    else echo - > "$RSSF"; "$@"; fi
}
rss_mb() { v=$(tail -1 "$1" 2>/dev/null); fmt '%.0f' "$(calc "${v:-0} / 1024")"; }
verdict() { awk "BEGIN { print (($1) ? \"met\" : \"missed\") }"; }
log() { echo "bench: $*" >&2; }

# ------------------------------------------------------------------ data
# A subset is the first N images (both peers read the same ones).
subset() {  # src.gz n dst  — an uncompressed IDX file of the first n images
    printf "\000\000\010\003$(printf '\\%03o\\%03o\\%03o\\%03o' $(($2 >> 24 & 255)) $(($2 >> 16 & 255)) $(($2 >> 8 & 255)) $(($2 & 255)))\000\000\000\034\000\000\000\034" > "$3"
    gzip -dc "$1" | tail -c +17 | head -c $(($2 * 784)) >> "$3"
}
TRAIN=$DIR/train-images-idx3-ubyte.gz; TEST=$DIR/t10k-images-idx3-ubyte.gz
if [ $have_data = 1 ]; then
    [ "$N" != 0 ] && { subset "$TRAIN" "$N" "$W/train.idx"; TRAIN=$W/train.idx; }
    [ "$TEST_N" != 0 ] && { subset "$TEST" "$TEST_N" "$W/test.idx"; TEST=$W/test.idx; }
    MOGTRAIN=$DIR/train-images-idx3-ubyte.gz
    [ "$MOG_N" != 0 ] && { subset "$MOGTRAIN" "$MOG_N" "$W/mogtrain.idx"; MOGTRAIN=$W/mogtrain.idx; }
fi

# ------------------------------------------------------------------ machine
sh bench/kernel_bench.sh --info > "$W/blas" 2>&1 || echo "openblas: unknown" > "$W/blas"
CPU=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
ISA=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'avx2|fma|avx512f|avx512_bf16|amx_bf16|amx_tile' | tr '\n' ' ')
# the measured matmul peak (GFLOP/s): one large product through the GEMM
# boundary, fp32 on both backends and bf16 on oneDNN, at 1 and 2 threads
log "matmul peak"
sh bench/kernel_bench.sh --peak $KQUICK > "$W/peak" 2>&1 || echo "peak: failed" > "$W/peak"
peak_of() {  # threads, "fp32 onednn" | "fp32 openblas" | "bf16 onednn":
    # the higher of the two measurements (before and after the VAE runs)
    cat "$W/peak" "$W/peak.after" 2>/dev/null | awk -v t="threads=$1" -v k="$2" '
        $3 == t { i = index($0, k " "); if (i) { split(substr($0, i + length(k) + 1), a, " ")
                  if (a[1] + 0 > 0 && (b == "" || a[1] + 0 > b + 0)) b = a[1] } }
        END { if (b != "") print b }'
}
BF16_OK=0; grep -q 'bf16 onednn' "$W/peak" && BF16_OK=1
PYV=skipped; [ $have_torch = 1 ] && PYV=$("$PY" -c 'import torch, numpy; print("torch", torch.__version__, "numpy", numpy.__version__)')
SKV=skipped; [ $have_sk = 1 ] && SKV=$("$PY" -c 'import sklearn; print("scikit-learn", sklearn.__version__)')
{
    echo "- CPU: ${CPU:-unknown}; $(nproc) logical CPUs; $(lscpu 2>/dev/null | sed -n 's/^Thread(s) per core: *//p') thread(s) per core"
    echo "- CPU features: ${ISA:-none of avx2/fma/avx512f/avx512_bf16/amx_bf16}"
    echo "- BLAS: $(sed -n 1p "$W/blas")"
    echo "- oneDNN: $(sed -n 2p "$W/blas")"
    echo "- measured matmul peak (one $(sed -n 's/^peak n=\([0-9]*\).*/\1/p' "$W/peak" | head -1)^3 product): $(sed 's/^peak n=[0-9]* //; s/  */ /g' "$W/peak" | tr '\n' ';' | sed 's/;$//; s/;/; /g')"
    echo "- peers: $PYV; $SKV (via $PY)"
    echo "- cc: $(cc --version | head -1); kernel $(uname -r)"
    dirty=$(git status --porcelain -- runtime compiler grammar 2>/dev/null | wc -l)
    [ "$dirty" -gt 0 ] && dirty=" plus $dirty uncommitted file(s) in runtime/, compiler/, grammar/" || dirty=
    echo "- vlm commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$dirty; mode $MODE; $(date -u '+%Y-%m-%d %H:%M UTC'); load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$W/machine"

T=$W/table; : > "$T"
row() { echo "| $* |" >> "$T"; }

# ------------------------------------------------------------------ 1. VAE
# Each configuration runs VAE_E epochs per round (round r: seed r); its
# time is its fastest epoch (the training pass only) over all rounds;
# configurations are interleaved so the machine's drift hits all alike.
log "VAE ($MODE: $VAE_E epochs x $ROUNDS rounds)"
# vlm: threads:backend:precision (bf16 where the CPU has it); torch:
# threads:variant, variant default | openblas1 | bf16 (autocast) | bf16openblas1
if [ -z "$VLM_CONFIGS" ]; then
    VLM_CONFIGS="1:onednn:fp32 2:onednn:fp32 1:openblas:fp32 2:openblas:fp32 1:onednn:bf16 2:onednn:bf16"
fi
[ $BF16_OK = 1 ] || VLM_CONFIGS=$(echo "$VLM_CONFIGS" | tr ' ' '\n' | grep -v bf16 | tr '\n' ' ')
# torch at 2 threads runs its OpenMP pool and OpenBLAS's own pool side by
# side; on 2 cores they oversubscribe (measured: 206 s/epoch against 5 s at
# 1 thread), so the peer's 2-thread run gets OPENBLAS_NUM_THREADS=1, its
# best setting. TORCH_CONFIGS="1:default 2:default 2:openblas1" measures all.
TORCH_CONFIGS=${TORCH_CONFIGS:-"1:default 2:openblas1 1:bf16 2:bf16openblas1"}
: > "$W/vae.res"   # peer config round secs test_elbo rss_mb
vae_ok=0
if [ $have_data = 1 ] && "$VLMC" examples/vae.vlm -o "$W/vae" 2>"$W/vae.cc"; then vae_ok=1; fi
# VaDE (examples/vade.vlm): the VAE's nets with a 10-cluster prior summed
# out; interleaved with the VAE in each round (issue 16: <= 1.5x its epoch)
: > "$W/vade.res"  # threads round secs
vade_ok=0
if [ $vae_ok = 1 ] && "$VLMC" examples/vade.vlm -o "$W/vade" 2>"$W/vade.cc"; then vade_ok=1; fi
r=1
while [ $vae_ok = 1 ] && [ $r -le "$ROUNDS" ]; do
    for c in $VLM_CONFIGS; do
        t=${c%%:*}; be=$(echo "$c" | cut -d: -f2); pr=${c##*:}
        RSSF=$W/rss.vlm.$c.$r
        timed "$W/vae" train --data "$TRAIN" --epochs "$VAE_E" --batch 128 --lr 1e-3 \
            --threads "$t" --gemm "$be" --precision "$pr" --seed "$r" --log "$W/vlm.$c.$r.csv" \
            --save "$W/vlm.$c.$r.ckpt" > "$W/vlm.$c.$r.out" 2>&1 || { log "vlm VAE failed"; cat "$W/vlm.$c.$r.out" >&2; }
        s=$(awk -F, 'NR > 1 { d = $5 - p; p = $5; print d }' "$W/vlm.$c.$r.csv" 2>/dev/null | minof)
        # line-buffered, so a crash after the figures are printed (at exit)
        # still leaves them; the crash itself is reported. Eval in fp32.
        stdbuf -oL "$W/vae" eval --data "$TEST" --load "$W/vlm.$c.$r.ckpt" --iw 1 --batch 1000 \
              --threads "$t" > "$W/eval.$c.$r.out" 2>&1 ||
            echo "vae eval exit status $? ($(tail -1 "$W/eval.$c.$r.out"))" >> "$W/crashes"
        e=$(awk '$1 == "ELBO" { print $2 }' "$W/eval.$c.$r.out")
        echo "vlm $c $r $s ${e:--} $(rss_mb "$RSSF")" >> "$W/vae.res"
        [ $vade_ok = 1 ] && [ "$be:$pr" = onednn:fp32 ] || continue
        "$W/vade" train --data "$TRAIN" --epochs "$VAE_E" --batch 128 --lr 1e-3 --threads "$t" \
            --seed "$r" --log "$W/vade.$t.$r.csv" > "$W/vade.$t.$r.out" 2>&1 ||
            { log "vlm VaDE failed"; cat "$W/vade.$t.$r.out" >&2; }
        s=$(awk -F, 'NR > 1 { d = $5 - p; p = $5; print d }' "$W/vade.$t.$r.csv" 2>/dev/null | minof)
        echo "$t $r $s" >> "$W/vade.res"
    done
    for c in $TORCH_CONFIGS; do
        [ $have_torch = 1 ] || break
        case $c in *bf16*) [ $BF16_OK = 1 ] || continue ;; esac
        t=${c%%:*}; v=${c#*:}
        RSSF=$W/rss.torch.$c.$r
        case $v in *openblas1) set -- env OPENBLAS_NUM_THREADS=1 ;; *) set -- env ;; esac
        case $v in bf16*) set -- "$@" "$PY" bench/vae_torch.py --bf16 ;; *) set -- "$@" "$PY" bench/vae_torch.py ;; esac
        timed "$@" --dir "$DIR" --threads "$t" --epochs "$VAE_E" \
            --n "$N" --test-n "$TEST_N" --seed "$r" > "$W/torch.$c.$r.out" 2>&1 ||
            { log "torch VAE failed"; tail -5 "$W/torch.$c.$r.out" >&2; }
        s=$(awk '$1 == "epoch" { print $4 }' "$W/torch.$c.$r.out" | minof)
        e=$(awk '$1 == "epoch" { e = $8 } END { print e }' "$W/torch.$c.$r.out")
        echo "torch $c $r $s ${e:--} $(rss_mb "$RSSF")" >> "$W/vae.res"
    done
    r=$((r + 1))
done
# the peak again, after the VAE runs: the machine's speed moves within
# minutes, and the fp32 target compares with the higher of the two
log "matmul peak (after the VAE runs)"
sh bench/kernel_bench.sh --peak $KQUICK > "$W/peak.after" 2>&1 || : > "$W/peak.after"
[ -s "$W/peak.after" ] && echo "- measured matmul peak after the VAE runs: $(sed 's/^peak n=[0-9]* //; s/  */ /g' "$W/peak.after" | tr '\n' ';' | sed 's/;$//; s/;/; /g') (the targets use the higher of the two)" >> "$W/machine"
# per configuration: best time over rounds; test ELBO averaged over the
# rounds (round r trains with seed r: one seed's ELBO varies by ~0.7 nats,
# more than the 0.5-nat target); the largest peak RSS
awk '{ k = $1 " " $2; if (!(k in s)) o[++n] = k
       if (!(k in s) || $4 < s[k]) s[k] = $4
       if ($5 != "-") { e[k] += $5; c[k]++ }
       if ($6 > m[k]) m[k] = $6 }
     END { for (i = 1; i <= n; i++) { k = o[i]
             print k, s[k], (c[k] ? sprintf("%.4f", e[k] / c[k]) : "-"), m[k] } }' "$W/vae.res" > "$W/vae.best"
# best PEER PATTERN: the fastest configuration of PEER whose name matches
# PATTERN (awk regex), as "peer config secs elbo rss"
best() { awk -v p="$1" -v k="$2" '$1 == p && $2 ~ k && $3 != "-" && (b == "" || $3 < b) { b = $3; l = $0 } END { print l }' "$W/vae.best"; }
VB=$(best vlm fp32); TB=$(best torch '^[0-9]+:(default|openblas1)$')
VB16=$(best vlm bf16); TB16=$(best torch bf16)
cname() {  # a configuration as the table says it
    case $1 in
        vlm) echo "$2" | awk -F: '{ printf "vlm %s %s, %s thread(s)", $2, $3, $1 }' ;;
        *) echo "$2" | awk -F: '{ v = $2; n = (v ~ /bf16/) ? "bf16 autocast" : "fp32"
               o = (v ~ /openblas1/) ? ", OPENBLAS_NUM_THREADS=1" : ""
               printf "torch %s, %s thread(s)%s", n, $1, o }' ;;
    esac
}
# the epoch's matrix-product work (examples/vae.vlm, 784-400-20): per item
# forward 2(DH + 2HZ + ZH + HD) flops, backward twice that less the input
# layer's dx (the data need no gradient)
EPOCH_GF=$(calc "(3 * 2 * (784*400 + 2*400*20 + 20*400 + 400*784) - 2 * 784*400) * ${N:-0} / 1e9")
[ "$N" = 0 ] && EPOCH_GF=$(calc "(3 * 2 * (784*400 + 2*400*20 + 20*400 + 400*784) - 2 * 784*400) * 60000 / 1e9")
row "**VAE 784-400-20, Fashion-MNIST, batch 128, Adam 1e-3** | | |"
while read -r p c s e m; do
    row "$(cname "$p" "$c"): s/epoch; test ELBO after $VAE_E ep. (mean of $ROUNDS seeds); peak RSS | $(fmt %.2f "$s") s | $(fmt %.2f "$e") | $(fmt %s "$m") MB"
done < "$W/vae.best"
if [ $vae_ok = 0 ]; then
    row "VAE | skipped ($([ $have_data = 1 ] && echo 'vae.vlm did not compile' || echo "no data in $DIR")) | |"
else
    set -- $VB; vs=$3; ve=$4; vc=$2
    vm=$(awk '$1 == "vlm" && $5 > m { m = $5 } END { print m + 0 }' "$W/vae.best")
    # the machine's fp32 peak: the faster backend on the large product
    P32=$(peak_of 2 "fp32 onednn"); P32B=onednn; P16=$(peak_of 2 "bf16 onednn")
    P32O=$(peak_of 2 "fp32 openblas")
    if [ -n "$P32O" ] && { [ -z "$P32" ] || [ "$(calc "$P32O > $P32")" = 1 ]; }; then
        P32=$P32O; P32B=openblas
    fi
    if [ -n "$P32" ]; then
        ideal=$(calc "$EPOCH_GF / $P32")
        row "VAE epoch: $(fmt %.1f "$EPOCH_GF") GFLOP of matrix products; at the measured fp32 peak ($P32 GFLOP/s, $P32B, 2 threads) $(fmt %.2f "$ideal") s; vlm fp32 best ($(cname vlm "$vc")) reaches | $(fmt %.0f%% "$(calc "100 * $ideal / $vs")") of that peak | vlm epoch / matmul time at peak: $(fmt %.2fx "$(calc "$vs / $ideal")") | $(verdict "$vs <= 1.25 * $ideal")"
    fi
    if [ -n "$VB16" ] && [ -n "$P16" ]; then
        set -- $VB16
        row "VAE bf16: at the measured bf16 peak ($P16 GFLOP/s, 2 threads) $(fmt %.2f "$(calc "$EPOCH_GF / $P16")") s; vlm bf16 best ($(cname vlm "$2")) reaches | $(fmt %.0f%% "$(calc "100 * $EPOCH_GF / $P16 / $3")") of that peak | - | -"
    fi
    if [ -z "$TB" ]; then
        row "PyTorch VAE | skipped (torch not importable by $PY) | |"
    else
        set -- $TB; ts=$3; te=$4; tc=$2
        ratio=$(calc "$vs / $ts")
        row "VAE fp32 epoch time vlm/PyTorch (best configs: $(cname vlm "$vc"); $(cname torch "$tc")) | $(fmt %.2fx "$ratio") | target <= 0.35x (or within 1.25x of the matmul time at peak, above) | $(verdict "$ratio <= 0.35")"
        # issue 15's fp32 target: 0.35x of PyTorch, or, where 0.35x of
        # PyTorch is less time than the products alone take at the
        # measured peak, within 1.25x of that time
        if [ -n "$P32" ]; then
            lim=$(calc "0.35 * $ts")
            if [ "$(calc "$ratio <= 0.35")" = 1 ]; then
                why="0.35x of PyTorch"; ok=1
            elif [ "$(calc "$lim < $ideal")" = 1 ]; then
                why="0.35x of PyTorch ($(fmt %.2f "$lim") s) is below the matmul time at peak ($(fmt %.2f "$ideal") s): the 1.25x figure applies"
                ok=$(calc "$vs <= 1.25 * $ideal")
            else
                why="0.35x of PyTorch ($(fmt %.2f "$lim") s) is within reach of the peak ($(fmt %.2f "$ideal") s): 0.35x applies"
                ok=0
            fi
            row "VAE fp32 target (issue 15) | $why | either criterion | $(verdict "$ok == 1")"
        fi
        if [ "$ve" = - ] || [ "$te" = - ]; then
            row "VAE test ELBO vlm - PyTorch, fp32 (same epochs) | - | target >= -0.5 | missed (no test ELBO from $([ "$ve" = - ] && echo vlm || echo torch))"
        else
            d=$(calc "$ve - ($te)")
            row "VAE test ELBO vlm - PyTorch, fp32 (same epochs) | $(fmt %+.2f "$d") nats | target >= -0.5 | $(verdict "$d >= -0.5")"
        fi
    fi
    if [ -z "$VB16" ]; then
        row "VAE bf16 | skipped: $(sed -n 's/.*matmul fp32 [^,]*, bf16 \(.*\)/bf16 \1/p' "$W/blas") (no bf16 units, or not in this mode) | |"
    else
        set -- $VB16; v16s=$3; v16e=$4; v16c=$2
        t=${v16c%%:*}
        f32e=$(awk -v c="$t:onednn:fp32" '$1 == "vlm" && $2 == c { print $4 }' "$W/vae.best")
        if [ -n "$f32e" ] && [ "$f32e" != - ] && [ "$v16e" != - ]; then
            d=$(calc "$v16e - ($f32e)")
            row "VAE test ELBO vlm bf16 - vlm fp32 ($t threads, mean of $ROUNDS seeds) | $(fmt %+.2f "$d") nats | target within 0.5 | $(verdict "$d >= -0.5 && $d <= 0.5")"
        fi
        if [ -n "$TB16" ]; then
            set -- $TB16
            row "VAE bf16 epoch time vlm/PyTorch autocast (best configs: $(cname vlm "$v16c"); $(cname torch "$2")) | $(fmt %.2fx "$(calc "$v16s / $3")") | target <= 0.5x | $(verdict "$v16s <= 0.5 * $3")"
        fi
    fi
    row "VAE peak RSS vlm (largest over its configurations)$([ -n "$TB" ] && echo " / PyTorch") | $vm MB$([ -n "$TB" ] && echo " / $(echo "$TB" | awk '{print $5}') MB") | target vlm <= 150 MB | $(verdict "$vm <= 150")"
fi

# ------------------------------------------------------------------ 1b. sbn
# examples/sbn.vlm (30 binary latents, score-function gradients) on the
# binarized images: one epoch per backend at 2 threads, test ELBO (iw 1).
log "sbn"
row "**Sigmoid belief net (examples/sbn.vlm), binarized Fashion-MNIST, batch 128, 2 threads** | | |"
if [ $have_data = 1 ] && "$VLMC" examples/sbn.vlm -o "$W/sbn" 2>"$W/sbn.cc"; then
    for be in onednn openblas; do
        RSSF=$W/rss.sbn.$be
        timed "$W/sbn" train --data "$TRAIN" --binarize --epochs "$VAE_E" --batch 128 --threads 2 \
            --gemm "$be" --seed 1 --log "$W/sbn.$be.csv" --save "$W/sbn.$be.ckpt" > "$W/sbn.$be.out" 2>&1
        s=$(awk -F, 'NR > 1 { d = $5 - p; p = $5; print d }' "$W/sbn.$be.csv" 2>/dev/null | minof)
        e=$(stdbuf -oL "$W/sbn" eval --data "$TEST" --binarize --load "$W/sbn.$be.ckpt" --iw 1 --batch 1000 \
            --threads 2 2>/dev/null | awk '$1 == "ELBO" { print $2 }')
        row "sbn, $be: s/epoch (best of $VAE_E); test ELBO; peak RSS | $(fmt %.2f "$s") s | $(fmt %.2f "$e") | $(rss_mb "$RSSF") MB"
    done
else
    row "sbn | skipped ($([ $have_data = 1 ] && echo 'sbn.vlm did not compile' || echo "no data in $DIR")) | |"
fi

for t in $(awk '{ print $1 }' "$W/vade.res" | sort -u); do
    [ $vade_ok = 1 ] || break
    ds=$(awk -v t="$t" '$1 == t { print $3 }' "$W/vade.res" | minof)
    vs=$(awk -v c="$t:onednn:fp32" '$1 == "vlm" && $2 == c { print $3 }' "$W/vae.best")
    row "VaDE (examples/vade.vlm: the VAE's nets, 10 clusters summed out), $t thread(s): s/epoch; epoch time VaDE / VAE | $(fmt %.2f "$ds") s | $(fmt %.2fx "$(calc "$ds / $vs")") | target <= 1.5x: $(verdict "$ds <= 1.5 * $vs")"
done
[ $vae_ok = 1 ] && [ $vade_ok = 0 ] && row "VaDE | vade.vlm did not compile | |"

[ -s "$W/crashes" ] && sort -u "$W/crashes" | while read -r l; do row "vlm crash: $l | | | failed"; done

# ------------------------------------------------------------------ 2. mixture
# vlm: examples/mog.vlm. When `info` says the compiler recognised the
# conjugate mixture, `train` runs EM (k-means init, reg_covar 1e-3, tol
# 1e-3 on the mean log-likelihood, at most 100 iterations: sklearn's
# defaults) and its time is k-means init plus the iterations, not the time
# of reading the data (EM's own "em: ... (S s)" line). Quality: the two
# k-means inits draw different random starts, so the test log-likelihoods
# are compared with sklearn's EM started from vlm's k-means result (the
# `--epochs 0` checkpoint's parameters). Otherwise it trains by
# gradient for MOG_E epochs, "converged" = first epoch whose training
# log p(x) is within 1 nat/image of the last one's, timed to that epoch.
# sklearn: the wall time of fit() (its own k-means init and tol).
log "mixture ($MODE, n=$MOG_N)"
row "**Mixture of 10 diagonal Gaussians, Fashion-MNIST** | | |"
SKS=; SKL=
if [ $have_data = 0 ]; then
    row "mixture | skipped (no data in $DIR) | |"
else
    if [ $have_sk = 1 ]; then
        RSSF=$W/rss.sk
        timed "$PY" bench/gmm_sklearn.py --dir "$DIR" --n "$MOG_N" > "$W/sk.out" 2>&1
        SKS=$(awk '$1 == "sklearn" { print $3 }' "$W/sk.out")
        SKL=$(awk '$1 == "sklearn" { for (i = 1; i < NF; i++) if ($i == "test_ll") print $(i + 1) }' "$W/sk.out")
        SKI=$(awk '$1 == "sklearn" { print $5 " EM iterations, converged " $7 }' "$W/sk.out")
        row "scikit-learn GaussianMixture(10, diag, reg_covar=1e-3): fit time ($SKI); test log-lik; peak RSS | $(fmt %.2f "$SKS") s | $(fmt %.2f "$SKL") | $(rss_mb "$RSSF") MB"
    else
        row "scikit-learn GaussianMixture | skipped (sklearn not importable by $PY, or bench/gmm_sklearn.py missing) | |"
    fi
    M=$W/mog
    if ! "$VLMC" examples/mog.vlm -o "$M" 2>"$W/mog.cc"; then
        row "vlm examples/mog.vlm | did not compile | |"
    else
        if "$M" info 2>/dev/null | grep -q 'training: EM'; then
            RSSF=$W/rss.mog
            t0=$(now)
            timed "$M" train --data "$MOGTRAIN" --epochs 100 --threads 2 --seed 1 \
                --log "$W/mog.csv" --save "$W/mog.ckpt" > "$W/mog.out" 2>&1
            t1=$(now)
            # the same k-means start alone (--epochs 0), for sklearn below
            "$M" train --data "$MOGTRAIN" --epochs 0 --threads 2 --seed 1 \
                --save "$W/mog0.ckpt" > /dev/null 2>&1 &&
                "$M" params --load "$W/mog0.ckpt" > "$W/mog0.csv" 2>/dev/null
            t2=$(now)
            it=$(awk -F, 'NR > 1 { n = $1 } END { print n + 0 }' "$W/mog.csv")
            # EM's own clock (k-means init + iterations, not the reading
            # of the data), like sklearn's fit(); else wall minus the
            # k-means-only run
            cs=$(sed -n 's/^em: .* after [0-9]* iterations (\([0-9.]*\) s).*/\1/p' "$W/mog.out" | tail -1)
            [ -n "$cs" ] || cs=$(calc "($t1 - $t0) - ($t2 - $t1)")
            stable=$(calc "$it < 100 ? 1 : 0")
            st="EM, $it iterations, converged $([ "$stable" = 1 ] && echo True || echo False)"
        else
            RSSF=$W/rss.mog
            timed "$M" train --data "$MOGTRAIN" --epochs "$MOG_E" --batch 128 --lr 1e-2 --threads 2 \
                --seed 1 --log "$W/mog.csv" --save "$W/mog.ckpt" > "$W/mog.out" 2>&1
            conv=$(awk -F, 'NR > 1 { n++; o[n] = $3; s[n] = $5 }
                END { for (i = 1; i <= n; i++) if (o[n] - o[i] <= 1) { printf "%s %d %d", s[i], i, (i < n || n == 1) ? 1 : 0; exit } }' "$W/mog.csv")
            set -- $conv - - -
            cs=$1; stable=$3
            st="gradient (Adam 1e-2, batch 128; no EM in this build), $([ "$stable" = 1 ] && echo "within 1 nat of its final value at epoch $2 of $MOG_E" || echo "not converged in $MOG_E epochs")"
        fi
        ll=$(stdbuf -oL "$M" eval --data "$DIR/t10k-images-idx3-ubyte.gz" --load "$W/mog.ckpt" --batch 1000 --threads 2 2>/dev/null |
             awk '$1 == "log" && $2 == "p(x)" { print $3; exit } $1 == "ELBO" { print $2; exit }')
        row "vlm examples/mog.vlm, 2 threads: time to convergence ($st); test log-lik; peak RSS | $(fmt %.2f "$cs") s | $(fmt %.2f "$ll") | $(rss_mb "$RSSF") MB"
        if [ -n "$SKS" ]; then
            q=$(calc "$cs / $SKS"); d=$(calc "${ll:-0} - ($SKL)")
            row "mixture time vlm / sklearn | $(fmt %.3fx "$q") | target <= 0.1x | $(verdict "$q <= 0.1 && $stable == 1")"
            row "mixture test log-lik vlm - sklearn, each from its own k-means (vlm seed 1, sklearn random_state 0) | $(fmt %+.2f "$d") nats | reported: different starts reach different optima | -"
            # equal quality: sklearn's EM from vlm's k-means start
            SKF=
            if [ -s "$W/mog0.csv" ]; then
                "$PY" bench/gmm_sklearn.py --dir "$DIR" --n "$MOG_N" --init-params "$W/mog0.csv" > "$W/skf.out" 2>&1
                SKF=$(awk '$1 == "sklearn" { for (i = 1; i < NF; i++) if ($i == "test_ll") print $(i + 1) }' "$W/skf.out")
                SKFI=$(awk '$1 == "sklearn" { print $5 }' "$W/skf.out")
            fi
            if [ -n "$SKF" ]; then
                d=$(calc "${ll:-0} - ($SKF)")
                row "scikit-learn's EM from vlm's k-means start ($SKFI iterations; vlm $it): test log-lik | $(fmt %.4f "$SKF") | vlm $(fmt %.4f "$ll") | -"
                row "mixture test log-lik vlm - sklearn, same start | $(fmt %+.4f "$d") nats | target within 1 nat | $(verdict "\"$ll\" != \"\" && $d >= -1 && $d <= 1")"
            else
                row "mixture test log-lik vlm - sklearn, same start | failed (see $W/skf.out) | target within 1 nat | missed"
            fi
        fi
    fi
fi

# ------------------------------------------------------------------ 3. vlmc
log "vlmc compile times (best of $COMPILE_REPS)"
row "**vlmc compile time, .vlm to executable including cc (best of $COMPILE_REPS)** | | |"
worst=0
for f in $EXAMPLES; do
    b=
    i=0
    while [ $i -lt "$COMPILE_REPS" ]; do
        t0=$(now)
        if "$VLMC" "$f" -o "$W/compiled" 2>"$W/compile.err"; then
            t1=$(now); s=$(calc "$t1 - $t0")
            b=$(printf '%s\n%s\n' "$b" "$s" | minof)
        fi
        i=$((i + 1))
    done
    if [ -z "$b" ] || [ "$b" = - ]; then row "vlmc $f | failed | target <= 1 s | missed"; worst=99; continue; fi
    worst=$(calc "$b > $worst ? $b : $worst")
    row "vlmc $f | $(fmt %.2f "$b") s | target <= 1 s | $(verdict "$b <= 1")"
done

# ------------------------------------------------------------------ 4. kernel
log "linear kernel vs sgemm"
row "**linear layer fwd+bwd (relu, bias), batch 128, 784x400: each backend vs cblas_sgemm on OpenBLAS's threads** | | |"
if sh bench/kernel_bench.sh $KQUICK > "$W/kernel.out" 2>&1; then
    grep '^threads=' "$W/kernel.out" | while read -r line; do
        th=$(echo "$line" | sed -n 's/threads=\([0-9]*\).*/\1/p')
        sg=$(echo "$line" | sed -n 's/.*sgemm *\([0-9.]*\) GFLOP.*/\1/p')
        li=$(echo "$line" | sed -n 's/.*linear openblas *\([0-9.]*\) GFLOP.*/\1/p')
        ef=$(echo "$line" | sed -n 's/.*efficiency *\([0-9.]*\)%.*/\1/p')
        dn=$(echo "$line" | sed -n 's/.*linear onednn *\([0-9.]*\) GFLOP.*/\1/p')
        bf=$(echo "$line" | sed -n 's/.*linear onednn bf16 *\([0-9.]*\) GFLOP.*/\1/p')
        row "linear kernel, $th thread(s): openblas $li GFLOP/s vs sgemm $sg GFLOP/s (onednn $dn$([ -n "$bf" ] && echo ", onednn bf16 $bf") GFLOP/s) | $ef % | target >= 70 % | $(verdict "$ef >= 70")"
    done
else
    row "linear kernel | failed to build or run (see $W/kernel.out) | |"
fi

# ------------------------------------------------------------------ output
TABLE=$W/table.md
{
    echo "| measurement | value | quality / target | result |"
    echo "|---|---|---|---|"
    cat "$T"
} > "$TABLE"
cat "$TABLE"
[ "$OUT" = - ] && exit 0
GEN=$W/generated.md
{
    echo "<!-- bench:begin (generated by bench/run.sh; edit outside the markers) -->"
    echo "## Measured ($MODE run)"
    echo
    cat "$W/machine"
    echo
    cat "$TABLE"
    echo
    echo "Reproduce: \`make && make bench\` (or \`BENCH_QUICK=1 make bench\`); single peers:"
    echo
    echo '```sh'
    echo "bin/vlmc examples/vae.vlm -o vae"
    echo "./vae train --data $DIR/train-images-idx3-ubyte.gz --epochs $VAE_E --batch 128 --lr 1e-3 --threads 2 --log vae.csv --save vae.ckpt"
    echo "./vae eval --data $DIR/t10k-images-idx3-ubyte.gz --load vae.ckpt --iw 1 --batch 1000"
    echo "./vae train --data $DIR/train-images-idx3-ubyte.gz --epochs $VAE_E --batch 128 --threads 2 --gemm openblas --log vae_ob.csv"
    echo "./vae train --data $DIR/train-images-idx3-ubyte.gz --epochs $VAE_E --batch 128 --threads 2 --precision bf16 --log vae_bf16.csv --save vae_bf16.ckpt"
    echo "/usr/bin/time -v $PY bench/vae_torch.py --threads 1 --epochs $VAE_E"
    echo "$PY bench/vae_torch.py --threads 1 --epochs $VAE_E --bf16"
    echo "OPENBLAS_NUM_THREADS=1 $PY bench/vae_torch.py --threads 2 --epochs $VAE_E"
    echo "$PY bench/gmm_sklearn.py"
    echo "bin/vlmc examples/mog.vlm -o mog && ./mog train --data $DIR/train-images-idx3-ubyte.gz --threads 2 --seed 1 --save mog.ckpt && ./mog eval --data $DIR/t10k-images-idx3-ubyte.gz --load mog.ckpt"
    echo "./mog train --data $DIR/train-images-idx3-ubyte.gz --threads 2 --seed 1 --epochs 0 --save mog0.ckpt && ./mog params --load mog0.ckpt > mog0.csv && $PY bench/gmm_sklearn.py --init-params mog0.csv"
    echo "sh bench/kernel_bench.sh; sh bench/kernel_bench.sh --peak"
    echo '```'
    echo "<!-- bench:end -->"
} > "$GEN"
if [ -f "$OUT" ] && grep -q '<!-- bench:begin' "$OUT" && grep -q '<!-- bench:end' "$OUT"; then
    awk -v gen="$GEN" '
        /<!-- bench:begin/ { while ((getline l < gen) > 0) print l; skip = 1; next }
        /<!-- bench:end/   { skip = 0; next }
        !skip' "$OUT" > "$W/doc.new"
else
    { echo "# Performance"; echo; cat "$GEN"; } > "$W/doc.new"
fi
mv "$W/doc.new" "$OUT"
log "table written to $OUT"
