#!/usr/bin/env bash
# Runs every test: check unit binaries (sanitizer build), then the
# integration scripts.  Prints per-suite lines and, last, one summary line:
#   "N passed, N failed"
# Exit status 0 only when nothing failed.
#   TESTS_ONLY=unit|integration    one kind only
#   TESTS_MATCH=regex              only suites whose name matches
#   CASE=name[,name...]            only these cases of each integration suite
#                                  (passed on in the environment; a suite
#                                  with no such case fails, listing its own:
#                                  pair it with TESTS_MATCH); CASE=list lists
#                                  the cases of every suite; docs/testing.md
cd "$(dirname "$0")/.." || exit 2
build=${DTX_BUILD:-test}
passed=0
failed=0
failed_names=()
logdir=$(mktemp -d /tmp/dtx-runall.XXXXXX)
trap 'rm -rf "$logdir"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-120}

run_unit() {
    local bin=$1 name
    name=$(basename "$bin")
    local log="$logdir/$name.log" start=$SECONDS rc
    if [ "${VALGRIND:-0}" = 1 ]; then
        CK_FORK=no valgrind -q --error-exitcode=98 --leak-check=full --errors-for-leak-kinds=definite \
            "$bin" >"$log" 2>&1
    else
        "$bin" >"$log" 2>&1
    fi
    rc=$?
    local line checks fails errs
    line=$(grep -E '^[0-9]+%: Checks: ' "$log" | tail -n 1)
    checks=$(sed -E 's/.*Checks: ([0-9]+).*/\1/' <<<"$line")
    fails=$(sed -E 's/.*Failures: ([0-9]+).*/\1/' <<<"$line")
    errs=$(sed -E 's/.*Errors: ([0-9]+).*/\1/' <<<"$line")
    checks=${checks:-0} fails=${fails:-0} errs=${errs:-0}
    local bad=$((fails + errs))
    if [ $rc -ne 0 ] && [ $bad -eq 0 ]; then bad=1; fi
    local good=$((checks - fails - errs))
    [ $good -lt 0 ] && good=0
    passed=$((passed + good))
    failed=$((failed + bad))
    if [ $bad -ne 0 ] || [ "$checks" -eq 0 ]; then
        [ "$checks" -eq 0 ] && [ $bad -eq 0 ] && { failed=$((failed + 1)); }
        failed_names+=("$name")
        printf 'FAIL  unit %-28s %3d passed %3d failed (%ds)\n' "$name" $good $bad $((SECONDS - start))
        grep -vE '^[0-9]+%: Checks' "$log" | tail -n 40 | sed 's/^/    /'
    else
        printf 'PASS  unit %-28s %3d passed (%ds)\n' "$name" $good $((SECONDS - start))
    fi
}

run_integration() {
    local script=$1 name
    name=$(basename "$script" .sh)
    local log="$logdir/$name.log" start=$SECONDS rc
    [ -n "${CASE:-}" ] && name="$name CASE=$CASE"
    DTX_BUILD=$build CASE=${CASE:-} timeout --kill-after=10 "${DTX_TEST_TIMEOUT:-300}" bash "$script" >"$log" 2>&1
    rc=$?
    local good bad
    good=$(grep -cE '^ok ' "$log")
    bad=$(grep -cE '^not ok ' "$log")
    if [ $rc -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
    if [ "$good" -eq 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
    passed=$((passed + good))
    failed=$((failed + bad))
    if [ "$bad" -ne 0 ]; then
        failed_names+=("$name")
        printf 'FAIL  integ %-27s %3d passed %3d failed (%ds, exit %d)\n' "$name" "$good" "$bad" $((SECONDS - start)) $rc
        tail -n 60 "$log" | sed 's/^/    /'
    else
        printf 'PASS  integ %-27s %3d passed (%ds)\n' "$name" "$good" $((SECONDS - start))
    fi
}

if [ "${CASE:-}" = list ]; then
    for script in tests/integration/*.sh; do
        [ -f "$script" ] || continue
        [ -n "${TESTS_MATCH:-}" ] && ! [[ $(basename "$script" .sh) =~ $TESTS_MATCH ]] && continue
        echo "$(basename "$script" .sh):"
        CASE=list bash "$script" 2>&1 | grep -v '^# cases of ' | sed -E 's/^(# ?)?/  /'
    done
    exit 0
fi
if [ "${TESTS_ONLY:-unit}" = unit ] || [ -z "${TESTS_ONLY:-}" ]; then
    for bin in build/$build/tests/test_*; do
        [ -x "$bin" ] || continue
        [[ $bin == *.d ]] && continue
        [ -n "${TESTS_MATCH:-}" ] && ! [[ $(basename "$bin") =~ $TESTS_MATCH ]] && continue
        run_unit "$bin"
    done
fi
if [ "${TESTS_ONLY:-integration}" = integration ] || [ -z "${TESTS_ONLY:-}" ]; then
    for script in tests/integration/*.sh; do
        [ -f "$script" ] || continue
        [ -n "${TESTS_MATCH:-}" ] && ! [[ $(basename "$script" .sh) =~ $TESTS_MATCH ]] && continue
        run_integration "$script"
    done
fi
if [ ${#failed_names[@]} -gt 0 ]; then
    echo "failed: ${failed_names[*]}"
fi
echo "$passed passed, $failed failed"
if [ $((passed + failed)) -eq 0 ]; then
    echo "no test ran (TESTS_ONLY=${TESTS_ONLY:-} TESTS_MATCH=${TESTS_MATCH:-})" >&2
    exit 1
fi
[ "$failed" -eq 0 ]
