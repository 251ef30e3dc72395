#!/bin/sh
# build_flags.sh — the build never keeps flags it was made with once they
# change. A first build whose pkg-config gives wrong answers (a missing
# package, as on a fresh machine before `make deps`) bakes wrong link flags
# into vlmc; the next build with a working pkg-config must rebuild vlmc and
# the runtime so that vlmc links a trainer. Builds into its own directory.
# Last line: COUNTS passed=N failed=M.
. "$(dirname "$0")/../suite_lib.sh"
suite_dir "$(cd "$(dirname "$BUILD")" && pwd)/$(basename "$BUILD")/tests/build_flags"; mkdir -p "$T/bin"
suite_show() { tail -8; }

if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists openblas libpng zlib; then
    echo "SKIP build_flags: pkg-config cannot find openblas libpng zlib (run 'make deps')"
    suite_end
fi

# Two fake pkg-configs: one that fails like a missing package, one that
# answers with a library that does not exist (a wrong answer baked in).
cat > "$T/bin/pkg-config-fails" <<'EOF'
#!/bin/sh
echo "Package openblas was not found in the pkg-config search path." >&2
exit 1
EOF
cat > "$T/bin/pkg-config-wrong" <<'EOF'
#!/bin/sh
case "$*" in *--libs*) echo "-lvlm_no_such_library";; *) echo "";; esac
EOF
chmod +x "$T/bin/pkg-config-fails" "$T/bin/pkg-config-wrong"

B=$T/b; BIN=$T/b/bin; LIB=$T/b/lib
step=0
mk() { step=$((step + 1)); MAKEFLAGS= MAKELEVEL= make -j2 --no-print-directory BUILD="$B" BINDIR="$BIN" LIBDIR="$LIB" SAN= "$@" "$BIN/vlmc" "$LIB/libvlm.a" >"$T/err" 2>&1; rc=$?; cp "$T/err" "$T/make$step.log"; return $rc; }
model=tests/codegen/mix2d.vlm
trainer_runs() {  # vlmc links a trainer, and the trainer starts
    "$BIN/vlmc" "$model" -o "$T/trainer" 2>"$T/err" && "$T/trainer" info >/dev/null 2>>"$T/err"
}

# 1. pkg-config answers wrong: vlmc is built, its trainers cannot link
mk PKG_CONFIG="$T/bin/pkg-config-wrong"; check "build with a wrong pkg-config" [ $? -eq 0 ]
check "the wrong flag is baked into vlmc" sh -c "'$BIN/vlmc' -v '$model' -o '$T/t0' 2>&1 | grep -q vlm_no_such_library"
check "so its trainer does not link (the fault this suite guards)" sh -c "! '$BIN/vlmc' '$model' -o '$T/t0' 2>/dev/null"

# 2. pkg-config works again: the flags stamp changes and vlmc is rebuilt
before=$(cat "$B/flags.stamp")
mk; check "rebuild with the working pkg-config" [ $? -eq 0 ]
check "flags stamp changed" [ "$before" != "$(cat "$B/flags.stamp")" ]
check "vlmc no longer names the wrong flag" sh -c "! '$BIN/vlmc' -v '$model' -o '$T/t1' 2>&1 | grep -q vlm_no_such_library"
check "vlmc links a trainer that runs" trainer_runs

# 3. a second build with the same flags rebuilds nothing
mk; check "unchanged flags: no object rebuilt" sh -c "! grep -q ' -c ' '$T/err'"

# 4. pkg-config fails outright: Debian's library names stand in, and the
#    trainer still links; the working pkg-config then rebuilds again
mk PKG_CONFIG="$T/bin/pkg-config-fails"; check "build with a failing pkg-config" [ $? -eq 0 ]
check "fallback link flags baked in" sh -c "'$BIN/vlmc' -v '$model' -o '$T/t2' 2>&1 | grep -q -- '-lopenblas -lpng16 -lz'"
check "vlmc links a trainer with the fallback flags" trainer_runs
real_libs=$(pkg-config --libs openblas libpng zlib | sed 's/ *$//')
mk; check "rebuild once pkg-config works" sh -c "grep -q 'compiler/cc.c' '$T/err' && '$BIN/vlmc' -v '$model' -o '$T/t3' 2>&1 | grep -qF -- '$real_libs'"
check "vlmc links a trainer after the rebuild" trainer_runs

rm -rf "$B"
suite_end
