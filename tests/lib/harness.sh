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
# Named cases, so that one case of a suite can be run alone (CASE=name; see
# "Named cases" below and docs/testing.md, "Running one case"):
#
#   h_cases commit three pending:checkpoint   # before h_init
#   h_init
#   ...set-up every case needs...
#   if h_case commit; then ...checks...; fi
#
# Everything a test starts is recorded and torn down by h_cleanup, which the
# trap runs on any exit, also on failure or ^C: processes are SIGKILLed,
# clusters stopped in immediate mode, the temp dir removed.  Tests never touch
# a PostgreSQL server they did not start.
#
# Environment: DTX_BUILD (test|release, default test) picks the binaries;
# DTX_KEEP_TMP=1 keeps the temp dir for post-mortems; CASE picks cases of an
# integration suite (below).

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
    h__no_cases_check
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

h_pid() { echo "${H_PIDS[$1]:-}"; }

# h_kill NAME [SIGNAL] — signal and reap (default KILL)
h_kill() {
    local pid=${H_PIDS[$1]:-}
    [ -n "$pid" ] || return 0
    kill -"${2:-KILL}" "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    local rc=$?
    unset "H_PIDS[$1]"
    return $rc
}

# h_stop NAME [timeout] — SIGTERM, wait; prints the exit status
h_stop() {
    local name=$1 t=${2:-10} pid=${H_PIDS[$1]:-}
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

h_alive() { [ -n "${H_PIDS[$1]:-}" ] && kill -0 "${H_PIDS[$1]}" 2>/dev/null; }

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
        if [ -n "${H_PIDS[$name]:-}" ] && ! kill -0 "${H_PIDS[$name]}" 2>/dev/null; then
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

# ---------------------------------------------------------------------------
# Named cases.  An integration suite names its cases, so that one of them
# can be run alone:  CASE=heuristic-resolver bash tests/integration/clog.sh
#
#   h_cases DECL...   declare the suite's cases, in order; call it before
#                     h_init (a wrong CASE then fails before any set-up).
#                     DECL is NAME, NAME:DEP[+DEP...] (DEP: an earlier case
#                     whose section leaves state NAME needs; it runs too,
#                     as set-up), or +NAME (a set-up case every case needs:
#                     it always runs)
#   h_case NAME       true when the section of case NAME is to run:
#                         if h_case NAME; then ...; fi
#                     Code outside such sections (set-up, teardown) runs
#                     for every case.
#   h_end_case        ends the section of the last h_case: checks after it
#                     (common teardown) report normally again
#   h_wants NAME      true when case NAME will run (selected or as set-up),
#                     without starting its section: for set-up that only
#                     that case needs
#   h_ran NAME        true when the section of case NAME ran
#
# CASE (environment): unset or empty runs every case, as if there were no
# cases.  Otherwise a comma-separated list of case names, each may be a
# shell glob ('heuristic-*'); every item must match a case of the suite,
# else the suite fails at once with "not ok", listing its cases.
# CASE=list prints the suite's cases and exits 0.  A case skipped because
# of CASE prints nothing.  A case that runs only as set-up for a selected
# one prints its checks as "# set-up (NAME): ok - ..." comments (not
# counted); its failures count as ever.  A suite of the integration
# directory that declares no cases fails whenever CASE is set.
H_SUITE=$(basename "$0" .sh)
H_CASES=()
declare -A H_CASE_DEPS=()
declare -A H_CASE_ALWAYS=()
declare -A H_CASE_MODE=() # run | setup (only when CASE is set)
declare -A H_CASE_SEEN=()
declare -A H_CASE_RAN=()
H_CASE_CUR=""
H_QUIET=0

h__list_cases() {
    local name
    echo "# cases of $H_SUITE (CASE=NAME[,NAME...]):"
    for name in "${H_CASES[@]}"; do
        if [ "${H_CASE_ALWAYS[$name]}" = 1 ]; then
            echo "$name (set-up of every case: always runs)"
        elif [ -n "${H_CASE_DEPS[$name]}" ]; then
            echo "$name (needs: ${H_CASE_DEPS[$name]})"
        else
            echo "$name"
        fi
    done
}

h_cases() {
    local d name dep item matched changed
    local -a items bad=()
    local -A want=()
    for d in "$@"; do
        name=${d#+}
        name=${name%%:*}
        H_CASES+=("$name")
        H_CASE_ALWAYS[$name]=0
        [[ $d == +* ]] && H_CASE_ALWAYS[$name]=1
        H_CASE_DEPS[$name]=""
        [[ $d == *:* ]] && H_CASE_DEPS[$name]=${d#*:} && H_CASE_DEPS[$name]=${H_CASE_DEPS[$name]//+/ }
        for dep in ${H_CASE_DEPS[$name]}; do
            if [ -z "${H_CASE_ALWAYS[$dep]:-}" ]; then
                echo "not ok 1 - h_cases: $name needs \"$dep\", not an earlier case of $H_SUITE"
                exit 1
            fi
        done
    done
    [ -n "${CASE:-}" ] || return 0
    if [ "$CASE" = list ]; then
        h__list_cases
        exit 0
    fi
    IFS=, read -ra items <<<"$CASE"
    for item in "${items[@]}"; do
        item=${item//[[:space:]]/}
        [ -n "$item" ] || continue
        matched=0
        for name in "${H_CASES[@]}"; do
            # shellcheck disable=SC2053 # a glob on purpose
            if [[ $name == $item ]]; then
                want[$name]=run
                matched=1
            fi
        done
        [ $matched = 1 ] || bad+=("$item")
    done
    if [ ${#bad[@]} -gt 0 ] || [ ${#want[@]} -eq 0 ]; then
        echo "not ok 1 - CASE=$CASE: no case of $H_SUITE is named ${bad[*]:-(nothing)}; its cases: ${H_CASES[*]}"
        h__list_cases | sed -e 1d -e 's/^/#   /' >&2
        exit 1
    fi
    for name in "${H_CASES[@]}"; do
        [ "${H_CASE_ALWAYS[$name]}" = 1 ] && [ -z "${want[$name]:-}" ] && want[$name]=setup
    done
    changed=1
    while [ $changed = 1 ]; do
        changed=0
        for name in "${!want[@]}"; do
            for dep in ${H_CASE_DEPS[$name]}; do
                [ -n "${want[$dep]:-}" ] && continue
                want[$dep]=setup
                changed=1
            done
        done
    done
    local run="" setup=""
    for name in "${H_CASES[@]}"; do
        H_CASE_MODE[$name]=${want[$name]:-skip}
        case ${want[$name]:-} in
        run) run+=" $name" ;;
        setup) setup+=" $name" ;;
        esac
    done
    h_log "CASE=$CASE: running$run${setup:+; as set-up:$setup}"
}

h_case() {
    local name=$1 mode=run
    h_end_case
    if [ -z "${H_CASE_ALWAYS[$name]:-}" ]; then
        h_fail "h_case $name: not declared by h_cases (${H_CASES[*]})"
        return 1
    fi
    H_CASE_SEEN[$name]=1
    [ -z "${CASE:-}" ] || mode=${H_CASE_MODE[$name]:-skip}
    case $mode in
    run) ;;
    setup) H_QUIET=1 ;;
    *) return 1 ;;
    esac
    H_CASE_CUR=$name
    H_CASE_RAN[$name]=1
    return 0
}

h_end_case() {
    H_QUIET=0
    H_CASE_CUR=""
}

h_wants() {
    [ -z "${CASE:-}" ] || [ "${H_CASE_MODE[$1]:-skip}" != skip ]
}

h_ran() { [ -n "${H_CASE_RAN[$1]:-}" ]; }

# h_no_cases — for a suite that is one scenario: fails (or, for CASE=list,
# says so) when CASE is set.  h_init runs it for every suite of
# tests/integration that declared no cases.
h_no_cases() {
    [ -n "${CASE:-}" ] || return 0
    if [ "$CASE" = list ]; then
        echo "# $H_SUITE has no named cases (one scenario: run it whole, without CASE)"
        exit 0
    fi
    echo "not ok 1 - CASE=$CASE: $H_SUITE has no named cases (one scenario): run it without CASE"
    exit 1
}

h__no_cases_check() {
    [ ${#H_CASES[@]} -eq 0 ] || return 0
    # only the integration suites: tests/demo.sh and tests/chaos.sh use this
    # harness too, and ignore CASE
    [ "$(cd "$(dirname "$0")" && pwd)" = "$H_ROOT/tests/integration" ] || return 0
    h_no_cases
}

h_ok() {
    if [ "$H_QUIET" = 1 ]; then
        # a case run only as set-up for the selected one: not counted
        printf '# set-up (%s): ok - %s\n' "$H_CASE_CUR" "$*"
        return 0
    fi
    H_PASS=$((H_PASS + 1))
    printf 'ok %d - %s\n' $((H_PASS + H_FAILS)) "$*"
}
h_fail() {
    H_FAILS=$((H_FAILS + 1))
    if [ "$H_QUIET" = 1 ]; then
        printf 'not ok %d - set-up (%s): %s\n' $((H_PASS + H_FAILS)) "$H_CASE_CUR" "$*"
    else
        printf 'not ok %d - %s\n' $((H_PASS + H_FAILS)) "$*"
    fi
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
    h_end_case
    # a declared case the script never reached would be one CASE cannot
    # run (reported only when all else passed: an early exit reaches none)
    local name
    if [ "$H_FAILS" -eq 0 ]; then
        for name in "${H_CASES[@]}"; do
            [ -n "${H_CASE_SEEN[$name]:-}" ] ||
                h_fail "case \"$name\" is declared (h_cases) but no h_case reached it"
        done
    fi
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
