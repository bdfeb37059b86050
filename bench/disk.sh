# disk.sh — sourced by the benchmark runners.
#
# bench_is_tmpfs DIR: whether DIR is on a tmpfs.
# bench_disk_base PROG ROOT prints a directory on a real disk for files
# whose fdatasync a benchmark measures: $BENCH_WAL_DIR if set, else
# /var/tmp, or ROOT/build (the repository's) if that is a tmpfs, where
# fdatasync costs nothing and the numbers would mean nothing.  If the
# choice is a tmpfs all the same, it says so as PROG and fails.
bench_is_tmpfs() { [ "$(stat -f -c %T "$1" 2>/dev/null || echo unknown)" = tmpfs ]; }
bench_disk_base() {
    _base=${BENCH_WAL_DIR:-/var/tmp}
    if bench_is_tmpfs "$_base"; then
        _base="$2/build"
    fi
    if bench_is_tmpfs "$_base"; then
        echo "$1: $_base is a tmpfs; set BENCH_WAL_DIR to a directory on a disk" >&2
        return 1
    fi
    echo "$_base"
}
