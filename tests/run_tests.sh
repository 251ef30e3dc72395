#!/bin/sh
# run_tests.sh — every test suite of `make test`, then one total line.
# Each suite script prints "COUNTS passed=N failed=M" as its last such line.
BUILD=${BUILD:-build}; BINDIR=${BINDIR:-bin}; UNIT=${UNIT:-$BUILD/tests/unit_tests}
export BUILD BINDIR
total_p=0; total_f=0; status=0
run_suite() {  # name, command...
    name=$1; shift
    echo "=== $name"
    out=$("$@" 2>&1); rc=$?
    printf '%s\n' "$out"
    line=$(printf '%s\n' "$out" | grep -E '^(UNIT-)?COUNTS passed=' | tail -1)
    p=$(echo "$line" | sed -n 's/.*passed=\([0-9]*\).*/\1/p')
    f=$(echo "$line" | sed -n 's/.*failed=\([0-9]*\).*/\1/p')
    if [ -z "$p" ]; then p=0; f=1; echo "$name: no counts (exit $rc)"; fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "$name: exit status $rc"; fi
    total_p=$((total_p + p)); total_f=$((total_f + f))
    [ "$f" -ne 0 ] && status=1
}
run_suite "unit (CUnit)" "$UNIT"
for t in tests/suites/*.sh; do
    [ -f "$t" ] || continue
    run_suite "$(basename "$t" .sh)" sh "$t"
done
echo
echo "$total_p passed, $total_f failed"
exit $status
