#!/usr/bin/env bash
# Coordinator shutdown with work in flight.
#   SIGTERM (smart): stop accepting; a transaction whose COMMIT is under way
#   is finished; an open transaction (no COMMIT yet) is rolled back; exit 0.
#   SIGINT (fast): exit at once; what was under way is finished by recovery
#   at the next start.
#   Under load (32 clients of one-shot transfers), both exit with status 0:
#   nothing leaked whatever was in flight (the log delivers its last
#   durability notifications from wal_close, and the links are freed after
#   the commit log is closed).
# Cases (CASE=name runs one alone, docs/testing.md): smart, fast,
# participant-term, under-load; each starts what it needs when an earlier
# one did not run.
set -u
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/dtx.sh"
h_cases smart fast participant-term under-load
h_init

h_dtx_certs >/dev/null
h_pg_start pa
h_pg_start pb
for c in pa pb; do h_psql $c "create table t (k text primary key)"; done
h_part_start a pa
h_part_start b pb postgres "pool_size = 4"
h_coord_start
h_wait_log coord 'participant "b" .* is ready' 20
PROBE="$H_BIN/tool-dtxprobe"
rows() { h_psql "$1" "select count(*) from t where k = '$2'"; }
prepared() { h_psql "$1" "select count(*) from pg_prepared_xacts"; }

# --- smart shutdown -------------------------------------------------------
# b holds its vote for 2 s, so a COMMIT is under way when SIGTERM arrives
if h_case smart; then
    h_kill part-b
    DTX_FAILPOINTS="participant-after-prepare=sleep:2000@1" h_part_start b pb >/dev/null
    h_wait_newlog coord 'participant "b" .* is ready' 20 >/dev/null
    PROBE_HOOK="sleep 3" "$PROBE" hook a "insert into t values ('open')" \
        b "insert into t values ('open')" >"$H_TMP/open.out" 2>&1 &
    open_pid=$!
    sleep 1 # the open transaction has run its statements and sits in the hook
    h_dtx exec -P a "insert into t values ('committing')" -P b "insert into t values ('committing')" \
        >"$H_TMP/committing.out" 2>&1 &
    commit_pid=$!
    h_wait_newlog part-b "failpoint participant-after-prepare fired" 10
    coord_pid=$(h_pid coord)
    kill -TERM "$coord_pid"
    h_wait_newlog coord 'received smart shutdown request' 5
    err=$(h_dtx exec -P a "select 1" 2>&1)
    h_eq "SIGTERM: a new client is not accepted (exit 2)" 2 $?
    h_check "SIGTERM: ... its connection is refused" grep -q "Connection refused" <<<"$err" ||
        h_log "client said: $err"
    h_check "SIGTERM: ... while the commit under way still waits for b's vote" kill -0 $commit_pid
    h_wait_until 20 bash -c "! kill -0 $coord_pid 2>/dev/null" || kill -KILL "$coord_pid"
    wait "$coord_pid"
    coord_rc=$?
    unset "H_PIDS[coord]"
    wait $commit_pid
    h_eq "SIGTERM: the transaction under way is committed (dtx exec exit 0)" 0 $?
    h_eq "SIGTERM: ... on a" 1 "$(rows pa committing)"
    h_eq "SIGTERM: ... and on b" 1 "$(rows pb committing)"
    wait $open_pid
    h_check "SIGTERM: the open transaction is not committed" \
        bash -c "! grep -q '^COMMITTED' '$H_TMP/open.out'"
    h_eq "SIGTERM: its rows are nowhere" "0 0" "$(rows pa open) $(rows pb open)"
    h_eq "SIGTERM: the coordinator exits 0" 0 "$coord_rc"
    h_check "SIGTERM: logged as a smart shutdown" grep -q 'received smart shutdown request' "$H_TMP/coord.log"
    h_eq "SIGTERM: nothing left prepared" "0 0" "$(prepared pa) $(prepared pb)"
fi

# --- fast shutdown --------------------------------------------------------
if h_case fast; then
    h_stop coord >/dev/null # (still up when smart did not run)
    h_kill part-b
    DTX_FAILPOINTS="participant-after-prepare=sleep:2000@1" h_part_start b pb >/dev/null
    h_coord_start >/dev/null
    h_wait_newlog coord 'participant "b" .* is ready' 20 >/dev/null
    "$PROBE" hook a "insert into t values ('fast')" b "insert into t values ('fast')" \
        >"$H_TMP/fast.out" 2>&1 &
    fast_pid=$!
    h_wait_newlog part-b "failpoint participant-after-prepare fired" 10
    t0=$(date +%s%N)
    h_kill coord INT
    int_rc=$?
    h_check "SIGINT: the coordinator exits at once (< 1 s)" \
        test $((($(date +%s%N) - t0) / 1000000)) -lt 1000
    h_eq "SIGINT: ... with status 0 (nothing leaked)" 0 "$int_rc"
    wait $fast_pid
    read -r word gid < <(grep -E '^(COMMITTED|ABORTED|UNKNOWN) ' "$H_TMP/fast.out")
    h_eq "SIGINT: the client is told UNKNOWN" UNKNOWN "$word"
    h_coord_start >/dev/null
    h_check "SIGINT: after restart nothing is left prepared" \
        h_wait_until 20 bash -c "[ \"\$(psql -X -At -h 127.0.0.1 -p $(h_pg_port pa) -U postgres -c 'select count(*) from pg_prepared_xacts')\$(psql -X -At -h 127.0.0.1 -p $(h_pg_port pb) -U postgres -c 'select count(*) from pg_prepared_xacts')\" = 00 ]"
    st=$("$PROBE" status "$gid")
    n=$(($(rows pa fast) + $(rows pb fast)))
    case $st in
    COMMITTED) h_eq "SIGINT: status COMMITTED and the rows are on both" 2 "$n" ;;
    ABORTED) h_eq "SIGINT: status ABORTED and the rows are nowhere" 0 "$n" ;;
    *) h_fail "SIGINT: status of $gid is $st" ;;
    esac
fi

# --- participant SIGTERM while a statement outlives the grace period -------
# a runs pg_sleep(9): after the 5 s grace the participant sends 57P01 and
# closes; the coordinator hangs up on it while it waits for the statement,
# and it still exits cleanly (that hang-up once hit an abort())
if h_case participant-term; then
    if ! h_alive coord; then # (when fast did not run)
        h_coord_start >/dev/null
        h_wait_newlog coord 'participant "a" .* is ready' 20 >/dev/null
    fi
    h_dtx exec -P a "select pg_sleep(9)" >"$H_TMP/sleep.out" 2>&1 &
    sleep_pid=$!
    h_check "participant SIGTERM: the long statement runs" \
        h_wait_until 10 bash -c "[ \"\$(psql -X -At -h 127.0.0.1 -p $(h_pg_port pa) -U postgres -c \"select count(*) from pg_stat_activity where query like 'select pg_sleep(9)%'\")\" = 1 ]"
    h_kill part-a TERM
    h_eq "participant SIGTERM: exits 0 after closing its coordinator connection" 0 $?
    h_check "participant SIGTERM: it waited, then closed the connections" \
        grep -q 'still busy; closing connections' "$H_TMP/part-a.log"
    wait $sleep_pid
    h_check "participant SIGTERM: the client is not told COMMITTED" \
        bash -c "! grep -q '^COMMITTED' '$H_TMP/sleep.out'"
fi

# --- SIGTERM and SIGINT with commits in flight ------------------------------
if h_case under-load; then
    h_alive part-a || h_part_start a pa >/dev/null # (participant-term stopped it)
    for c in pa pb; do
        h_psql $c "create table accounts (id int primary key, balance bigint not null);
                   insert into accounts select g, 1000000000 from generate_series(1, 48) g"
    done
    for sig in TERM INT; do
        if ! h_alive coord; then
            h_coord_start >/dev/null
            h_wait_newlog coord 'participant "a" .* is ready' 20 >/dev/null
            h_wait_newlog coord 'participant "b" .* is ready' 20 >/dev/null
        fi
        "$H_BIN/bench-bank" --mode dtx_oneshot --clients 32 --seconds 8 >"$H_TMP/load-$sig.out" 2>&1 &
        load=$!
        sleep 2 # well into the run: commits are under way
        h_kill coord $sig
        rc=$?
        h_eq "SIG$sig with 32 clients committing: the coordinator exits 0 (LeakSanitizer-clean)" 0 $rc
        h_check "SIG$sig: ...and says why it stopped" grep -q "received $([ $sig = TERM ] && echo smart || echo fast) shutdown request" "$H_TMP/coord.log"
        wait $load
        h_log "the load when SIG$sig came: $(tail -n 1 "$H_TMP/load-$sig.out")"
    done
    h_coord_start >/dev/null
    h_check "under load: after a restart nothing is left prepared" \
        h_wait_until 30 bash -c "[ \"\$(psql -X -At -h 127.0.0.1 -p $(h_pg_port pa) -U postgres -c 'select count(*) from pg_prepared_xacts')\$(psql -X -At -h 127.0.0.1 -p $(h_pg_port pb) -U postgres -c 'select count(*) from pg_prepared_xacts')\" = 00 ]"
    h_eq "under load: the money is all there" "$((2 * 48 * 1000000000))" \
        "$(($(h_psql pa "select sum(balance) from accounts") + $(h_psql pb "select sum(balance) from accounts")))"
fi

h_end_case
if [ -n "$(h_pid coord)" ]; then # (smart alone leaves none)
    h_stop coord >/dev/null
    h_eq "coordinator exits 0 on SIGTERM when idle" 0 $?
fi
h_done
