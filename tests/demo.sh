#!/usr/bin/env bash
# make demo — dtx from nothing: two PostgreSQL databases, their participants
# and a coordinator with generated certificates; an atomic transfer; a
# transfer that one database rejects, which changes neither.  Exit 0 only if
# everything behaved.
set -u
export DTX_BUILD=${DTX_BUILD:-release}
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/lib/dtx.sh"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() {
    printf '\nDEMO FAILED: %s\n' "$*"
    exit 1
}

h_init
step "Starting two PostgreSQL clusters (bank_a, bank_b) with max_prepared_transactions = 64"
h_pg_start bank_a || die "could not start PostgreSQL bank_a"
h_pg_start bank_b || die "could not start PostgreSQL bank_b"
for b in bank_a bank_b; do
    h_psql $b "create table accounts (id text primary key,
                                      balance numeric not null check (balance >= 0))" ||
        die "could not create table on $b"
done
h_psql bank_a "insert into accounts values ('alice', 100)"
h_psql bank_b "insert into accounts values ('bob', 50)"
echo "bank_a on 127.0.0.1:$(h_pg_port bank_a), bank_b on 127.0.0.1:$(h_pg_port bank_b)"

step "Generating a throwaway CA and certificates (coordinator, client, participants)"
h_dtx_certs || die "could not generate certificates"
ls "$H_CERTS" | sed 's/^/  /' | tr '\n' ' '
echo

step "Starting one dtx-participant per database (mutual TLS)"
h_part_start bank_a bank_a || die "participant bank_a did not start"
h_part_start bank_b bank_b || die "participant bank_b did not start"
echo "participants listening on 127.0.0.1:${H_PART_PORT[bank_a]} and 127.0.0.1:${H_PART_PORT[bank_b]}"

step "Starting dtx-coordinator"
h_coord_start || die "coordinator did not start"
h_wait_log coord 'participant "bank_b" .* is ready' 20 || die "coordinator did not reach bank_b"
h_wait_log coord 'participant "bank_a" .* is ready' 20 || die "coordinator did not reach bank_a"
grep -h 'ready' "$H_TMP/coord.log" | sed 's/^/  /'

balances() {
    printf '  bank_a: %s    bank_b: %s\n' \
        "$(h_psql bank_a "select id || ' = ' || balance from accounts")" \
        "$(h_psql bank_b "select id || ' = ' || balance from accounts")"
}

step "Balances before"
balances

step "Atomic transfer: alice (bank_a) pays bob (bank_b) 30"
h_dtx exec \
    -P bank_a "update accounts set balance = balance - 30 where id = 'alice'" \
    -P bank_b "update accounts set balance = balance + 30 where id = 'bob'"
rc=$?
[ $rc -eq 0 ] || die "the transfer did not commit (exit $rc)"
balances
[ "$(h_psql bank_a "select balance from accounts where id='alice'")" = 70 ] || die "alice should have 70"
[ "$(h_psql bank_b "select balance from accounts where id='bob'")" = 80 ] || die "bob should have 80"

step "A transfer that bank_a rejects: alice pays bob 500 (CHECK balance >= 0 fails)"
h_dtx exec \
    -P bank_b "update accounts set balance = balance + 500 where id = 'bob'" \
    -P bank_a "update accounts set balance = balance - 500 where id = 'alice'"
rc=$?
[ $rc -eq 1 ] || die "the transfer should have been aborted (exit 1), got exit $rc"
echo "-> aborted, as it must be"
balances
[ "$(h_psql bank_a "select balance from accounts where id='alice'")" = 70 ] || die "alice changed"
[ "$(h_psql bank_b "select balance from accounts where id='bob'")" = 80 ] || die "bob changed"
prepared=$(( $(h_psql bank_a "select count(*) from pg_prepared_xacts") + \
             $(h_psql bank_b "select count(*) from pg_prepared_xacts") ))
echo "  prepared transactions left in either database: $prepared"
[ "$prepared" -eq 0 ] || die "prepared transactions were left behind"

step "Stopping everything"
h_stop coord || die "coordinator did not stop cleanly"
h_stop part-bank_a || die "participant bank_a did not stop cleanly"
h_stop part-bank_b || die "participant bank_b did not stop cleanly"
printf '\nDEMO OK: the transfer committed in both databases; the rejected one changed neither.\n'
exit 0
