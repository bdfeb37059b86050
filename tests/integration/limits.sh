#!/usr/bin/env bash
# tests/integration/limits.sh — waits that must end: a full participant pool
# (pool_wait_timeout), a statement that runs too long (the coordinator's
# statement_timeout, with a cancel forwarded to PostgreSQL), and a one-shot
# transaction whose coordinator dies mid-commit (the gid is known before the
# outcome).
set -u
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/dtx.sh"
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

# ---------------------------------------------------------------------------
# 1. pool_wait_timeout: pool_size = 2 leaves one connection for new work on
# each participant.  T1 takes a then b, T2 takes b then a: a deadlock of
# connections.  T3 (a then b) and T4 (b then a) queue behind them.  The
# waiter that has waited longest gives up first (53300), its rollback frees
# its connection, and the one behind it goes on.
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
    h_dtx exec -P a "select 1" -P b "select 1"

h_stop coord
h_eq "coordinator exits 0 on SIGTERM (no leaks)" 0 $?
for p in a b; do
    h_stop "part-$p"
    h_eq "participant $p exits 0 on SIGTERM (no leaks)" 0 $?
done
h_done
