#!/usr/bin/env bash
# The chaos bank test with automatic failover through etcd (make
# chaos-failover HA=etcd) for 45 seconds, as part of make check: the same
# checks as chaos-failover.sh.
CHAOS_HA=etcd exec "$(dirname "$0")/chaos-failover.sh" "$@"
