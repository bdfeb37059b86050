#!/usr/bin/env bash
# Crash matrix: each case arms a failpoint that kills (SIGKILL) a process at
# one moment of the commit protocol, runs bank transfers into it, restarts
# the process, waits for recovery and checks the invariants I1-I6 over every
# transaction so far (tests/tools/bank.c, tests/lib/bank.sh).  Each point is
# taken on its 1st pass and on a later one (the 3rd).
#
#   I1 all branches or none     I2 balances add up, none negative
#   I3 nothing of ours left prepared; others' prepared transactions untouched
#   I4 COMMITTED/ABORTED answers match the data; UNKNOWN resolved by STATUS
#   I5 a second recovery resolves nothing and changes nothing
#   I6 no branch got both COMMIT PREPARED and ROLLBACK PREPARED
#
# Cases (CASE=name runs one alone, docs/testing.md): checker, then one per
# row of the matrix (both passes), named in crash_names below; the final
# check that no gid was reused runs for every case.
set -u
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/dtx.sh"
. "$(dirname "$0")/../lib/bank.sh"
# the matrix's cases by number (docs/testing.md has the table)
crash_names=(- before-prepare prepare-partial before-commit-log torn-commit after-commit-durable
    commit-partial before-end recovery-crash part-after-prepare part-reply-lost pg-stop)
h_cases checker "${crash_names[@]:1}"
h_init

bank_setup || exit 1
h_coord_config "sweep_interval = 1s" "prepare_timeout = 5s"
h_coord_start || exit 1
h_wait_until 30 bank_resolved || { h_fail "initial state resolved"; h_done; }

# the checker itself must see a broken transaction: commit one branch by hand
if h_case checker; then
    h_psql pa "insert into ledger values ('dtx:c1:0:1', 5); update accounts set balance = balance + 5 where id = 64"
    printf 'B dtx:c1:0:1 a,b\nR dtx:c1:0:1 COMMITTED\n' >>"$BANK_JOURNAL"
    out=$(bank_check 2>&1)
    h_check "the checker reports a transaction committed on one branch only (I1, I2, I4)" \
        grep -q 'I1 dtx:c1:0:1 committed on some branches only' <<<"$out"
    h_psql pa "delete from ledger where gid = 'dtx:c1:0:1'; update accounts set balance = balance - 5 where id = 64"
    sed -i '/dtx:c1:0:1/d' "$BANK_JOURNAL"
    out=$(bank_check 2>&1)
    h_check "the checker passes the untouched data" grep -q ', 0 violations' <<<"$out" || echo "$out"
fi

restart_coord() { # [failpoints]
    h_kill coord
    DTX_FAILPOINTS=${1:-} h_coord_start
}

restart_part() { # NAME [failpoints]
    h_kill "part-$1"
    DTX_FAILPOINTS=${2:-} h_part_start "$1" "p$1" >/dev/null
}

# after a case: recovery, invariants, then a second recovery changes nothing
verify() {
    local what=$1 out
    if ! h_wait_until 40 bank_resolved; then
        h_fail "$what: recovered (nothing of ours prepared, nothing in doubt)"
        h_dtx indoubt >&2
        return
    fi
    h_ok "$what: recovered"
    out=$(bank_check 2>&1)
    if grep -q ', 0 violations' <<<"$out" && ! grep -q VIOLATION <<<"$out"; then
        h_ok "$what: invariants I1-I4, I6 hold"
    else
        h_fail "$what: invariants I1-I4, I6 hold"
        grep VIOLATION <<<"$out" | head -20 >&2
    fi
    # not in a subshell: it restarts the coordinator
    if bank_i5 >"$H_TMP/i5.out"; then
        h_ok "$what: I5 a second recovery resolves nothing and changes nothing"
    else
        h_fail "$what: I5 a second recovery resolves nothing and changes nothing"
        cat "$H_TMP/i5.out" >&2
    fi
}

logged() { h_newlog "$1" | grep -q -- "$2"; }
fired() { logged "$1" "failpoint $2 fired"; }

# A case where the coordinator dies: SPEC armed in the coordinator, one
# client runs transfers one after another until the connection drops.
coord_case() { # WHAT SPEC [REGEX expected in the log of the restart]
    local what=$1 spec=$2 fp=${2%%=*} expect=${3:-}
    restart_coord "$spec" || { h_fail "$what: start with $spec"; return; }
    bank_run --threads 1 --txns 12 --seed "$RANDOM" >/dev/null 2>&1
    h_wait_exit coord 20
    if h_alive coord; then
        h_fail "$what: $spec killed the coordinator"
        return
    fi
    h_check "$what: $spec killed the coordinator" fired coord "$fp"
    restart_coord || { h_fail "$what: restart"; return; }
    [ -z "$expect" ] || h_check "$what: the restart logs \"$expect\"" logged coord "$expect"
    verify "$what"
}

# A case where a participant dies: SPEC armed in participant b; the client
# keeps going (the coordinator aborts what it must); b is restarted.
part_case() {
    local what=$1 spec=$2 fp=${2%%=*}
    restart_part b "$spec" || { h_fail "$what: start b with $spec"; return; }
    h_wait_newlog coord 'participant "b" .* is ready' 20 >/dev/null 2>&1
    bank_run --threads 1 --txns 30 --seed 7 >/dev/null 2>&1 &
    local client=$!
    h_wait_exit part-b 30
    if h_alive part-b; then
        h_fail "$what: $spec killed participant b"
        wait $client
        return
    fi
    h_check "$what: $spec killed participant b" fired part-b "$fp"
    restart_part b || { h_fail "$what: restart b"; return; }
    wait $client
    verify "$what"
}

# 8: in-doubt transactions pile up (no phase two, no resolver), then the
# coordinator is killed during their recovery, after finishing PASS of them
case8() {
    local pass=$1 what="8 crash during recovery (pass $1)"
    restart_coord "coord-after-commit-durable=error@1+;coord-resolver-pass=error@1+"
    # one transfer per thread: an in-doubt transfer keeps its rows locked
    local before after listed
    before=$(grep -c ' COMMITTED$' "$BANK_JOURNAL")
    bank_run --threads 6 --txns 1 --seed "$RANDOM" >/dev/null 2>&1
    after=$(grep -c ' COMMITTED$' "$BANK_JOURNAL")
    listed=$(h_dtx indoubt | grep -cE '^ *dtx:c1:[0-9]+:[0-9]+ .*[0-9]+(ms|s|m)? .*[abc],[abc]')
    h_eq "$what: dtx indoubt lists each answered-COMMITTED transaction with its participants" \
        "$((after - before))" "$listed"
    h_kill coord
    DTX_FAILPOINTS="coord-recovery-partial=kill@$pass" \
        h_start coord "$H_BIN/dtx-coordinator" -c "$H_TMP/coord.ini"
    h_wait_exit coord 20
    if h_alive coord; then
        h_fail "$what: the coordinator died half way"
        return
    fi
    h_check "$what: the coordinator died half way" fired coord coord-recovery-partial
    restart_coord
    verify "$what"
}

# 11: b's PostgreSQL stops (immediate) while a branch sits prepared and its
# vote is held back, then starts again
case11() {
    local pass=$1 what="11 PostgreSQL immediate stop after PREPARE (pass $1)" client
    restart_part b "participant-after-prepare=sleep:1500@$pass"
    h_wait_newlog coord 'participant "b" .* is ready' 20 >/dev/null 2>&1
    bank_run --threads 1 --txns 30 --seed 7 >/dev/null 2>&1 &
    client=$!
    if h_wait_newlog part-b "failpoint participant-after-prepare fired" 30; then
        h_pg_stop pb immediate
        h_ok "$what: stopped with a branch prepared"
        sleep 1
        h_pg_ctl_start pb
    else
        h_fail "$what: stopped with a branch prepared"
    fi
    wait $client
    restart_part b # disarm
    verify "$what"
}

# CRASH_PASSES / CRASH_CASES (numbers) narrow the run down when chasing a
# failure, as CASE (names) does
want() { h_case "${crash_names[$1]}" && [[ " ${CRASH_CASES:-1 2 3 4 5 6 7 8 9 10 11} " == *" $1 "* ]]; }

for pass in ${CRASH_PASSES:-1 3}; do
    want 1 && coord_case "1 after branch work, before PREPARE (pass $pass)" "coord-before-prepare=kill@$pass"
    want 2 && coord_case "2 PREPARE sent to some (pass $pass)" "coord-prepare-partial=kill@$pass"
    want 3 && coord_case "3 all prepared, decision not logged (pass $pass)" "coord-before-commit-log=kill@$pass"
    # write 1 is the EPOCH record; each later write carries a COMMIT
    want 4 && coord_case "4 torn COMMIT record (pass $pass)" "wal-write=torn@$((pass + 1))" \
        "torn tail"
    want 5 && coord_case "5 COMMIT durable, client not answered (pass $pass)" "coord-after-commit-durable=kill@$pass"
    want 6 && coord_case "6 COMMIT PREPARED sent to some (pass $pass)" "coord-commit-partial=kill@$pass"
    want 7 && coord_case "7 all committed, END not written (pass $pass)" "coord-before-end=kill@$pass"

    # 8: in-doubt transactions pile up (no phase two, no resolver), then the
    # coordinator dies during their recovery
    want 8 && case8 "$pass"

    want 9 && part_case "9 participant: after PREPARE, before the vote (pass $pass)" \
        "participant-after-prepare=kill@$pass"
    want 10 && part_case "10 participant: COMMIT PREPARED done, reply lost (pass $pass)" \
        "participant-before-commit-prepared-reply=kill@$pass"

    want 11 && case11 "$pass"
done

h_end_case
h_check "gids were never reused across the crashes" bank_gids_unique
n=$(grep -c '^B ' "$BANK_JOURNAL")
h_log "crash matrix: $n transactions journalled"
h_stop coord >/dev/null
h_done
