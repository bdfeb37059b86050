#!/usr/bin/env bash
# tests/fuzz/run.sh SECONDS [TARGET...] — `make fuzz`: run each fuzz target
# (build/fuzz/bin/fuzz_TARGET, all of them by default) SECONDS seconds, one
# after the other, at nice 10, on its checked-in seeds (tests/fuzz/corpus/
# TARGET, read only) and its working corpus (build/fuzz/corpus/TARGET, where
# new inputs go and which later runs start from), with its dictionary.
# Prints one line per target: executions per second, the "cov:" and "ft:"
# figures of libFuzzer's last status line, and the crashes found (an input
# that crashes is left in build/fuzz/artifacts/TARGET/, its report in
# build/fuzz/logs/TARGET.log).  Exit status 1 when anything crashed.
#
# To keep a crash as a regression case once it is fixed, copy its input
# into tests/fuzz/regress/TARGET/ (make check replays every file there).
cd "$(dirname "$0")/../.." || exit 2
secs=${1:-60}
shift
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for f in tests/fuzz/fuzz_*.c; do
        t=$(basename "$f" .c)
        targets+=("${t#fuzz_}")
    done
fi
out=build/fuzz
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
crashed=0
printf 'fuzz: %d s per target\n' "$secs"
printf '%-12s %10s %8s %8s %8s  %s\n' target execs/s cov ft crashes runs
for t in "${targets[@]}"; do
    bin=$out/bin/fuzz_$t
    if [ ! -x "$bin" ]; then
        echo "fuzz: $bin is missing (make fuzz-build)" >&2
        crashed=1
        continue
    fi
    mkdir -p "$out/corpus/$t" "$out/artifacts/$t" "$out/logs"
    log=$out/logs/$t.log
    find "$out/artifacts/$t" -type f | sort >"$log.before"
    dict=()
    [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
    nice -n 10 "$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=10 \
        "${dict[@]}" -artifact_prefix="$out/artifacts/$t/" \
        "$out/corpus/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1
    rc=$?
    find "$out/artifacts/$t" -type f | sort | comm -13 "$log.before" - >"$log.new"
    rm -f "$log.before"
    last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1)
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
    eps=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+).*/\1/p' "$log" | tail -n 1)
    runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n 1)
    found=$(wc -l <"$log.new")
    if [ $rc -ne 0 ] && [ "$found" -eq 0 ]; then found=1; fi
    printf '%-12s %10s %8s %8s %8s  %s\n' "$t" "${eps:-?}" "${cov:-?}" "${ft:-?}" "$found" "${runs:-?}"
    if [ "$found" -ne 0 ]; then
        crashed=1
        sed 's/^/    input: /' "$log.new" | head -n 5
        grep -E 'ERROR: |SUMMARY: |check failed|runtime error' "$log" | head -n 5 | sed 's/^/    /'
        echo "    report: $log"
    fi
    rm -f "$log.new"
done
exit $crashed
