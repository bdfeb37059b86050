#!/usr/bin/env bash
# The README's main job, make demo (tests/demo.sh), run on the build under
# test: the demo must keep working, and it exits 0 only if everything it
# shows held.  One scenario: no named cases (CASE fails it, docs/testing.md).
set -u
. "$(dirname "$0")/../lib/harness.sh"
h_no_cases
demo="$(dirname "$0")/../demo.sh"
out=$(DTX_BUILD=${DTX_BUILD:-test} bash "$demo" 2>&1)
rc=$?
if [ $rc -eq 0 ] && grep -q '^DEMO OK' <<<"$out"; then
    echo "ok 1 - make demo: exit 0, DEMO OK"
else
    echo "not ok 1 - make demo: exit $rc"
    sed 's/^/# /' <<<"$out" | tail -n 40
fi
for what in "the transfer committed" "aborted, as it must be" "prepared transactions left in either database: 0"; do
    if grep -qi "$what" <<<"$out"; then
        echo "ok - make demo shows: $what"
    else
        echo "not ok - make demo shows: $what"
    fi
done
