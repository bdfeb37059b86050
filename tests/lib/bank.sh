# shellcheck shell=bash
# tests/lib/bank.sh — the bank set-up shared by the crash matrix and the
# chaos test (on top of harness.sh and dtx.sh).
#
#   bank_setup [MPT] [PART_LINE]   three clusters pa pb pc (statement logging
#                               on), accounts + ledger in each, a planted
#                               prepared transaction of another application
#                               and one of another coordinator ("dtx:c9:")
#                               in each, participants a b c in front of them
#   bank_run ARGS...            tool-bank run --parts a,b,c ARGS (journal
#                               $BANK_JOURNAL)
#   bank_check                  I1-I4 (tool-bank check) and I6 (server logs);
#                               prints the violations, returns non-zero if any
#   bank_digest                 a digest of all data and prepared transactions
#   bank_resolved               true when nothing of ours is prepared and the
#                               coordinator has nothing in doubt
#   bank_i5                     I5: restart the coordinator (SIGKILL), wait
#                               for recovery and a sweep; prints a VIOLATION
#                               line and fails if anything was resolved or
#                               changed
#   bank_gids_unique            no gid was handed out twice
#
# The workload and the invariants are described in tests/tools/bank.c.

BANK_ACCOUNTS=${BANK_ACCOUNTS:-64}
BANK_BALANCE=1000
BANK_JOURNAL=""

bank_setup() {
    local mpt=${1:-64} extra=${2:-} p
    BANK_JOURNAL=$H_TMP/journal
    : >"$BANK_JOURNAL"
    h_dtx_certs >/dev/null
    for p in a b c; do
        h_pg_start "p$p" "$mpt" || return 1
        h_psql "p$p" "alter system set log_statement = 'all'" || return 1
        h_psql "p$p" "select pg_reload_conf()" >/dev/null || return 1
        h_psql "p$p" "create table accounts (id int primary key,
                          balance bigint not null check (balance >= 0));
                      insert into accounts select g, $BANK_BALANCE
                          from generate_series(1, $BANK_ACCOUNTS) g;
                      create table ledger (gid text primary key, delta bigint not null)" ||
            return 1
        h_psql "p$p" "begin; insert into ledger values ('planted-$p', 0);
                      prepare transaction 'otherapp:$p'" || return 1
        h_psql "p$p" "begin; select 1; prepare transaction 'dtx:c9:1:1:$p'" >/dev/null || return 1
    done
    H_PG_VIA_SOCKET=1
    for p in a b c; do
        h_part_start "$p" "p$p" postgres ${extra:+"$extra"} >/dev/null || return 1
    done
}

bank_total() { echo $((3 * BANK_ACCOUNTS * BANK_BALANCE)); }

bank_run() {
    "$H_BIN/tool-bank" run --parts a,b,c --journal "$BANK_JOURNAL" "$@"
}

bank_pgci() {
    echo "host=${H_PG_DIR[$1]} port=${H_PG_PORT[$1]} user=postgres dbname=postgres"
}

# I6: no branch gid ever got both COMMIT PREPARED and ROLLBACK PREPARED
bank_i6() {
    local p both rc=0
    for p in a b c; do
        both=$(grep -ohE "(COMMIT|ROLLBACK) PREPARED 'dtx:c1:[^']*'" "${H_PG_DIR[p$p]}"/server.log* |
            sort -u | awk '{print $3}' | sort | uniq -d)
        if [ -n "$both" ]; then
            echo "VIOLATION I6 both COMMIT PREPARED and ROLLBACK PREPARED on p$p:" $both
            rc=1
        fi
    done
    return $rc
}

bank_check() {
    local rc=0
    "$H_BIN/tool-bank" check --journal "$BANK_JOURNAL" --total "$(bank_total)" \
        --prefix "dtx:c1:" \
        --pg "a=$(bank_pgci pa)" --pg "b=$(bank_pgci pb)" --pg "c=$(bank_pgci pc)" \
        --planted "a=otherapp:a" --planted "b=otherapp:b" --planted "c=otherapp:c" \
        --planted "a=dtx:c9:1:1:a" --planted "b=dtx:c9:1:1:b" --planted "c=dtx:c9:1:1:c" ||
        rc=1
    bank_i6 || rc=1
    return $rc
}

bank_digest() {
    local p
    for p in a b c; do
        h_psql "p$p" "select md5(coalesce(string_agg(gid || ':' || delta, ',' order by gid), ''))
                      from ledger;
                      select md5(string_agg(id || ':' || balance, ',' order by id)) from accounts;
                      select coalesce(string_agg(gid, ',' order by gid), '') from pg_prepared_xacts"
    done
}

bank_resolved() {
    local p n
    for p in a b c; do
        n=$(h_psql "p$p" "select count(*) from pg_prepared_xacts where gid like 'dtx:c1:%'") ||
            return 1
        [ "$n" = 0 ] || return 1
    done
    h_dtx indoubt 2>/dev/null | grep -q '(0 rows)'
}

bank_i5() {
    local d1 d2 acted
    d1=$(bank_digest)
    h_kill coord
    h_coord_start >/dev/null || { echo "VIOLATION I5 the coordinator did not restart"; return 1; }
    h_wait_until 40 bank_resolved
    sleep 1.5 # a periodic sweep (sweep_interval = 1s) comes and goes
    d2=$(bank_digest)
    acted=$(h_newlog coord | grep -E 'committed on every participant|rolled back orphaned')
    if [ "$d1" != "$d2" ] || [ -n "$acted" ]; then
        echo "VIOLATION I5 the second recovery resolved or changed something${acted:+: $acted}"
        return 1
    fi
}

bank_gids_unique() {
    ! awk '$1 == "B" {print $2}' "$BANK_JOURNAL" | sort | uniq -d | grep -q .
}
