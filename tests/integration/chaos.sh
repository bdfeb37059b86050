#!/usr/bin/env bash
# The chaos bank test (tests/chaos.sh) for 45 seconds, as part of make check.
# One scenario: no named cases (CASE fails it, docs/testing.md).
set -u
dir=$(dirname "$0")
. "$dir/../lib/harness.sh"
h_no_cases
out=$("$dir/../chaos.sh" "${CHAOS_SECONDS:-45}" 2>&1)
rc=$?
last=$(tail -n 1 <<<"$out")
# a run without faults or without transactions would prove nothing
if [ $rc -eq 0 ] && [[ $last =~ ^chaos:\ ([0-9]+)\ transactions,\ ([0-9]+)\ faults,\ 0\ violations$ ]] &&
    [ "${BASH_REMATCH[1]}" -ge 100 ] && [ "${BASH_REMATCH[2]}" -ge 3 ]; then
    echo "ok 1 - $last"
else
    grep -v 'Killed' <<<"$out" | tail -n 40 | sed 's/^/# /'
    echo "not ok 1 - chaos bank test: ${last:-no result}"
    exit 1
fi
