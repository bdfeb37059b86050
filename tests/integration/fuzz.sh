#!/usr/bin/env bash
# fuzz.sh — the libFuzzer targets (tests/fuzz/, docs/testing.md "Fuzzing")
# in make check.  Builds them (make fuzz-build, at nice 10; nothing when they
# are up to date), then, one case per target:
#
#   - every regression input kept in tests/fuzz/regress/TARGET/ (an input
#     that once crashed the target) runs through it once;
#   - the target fuzzes for FUZZ_CHECK_SECONDS (3) seconds from its
#     checked-in seeds (tests/fuzz/corpus/TARGET, read only) with its
#     dictionary.
#
# A crash, a leak, any sanitizer report or a failed check fails the case,
# with the report's first lines; the input that crashed is copied to
# build/fuzz/artifacts/TARGET/.  The self-test case proves that it does: a
# target made to abort on purpose (DTX_FUZZ_SELFTEST, tests/fuzz/fuzz.h)
# fails both the replay and the fuzzing run.
. "$(dirname "$0")/../lib/harness.sh"

targets=()
for f in "$H_ROOT"/tests/fuzz/fuzz_*.c; do
    t=$(basename "$f" .c)
    targets+=("${t#fuzz_}")
done
h_cases "${targets[@]}" self-test
h_init

FZ_BIN=$H_ROOT/build/fuzz/bin
FZ_SECONDS=${FUZZ_CHECK_SECONDS:-3}
export ASAN_OPTIONS=detect_leaks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# fz_report LOG — the lines of a failure report, as TAP comments
fz_report() {
    grep -E 'ERROR: |SUMMARY: |check failed|runtime error|==[0-9]+==' "$1" | head -n 8 | sed 's/^/# /'
}

# fz_replay TARGET DIR — every file of DIR through TARGET once; false on a crash
fz_replay() {
    local t=$1 dir=$2
    local files=("$dir"/*)
    [ -e "${files[0]}" ] || return 0
    nice -n 10 "$FZ_BIN/fuzz_$t" -timeout=10 "${files[@]}" >"$H_TMP/$t.replay.log" 2>&1
}

# fz_run TARGET [DIR...] — FZ_SECONDS of fuzzing from the target's seeds
# (and DIRs); false on a crash.  Sets FZ_STATS to "N runs, cov X, ft Y".
fz_run() {
    local t=$1
    shift
    local log=$H_TMP/$t.log art=$H_TMP/artifacts-$t
    mkdir -p "$H_TMP/corpus-$t" "$art"
    local dict=()
    [ -f "$H_ROOT/tests/fuzz/$t.dict" ] && dict=(-dict="$H_ROOT/tests/fuzz/$t.dict")
    nice -n 10 "$FZ_BIN/fuzz_$t" -max_total_time="$FZ_SECONDS" -timeout=10 -print_final_stats=1 \
        "${dict[@]}" -artifact_prefix="$art/" "$H_TMP/corpus-$t" \
        "$H_ROOT/tests/fuzz/corpus/$t" "$@" >"$log" 2>&1
    local rc=$?
    local last runs
    last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1)
    runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n 1)
    FZ_STATS="${runs:-?} runs, cov $(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last"), ft $(
        sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")"
    local found
    found=$(find "$art" -type f 2>/dev/null | wc -l)
    # a run that ended well says how many inputs it ran
    [ $rc -eq 0 ] && [ "$found" -eq 0 ] && grep -qE '^Done [0-9]+ runs' "$log"
}

# keep what crashed where the next engineer finds it (H_TMP goes away)
fz_keep_artifacts() {
    local t=$1 f
    mkdir -p "$H_ROOT/build/fuzz/artifacts/$t"
    for f in "$H_TMP/artifacts-$t"/*; do
        [ -e "$f" ] || continue
        cp "$f" "$H_ROOT/build/fuzz/artifacts/$t/"
        echo "# input kept: build/fuzz/artifacts/$t/$(basename "$f")"
    done
}

build_ok=1
if ! command -v clang >/dev/null 2>&1; then
    h_fail "clang is not installed (make deps installs it)"
    build_ok=0
elif nice -n 10 make -C "$H_ROOT" --no-print-directory fuzz-build >"$H_TMP/build.log" 2>&1; then
    h_ok "fuzz targets built (${#targets[@]}: ${targets[*]})"
else
    h_fail "make fuzz-build failed"
    grep -E 'error|Error' "$H_TMP/build.log" | head -n 10 | sed 's/^/# /'
    build_ok=0
fi

for t in "${targets[@]}"; do
    if h_case "$t"; then
        if [ $build_ok = 0 ]; then
            h_fail "$t: not built"
            continue
        fi
        reg=$H_ROOT/tests/fuzz/regress/$t
        nreg=$(find "$reg" -type f 2>/dev/null | wc -l)
        if fz_replay "$t" "$reg"; then
            h_ok "$t: $nreg regression input(s) replayed without a crash"
        else
            h_fail "$t: a regression input of tests/fuzz/regress/$t crashes it"
            fz_report "$H_TMP/$t.replay.log"
        fi
        if fz_run "$t"; then
            h_ok "$t: ${FZ_SECONDS} s of fuzzing, no crash ($FZ_STATS)"
        else
            h_fail "$t: crash in ${FZ_SECONDS} s of fuzzing ($FZ_STATS)"
            fz_report "$H_TMP/$t.log"
            fz_keep_artifacts "$t"
        fi
    fi
done

if h_case self-test; then
    if [ $build_ok = 1 ]; then
        mkdir -p "$H_TMP/selftest"
        printf 'DTX-FUZZ-SELFTEST' >"$H_TMP/selftest/input"
        if DTX_FUZZ_SELFTEST=1 fz_replay proto "$H_TMP/selftest"; then
            h_fail "self-test: an input that crashes the target passes the replay"
        elif grep -q 'deadly signal' "$H_TMP/proto.replay.log"; then
            h_ok "self-test: an input that crashes the target fails the replay"
        else
            h_fail "self-test: the replay failed, but not with the crash"
            fz_report "$H_TMP/proto.replay.log"
        fi
        FZ_SECONDS=2
        if DTX_FUZZ_SELFTEST=1 fz_run proto "$H_TMP/selftest"; then
            h_fail "self-test: a seed that crashes the target passes the fuzzing run"
        elif grep -q 'deadly signal' "$H_TMP/proto.log"; then
            h_ok "self-test: a seed that crashes the target fails the fuzzing run"
        else
            h_fail "self-test: the fuzzing run failed, but not with the crash"
            fz_report "$H_TMP/proto.log"
        fi
    else
        h_fail "self-test: not built"
    fi
fi
h_done
