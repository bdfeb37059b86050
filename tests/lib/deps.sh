#!/bin/sh
# Install what building and testing dtx needs, on Debian 12, when missing.
# Quiet and idempotent: a no-op when everything is present.
set -e
pkgs="build-essential pkg-config libpq-dev libevent-dev libssl-dev check postgresql openssl procps iproute2 clang-format python3 python3-pytest clang libclang-rt-14-dev libjson-c-dev etcd-server libsystemd-dev systemd prometheus"
missing=""
for p in $pkgs; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "deps: missing packages:$missing" >&2
    echo "deps: run 'make deps' as root, or install them with apt-get" >&2
    exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends $missing >/dev/null
# The server package may start a cluster of its own; dtx's tests never use it.
if command -v pg_lsclusters >/dev/null 2>&1; then
    pg_lsclusters -h 2>/dev/null | while read -r ver name _rest; do
        pg_ctlcluster "$ver" "$name" stop 2>/dev/null || true
    done
fi
# Nor the Prometheus server the package may start: the tests run their own.
if pgrep -x prometheus >/dev/null 2>&1; then
    (service prometheus stop || pkill -x prometheus) >/dev/null 2>&1 || true
fi
exit 0
