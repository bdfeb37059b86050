#!/usr/bin/env bash
# The coordinator's commit log: checkpoints (segments removed, what they must
# keep, what replay still knows afterwards) and heuristic outcomes (a branch
# rolled back by hand against a COMMIT decision stays reported).
# Participants: a (cluster pa), b (cluster pb), c (database pc of cluster pa).
# Cases (CASE=name runs one alone, docs/testing.md): checkpoint; pending and
# restart carry on from the state the one before left (and run it first, as
# set-up); retention, heuristic-resolver, heuristic-phase2 start what they
# need themselves.
set -u
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/dtx.sh"
h_cases checkpoint pending:checkpoint restart:pending retention heuristic-resolver heuristic-phase2
h_init

h_pg_start pa
h_pg_start pb
h_psql pa "create database pc"
schema="create table accounts (id text primary key, balance int not null check (balance >= 0));
        create table marks (gid text, note text);
        insert into accounts select 'acct' || g, 100000 from generate_series(0, 40) g;"
h_psql pa "$schema"
h_psql pb "$schema"
h_psql pa "$schema" pc
h_dtx_certs
h_part_start a pa postgres
h_part_start b pb postgres
h_part_start c pa pc
PROBE="$H_BIN/tool-dtxprobe"
WAL="$H_TMP/coord-data/wal"
CKPT=(wal_segment_size=64kB checkpoint_interval=1s checkpoint_segments=2 outcome_retention=1s)

# coord_up [ini lines]: (re)start the coordinator with a fresh configuration;
# the previous log is appended to coord-all.log.  DTX_FAILPOINTS passes through.
coord_up() {
    rm -f "$H_TMP/coord.ini"
    if [ -f "$H_TMP/coord.log" ]; then
        cat "$H_TMP/coord.log" >>"$H_TMP/coord-all.log"
        rm -f "$H_TMP/coord.log"
    fi
    h_coord_start "$@" || return 1
    h_wait_log coord 'participant "a" .* is ready' 20
}
coord_kill() { h_kill coord KILL; }
gid_of() { grep -oE 'dtx:c1:[0-9]+:[0-9]+' <<<"$1" | tail -n 1; }
status_of() { h_dtx status "$1" 2>&1 | head -n 1 | sed -E 's/ dtx:.*//'; }
prepared() { h_psql "$1" "select gid from pg_prepared_xacts where gid like 'dtx:c1:%' order by 1"; }
seg_files() { ls "$WAL" | grep -E '^[0-9A-F]{16}\.seg$'; }
seg_exists() { [ -f "$WAL/$(printf '%016X' "$1").seg" ]; }
# "0/0001A2B0" -> segment number for 64 kB segments
lsn_seg() {
    local hi=${1%/*} lo=${1#*/}
    echo $(((16#$hi * 4294967296 + 16#$lo) / 65536))
}
seg_gone() { ! seg_exists "$1"; }
coord_dead() { ! h_alive coord; }
not_prepared() { [ -z "$(h_psql "$1" "select 1 from pg_prepared_xacts where gid = '$2'")" ]; }
marks_on() { h_psql "$1" "select count(*) from marks where gid = '$2'"; }
indoubt_has() { h_dtx indoubt 2>&1 | grep -qE "$1"; }
# b_up: start b again if pending stopped it and restart (which does) did not run
b_up() { if h_ran pending && ! h_ran restart; then h_part_start b pb postgres; fi; }
two() { # two NOTE: a two-branch transaction on a and b writing NOTE
    h_dtx exec -P a "insert into marks values ('$1', 'a')" -P b "insert into marks values ('$1', 'b')" 2>&1
}

# ---- 1. checkpoints remove segments while transactions run ---------------
if h_case checkpoint; then
    coord_up "${CKPT[@]}"
    h_wait_log coord 'participant "b" .* is ready' 20
    out=$(two early)
    h_eq "first transaction committed" 0 $?
    g_early=$(gid_of "$out")
    out=$(PROBE_ONESHOT=1 "$PROBE" transfers 20 50 a b)
    h_eq "1000 transactions committed" "committed=1000 aborted=0 unknown=0 errors=0" "$(head -n 1 <<<"$out")"
    h_check "a checkpoint removed segments" h_wait_log coord 'checkpoint at .*: removed [1-9][0-9]* segment' 20
    h_check "segment 0 is gone" bash -c "! [ -f '$WAL/0000000000000000.seg' ]"
    n=$(seg_files | wc -l)
    h_check "the log holds few segments after 1000 transactions ($n)" test "$n" -le 4
    h_eq "early gid, pruned from memory: NO LONGER KNOWN" "NO LONGER KNOWN" "$(status_of "$g_early")"
fi

# ---- 2. a commit left pending keeps its segment ---------------------------
if h_case pending; then
    coord_kill
    DTX_FAILPOINTS="coord-after-commit-durable=kill@1" coord_up "${CKPT[@]}"
    h_eq "replay after checkpoints: early gid still NO LONGER KNOWN (not ABORTED)" \
        "NO LONGER KNOWN" "$(status_of "$g_early")"
    h_wait_log coord 'participant "b" .* is ready' 20
    two pending >/dev/null
    h_check "coordinator killed after the COMMIT record was durable" h_wait_until 10 coord_dead
    coord_kill
    g1=$(prepared pb | head -n 1)
    g1=${g1%:b}
    h_check "the pending transaction is prepared on both (gid $g1)" test -n "$g1"
    h_stop part-b
    coord_up "${CKPT[@]}"
    h_check "resolver commits the branch on a" h_wait_until 20 not_prepared pa "$g1:a"
    h_eq "pending gid: COMMITTED (phase two in progress)" COMMITTED "$(status_of "$g1")"
    h_check "indoubt lists the pending commit" indoubt_has "$g1 .*committed, finishing"
    out=$(PROBE_ONESHOT=1 "$PROBE" transfers 20 50 a c)
    h_eq "1000 more transactions (a, c) committed" "committed=1000 aborted=0 unknown=0 errors=0" "$(head -n 1 <<<"$out")"
    h_check "checkpoints keep the log from the unfinished commit" \
        h_wait_log coord "checkpoint at .*log kept from [0-9A-F/]+ \(unfinished commit $g1\)" 20
    keep=$(grep -oE "log kept from [0-9A-F/]+ \(unfinished commit $g1\)" "$H_TMP/coord.log" | tail -n 1 | awk '{print $4}')
    kseg=$(lsn_seg "$keep")
    h_check "the segment of the pending COMMIT ($kseg) is still there" seg_exists "$kseg"
    n=$(seg_files | wc -l)
    h_check "the log grows while the commit is pending ($n segments)" test "$n" -ge 3
fi

# ---- 3. SIGKILL + restart: the pending commit is still committed ----------
if h_case restart; then
    coord_kill
    coord_up "${CKPT[@]}"
    # (the ENDs of the last of the 1000 may not be durable yet: those commits are
    # replayed as unfinished too, and the resolver finds them finished)
    h_check "replay found the pending commit" h_wait_log coord '[0-9]+ committed transaction\(s\) still to finish' 5
    h_check "indoubt lists it after the restart" indoubt_has "$g1 .*committed, finishing"
    h_eq "pending gid after restart: COMMITTED" COMMITTED "$(status_of "$g1")"
    h_part_start b pb postgres
    h_check "resolver finishes it once b is back" h_wait_log coord "transaction $g1: committed on every participant" 30
    h_eq "b's branch committed" 1 "$(marks_on pb pending)"
    h_eq "nothing left prepared on pb" "" "$(prepared pb)"
    h_check "a later checkpoint removes the pending commit's segment" h_wait_until 20 seg_gone "$kseg"
    h_eq "finished gid past retention: NO LONGER KNOWN" "NO LONGER KNOWN" "$(status_of "$g1")"
    coord_kill
    coord_up "${CKPT[@]}"
    h_eq "after restart, a gid whose record was removed: NO LONGER KNOWN, not ABORTED" \
        "NO LONGER KNOWN" "$(status_of "$g1")"
fi

# ---- retention: outcomes kept for outcome_retention across restarts -------
if h_case retention; then
    if ! h_ran restart; then # (alone: the coordinator that restart leaves)
        coord_kill
        b_up
        coord_up "${CKPT[@]}"
    fi
    out=$(h_dtx exec -P a "select 1/0" 2>&1)
    g_ab=$(gid_of "$out")
    h_eq "a newer aborted gid is still ABORTED" ABORTED "$(status_of "$g_ab")"
    epoch_before=$(grep -oE 'ready: epoch [0-9]+' "$H_TMP/coord.log" | tail -n 1 | awk '{print $3}')

    # retained gids answer correctly after a restart
    coord_kill
    coord_up wal_segment_size=64kB checkpoint_interval=1s outcome_retention=1h
    epoch_after=$(grep -oE 'ready: epoch [0-9]+' "$H_TMP/coord.log" | tail -n 1 | awk '{print $3}')
    h_eq "the epoch still rises after checkpoints" $((epoch_before + 1)) "$epoch_after"
    h_wait_log coord 'participant "b" .* is ready' 20
    out=$(two retained)
    g_ret=$(gid_of "$out")
    h_check "a checkpoint ran with a long retention" h_wait_log coord 'checkpoint at .*outcome of ' 10
    coord_kill
    coord_up wal_segment_size=64kB checkpoint_interval=1s outcome_retention=1h
    h_eq "retained gid after restart: COMMITTED" COMMITTED "$(status_of "$g_ret")"
    h_eq "retained aborted gid after restart: ABORTED" ABORTED "$(status_of "$g_ab")"
fi

# ---- 4. heuristic outcome found by the resolver ---------------------------
HEUR=(outcome_retention=1h)
if h_case heuristic-resolver; then
    b_up
    coord_kill
    DTX_FAILPOINTS="coord-after-commit-durable=kill@1" coord_up "${HEUR[@]}"
    h_wait_log coord 'participant "b" .* is ready' 20
    two heur1 >/dev/null
    h_wait_until 10 coord_dead
    coord_kill
    h1=$(prepared pb | head -n 1)
    h1=${h1%:b}
    h_check "heuristic case: prepared on both (gid $h1)" test -n "$h1"
    h_stop part-b
    coord_up "${HEUR[@]}"
    h_check "heuristic case: committed on a" h_wait_until 20 not_prepared pa "$h1:a"
    h_eq "heuristic case: a's row is there" 1 "$(marks_on pa heur1)"
    h_eq "heuristic case: still prepared on b" "$h1:b" "$(prepared pb)"
    h_psql pb "rollback prepared '$h1:b'"
    h_part_start b pb postgres
    h_check "coordinator logs the heuristic rollback as an error" \
        h_wait_log coord "ERROR.*heuristic outcome: branch $h1:b was rolled back by someone else" 30
    h_check "and the end of the transaction with its outcome" \
        h_wait_log coord "transaction $h1: finished with a heuristic outcome: committed on a; rolled back by hand on b" 10
    out=$(h_dtx status "$h1" 2>&1)
    rc=$?
    h_eq "dtx status: HEURISTIC OUTCOME" "HEURISTIC OUTCOME $h1" "$(head -n 1 <<<"$out")"
    h_eq "dtx status: exit 4" 4 "$rc"
    h_check "dtx status: names what happened where" grep -q "committed on a; rolled back by hand on b" <<<"$out"
    out=$(h_dtx indoubt 2>&1)
    h_check "dtx indoubt lists it after END" grep -qE "$h1 .*a\(committed\),b\(rolled back by hand\).*heuristic outcome" <<<"$out"
    # HEURISTIC_END is not forced: give the WAL writer its background flush
    # (100 ms) so that the restart below replays it rather than finding the
    # heuristic outcome again
    sleep 0.5
    coord_kill
    coord_up "${HEUR[@]}"
    out=$(h_dtx status "$h1" 2>&1)
    h_eq "after restart: dtx status still HEURISTIC OUTCOME" "HEURISTIC OUTCOME $h1" "$(head -n 1 <<<"$out")"
    h_check "after restart: dtx indoubt still lists it" indoubt_has "$h1 .*heuristic outcome"
fi

# ---- 5. heuristic outcome found in phase two (txn.c) ----------------------
if h_case heuristic-phase2; then
    b_up
    coord_kill
    DTX_FAILPOINTS="coord-after-commit-durable=sleep:5000@1" coord_up "${HEUR[@]}"
    h_wait_log coord 'participant "b" .* is ready' 20
    two heur2 >"$H_TMP/heur2.out" 2>&1 &
    client=$!
    h_wait_log coord 'failpoint coord-after-commit-durable fired' 20
    h2=$(prepared pb | head -n 1)
    h2=${h2%:b}
    h_psql pb "rollback prepared '$h2:b'"
    wait $client
    rc=$?
    h_eq "phase-two heuristic: the client is not told COMMITTED (exit 2)" 2 "$rc"
    h_check "phase-two heuristic: the client gets the reason" grep -q "heuristic outcome" "$H_TMP/heur2.out"
    h_check "phase-two heuristic: logged as an error" \
        h_wait_log coord "ERROR.*heuristic outcome: branch $h2:b was rolled back by someone else" 5
    h_check "phase-two heuristic: logged as finished, as the resolver says it" \
        h_wait_log coord "ERROR:  transaction $h2: finished with a heuristic outcome: committed on a; rolled back by hand on b" 5
    h_eq "phase-two heuristic: a committed" 1 "$(marks_on pa heur2)"
    out=$(h_dtx status "$h2" 2>&1)
    h_eq "phase-two heuristic: dtx status" "HEURISTIC OUTCOME $h2" "$(head -n 1 <<<"$out")"
    h_check "phase-two heuristic: dtx indoubt lists it" indoubt_has "$h2 .*b\\(rolled back by hand\\).*heuristic outcome"
    h_stop coord
    h_eq "coordinator exits 0 on SIGTERM (no leaks)" 0 $?
    coord_up "${HEUR[@]}"
    h_eq "phase-two heuristic after restart: dtx status" "HEURISTIC OUTCOME" "$(status_of "$h2")"
    h_ran heuristic-resolver &&
        h_eq "first heuristic still reported too" "HEURISTIC OUTCOME" "$(status_of "$h1")"
    h_stop coord
    h_eq "coordinator exits 0 on SIGTERM after replaying heuristic records (no leaks)" 0 $?
fi
h_end_case
for p in a b c; do h_stop "part-$p"; done
h_done
