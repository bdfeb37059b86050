#!/usr/bin/env bash
# The Python package (client/python): its pytest tests against real
# processes — two PostgreSQL clusters, a participant in front of each ("a"
# on pa, "b" on pb), a coordinator, TLS with client certificates — and the
# microservices example.  Each pytest test becomes one "ok N - python
# CASE: test" or "not ok N - ..." line, which tests/run-all.sh counts; a
# skipped test counts as failed (nothing may hide), and so does a pytest
# that dies before it reports.
#
# Cases (CASE=name runs one alone, docs/testing.md): one per test file
# client/python/tests/test_NAME.py, and example (make example's script,
# with its own clusters).  The Python is the system's (/usr/bin/python3,
# Debian's python3-pytest); DTX_PYTHON picks another.  The package loads
# this build's libdtx (LIBDTX_PATH); a sanitizer build is loaded with its
# runtime preloaded, so that libdtx's memory errors stop the run here too.
#
# Tests ask for coordinator restarts (crash: a connection dropped
# mid-commit) through a control directory: the test writes the failpoints
# to arm into CTL/request; this script, polling while pytest runs, kills
# and restarts the coordinator (it owns the process) and answers in
# CTL/done; see client/python/tests/conftest.py, Coordinator.
set -u
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/dtx.sh"
PYCASES=(sync errors types oneshot status failover async crash package)
h_cases "${PYCASES[@]}" example
h_init

PY=${DTX_PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || PY=$(command -v python3)
PKG="$H_ROOT/client/python"

want_pytest=0
for c in "${PYCASES[@]}"; do h_wants "$c" && want_pytest=1; done

h_pg_start pa
h_pg_start pb
h_dtx_certs
h_part_start a pa postgres
h_part_start b pb postgres
h_coord_start
for p in a b; do h_wait_log coord "participant \"$p\" .* is ready" 20; done

# ---- pytest, in the background; coordinator restarts served meanwhile -------
CTL="$H_TMP/ctl"
mkdir -p "$CTL"
h_pid coord >"$CTL/pid"

# serve_restarts PID — until PID exits, restart the coordinator on request
serve_restarts() {
    local py=$1 spec p ok
    while kill -0 "$py" 2>/dev/null; do
        if [ -f "$CTL/request" ]; then
            spec=$(cat "$CTL/request")
            rm -f "$CTL/request"
            h_log "restarting the coordinator (failpoints: ${spec:-none})"
            h_kill coord
            ok=ok
            DTX_FAILPOINTS=$spec h_coord_start || ok="the coordinator did not start"
            for p in a b; do
                [ "$ok" = ok ] || break
                h_wait_newlog coord "participant \"$p\" .* is ready" 20 || ok="participant $p not ready"
            done
            h_pid coord >"$CTL/pid"
            echo "$ok" >"$CTL/done.tmp"
            mv "$CTL/done.tmp" "$CTL/done"
        fi
        sleep 0.05
    done
}

JUNIT="$H_TMP/pytest.xml"
py_rc=0
if [ $want_pytest = 1 ]; then
    files=()
    for c in "${PYCASES[@]}"; do h_wants "$c" && files+=("$PKG/tests/test_$c.py"); done
    lib="$H_ROOT/build/$H_BUILD/lib/libdtx.so.1"
    preload=""
    if ldd "$lib" 2>/dev/null | grep -q 'libasan'; then
        preload=$(gcc -print-file-name=libasan.so)
    fi
    (
        cd "$PKG" || exit 2
        export LIBDTX_PATH=$lib PYTHONPATH=$PKG PYTHONDONTWRITEBYTECODE=1
        export DTXTEST_CERTS=$H_CERTS DTXTEST_DEAD_PORT=$(h_free_port) DTXTEST_PG_PORT=$(h_pg_port pa)
        export DTXTEST_DTX=$H_BIN/dtx DTXTEST_CTL=$CTL DTXTEST_COORD_LOG=$H_TMP/coord.log
        # (leaks: Python's own allocations are not libdtx's business here)
        [ -n "$preload" ] && export LD_PRELOAD=$preload ASAN_OPTIONS=detect_leaks=0:abort_on_error=0:exitcode=99
        exec "$PY" -m pytest -p no:cacheprovider -q -rA --junitxml="$JUNIT" -o junit_family=xunit1 \
            "${files[@]}"
    ) >"$H_TMP/pytest.out" 2>&1 &
    py_pid=$!
    serve_restarts $py_pid
    wait $py_pid
    py_rc=$?
    sed 's/^/# /' "$H_TMP/pytest.out" | tail -n 40 >&2
fi

# report CASE — one line per test of test_CASE.py, from pytest's junit file
report() {
    local case=$1 status name msg n=0
    if [ ! -s "$JUNIT" ]; then
        h_fail "python $case: pytest wrote no report (exit $py_rc): $(tail -n 1 "$H_TMP/pytest.out")"
        return
    fi
    while IFS=$'\t' read -r status name msg; do
        n=$((n + 1))
        if [ "$status" = pass ]; then h_ok "python $case: $name"; else h_fail "python $case: $name ($status: $msg)"; fi
    done < <("$PY" - "$JUNIT" "test_$case" <<'PY'
import sys
import xml.etree.ElementTree as ET
for tc in ET.parse(sys.argv[1]).iter("testcase"):
    if sys.argv[2] not in tc.get("classname", "").split("."):
        continue
    status, msg = "pass", ""
    for kind in ("failure", "error", "skipped"):
        el = tc.find(kind)
        if el is not None:
            status = kind
            msg = " ".join((el.get("message") or el.text or "").split())[:200]
            break
    print(f"{status}\t{tc.get('name')}\t{msg}")
PY
)
    [ $n -gt 0 ] || h_fail "python $case: no test of test_$case.py ran (pytest exit $py_rc)"
}

for c in "${PYCASES[@]}"; do
    if h_case "$c"; then report "$c"; fi
done
h_end_case
if [ $want_pytest = 1 ] && [ $py_rc -ne 0 ] && [ -s "$JUNIT" ]; then
    grep -q 'failures="0"' "$JUNIT" && grep -q 'errors="0"' "$JUNIT" &&
        h_fail "pytest exited $py_rc although every test passed"
fi

# ---- the microservices example (make example) ---------------------------
if h_case example; then
    DTX_BUILD=$H_BUILD PYTHON=$PY timeout --kill-after=10 180 bash "$PKG/examples/microservices/run.sh" \
        >"$H_TMP/example.out" 2>&1
    rc=$?
    h_eq "example: make example's script exits 0" 0 $rc || tail -n 30 "$H_TMP/example.out" | sed 's/^/# /'
    h_check "example: the order within stock was placed in both databases" \
        grep -q '^check: order placed: 1 order, stock 7$' "$H_TMP/example.out"
    h_check "example: the order beyond stock was refused (409) with the reason" \
        grep -q '^check: order refused: 409 .*not enough stock' "$H_TMP/example.out"
    h_check "example: ... and changed neither database" \
        grep -q '^check: after the refused order: 1 order, stock 7$' "$H_TMP/example.out"
fi

h_end_case
h_stop_clean a b
h_done
