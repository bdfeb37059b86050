#!/usr/bin/env bash
# regress.sh — named regression tests for bugs found in the coordinator,
# each driven to its exact moment by a failpoint (docs/failpoints.md).
#
#   oneshot-alloc    txn_oneshot's out-of-memory path read its statement map
#                    through a NULL array once the count was set: the client
#                    now gets 53200 and ABORTED, nothing runs, the
#                    coordinator goes on serving.
#   sweep-after-end  the sweep judges a listing only when its reply is
#                    handled; a listing taken while a branch was prepared and
#                    judged after the transaction's END must not roll that
#                    (committed) branch back.  The listing is held on
#                    purpose (coord-sweep-hold) and the vote is delayed
#                    (participant-after-prepare=sleep) so that the listing is
#                    taken while the branch is prepared.
#   onephase-marker-first  the one-phase COMMIT was sent while its ONEPHASE
#                    record was still on its way to disk: a crash then left
#                    a committed branch for which STATUS, finding no record,
#                    presumed "aborted".  The record's write is held
#                    (wal-write=sleep) and the coordinator killed meanwhile:
#                    the branch must not have committed, and STATUS after
#                    the restart must agree with the data.
#   status-phase-two  STATUS of a transaction whose COMMIT record is durable
#                    but whose phase two still runs said IN PROGRESS; it is
#                    COMMITTED (it will commit everywhere).  And INDOUBT
#                    named no participant for live transactions.  Phase two
#                    is held by a participant that answers COMMIT PREPARED
#                    late (participant-before-commit-prepared-reply=sleep).
set -u
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/dtx.sh"
h_cases oneshot-alloc sweep-after-end onephase-marker-first status-phase-two
h_init

h_pg_start pa
h_pg_start pb
h_psql pa "alter system set log_statement = 'all'" && h_psql pa "select pg_reload_conf()" >/dev/null
for c in pa pb; do
    h_psql "$c" "create table accounts (id text primary key, balance int not null);
                 insert into accounts values ('x', 100)"
done
h_dtx_certs
# a's first PREPARE answers 2 s late: sweeps meanwhile queue a LIST there,
# answered right after the vote, before any COMMIT PREPARED can come
DTX_FAILPOINTS="participant-after-prepare=sleep:2000@1" h_part_start a pa
h_part_start b pb
h_coord_config "sweep_interval = 300ms" "log_level = debug"
# the first decision's phase two waits 1 s (coord-after-commit-durable): the
# listing queued at a is answered while the branch is still prepared, not
# in a race with its COMMIT PREPARED (a loaded machine lost that race)
DTX_FAILPOINTS="coord-oneshot-alloc=error@1;coord-sweep-hold=error@1+;coord-after-commit-durable=sleep:1000@1" \
    h_coord_start
for p in a b; do h_wait_log coord "participant \"$p\" .* is ready" 20; done
bal() { h_psql "$1" "select balance from accounts where id = 'x'"; }

if h_case oneshot-alloc; then
    out=$(h_dtx exec --oneshot -P a "update accounts set balance = balance - 1 where id = 'x'" \
        -P b "update accounts set balance = balance + 1 where id = 'x'" 2>&1)
    h_eq "oneshot, allocation failed: exit 1 (aborted)" 1 $?
    h_check "oneshot, allocation failed: 53200 out of memory" grep -q '53200' <<<"$out"
    h_check "oneshot, allocation failed: the failpoint fired" \
        h_wait_log coord "failpoint coord-oneshot-alloc fired" 5
    h_eq "oneshot, allocation failed: a unchanged" 100 "$(bal pa)"
    h_eq "oneshot, allocation failed: b unchanged" 100 "$(bal pb)"
    out=$(h_dtx exec --oneshot -P b "select 1" 2>&1)
    h_eq "the coordinator goes on serving" 0 $?
    h_check "the coordinator is alive" kill -0 "$(h_pid coord)"
fi

if h_case sweep-after-end; then
    a0=$(bal pa) b0=$(bal pb)
    out=$(h_dtx exec -P a "update accounts set balance = balance - 5 where id = 'x'" \
        -P b "update accounts set balance = balance + 5 where id = 'x'" 2>&1)
    h_eq "transfer: exit 0 (committed)" 0 $?
    gid=$(grep -oE 'dtx:c1:[0-9]+:[0-9]+' <<<"$out" | tail -n 1)
    h_check "transfer: gid printed" test -n "$gid"
    h_check "its END is logged" h_wait_log coord "transaction $gid: committing -> finished" 5
    # the race: a listing naming the prepared branch, judged after END
    h_check "a listing that names the prepared branch is judged after the END" \
        h_wait_log coord "sweep: branch $gid:a is not rolled back: the transaction is COMMITTED" 10
    sleep 1
    h_check "no ROLLBACK PREPARED of the committed branch" \
        bash -c "! grep -q \"ROLLBACK PREPARED '$gid:a'\" '$H_TMP/pg-pa/server.log'"
    h_eq "a debited" $((a0 - 5)) "$(bal pa)"
    h_eq "b credited" $((b0 + 5)) "$(bal pb)"
    h_eq "STATUS: committed" COMMITTED "$("$H_BIN/tool-dtxprobe" status "$gid")"
fi
if h_case onephase-marker-first; then
    h_stop coord
    # pass 1 is the EPOCH record of this start; pass 2 the ONEPHASE record
    DTX_FAILPOINTS="wal-write=sleep:6000@2" h_coord_start
    for p in a b; do h_wait_newlog coord "participant \"$p\" .* is ready" 20; done
    a0=$(bal pa)
    h_dtx exec -P a "update accounts set balance = balance - 1 where id = 'x'" \
        >"$H_TMP/op.out" 2>&1 &
    client=$!
    h_check "one-phase: the ONEPHASE record's write is held" \
        h_wait_newlog coord "failpoint wal-write fired" 10
    gid=$(grep -oE 'transaction dtx:c1:[0-9]+:[0-9]+: active -> onephase' "$H_TMP/coord.log" |
        tail -n 1 | grep -oE 'dtx:c1:[0-9]+:[0-9]+')
    sleep 1 # a COMMIT sent at once would have committed by now
    h_kill coord KILL
    wait $client
    h_check "one-phase: the client is not told COMMITTED" bash -c "! grep -q COMMITTED '$H_TMP/op.out'"
    h_coord_start
    h_wait_newlog coord "participant \"a\" .* is ready" 20
    st=$("$H_BIN/tool-dtxprobe" status "$gid")
    a1=$(bal pa)
    h_eq "one-phase: no COMMIT was sent before the record was durable (a unchanged)" "$a0" "$a1"
    # UNKNOWN is always honest; ABORTED only for unchanged data
    h_check "one-phase: STATUS of $gid ($st) agrees with the data (balance $a1, was $a0)" \
        test "$st" = UNKNOWN -o \( "$st" = ABORTED -a "$a1" = "$a0" \) -o \
        \( "$st" = COMMITTED -a "$a1" = $((a0 - 1)) \)
fi
if h_case status-phase-two; then
    h_kill part-a
    DTX_FAILPOINTS="participant-before-commit-prepared-reply=sleep:3000@1" h_part_start a pa
    h_wait_newlog coord 'participant "a" .* is ready' 20
    h_dtx exec -P a "update accounts set balance = balance - 1 where id = 'x'" \
        -P b "update accounts set balance = balance + 1 where id = 'x'" >"$H_TMP/p2.out" 2>&1 &
    client=$!
    h_check "phase two held: participant a answers COMMIT PREPARED late" \
        h_wait_log part-a "failpoint participant-before-commit-prepared-reply fired" 10
    gid=$(grep -oE 'transaction dtx:c1:[0-9]+:[0-9]+: logging -> committing' "$H_TMP/coord.log" |
        tail -n 1 | grep -oE 'dtx:c1:[0-9]+:[0-9]+')
    h_eq "STATUS during phase two: COMMITTED" COMMITTED "$("$H_BIN/tool-dtxprobe" status "$gid")"
    h_check "INDOUBT names the live transaction's participants" \
        bash -c "'$H_BIN/dtx' indoubt | grep -E '$gid .*a,b'"
    wait $client
    h_check "the transfer commits" grep -q '^COMMITTED' "$H_TMP/p2.out"
fi
h_end_case

h_stop coord
h_eq "coordinator exits 0 on SIGTERM" 0 $?
h_done
