# shellcheck shell=bash
# tests/lib/harness.sh — throwaway PostgreSQL clusters, certificates and dtx
# processes for integration tests.  Source it from a bash test:
#
#   . "$(dirname "$0")/../lib/harness.sh"
#   h_init                         # temp dir + cleanup trap (EXIT INT TERM)
#   h_pg_start a                   # cluster "a": initdb as postgres, free port
#   h_psql a "select 1"            # run SQL (psql -X -At), prints the rows
#   h_certs coordinator part-a     # CA + certs in $H_CERTS
#   h_start coord "$H_BIN/dtx-coordinator" -c coord.ini   # background process
#   h_wait_log coord "ready" 10    # wait for a log line
#   h_kill coord KILL              # signal it
#   h_ok "description" / h_fail "description"   (TAP-style lines)
#
# Everything a test starts is recorded and torn down by h_cleanup, which the
# trap runs on any exit, also on failure or ^C: processes are SIGKILLed,
# clusters stopped in immediate mode, the temp dir removed.  Tests never touch
# a PostgreSQL server they did not start.
#
# Environment: DTX_BUILD (test|release, default test) picks the binaries;
# DTX_KEEP_TMP=1 keeps the temp dir for post-mortems.

H_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
H_BUILD=${DTX_BUILD:-test}
H_BIN="$H_ROOT/build/$H_BUILD/bin"
H_PGBIN=$(pg_config --bindir 2>/dev/null)
[ -x "$H_PGBIN/initdb" ] || H_PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
H_TMP=""
H_PASS=0
H_FAILS=0
declare -A H_PIDS=()
declare -A H_PG_PORT=()
declare -A H_PG_DIR=()
declare -A H_LOG_FROM=()

# ASan: report leaks, fail hard, and keep the output in the process's log.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=99}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

h_log() { printf '# %s\n' "$*" >&2; }

h_init() {
    H_TMP=$(mktemp -d /tmp/dtx-test.XXXXXX)
    chmod 755 "$H_TMP"
    H_CERTS="$H_TMP/certs"
    trap 'h_cleanup' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

h_cleanup() {
    local rc=$?
    trap - EXIT
    local name
    for name in "${!H_PIDS[@]}"; do
        kill -KILL "${H_PIDS[$name]}" 2>/dev/null
    done
    for name in "${!H_PIDS[@]}"; do
        wait "${H_PIDS[$name]}" 2>/dev/null
    done
    for name in "${!H_PG_DIR[@]}"; do
        runuser -u postgres -- "$H_PGBIN/pg_ctl" -D "${H_PG_DIR[$name]}/data" -m immediate \
            stop >/dev/null 2>&1
    done
    if [ -n "$H_TMP" ] && [ -d "$H_TMP" ]; then
        if [ "${DTX_KEEP_TMP:-0}" = 1 ] || { [ $rc -ne 0 ] && [ "${DTX_KEEP_FAILED:-0}" = 1 ]; }; then
            h_log "kept $H_TMP"
        else
            rm -rf "$H_TMP"
        fi
    fi
    exit $rc
}

# h_free_port: print a TCP port on 127.0.0.1 that nothing listens on now.
h_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()' 2>/dev/null && return
    local p
    while :; do
        p=$((20000 + RANDOM % 30000))
        (echo >/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo $p; return; }
    done
}

# h_pg_start NAME [max_prepared_transactions] — a fresh cluster, fsync on.
h_pg_start() {
    local name=$1 mpt=${2:-64}
    local dir="$H_TMP/pg-$name"
    mkdir -p "$dir"
    chown postgres: "$dir"
    runuser -u postgres -- "$H_PGBIN/initdb" -D "$dir/data" -A trust -U postgres \
        --no-sync -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; return 1; }
    local port
    port=$(h_free_port)
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_prepared_transactions = $mpt
max_connections = 200
fsync = on
shared_buffers = 32MB
lock_timeout = 20s
log_min_messages = warning
CONF
    H_PG_PORT[$name]=$port
    H_PG_DIR[$name]=$dir
    h_pg_ctl_start "$name"
}

h_pg_ctl_start() {
    local name=$1 dir=${H_PG_DIR[$1]}
    runuser -u postgres -- "$H_PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        start >/dev/null || { tail -n 20 "$dir/server.log" >&2; return 1; }
}

# h_pg_stop NAME [fast|immediate]
h_pg_stop() {
    runuser -u postgres -- "$H_PGBIN/pg_ctl" -D "${H_PG_DIR[$1]}/data" -m "${2:-fast}" -w \
        stop >/dev/null 2>&1
}

h_pg_port() { echo "${H_PG_PORT[$1]}"; }
# conninfo for a cluster (and optional database); over the cluster's Unix
# socket when H_PG_VIA_SOCKET=1 (as a sidecar would connect)
h_pg_conninfo() {
    if [ "${H_PG_VIA_SOCKET:-0}" = 1 ]; then
        echo "host=${H_PG_DIR[$1]} port=${H_PG_PORT[$1]} user=postgres dbname=${2:-postgres}"
    else
        echo "host=127.0.0.1 port=${H_PG_PORT[$1]} user=postgres dbname=${2:-postgres}"
    fi
}

# h_pg_enable_ssl NAME — TLS for TCP clients with a certificate for
# localhost/127.0.0.1 from $H_CERTS (made by h_certs), without restart
h_pg_enable_ssl() {
    local dir=${H_PG_DIR[$1]}
    [ -f "$H_CERTS/pg.crt" ] || h_certs pg
    install -o postgres -m 600 "$H_CERTS/pg.crt" "$dir/server.crt"
    install -o postgres -m 600 "$H_CERTS/pg.key" "$dir/server.key"
    h_psql "$1" "alter system set ssl_cert_file = '$dir/server.crt'" &&
        h_psql "$1" "alter system set ssl_key_file = '$dir/server.key'" &&
        h_psql "$1" "alter system set ssl = on" &&
        h_psql "$1" "select pg_reload_conf()" >/dev/null
}

# h_psql NAME SQL [DB] — print rows unaligned, fail on error
h_psql() {
    psql -X -At -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "${H_PG_PORT[$1]}" -U postgres \
        -d "${3:-postgres}" -c "$2"
}

# h_certs NAME... — CA and one certificate per name in $H_CERTS
h_certs() {
    "$H_ROOT/tests/lib/gencerts.sh" "$H_CERTS" "$@" >/dev/null
}

# h_start NAME CMD... — run CMD in the background; output in $H_TMP/NAME.log
h_start() {
    local name=$1
    shift
    H_LOG_FROM[$name]=$(stat -c %s "$H_TMP/$name.log" 2>/dev/null || echo 0)
    if [ "${DTX_VALGRIND:-0}" = 1 ] && [[ $(basename "$1") == dtx-* ]]; then
        # the daemons under valgrind (make valgrind): errors and definite
        # leaks make the exit status 97; reports in NAME.vg.PID
        set -- valgrind -q --error-exitcode=97 --leak-check=full \
            --errors-for-leak-kinds=definite --log-file="$H_TMP/$name.vg.%p" "$@"
    fi
    "$@" >>"$H_TMP/$name.log" 2>&1 &
    H_PIDS[$name]=$!
}

h_pid() { echo "${H_PIDS[$1]}"; }

# h_kill NAME [SIGNAL] — signal and reap (default KILL)
h_kill() {
    local pid=${H_PIDS[$1]}
    [ -n "$pid" ] || return 0
    kill -"${2:-KILL}" "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    local rc=$?
    unset "H_PIDS[$1]"
    return $rc
}

# h_stop NAME [timeout] — SIGTERM, wait; prints the exit status
h_stop() {
    local name=$1 t=${2:-10} pid=${H_PIDS[$1]}
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    local i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt $((t * 10)) ]; do
        sleep 0.1
        i=$((i + 1))
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    local rc=$?
    unset "H_PIDS[$name]"
    return $rc
}

h_alive() { kill -0 "${H_PIDS[$1]}" 2>/dev/null; }

# h_newlog NAME — what the process printed since its last h_start (logs are
# appended across restarts)
h_newlog() { tail -c +$((${H_LOG_FROM[$1]:-0} + 1)) "$H_TMP/$1.log" 2>/dev/null; }

# h_wait_log NAME REGEX [TIMEOUT_S] — wait until the process log matches
h_wait_log() { h__wait_log_from 0 "$@"; }

# h_wait_newlog NAME REGEX [TIMEOUT_S] — the same, in h_newlog NAME only
h_wait_newlog() { h__wait_log_from "${H_LOG_FROM[$1]:-0}" "$@"; }

h__wait_log_from() {
    local from=$1 name=$2 re=$3 t=${4:-15} i=0
    while [ $i -lt $((t * 10)) ]; do
        tail -c +$((from + 1)) "$H_TMP/$name.log" 2>/dev/null | grep -Eq -- "$re" && return 0
        if [ -n "${H_PIDS[$name]}" ] && ! kill -0 "${H_PIDS[$name]}" 2>/dev/null; then
            h_log "$name exited while waiting for /$re/:"
            tail -n 20 "$H_TMP/$name.log" >&2
            return 1
        fi
        sleep 0.1
        i=$((i + 1))
    done
    h_log "timeout waiting for /$re/ in $name.log:"
    tail -n 20 "$H_TMP/$name.log" >&2
    return 1
}

# h_wait_exit NAME [TIMEOUT_S] — wait until the process has exited
h_wait_exit() { h_wait_until "${2:-20}" bash -c "! kill -0 ${H_PIDS[$1]:-0} 2>/dev/null"; }

# h_wait_until TIMEOUT_S CMD... — poll a command until it succeeds
h_wait_until() {
    local t=$1 i=0
    shift
    while [ $i -lt $((t * 10)) ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

h_ok() {
    H_PASS=$((H_PASS + 1))
    printf 'ok %d - %s\n' $((H_PASS + H_FAILS)) "$*"
}
h_fail() {
    H_FAILS=$((H_FAILS + 1))
    printf 'not ok %d - %s\n' $((H_PASS + H_FAILS)) "$*"
}
# h_check DESC CMD... — ok if CMD succeeds
h_check() {
    local desc=$1
    shift
    if "$@"; then h_ok "$desc"; else h_fail "$desc"; fi
}
# h_eq DESC EXPECTED ACTUAL
h_eq() {
    if [ "$2" = "$3" ]; then
        h_ok "$1"
    else
        h_fail "$1 (expected '$2', got '$3')"
        return 1
    fi
}
# h_done — exit status of the test script
h_done() {
    if [ "${DTX_VALGRIND:-0}" = 1 ]; then
        local f
        for f in "$H_TMP"/*.vg.*; do
            [ -s "$f" ] || continue
            h_fail "valgrind reports errors in $(basename "$f")"
            sed 's/^/# /' "$f" | head -n 40
        done
    fi
    [ "$H_FAILS" -eq 0 ]
    exit $?
}
