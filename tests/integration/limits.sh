#!/usr/bin/env bash
# tests/integration/limits.sh — waits that must end: a full participant pool
# (pool_wait_timeout), a statement that runs too long (the coordinator's
# statement_timeout, with a cancel forwarded to PostgreSQL), a one-shot
# transaction whose coordinator dies mid-commit (the gid is known before the
# outcome), a vote that comes too late (prepare_timeout) and a client that
# says nothing (idle_timeout).  Each numbered section is a case (CASE=name
# runs it alone, docs/testing.md); the coordinator restarts between them and
# the clean shutdown at the end run for every case.
set -u
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/dtx.sh"
h_cases pool-wait statement-timeout oneshot-crash prepare-timeout idle-timeout
h_init

PROBE="$H_BIN/tool-dtxprobe"
h_pg_start pa
h_pg_start pb
for c in pa pb; do
    h_psql "$c" "create table t (id int primary key, v int not null);
                 insert into t select g, 0 from generate_series(1, 10) g"
done
h_dtx_certs
h_part_start a pa postgres "pool_size = 2" "pool_wait_timeout = 2s"
h_part_start b pb postgres "pool_size = 2" "pool_wait_timeout = 2s"
h_coord_config "prepare_timeout = 30s"
h_coord_start
for p in a b; do h_wait_log coord "participant \"$p\" .* is ready" 20; done

nprepared() { h_psql "$1" "select count(*) from pg_prepared_xacts"; }
val() { h_psql "$1" "select v from t where id = $2"; }
none_prepared() { [ "$(( $(nprepared pa) + $(nprepared pb) ))" = 0 ]; }

# ---------------------------------------------------------------------------
# 1. pool_wait_timeout: pool_size = 2 leaves one connection for new work on
# each participant.  T1 takes a then b, T2 takes b then a: a deadlock of
# connections.  T3 (a then b) and T4 (b then a) queue behind them.  The
# waiter that has waited longest gives up first (53300), its rollback frees
# its connection, and the one behind it goes on.
if h_case pool-wait; then
    upd() { echo "update t set v = v + 1 where id = $1"; }
    start=$SECONDS
    "$PROBE" steps a "$(upd 1)" sleep 1000 b "$(upd 1)" >"$H_TMP/t1.out" 2>&1 &
    p1=$!
    "$PROBE" steps b "$(upd 2)" sleep 1500 a "$(upd 2)" >"$H_TMP/t2.out" 2>&1 &
    p2=$!
    sleep 2
    "$PROBE" steps a "$(upd 3)" sleep 500 b "$(upd 3)" >"$H_TMP/t3.out" 2>&1 &
    p3=$!
    "$PROBE" steps b "$(upd 4)" sleep 1000 a "$(upd 4)" >"$H_TMP/t4.out" 2>&1 &
    p4=$!
    wait $p1 $p2 $p3 $p4
    took=$((SECONDS - start))
    for i in 1 2 3 4; do h_log "T$i: $(tr '\n' ' ' <"$H_TMP/t$i.out")"; done
    h_check "pool wait: all four ended well within prepare_timeout (${took}s < 20s)" test "$took" -lt 20
    h_check "pool wait: T1 (waited first) gets 53300" grep -q '^ERROR 53300 b ' "$H_TMP/t1.out"
    h_check "pool wait: T1 is aborted" grep -q '^ABORTED ' "$H_TMP/t1.out"
    h_check "pool wait: T2 commits once T1 gave up" grep -q '^COMMITTED ' "$H_TMP/t2.out"
    h_check "pool wait: the error names pool_size and open transactions" \
        grep -q 'pool_wait_timeout (2000 ms).*pool_size = 2.*held by open transactions' "$H_TMP/t1.out"
    ncommit=$(cat "$H_TMP"/t[1-4].out | grep -c '^COMMITTED ')
    nwait=$(cat "$H_TMP"/t[1-4].out | grep -c '^ERROR 53300 ')
    h_eq "pool wait: two commit, two give up with 53300" "2 2" "$ncommit $nwait"
    ok=1
    for i in 1 2 3 4; do
        va=$(val pa $i) vb=$(val pb $i)
        if grep -q '^COMMITTED ' "$H_TMP/t$i.out"; then want=1; else want=0; fi
        [ "$va" = $want ] && [ "$vb" = $want ] || { ok=0; h_log "T$i: a=$va b=$vb want $want"; }
    done
    h_check "pool wait: committed ones changed both rows, the others neither" test $ok = 1
    h_eq "pool wait: nothing left prepared" 0 "$(( $(nprepared pa) + $(nprepared pb) ))"
    h_check "pool wait: the participant logged the give-up" \
        grep -qE 'gave up after pool_wait_timeout' "$H_TMP/part-a.log" "$H_TMP/part-b.log"
    h_check "pool wait: both participants serve new work afterwards" \
        h_dtx_quiet exec -P a "select 1" -P b "select 1"

    h_stop coord
    h_eq "coordinator exits 0 on SIGTERM (no leaks)" 0 $?
fi

# ---------------------------------------------------------------------------
# 2. the coordinator's statement_timeout: an EXEC that runs too long fails
# with 57014 naming the participant; the participant forwards a cancel to
# PostgreSQL; the rollback is answered at once and leaves nothing behind.
h_end_case
h_stop coord # (when pool-wait did not run)
mv "$H_TMP/coord.log" "$H_TMP/coord-1.log"
h_coord_config "prepare_timeout = 30s" "statement_timeout = 1s"
h_coord_start
for p in a b; do h_wait_log coord "participant \"$p\" .* is ready" 20; done
if h_case statement-timeout; then
    sleeping() { h_psql "$1" "select count(*) from pg_stat_activity where query like 'select pg_sleep(30)%' and state = 'active'"; }

    "$PROBE" steps b "update t set v = v + 100 where id = 6" a "select pg_sleep(30)" >"$H_TMP/st.out" 2>&1
    h_log "statement timeout: $(tr '\n' ' ' <"$H_TMP/st.out")"
    h_check "statement timeout: 57014 from participant a" grep -q '^ERROR 57014 a ' "$H_TMP/st.out"
    h_check "statement timeout: the message names the participant and the limit" \
        grep -q 'statement timeout: participant "a" did not answer within 1000 ms' "$H_TMP/st.out"
    ms=$(sed -nE 's/^ERROR 57014 a ([0-9]+):.*/\1/p' "$H_TMP/st.out")
    h_check "statement timeout: error within a few seconds (${ms:-?} ms)" test "${ms:-99999}" -lt 4000
    h_check "statement timeout: rolled back (ABORTED)" grep -q '^ABORTED ' "$H_TMP/st.out"
    end=$(sed -nE 's/^ABORTED [^ ]+ ([0-9]+)$/\1/p' "$H_TMP/st.out")
    h_check "statement timeout: the rollback did not wait for the statement (${end:-?} ms)" \
        test "${end:-99999}" -lt 5000
    no_sleep() { [ "$(sleeping pa)" = 0 ]; }
    h_check "statement timeout: PostgreSQL no longer runs the sleep (cancelled)" h_wait_until 5 no_sleep
    h_eq "statement timeout: the sleep was running no longer than a few seconds" 0 "$(sleeping pa)"
    h_check "statement timeout: the participant forwarded the cancel" \
        grep -q 'cancel requested by the coordinator (running: cancel sent to PostgreSQL)' \
        "$H_TMP/part-a.log"
    h_check "statement timeout: b's change rolled back, its row lock released" \
        h_wait_until 10 psql -X -At -h 127.0.0.1 -p "$(h_pg_port pb)" -U postgres \
        -c "set lock_timeout = '1s'; update t set v = v where id = 6"
    h_eq "statement timeout: b unchanged" 0 "$(val pb 6)"
    h_eq "statement timeout: nothing left prepared" 0 "$(( $(nprepared pa) + $(nprepared pb) ))"
    h_check "statement timeout: a statement within the limit still works" \
        h_dtx_quiet exec -P a "select pg_sleep(0.2)" -P a "update t set v = v + 1 where id = 7" \
        -P b "update t set v = v + 1 where id = 7"
    h_eq "statement timeout: that one committed" "1 1" "$(val pa 7) $(val pb 7)"
    # the participant's pool got its connections back: fill it again
    h_check "statement timeout: the cancelled branch's connection is reusable" \
        h_dtx_quiet exec -P a "update t set v = v + 1 where id = 8" -P b "update t set v = v + 1 where id = 8"

    h_stop coord
    h_eq "coordinator exits 0 on SIGTERM (no leaks)" 0 $?
fi

# ---------------------------------------------------------------------------
# 3. a one-shot transaction whose coordinator dies after its COMMIT record is
# durable: the client learns UNKNOWN *with* the gid (named before the
# branches ran); after a restart the gid is COMMITTED and both rows changed.
h_end_case
h_stop coord # (when statement-timeout did not run)
if h_case oneshot-crash; then
    mv "$H_TMP/coord.log" "$H_TMP/coord-2.log"
    DTX_FAILPOINTS=coord-after-commit-durable=kill h_coord_start
    for p in a b; do h_wait_log coord "participant \"$p\" .* is ready" 20; done
    "$PROBE" oneshot a "update t set v = v + 10 where id = 9" b "update t set v = v + 10 where id = 9" \
        >"$H_TMP/os.out" 2>&1
    h_log "oneshot: $(tr '\n' ' ' <"$H_TMP/os.out")"
    h_check "oneshot, coordinator killed mid-commit: UNKNOWN with a gid" \
        grep -qE '^UNKNOWN dtx:c1:[0-9]+:[0-9]+$' "$H_TMP/os.out"
    gid=$(sed -nE 's/^UNKNOWN (dtx:c1:[0-9]+:[0-9]+)$/\1/p' "$H_TMP/os.out")
    h_check "oneshot: the coordinator really died at the failpoint" h_wait_exit coord 10
    h_kill coord
    mv "$H_TMP/coord.log" "$H_TMP/coord-3.log"
    h_coord_start
    for p in a b; do h_wait_log coord "participant \"$p\" .* is ready" 20; done
    h_eq "oneshot: after the restart, status of $gid" COMMITTED "$("$PROBE" status "${gid:-none}")"
    both10() { [ "$(val pa 9) $(val pb 9)" = "10 10" ]; }
    h_check "oneshot: recovery finished both branches" h_wait_until 20 both10
    h_eq "oneshot: both rows changed" "10 10" "$(val pa 9) $(val pb 9)"
    h_check "oneshot: nothing left prepared" h_wait_until 20 none_prepared
fi

# ---------------------------------------------------------------------------
# 4. prepare_timeout: a holds its vote for 4 s, the coordinator waits 2 s.
# PREPARE goes to both branches at once, so b's is prepared while a still
# holds.  The client is told ABORTED (57014) at the timeout, not when the
# vote comes; b's branch is rolled back at the decision, a's, prepared after
# it, as its vote comes in.
# 5. idle_timeout (2 s): a client silent that long between requests is
# disconnected and its open transaction rolled back, lock released; one
# waiting that long for a statement is not idle.
# (a's failpoint, a slow first PREPARE, is armed only when prepare-timeout
# runs: its PREPARE takes it, and idle-timeout alone must not meet it)
h_end_case
h_stop coord
h_kill part-a
sed -i -e 's/^prepare_timeout = .*/prepare_timeout = 2s/' -e 's/^statement_timeout = .*/statement_timeout = 10s/' \
    -e '/^\[coordinator\]/a idle_timeout = 2s' "$H_TMP/coord.ini"
fp=""
h_wants prepare-timeout && fp="participant-before-prepare=sleep:4000@1"
DTX_FAILPOINTS=$fp h_part_start a pa >/dev/null
h_coord_start
for p in a b; do h_wait_newlog coord "participant \"$p\" .* is ready" 20; done
if h_case prepare-timeout; then
    v8="$(val pa 8) $(val pb 8)"
    "$PROBE" steps a "update t set v = v + 1 where id = 8" b "update t set v = v + 1 where id = 8" \
        >"$H_TMP/pt.out" 2>&1 &
    pt_pid=$!
    # (done in order, a's PREPARE would come first, and b's only after a's vote)
    b_not_a() { [ "$(nprepared pb) $(nprepared pa)" = "1 0" ]; }
    h_check "prepare_timeout: b's branch is prepared while a holds its vote (PREPARE sent to both at once)" \
        h_wait_until 4 b_not_a
    wait $pt_pid
    h_log "prepare timeout: $(tr '\n' ' ' <"$H_TMP/pt.out")"
    read -r word gid ms < <(grep -E '^(COMMITTED|ABORTED|UNKNOWN) ' "$H_TMP/pt.out")
    h_eq "prepare_timeout: ABORTED" ABORTED "$word"
    h_check "prepare_timeout: ... answered at the timeout, before the late vote (${ms:-?} ms)" \
        test "${ms:-9999}" -lt 3900
    h_check "prepare_timeout: the client is told why" grep -q 'prepare timed out' "$H_TMP/pt.out"
    h_check "prepare_timeout: the coordinator logged it" \
        h_wait_log coord "transaction ${gid:-none}: prepare timed out after 2000 ms" 5
    h_check "prepare_timeout: both branches rolled back, a's once its late vote came" h_wait_until 20 none_prepared
    h_eq "prepare_timeout: neither row changed" "$v8" "$(val pa 8) $(val pb 8)"
    h_eq "prepare_timeout: status" ABORTED "$("$PROBE" status "${gid:-none}")"
fi

if h_case idle-timeout; then
    v7="$(val pa 7) $(val pb 7)"
    "$PROBE" steps a "update t set v = v + 1 where id = 7" sleep 5000 \
        b "update t set v = v + 1 where id = 7" >"$H_TMP/idle.out" 2>&1 &
    idle_pid=$!
    lock_free() { h_psql pa "set lock_timeout = '100ms'; update t set v = v where id = 7" >/dev/null 2>&1; }
    lock_held() { ! lock_free; }
    h_check "idle_timeout: the client's transaction holds its row lock" h_wait_until 10 lock_held
    t0=$(date +%s%N)
    h_check "idle_timeout: the silent client's transaction rolled back, its lock released" \
        h_wait_until 4 lock_free
    h_check "idle_timeout: ... while the client still slept ($((($(date +%s%N) - t0) / 1000000)) ms)" \
        kill -0 $idle_pid
    wait $idle_pid
    h_log "idle: $(tr '\n' ' ' <"$H_TMP/idle.out")"
    h_check "idle_timeout: the client's next statement finds the connection gone" \
        grep -q '^ERROR ' "$H_TMP/idle.out"
    h_eq "idle_timeout: neither row changed" "$v7" "$(val pa 7) $(val pb 7)"
    "$PROBE" steps a "select pg_sleep(3)" a "update t set v = v + 1 where id = 5" \
        b "update t set v = v + 1 where id = 5" >"$H_TMP/busy.out" 2>&1
    h_check "idle_timeout: a client waiting 3 s for a statement is not idle: COMMITTED" \
        grep -q '^COMMITTED' "$H_TMP/busy.out"
    h_eq "idle_timeout: ... both rows changed" "1 1" "$(val pa 5) $(val pb 5)"
    # a client that stops reading: a one-shot whose first statement returns
    # some 14 MB (under max_frame), more than the sockets hold, and whose second
    # takes a second, so the coordinator's write blocks while the request is
    # still in flight.  Once it is answered the client is as idle as a silent
    # one, and is disconnected.
    # (ss tells whether the coordinator's end of the connection is still
    # established: the client, asleep, cannot read anything to find out.)
    "$PROBE" stall a "select g, repeat('x', 100) from generate_series(1, 120000) g" \
        "select pg_sleep(1)" 9000 >"$H_TMP/stall.out" 2>&1 &
    stall_pid=$!
    h_wait_until 5 bash -c "[ \$(ss -Htn state established '( sport = :$H_COORD_PORT )' | wc -l) -gt 0 ]"
    h_check "idle_timeout: a client that stops reading is disconnected (while it sleeps)" \
        h_wait_until 7 bash -c "[ \$(ss -Htn state established '( sport = :$H_COORD_PORT )' | wc -l) = 0 ]"
    h_check "idle_timeout: ... the client was still asleep then" kill -0 $stall_pid
    wait $stall_pid
    h_eq "idle_timeout: ... and finds its connection closed" gone "$(tail -n 1 "$H_TMP/stall.out")"
fi

h_end_case
h_stop_clean a b
h_done
