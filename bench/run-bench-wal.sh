#!/bin/sh
# run-bench-wal.sh — run bench-wal (make bench-wal) in a temporary directory
# on a real disk, and remove it afterwards.
#
# The directory is made under $BENCH_WAL_DIR if set, else /var/tmp; if that
# is a tmpfs (where fdatasync costs nothing and the numbers mean nothing), the
# repository's build/ directory is used instead.  Extra arguments are passed
# to bench-wal (e.g. --appenders 1,64 --seconds 5); BENCH_WAL_BIN names
# another bench-wal binary.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BENCH_WAL_BIN:-"$root/build/release/bin/bench-wal"}
if [ ! -x "$bin" ]; then
    echo "run-bench-wal: $bin is not built; run \"make BUILD=release\" first" >&2
    exit 1
fi

. "$root/bench/disk.sh"
base=$(bench_disk_base run-bench-wal "$root") || exit 1

dir=$(mktemp -d "$base/dtx-bench-wal.XXXXXX")
trap 'rm -rf "$dir"' EXIT
trap 'exit 130' INT TERM
echo "bench-wal: scratch directory $dir ($(stat -f -c %T "$dir"))" >&2
"$bin" --dir "$dir" "$@"
