#!/usr/bin/env bash
# tests/integration/mixed.sh — prepared-transaction slots and pooled
# connections under mixed interactive and one-shot load (docs/participant.md,
# "Prepared-transaction slots"; coordinator/slotq.h).  Each participant tells
# the coordinator its budget (max_prepared_transactions less what other
# applications hold prepared); the coordinator admits a transaction's PREPARE
# round only with a slot of each of its participants, all at once; a
# participant keeps oneshot_reserve connections for self-contained branches.
# Without these, prepared one-shot branches holding every slot of one
# participant wait for connections of the other, held by interactive
# transactions waiting for those slots, until timeouts break the cycle.
#
#   load      200 clients (100 one-shot, 100 interactive touching a then b),
#             max_prepared_transactions = 64, pool_size = 8: no failure,
#             nothing unknown, the bank invariants hold, the admission was
#             used (waits counted), the participants never timed a wait out
#   load-random  the same with interactive transactions touching a and b in
#             either order, the pools reloaded to 110 connections (enough
#             for every interactive transaction: with fewer, those orders
#             can hold each other's connections, which only
#             pool_wait_timeout ends, docs/participant.md): all 200 reach
#             their PREPARE rounds at once, against 60 and 64 slots
#   timeout   a transaction that cannot have its slots within
#             prepare_timeout is aborted with 57014 naming the participant,
#             having run nothing; once the slot is back, the next commits
#   granted-down  a queued one-shot transaction is granted its slots when
#             the link that held them is lost, and then cannot send to any
#             of its participants (both gone): it is aborted with 08006,
#             the coordinator goes on, and nothing stays prepared
set -u
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/dtx.sh"
h_cases load load-random timeout granted-down
h_init

GET="python3 $H_ROOT/tests/tools/httpget.py"
ACCOUNTS=200
h_dtx_certs >/dev/null
# pc: 3 slots, 2 of them held by another application: a budget of 1
h_pg_start pa 64
h_pg_start pb 64
h_pg_start pc 3
for c in pa pb pc; do
    h_psql $c "create table accounts (id int primary key,
                   balance bigint not null check (balance >= 0));
               insert into accounts select g, 1000 from generate_series(1, $ACCOUNTS) g;
               create table ledger (gid text primary key, delta bigint not null)"
done
# other applications' prepared transactions: 4 on pa (a's budget is 60)
for i in 1 2 3 4; do
    h_psql pa "begin; insert into ledger values ('planted-$i', 0); prepare transaction 'otherapp:$i'"
done
for i in 1 2; do
    h_psql pc "begin; insert into ledger values ('planted-$i', 0); prepare transaction 'otherapp:$i'"
done
H_PG_VIA_SOCKET=1
h_part_start a pa postgres
h_part_start b pb postgres
h_part_start c pc postgres
h_coord_config "prepare_timeout = 3s" "http_listen = 127.0.0.1:$(h_free_port)"
h_coord_start
for p in a b c; do h_wait_log coord "participant \"$p\" .* is ready" 20; done
METRICS="http://$(sed -n 's/^http_listen = //p' "$H_TMP/coord.ini")/metrics"
metric() { # metric NAME{LABELS} — its value in the coordinator's /metrics
    $GET "$METRICS" --body | awk -v m="$1" '$1 == m {print $2}'
}
pgci() { echo "host=${H_PG_DIR[$1]} port=${H_PG_PORT[$1]} user=postgres dbname=postgres"; }
ours() { h_psql "$1" "select count(*) from pg_prepared_xacts where gid like 'dtx:c1:%'"; }
ours_is() { [ "$(ours "$1")" = "$2" ]; }
waiting_is() { [ "$(metric dtx_transactions_waiting_for_slots)" = "$1" ]; }
c_slots_used_is() { [ "$(metric 'dtx_participant_prepare_slots_used{participant="c"}')" = "$1" ]; }

h_check "budgets: a is told 60 slots (64 less 4 of another application)" \
    grep -q 'participant "a": up to 60 prepared transactions at once' "$H_TMP/coord.log"
h_check "budgets: b 64, c 1" grep -q 'participant "b": up to 64 prepared' "$H_TMP/coord.log"
h_eq "budgets: /metrics shows c's" 1 "$(metric 'dtx_participant_prepare_slots{participant="c"}')"

J=$H_TMP/journal
: >"$J"
# mixed_load CASE SECONDS SEED [tool-bank options] — 200 clients, half of
# them one-shot, on a and b; then what must hold
mixed_load() {
    local name=$1 secs=$2 seed=$3 waits0 waits os ia
    shift 3
    waits0=$(metric dtx_slot_waits_total)
    "$H_BIN/tool-bank" run --parts a,b --threads 200 --oneshot 50 --seconds "$secs" \
        --journal "$J" --seed "$seed" "$@" >"$H_TMP/$name.out" 2>&1
    cat "$H_TMP/$name.out" >&2
    h_check "$name: no transaction failed ($(tail -n 1 "$H_TMP/$name.out"))" \
        grep -q '^bank: 0 failed' "$H_TMP/$name.out"
    h_check "$name: none unknown" grep -qE '^bank: [0-9]+ transactions: .* 0 unknown' "$H_TMP/$name.out"
    os=$(grep -c "^R os:$seed:.* COMMITTED" "$J")
    ia=$(grep -c '^R dtx:.* COMMITTED' "$J")
    h_check "$name: one-shot ($os) and interactive (all runs: $ia) transfers committed, 1000 or more one-shot" \
        test "$os" -ge 1000 -a "$ia" -gt 0
    waits=$(metric dtx_slot_waits_total)
    h_check "$name: PREPARE rounds waited for slots at the coordinator ($((waits - waits0)))" \
        test "$((waits - waits0))" -gt 0
    h_eq "$name: no transaction waits for slots now" 0 "$(metric dtx_transactions_waiting_for_slots)"
    h_eq "$name: no slot of a is held now" 0 \
        "$(metric 'dtx_participant_prepare_slots_used{participant="a"}')"
    h_check "$name: the participants never gave up a wait (pool_wait_timeout, prepare_wait_timeout)" \
        bash -c "! grep -E 'gave up after pool_wait_timeout|53400|waiting for a prepared' \
            '$H_TMP/part-a.log' '$H_TMP/part-b.log'"
    "$H_BIN/tool-bank" check --journal "$J" --total $((2 * ACCOUNTS * 1000)) --prefix "dtx:c1:" \
        --pg "a=$(pgci pa)" --pg "b=$(pgci pb)" --planted "a=otherapp:1" --planted "a=otherapp:4" \
        >"$H_TMP/check.out" 2>&1
    h_check "$name: the bank invariants hold (I1-I4: $(tail -n 1 "$H_TMP/check.out"))" \
        grep -q ', 0 violations' "$H_TMP/check.out"
    h_eq "$name: nothing of ours is left prepared" 0 $(($(ours pa) + $(ours pb)))
}

# 1. 200 mixed clients on a and b, pool_size = 8
if h_case load; then
    mixed_load load 10 5 --fixed-order
fi

# 1b. interactive transactions in either order, with pools large enough
if h_case load-random; then
    for p in a b; do
        sed -i 's/^pool_size = .*/pool_size = 110/' "$H_TMP/part-$p.ini"
        kill -HUP "$(h_pid part-$p)"
        h_wait_newlog "part-$p" "pool_size is 110 now" 10
    done
    mixed_load load-random 8 6
fi

# hold_c_slot CASE GID — a one-shot transaction on c and a, whose branch
# on a sleeps 2 s (prepare_timeout is 3 s): c's vote (sent as soon as
# PostgreSQL has prepared) is in well before a's; then participant c is
# stopped, the branch's slot held.  HOLDER: the transaction's client pid.
hold_c_slot() {
    h_dtx exec --oneshot -P c "insert into ledger values ('$2', 0)" \
        -P a "select pg_sleep(2)" >"$H_TMP/$2.out" 2>&1 &
    HOLDER=$!
    h_wait_until 10 ours_is pc 1
    sleep 0.3
    kill -STOP "$(h_pid part-c)"
    h_check "$1: $2 holds c's slot" c_slots_used_is 1
}

# 2. c's one slot is held by a decided transaction whose COMMIT PREPARED
# cannot be answered (participant c is stopped); another transaction on c
# waits at the coordinator for prepare_timeout, holding nothing, and fails
if h_case timeout; then
    hold_c_slot timeout t1
    t1=$HOLDER
    start=$SECONDS
    out=$(h_dtx exec --oneshot -P b "insert into ledger values ('t2', 0)" \
        -P c "insert into ledger values ('t2', 0)" 2>&1)
    took=$((SECONDS - start))
    h_check "timeout: the waiting transaction is aborted ($out)" grep -q "^ABORTED" <<<"$out"
    h_check "timeout: ...with 57014 for want of a slot, naming c" \
        bash -c 'grep -q "SQLSTATE:  57014" <<<"$1" &&
                 grep -q "prepare timed out waiting for a prepared-transaction slot" <<<"$1" &&
                 grep -q "on \"c\"" <<<"$1"' _ "$out"
    h_check "timeout: ...after prepare_timeout (3 s; took ${took} s)" test "$took" -ge 2 -a "$took" -le 8
    h_eq "timeout: nothing of it ran on b" 0 "$(h_psql pb "select count(*) from ledger where gid = 't2'")"
    h_check "timeout: the coordinator logs why" \
        grep -q 'no prepared-transaction slot within prepare_timeout (3000 ms) on "c"' "$H_TMP/coord.log"
    kill -CONT "$(h_pid part-c)"
    wait "$t1"
    h_check "timeout: the transaction that held the slot commits ($(tail -n 1 "$H_TMP/t1.out"))" \
        grep -q "^COMMITTED" "$H_TMP/t1.out"
    h_wait_until 10 c_slots_used_is 0
    out=$(h_dtx exec --oneshot -P b "insert into ledger values ('t3', 0)" \
        -P c "insert into ledger values ('t3', 0)" 2>&1)
    h_check "timeout: with the slot back, the next one commits ($out)" grep -q "^COMMITTED" <<<"$out"
    h_eq "timeout: nothing of ours is left prepared on c" 0 "$(ours pc)"
fi

# 3. t4 holds c's slot (c stopped); t5 (a and c) waits for it; a dies (t4
# aborts, its ROLLBACK PREPARED waiting for c), then c dies: the link's
# loss gives t4's slot back, t5 is granted and finds both its
# participants gone
if h_case granted-down; then
    hold_c_slot granted-down t4
    t4=$HOLDER
    h_dtx exec --oneshot -P a "insert into ledger values ('t5', 0)" \
        -P c "insert into ledger values ('t5', 0)" >"$H_TMP/t5.out" 2>&1 &
    t5=$!
    h_check "granted-down: t5 waits for it" h_wait_until 10 waiting_is 1
    h_kill part-a
    h_kill part-c
    wait "$t5"
    h_check "granted-down: t5 is aborted, its participants unreachable ($(tail -n 3 "$H_TMP/t5.out"))" \
        bash -c 'grep -q "^ABORTED" "$1" && grep -q "SQLSTATE:  08006" "$1"' _ "$H_TMP/t5.out"
    wait "$t4"
    # aborted when a died before its vote, committed when the vote was in
    # first (on a slow machine): either way an outcome, and c's branch is
    # the resolver's
    h_check "granted-down: t4 has an outcome ($(tail -n 1 "$H_TMP/t4.out"))" \
        grep -qE "^(ABORTED|COMMITTED)" "$H_TMP/t4.out"
    h_check "granted-down: the coordinator goes on" h_alive coord
    h_part_start a pa postgres >/dev/null
    h_part_start c pc postgres >/dev/null
    h_check "granted-down: the resolver finishes t4's branch on c" h_wait_until 30 ours_is pc 0
    h_eq "granted-down: nothing of ours left on a or c" 0 $(($(ours pa) + $(ours pc)))
    h_eq "granted-down: no slot is held" 0 "$(metric 'dtx_participant_prepare_slots_used{participant="c"}')"
fi

h_end_case
h_stop_clean a b c
h_done
