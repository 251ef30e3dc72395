# suite_lib.sh — what the shell suites of tests/suites/ share: counting and
# printing checks, scratch directories, and the protocol with
# tests/run_tests.sh. Sourced by each suite, never run; it lives outside
# tests/suites/ so that the runner does not take it for a suite.
#
# A suite is run from the repository root as `sh tests/suites/NAME.sh`
# (tests/run_tests.sh, or by hand) and starts
#
#     #!/bin/sh
#     # NAME.sh — what it checks. Last line: COUNTS passed=N failed=M.
#     . "$(dirname "$0")/../suite_lib.sh"
#     suite_dir                      # T=$BUILD/tests/NAME, empty
#     require "m.vlm compiles" "$BINDIR/vlmc" m.vlm -o "$T/m" 2>"$T/err"
#     "$T/m" train ... >"$T/out" 2>"$T/err"
#     check "it trains" [ $? -eq 0 ]
#     check "ELBO $elbo above -100" holds "$elbo > -100"
#     ...
#     suite_end
#
# The protocol: a line a check, "ok   NAME" or "FAIL NAME" (what went wrong
# indented under it, "     | ..."), "skip NAME" for one that cannot run
# here (neither passed nor failed); last "COUNTS passed=N failed=M", which
# run_tests.sh adds to the total; exit status 0 if and only if nothing
# failed (a suite that exits non-zero with failed=0 counts as one failure).
#
# Variables
#   BUILD BINDIR LIBDIR  from the environment, else build, bin, lib
#   SUITE                the suite's name: its file name without .sh
#   pass fail skip       the counts so far
#   T                    the suite's scratch directory (suite_dir)
#   top                  the directory the suite started in (the repo root)
#   SUITE_ERR            the file `bad` shows under a failure; default
#                        $T/err, so send the checked command's stderr there
# Functions
#   ok NAME / bad NAME / skip NAME   count and print one check (a skip
#                        is only counted in $skip; bench_smoke.sh prints it)
#   check NAME CMD...    run CMD: ok NAME if it succeeds, else bad NAME
#                        (these print to stdout: `check ... 2>"$T/err"`
#                        sends just CMD's stderr there)
#   require NAME CMD...  check NAME CMD, and if it failed, suite_end: for
#                        what every later check needs (compile the model)
#   holds EXPR           an awk condition on numbers: holds "$a < 2 * $b"
#   suite_show           the filter of the lines `bad` shows: head -8;
#                        redefine for others (suite_show() { tail -5; })
#   abs PATH             PATH made absolute (relative ones from $top)
#   suite_dir [DIR]      T=DIR (default $BUILD/tests/$SUITE), emptied, made
#   suite_tmpdir         TMPDIR=$T/tmp, absolute, made and exported: the
#                        temporaries of vlmc and the trainers, to check
#   suite_end            print the COUNTS line; exit 0 iff fail is 0
#   suite_abort [MSG]    a prerequisite is missing, nothing else can run:
#                        MSG, one more failure, suite_end
# A suite may redefine any of these after sourcing (golden.sh prints only
# failures; bench_smoke.sh's check keeps the command's output).

BUILD=${BUILD:-build}; BINDIR=${BINDIR:-bin}; LIBDIR=${LIBDIR:-lib}
SUITE=$(basename "$0" .sh)
top=$(pwd)
pass=0; fail=0; skip=0
SUITE_ERR=

ok()   { pass=$((pass + 1)); echo "ok   $1"; }
bad()  { fail=$((fail + 1)); echo "FAIL $1"; [ -f "${SUITE_ERR:-$T/err}" ] && sed 's/^/     | /' "${SUITE_ERR:-$T/err}" | suite_show; }
suite_show() { head -8; }
skip() { skip=$((skip + 1)); echo "skip $1"; }
check() { name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }
require() { name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; suite_end; fi; }
holds() { awk "BEGIN { exit !($1) }"; }
abs() { case $1 in /*) echo "$1" ;; *) echo "$top/$1" ;; esac; }

suite_dir() { T=${1:-$BUILD/tests/$SUITE}; rm -rf "$T"; mkdir -p "$T"; }
suite_tmpdir() { mkdir -p "$T/tmp"; TMPDIR=$(cd "$T/tmp" && pwd); export TMPDIR; }
suite_end() { echo "COUNTS passed=$pass failed=$fail"; [ "$fail" -eq 0 ]; exit; }
suite_abort() { [ $# -eq 0 ] || echo "$*"; fail=$((fail + 1)); suite_end; }
