#!/bin/sh
# docs.sh — the documentation cannot drift from the programs. The help
# texts are read at run time (options added elsewhere are picked up):
#   1. every command's --help and the parser agree: each option the help
#      names is accepted (not "unknown option");
#   2. every command line in README.md and docs/*.md (`./NAME CMD ...`,
#      `vlmc ...`, in code blocks or inline code) uses only options of that
#      command's --help; every other `--option` the docs name is an option
#      of some --help (or of the bench script it is written next to);
#   3. every option of each --help is documented: a trainer command's in
#      its synopsis in docs/inference.md ("The commands"), vlmc's options
#      and environment variables in README.md or docs/;
#   4. "`--opt X` (cmd, cmd, ...)" in the docs lists exactly the commands
#      whose --help has the option ("every command": all of them);
#   5. every command of README.md's "Using it" block runs, on the examples
#      it compiles, in a scratch directory with small stand-ins for
#      the files it names (Fashion-MNIST under /usr/share/datasets), with
#      `--limit` appended to the commands that read data and `--epochs 1`
#      for training (replacing the README's, or appended).
# Last line: COUNTS passed=N failed=M.
. "$(dirname "$0")/../suite_lib.sh"
VLMC=${VLMC:-$BINDIR/vlmc}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
suite_dir; suite_tmpdir
# check NAME CMD...: $T/why collects the reasons, shown on failure
SUITE_ERR=$T/why
suite_show() { head -12; }
check() { name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; : > "$T/why"; }
why() { echo "$*" >> "$T/why"; }
DOCS="README.md $(ls docs/*.md)"

# ------------------------------------------------------------ help texts
M=$T/vae
if ! "$VLMC" examples/vae.vlm -o "$M" 2>"$T/why"; then
    bad "vlmc examples/vae.vlm"; suite_end
fi
"$M" --help > "$T/help.main"
# the commands: the lines under "commands:" up to the blank line
CMDS=$(awk '/^commands:/ { f = 1; next } f && /^$/ { exit } f { print $1 }' "$T/help.main")
check "the trainer lists its commands ($(echo $CMDS))" [ -n "$CMDS" ]
for c in $CMDS; do
    "$M" "$c" --help > "$T/help.$c" 2>"$T/why" || why "$c --help: exit $?"
done
"$VLMC" --help > "$T/help.vlmc"
# opts FILE: the options a help text names (long ones anywhere, -n and
# vlmc's short options where the help lists them)
opts() {
    { grep -oE -- '(^|[ ,(\[])--[a-z][a-z0-9-]*' "$1" | sed 's/^[^-]*//'
      grep -oE -- '^  -[A-Za-z][A-Za-z0-9]*' "$1" | sed 's/^ *//'
      grep -oE -- '(^|[ ,])-n( |$)' "$1" | tr -d ' ,'; } | sort -u
}
for c in $CMDS vlmc; do opts "$T/help.$c" > "$T/opts.$c"; done
cat "$T"/opts.* | sort -u > "$T/opts.all"
has_opt() { grep -qxF -- "$2" "$T/opts.$1"; }

# ------------------------------------------------------------ 1. help vs parser
for c in $CMDS; do
    for o in $(cat "$T/opts.$c"); do
        case $o in
        --help) continue ;;
        -n) "$M" "$c" -n 1 --help >/dev/null 2>"$T/err" ;;
        *)  "$M" "$c" "$o=1" --help >/dev/null 2>"$T/err" ;;
        esac
        grep -q 'unknown option' "$T/err" && why "$c --help names $o, but $c refuses it: $(head -1 "$T/err")"
    done
    check "$c: every option of its --help is accepted" [ ! -s "$T/why" ]
done

for o in $(cat "$T/opts.vlmc"); do
    "$VLMC" "$o" x.vlm --help >/dev/null 2>"$T/err"
    grep -q 'unknown option' "$T/err" && why "vlmc --help names $o, but vlmc refuses it: $(head -1 "$T/err")"
done
check "vlmc: every option of its --help is accepted" [ ! -s "$T/why" ]

# ------------------------------------------------------------ 2. docs vs help
# One record per command line of the docs: where, program, command, options.
# Lines ending in `\` and synopsis lines starting with `[` continue the
# previous one; backquotes, ` | `, `&&` and `;` separate commands.
awk -v cmds=" $(echo $CMDS) " '
function emit(text, where,    segs, n, i, w, k, j, tok, prog, cmd, os) {
    gsub(/`/, " ; ", text)
    sub(/(^|[ \t])#.*$/, "", text)
    gsub(/ \| /, " ; ", text); gsub(/&&/, " ; ", text)
    n = split(text, segs, ";")
    for (i = 1; i <= n; i++) {
        sub(/^[ \t(]+/, "", segs[i])
        gsub(/\|/, " ", segs[i])    # alternatives: --load CKPT|--init-from CKPT
        k = split(segs[i], w, /[ \t]+/)
        if (k < 1) continue
        prog = ""
        if (w[1] ~ /^\.\/[A-Za-z_][A-Za-z0-9_]*$/ && index(cmds, " " w[2] " ")) { prog = w[1]; cmd = w[2]; j = 3 }
        else if (w[1] ~ /^(bin\/)?vlmc$/) { prog = "vlmc"; cmd = "vlmc"; j = 2 }
        if (prog == "") continue
        os = ""
        for (; j <= k; j++) {
            tok = w[j]; sub(/^[\[(]+/, "", tok)
            if (match(tok, /^--?[A-Za-z][A-Za-z0-9-]*/))
                os = os " " substr(tok, 1, RLENGTH)
        }
        printf "%s\t%s\t%s\t%s\n", where, prog, cmd, os
    }
}
FNR == 1 && buf != "" { emit(buf, where); buf = "" }
{
    line = $0
    if (buf != "" && (cont || line ~ /^[ \t]+\[/)) {
        buf = buf " " line
    } else {
        if (buf != "") emit(buf, where)
        buf = line; where = FILENAME ":" FNR
    }
    cont = sub(/\\[ \t]*$/, "", buf)
}
END { if (buf != "") emit(buf, where) }' $DOCS > "$T/cmdlines"
check "the docs have command lines to check ($(wc -l < "$T/cmdlines"))" [ "$(wc -l < "$T/cmdlines")" -gt 20 ]
n_lines=0
while IFS='	' read -r where prog cmd os; do
    n_lines=$((n_lines + 1))
    for o in $os; do
        [ "$o" = --help ] && continue
        has_opt "$cmd" "$o" || why "$where: $prog $cmd $o: not an option of \`$cmd --help\`"
    done
done < "$T/cmdlines"
check "every option on the docs' $n_lines command lines is in that command's --help" [ ! -s "$T/why" ]

# options of other programs that the docs name, and the file that has them
foreign() {
    case $1 in
    --init-params) echo bench/gmm_sklearn.py ;;
    --quick|--peak) echo bench/kernel_bench.c ;;
    --bf16) echo bench/vae_torch.py ;;
    esac
}
grep -ohE -- '--[a-z][a-z0-9-]*' $DOCS | sort -u > "$T/doc_opts"
for o in $(cat "$T/doc_opts"); do
    grep -qxF -- "$o" "$T/opts.all" && continue
    f=$(foreign "$o")
    if [ -n "$f" ] && grep -q -- "$o" "$f"; then continue; fi
    why "$(grep -nF -- "$o" $DOCS | head -1 | cut -c1-100): $o is in no --help"
done
check "every --option the docs name ($(wc -l < "$T/doc_opts")) exists" [ ! -s "$T/why" ]

# ------------------------------------------------------------ 3. help vs docs
for c in $CMDS; do
    awk -F'\t' -v c="$c" '$1 ~ /^docs\/inference.md:/ && $2 == "./model" && $3 == c { print $4 }' \
        "$T/cmdlines" | tr ' ' '\n' | grep . | sort -u > "$T/syn.$c"
    if [ ! -s "$T/syn.$c" ] && [ -s "$T/opts.$c" ]; then
        why "docs/inference.md has no synopsis \`./model $c ...\`"
    fi
    for o in $(cat "$T/opts.$c"); do
        [ "$o" = --help ] && continue
        grep -qxF -- "$o" "$T/syn.$c" || why "$c $o is not in its synopsis in docs/inference.md"
    done
    check "$c: every option of its --help is in docs/inference.md's synopsis" [ ! -s "$T/why" ]
done
for o in $(cat "$T/opts.vlmc"); do
    grep -qE -- "(^|[^A-Za-z0-9-])$o([^A-Za-z0-9-]|$)" $DOCS || why "vlmc $o is not documented"
done
check "every option of vlmc --help is documented" [ ! -s "$T/why" ]
envs=$(sed -n 's/^environment: *//p' "$T/help.vlmc" | grep -oE '[A-Z][A-Z_]+')
for v in $envs; do   # a row of a table that says what it does
    grep -qE -- "^\| \`$v\` \|" $DOCS || why "vlmc's environment variable $v has no row in a table of the docs"
done
check "vlmc's environment variables ($(echo $envs)) are documented" sh -c "[ -n '$envs' ] && [ ! -s '$T/why' ]"

# ------------------------------------------------------------ 4. "(cmd, ...)" lists
# "`--opt ARG` (c1, c2, ...)": the words before `;`/`:` are command names
# (or "every command"); they must be exactly the commands that take --opt.
# (paragraphs joined into one line each, so a list may wrap)
awk 'FNR == 1 && p != "" { print w ":" p; p = "" }
     /^[ \t]*$/ || /^[ \t]*[*-] / { if (p != "") print w ":" p; p = "" }
     /[^ \t]/ { t = $0; sub(/^[ \t]+/, "", t); if (p == "") { w = FILENAME ":" FNR; p = t } else p = p " " t }
     END { if (p != "") print w ":" p }' $DOCS > "$T/paragraphs"
grep -oE -- '^[^:]*:[0-9]+:|`--[a-z][a-z0-9-]*[^`]*` \([^)]*\)' "$T/paragraphs" |
awk '/^[^`]*:[0-9]+:$/ { w = $0; next } { print w $0 }' | while IFS= read -r hit; do
    where=${hit%%:\`*}
    o=$(echo "$hit" | sed -E 's/^[^`]*`(--[a-z][a-z0-9-]*).*/\1/')
    list=$(echo "$hit" | sed -E 's/.*` \(([^)]*)\)$/\1/; s/[;:].*//')
    want=""
    case $list in
    "every command"*) want=$(echo $CMDS) ;;
    *)  all=1
        for w in $(echo "$list" | tr ',' ' '); do
            [ "$w" = and ] && continue
            case " $(echo $CMDS) " in *" $w "*) want="$want $w" ;; *) all=0 ;; esac
        done
        [ $all = 1 ] || continue ;;
    esac
    have=""
    for c in $CMDS; do has_opt "$c" "$o" && have="$have $c"; done
    a=$(echo $want | tr ' ' '\n' | sort | tr '\n' ' ')
    b=$(echo $have | tr ' ' '\n' | sort | tr '\n' ' ')
    if [ "$a" = "$b" ]; then echo "ok $where $o ($list)"; else echo "bad $where: $o is said to apply to ($list); the commands that take it: $b"; fi
done > "$T/claims"
n_claims=$(wc -l < "$T/claims")
grep '^bad ' "$T/claims" | sed 's/^bad //' > "$T/why"
check "the docs' $n_claims \"--opt (commands)\" lists name exactly the commands that take it" \
    sh -c "[ $n_claims -ge 3 ] && [ ! -s '$T/why' ]"

# a list of the commands in inline code (`train eval ...`, 3 or more of
# them) lists all of them
cw=$(echo $CMDS | tr ' ' '|'); bt='`'
grep -oE -- "^[^:]*:[0-9]+:|$bt($cw)( ($cw)){2,}$bt" "$T/paragraphs" |
awk '/^[^`]*:[0-9]+:$/ { w = $0; next } { print w $0 }' > "$T/cmdlists"
: > "$T/missing"
while IFS= read -r hit; do
    for c in $CMDS; do
        case " $(echo "${hit#*$bt}" | tr -d "$bt") " in *" $c "*) ;; *) echo "${hit%%$bt*} lists the commands without $c" >> "$T/missing" ;; esac
    done
done < "$T/cmdlists"
cat "$T/missing" > "$T/why"
check "the docs' lists of the commands ($(wc -l < "$T/cmdlists")) name every command" \
    sh -c "[ -s '$T/cmdlists' ] && [ ! -s '$T/why' ]"

# every picture the tutorial names is written by a command in its text
awk '{ if (sub(/\\$/, "")) { buf = buf $0; next } print buf $0; buf = "" }' docs/tutorial.md > "$T/tutorial.joined"
for png in $(grep -oE '`[A-Za-z0-9_]+\.png`' docs/tutorial.md | tr -d '`' | sort -u); do
    grep -qE "^(\./|python3 |bin/).*[ /]$png( |$)" "$T/tutorial.joined" ||
        why "docs/tutorial.md names $png, but none of its commands writes it"
done
check "every PNG the tutorial names has its command in the text" [ ! -s "$T/why" ]

# ------------------------------------------------------------ 4b. facts the docs state
# docs/language.md's distribution table: every runtime stem it names is a
# density of the runtime (VLM_DECLARE_DIST in vlm.h; a Markov chain's
# stems declare only a sampler, `VlmSampleFn vlm_dist_<stem>_sample`: the
# forward algorithm is its density) and of the compiler's table
# (compiler/dists.c), and every density is in the table
awk '/^## Distributions/ { f = 1; next } f && /^## / { exit }
     f && /^\|/ { gsub(/\\\|/, " or "); split($0, c, "|"); print c[3] }' docs/language.md |
    grep -oE '\(([a-z_]+)\)' | tr -d '()' | sort -u > "$T/stems.doc"
{ grep -oE '^VLM_DECLARE_DIST\([a-z_]+\)' runtime/vlm.h | sed 's/.*(\(.*\))/\1/'
  grep -oE '^VlmSampleFn vlm_dist_[a-z_]+_sample;' runtime/vlm.h | sed 's/VlmSampleFn vlm_dist_\(.*\)_sample;/\1/'
} | sort -u > "$T/stems.rt"
for x in $(cat "$T/stems.doc"); do
    grep -qxF "$x" "$T/stems.rt" || why "language.md names the stem $x: no VLM_DECLARE_DIST($x) (or sampler) in runtime/vlm.h"
    grep -qF "\"$x\"" compiler/dists.c || why "language.md names the stem $x: not in compiler/dists.c"
done
for x in $(cat "$T/stems.rt"); do
    grep -qxF "$x" "$T/stems.doc" || why "runtime density $x is not in language.md's distribution table"
done
check "language.md's distribution stems ($(wc -l < "$T/stems.doc")) are the runtime's and the compiler's" \
    sh -c "[ -s '$T/stems.doc' ] && [ ! -s '$T/why' ]"

# docs/language.md, "How data columns map to variables": by position in
# declaration order; a CSV header's names are not matched
C=$T/cols
printf 'param ma = 5;\nparam mb[2] = -5;\nobserved a ~ Normal(ma, 1);\nobserved b[2] ~ Normal(mb, 1);\n' > "$C.vlm"
printf 'b[0],b[1],a\n5,-5,-5\n' > "$C.csv"
"$VLMC" "$C.vlm" -o "$C" 2>"$T/why" &&
    "$C" train --data "$C.csv" --epochs 0 --save "$C.ckpt" >"$T/out" 2>>"$T/why" &&
    "$C" eval --data "$C.csv" --load "$C.ckpt" >"$T/out" 2>>"$T/why"
# all three values at their means: 3 log N(0; 0, 1) = -2.756816
lp=$(awk '/log p\(x\)/ { print $3 }' "$T/out")
cat "$T/out" >> "$T/why"
check "data columns go to observed variables by position; header names ignored (log p(x) $lp)" \
    awk -v v="$lp" 'BEGIN { exit !(v != "" && v > -2.75682 && v < -2.75681) }'
"$C" sample -n 1 --out "$C.s.csv" >"$T/out" 2>"$T/why"
check "sample writes the observed variables only, named, in declaration order" \
    sh -c "[ \"\$(head -1 '$C.s.csv')\" = 'a,b[0],b[1]' ]"

# ------------------------------------------------------------ 5. README runs
# The block under "## Using it", one command per line (comments dropped).
R=$T/readme
mkdir -p "$R/bin"
ln -s "$(abs "$VLMC")" "$R/bin/vlmc"
ln -s "$top/examples" "$R/examples"
awk '/^## Using it/ { f = 1; next } f && /^```/ { if (in_) exit; in_ = 1; next }
     f && in_ { sub(/(^|[ \t])#.*$/, ""); if ($0 ~ /[^ \t]/) print }' README.md > "$T/readme_cmds"
check "README's \"Using it\" block found ($(wc -l < "$T/readme_cmds") commands)" [ "$(wc -l < "$T/readme_cmds")" -ge 10 ]
if [ ! -f "$DATA/train-images-idx3-ubyte.gz" ]; then
    why "Fashion-MNIST not under $DATA (make deps)"; bad "README commands: data"
else
    # stand-ins for the files the block names: the Fashion-MNIST files by
    # their names, a test set in IDX and in CSV, a model to --check
    for f in train-images-idx3-ubyte.gz t10k-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz \
             t10k-labels-idx1-ubyte.gz; do
        ln -s "$DATA/$f" "$R/$f"
    done
    ln -s "$DATA/t10k-images-idx3-ubyte.gz" "$R/test.idx.gz"
    cp examples/vae.vlm "$R/model.vlm"
    # test.csv: 20 test images through an untrained model's reconstruction
    (cd "$R" && "$(abs "$M")" train --data test.idx.gz --limit 20 --epochs 0 --save stand-in.ckpt &&
        "$(abs "$M")" impute --data test.idx.gz --limit 20 --load stand-in.ckpt --reconstruct --samples 1 --out test.csv) \
        >"$T/out" 2>"$T/why"
    check "stand-in test.csv (20 items)" [ "$(wc -l < "$R/test.csv" 2>/dev/null)" = 21 ]
    i=0
    while IFS= read -r line; do
        i=$((i + 1))
        line=$(printf '%s\n' "$line" | sed -E 's/[ \t]+$//')
        cmd=$line
        set -- $cmd
        case "$2" in
        train|eval|posterior|impute|gradvar)
            case " $cmd " in
            *" --limit "*) ;;
            *) if [ "$2" = train ]; then cmd="$cmd --limit 300"; else cmd="$cmd --limit 8"; fi ;;
            esac
            case " $cmd " in
            *" --epochs "*) cmd=$(printf '%s\n' "$cmd" | sed -E 's/--epochs [0-9]+/--epochs 1/') ;;
            *) [ "$2" = train ] && cmd="$cmd --epochs 1" ;;
            esac ;;
        esac
        (cd "$R" && sh -c "$cmd") >"$T/out.$i" 2>"$T/why" </dev/null
        rc=$?
        [ $rc -eq 0 ] || { why "exit $rc"; tail -3 "$T/out.$i" >> "$T/why"; }
        check "README: $line" [ $rc -eq 0 ]
    done < "$T/readme_cmds"
    # what the block promises to write
    for f in vae vae.ckpt samples.png post.csv filled.npy rows.png rec.npy rec.png; do
        [ -s "$R/$f" ] || why "README's commands did not write $f"
    done
    check "README's commands wrote the trainer, checkpoint, PNGs, CSV and NPY files" [ ! -s "$T/why" ]
fi

suite_end
