#!/usr/bin/env bash
# The chaos bank test with coordinator failover (tests/chaos-failover.sh)
# for 45 seconds, as part of make check.  One scenario: no named cases
# (CASE fails it, docs/testing.md).
set -u
dir=$(dirname "$0")
. "$dir/../lib/harness.sh"
h_no_cases
# chaos-failover-ha.sh runs this with CHAOS_HA=etcd: the automatic mode
out=$(HA=${CHAOS_HA:-} "$dir/../chaos-failover.sh" "${CHAOS_SECONDS:-45}" 2>&1)
rc=$?
last=$(tail -n 1 <<<"$out")
# a run without failovers or without transactions would prove nothing
re='^chaos-failover: ([0-9]+) transactions, ([0-9]+) faults \(([0-9]+) failovers\), 0 violations$'
if [ $rc -eq 0 ] && [[ $last =~ $re ]] && [ "${BASH_REMATCH[1]}" -ge 100 ] &&
    [ "${BASH_REMATCH[3]}" -ge 1 ]; then
    echo "ok 1 - $last${CHAOS_HA:+ (automatic failover through $CHAOS_HA)}"
else
    grep -v 'Killed' <<<"$out" | tail -n 40 | sed 's/^/# /'
    echo "not ok 1 - chaos bank test with failover${CHAOS_HA:+ (automatic, $CHAOS_HA)}: ${last:-no result}"
    exit 1
fi
