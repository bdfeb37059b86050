#!/usr/bin/env bash
# End to end: real PostgreSQL clusters, real TLS, real dtx processes.
# Three participants: a (cluster pa), b and c (two databases of cluster pb).
# Each numbered section is a case (CASE=name runs it alone, docs/testing.md);
# the set-up and the clean shutdown at the end run for every case.
set -u
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/dtx.sh"
h_cases commit three error hint aborted one-phase read-only oneshot params unknown-participant \
    pg-stopped vanished-client client-certs frames reserved rogue-coordinator many-clients \
    hostnames allowed-clients
h_init

# max_prepared_transactions above the 200 clients of 14, as PostgreSQL
# advises for two-phase commit (see "Sizing slots" in docs/participant.md)
h_pg_start pa 256
h_pg_start pb 256
h_psql pa "alter system set log_statement = 'all'" && h_psql pa "select pg_reload_conf()" >/dev/null
h_psql pb "create database pb2"
schema="create table accounts (id text primary key, balance int not null check (balance >= 0));
        create table marks (gid text, note text);
        create table odd (a text, b text, c text);
        insert into accounts values ('x', 100);
        insert into accounts select 'acct' || g, 1000 from generate_series(1, 200) g;"
h_psql pa "$schema"
h_psql pb "$schema"
h_psql pb "$schema" pb2
h_dtx_certs mallory
# 14 runs 200 clients against pools of 8 connections (7 for new work), and
# an interactive transfer holds its connection across the client's round
# trips: under the sanitizers a client can wait longer for one than the
# default pool_wait_timeout (5 s) allows, and a one-shot one, whose vote
# comes after that wait, longer than the tests' prepare_timeout (10 s)
h_part_start a pa postgres "pool_wait_timeout = 60s"
h_part_start b pb postgres "pool_wait_timeout = 60s"
h_part_start c pb pb2
# c is named by host name, resolved on the coordinator's loop (the hosts
# file); "nowhere" cannot be resolved at all, and must stall nothing
H_PART_HOST[c]=localhost
h_coord_config "prepare_timeout = 60s"
echo "nowhere = no-such-host.invalid:9" >>"$H_TMP/coord.ini"
h_coord_start
for p in a b c; do h_wait_log coord "participant \"$p\" .* is ready" 20; done
PROBE="$H_BIN/tool-dtxprobe"

bal() { h_psql "$1" "select balance from accounts where id = '${3:-x}'" "${2:-postgres}"; }
nprepared() { h_psql "$1" "select count(*) from pg_prepared_xacts"; }
# raw frames over TLS (cases frames and reserved): tls sends stdin, prints
# what comes back; hello VERSION_MINOR is a HELLO frame
tls() { timeout 5 openssl s_client -quiet -connect "127.0.0.1:$H_COORD_PORT" -CAfile "$H_CERTS/ca.crt" \
    -cert "$H_CERTS/app.crt" -key "$H_CERTS/app.key" 2>/dev/null; }
hello() { printf 'H\x00\x00\x00\x19DTX1\x00\x01\x00'"$1"'\x01\x00\x00\x00\x03raw\x00\x00\x00\x00\x00\x00\x00\x00\x00'; }

# 1. two participants commit
if h_case commit; then
    a0=$(bal pa) b0=$(bal pb)
    out=$(h_dtx exec -P a "update accounts set balance = balance - 10 where id = 'x'" \
        -P b "update accounts set balance = balance + 10 where id = 'x'" 2>&1)
    rc=$?
    h_eq "2 participants: exit 0 (committed)" 0 "$rc"
    h_eq "2 participants: a debited" $((a0 - 10)) "$(bal pa)"
    h_eq "2 participants: b credited" $((b0 + 10)) "$(bal pb)"
    gid2=$(grep -oE 'dtx:c1:[0-9]+:[0-9]+' <<<"$out" | tail -n 1)
    h_check "2 participants: gid printed" test -n "$gid2"
    h_eq "status of a committed gid" COMMITTED "$("$PROBE" status "$gid2")"
    h_check "2 participants: PREPARE TRANSACTION was used on a" \
        grep -q "PREPARE TRANSACTION '$gid2:a'" "$H_TMP/pg-pa/server.log"
fi

# 2. three participants, b and c are two databases of one cluster
if h_case three; then
    a0=$(bal pa) b0=$(bal pb) c0=$(bal pb pb2)
    h_dtx exec -P a "update accounts set balance = balance - 3 where id = 'x'" \
        -P b "update accounts set balance = balance + 1 where id = 'x'" \
        -P c "update accounts set balance = balance + 2 where id = 'x'" >/dev/null 2>&1
    h_eq "3 participants: exit 0" 0 $?
    h_eq "3 participants: a" $((a0 - 3)) "$(bal pa)"
    h_eq "3 participants: b" $((b0 + 1)) "$(bal pb)"
    h_eq "3 participants: c (pb2 of the same cluster)" $((c0 + 2)) "$(bal pb pb2)"
fi

# 3. a statement error on one participant aborts all
if h_case error; then
    a0=$(bal pa) b0=$(bal pb)
    err=$(h_dtx exec -P a "update accounts set balance = balance + 1000 where id = 'x'" \
        -P b "update accounts set balance = balance - 1000 where id = 'x'" 2>&1 >/dev/null)
    h_eq "error on b: exit 1 (aborted)" 1 $?
    h_check "error on b: SQLSTATE 23514 reported" grep -q 23514 <<<"$err"
    h_check "error on b: participant named" grep -qx 'PARTICIPANT:  b' <<<"$err"
    h_check "error on b: PostgreSQL's detail passed through" grep -q '^DETAIL:  Failing row contains' <<<"$err"
    h_eq "error on b: a unchanged" "$a0" "$(bal pa)"
    h_eq "error on b: b unchanged" "$b0" "$(bal pb)"
    h_eq "error on b: nothing prepared on pa" 0 "$(nprepared pa)"
    h_eq "error on b: nothing prepared on pb" 0 "$(nprepared pb)"
fi

# 3b. PostgreSQL's hint passes through too, with the participant's name
if h_case hint; then
    err=$(h_dtx exec -P c "select balanc from accounts" 2>&1 >/dev/null)
    h_eq "error with a hint: exit 1" 1 $?
    h_check "error with a hint: SQLSTATE 42703" grep -qx 'SQLSTATE:  42703' <<<"$err"
    h_check "error with a hint: PostgreSQL's hint passed through" grep -q '^HINT:  .*accounts\.balance' <<<"$err"
    h_check "error with a hint: participant c named" grep -qx 'PARTICIPANT:  c' <<<"$err"
fi

# 3c. after a failed statement the transaction is aborted, as in PostgreSQL:
# every later statement fails with 25P02, and COMMIT answers ABORTED
if h_case aborted; then
    a0=$(bal pa)
    out=$(PROBE_KEEP_GOING=1 "$PROBE" steps a "update accounts set balance = balance + 1 where id = 'x'" \
        b "update accounts set balance = -1 where id = 'x'" \
        a "update accounts set balance = balance + 1 where id = 'x'" c "select 1" 2>/dev/null)
    h_eq "after a failed statement: 25P02 for every later one, then COMMIT answers ABORTED" \
        "ERROR 23514 b|ERROR 25P02 -|ERROR 25P02 -|ABORTED" \
        "$(sed -E 's/^(ERROR [^ ]+ [^ ]+) .*/\1/; s/^(COMMITTED|ABORTED|UNKNOWN) .*/\1/' <<<"$out" | tr '\n' '|' | sed 's/|$//')"
    h_eq "after a failed statement: a unchanged" "$a0" "$(bal pa)"
    h_eq "after a failed statement: nothing prepared" 0 "$(( $(nprepared pa) + $(nprepared pb) ))"
fi

# 4. one participant: one-phase commit, no prepared transaction ever
if h_case one-phase; then
    out=$(h_dtx exec -P a "insert into marks values ('onephase', 'x')" 2>&1)
    h_eq "one participant: exit 0" 0 $?
    g=$(grep -oE 'dtx:c1:[0-9]+:[0-9]+' <<<"$out" | tail -n 1)
    h_eq "one participant: row there" 1 "$(h_psql pa "select count(*) from marks where gid='onephase'")"
    h_check "one participant: no PREPARE TRANSACTION for $g" \
        bash -c "! grep -q \"PREPARE TRANSACTION '$g\" '$H_TMP/pg-pa/server.log'"
    h_eq "status of a one-phase gid" COMMITTED "$("$PROBE" status "$g")"
fi

# 5. read-only branch drops out; the writing ones commit
if h_case read-only; then
    a0=$(bal pa) b0=$(bal pb)
    out=$(h_dtx exec -P a "select balance from accounts where id = 'x'" \
        -P b "update accounts set balance = balance + 1 where id = 'x'" \
        -P c "update accounts set balance = balance - 1 where id = 'x'" 2>&1)
    h_eq "read-only branch: exit 0" 0 $?
    g=$(grep -oE 'dtx:c1:[0-9]+:[0-9]+' <<<"$out" | tail -n 1)
    h_check "read-only branch: result row printed" grep -qw "$a0" <<<"$out"
    h_eq "read-only branch: b" $((b0 + 1)) "$(bal pb)"
    # a's participant ends its branch itself when it finds no xid (PREPARE, then
    # COMMIT PREPARED at once); a coordinator that kept the branch would send a
    # phase two for it, and that would be a third statement naming it
    h_eq "read-only branch: a's branch saw no phase two from the coordinator" \
        "PREPARE TRANSACTION|COMMIT PREPARED" \
        "$(grep -oE "(PREPARE TRANSACTION|COMMIT PREPARED|ROLLBACK PREPARED)[^']*'${g:-none}:a'" "$H_TMP/pg-pa/server.log" |
            sed "s/ *'.*//" | tr '\n' '|' | sed 's/|$//')"
    h_eq "read-only branch: nothing left prepared" 0 "$(( $(nprepared pa) + $(nprepared pb) ))"
fi

# 6. the one-shot request
if h_case oneshot; then
    a0=$(bal pa) b0=$(bal pb)
    h_dtx exec --oneshot -P a "update accounts set balance = balance - 7 where id = 'x'" \
        -P b "update accounts set balance = balance + 7 where id = 'x'" >/dev/null 2>&1
    h_eq "oneshot: exit 0" 0 $?
    h_eq "oneshot: a" $((a0 - 7)) "$(bal pa)"
    h_eq "oneshot: b" $((b0 + 7)) "$(bal pb)"
    h_dtx exec --oneshot -P a "update accounts set balance = balance - 7000 where id = 'x'" \
        -P b "update accounts set balance = balance + 7000 where id = 'x'" >/dev/null 2>&1
    h_eq "oneshot with an error: exit 1" 1 $?
    h_eq "oneshot with an error: a unchanged" $((a0 - 7)) "$(bal pa)"
fi

# 7. parameters with quotes, NULLs and non-ASCII text
if h_case params; then
    h_check "parameters round-trip (quotes, NULL, non-ASCII)" "$PROBE" params a odd
    h_eq "parameters: stored as given" "it's a \"quote\" \\ and ;--|t|grüße, 日本語, ✓" \
        "$(h_psql pa "select a, b is null, c from odd")"
fi

# 8. unknown participant
if h_case unknown-participant; then
    err=$(h_dtx exec -P nosuch "select 1" 2>&1)
    h_eq "unknown participant: exit 1" 1 $?
    h_check "unknown participant: clear error" grep -q 'participant "nosuch" does not exist' <<<"$err"
fi

# 9. PostgreSQL of one participant stopped before prepare -> abort, nothing prepared
if h_case pg-stopped; then
    a0=$(bal pa)
    PROBE_HOOK="runuser -u postgres -- $H_PGBIN/pg_ctl -D $H_TMP/pg-pb/data -m fast -w stop >/dev/null" \
        "$PROBE" hook a "update accounts set balance = balance - 1 where id = 'x'" \
        b "update accounts set balance = balance + 1 where id = 'x'" >"$H_TMP/hook.out" 2>&1
    h_check "pb stopped before prepare: aborted" grep -q '^ABORTED' "$H_TMP/hook.out"
    h_pg_ctl_start pb
    h_eq "pb stopped before prepare: a unchanged" "$a0" "$(bal pa)"
    # (the client is answered ABORTED at once; a branch already prepared is
    # rolled back right after)
    none_on_pa() { [ "$(nprepared pa)" = 0 ]; }
    h_check "pb stopped before prepare: nothing prepared on pa" h_wait_until 10 none_on_pa
    h_wait_until 20 bash -c "[ \$(psql -X -At -h 127.0.0.1 -p $(h_pg_port pb) -U postgres -c 'select count(*) from pg_prepared_xacts') = 0 ]"
    h_eq "pb stopped before prepare: nothing prepared on pb" 0 "$(nprepared pb)"
    # the participant reconnects to its restarted server
    h_wait_until 30 "$H_BIN/dtx" exec -P b "select 1"
    h_eq "after the restart of pb, b works again" 0 $?
fi

# 10. a client that disconnects mid-transaction: rolled back, lock released
if h_case vanished-client; then
    a0=$(bal pa)
    "$PROBE" vanish a "update accounts set balance = balance + 555 where id = 'x'" >/dev/null
    h_check "vanished client: row lock released" \
        h_wait_until 10 psql -X -At -h 127.0.0.1 -p "$(h_pg_port pa)" -U postgres \
        -c "set lock_timeout = '1s'; update accounts set balance = balance where id = 'x'"
    h_eq "vanished client: change rolled back" "$a0" "$(bal pa)"
fi

# 11. clients with bad certificates are refused with a clear error
if h_case client-certs; then
    err=$(DTXSSLCERT= DTXSSLKEY= h_dtx exec -P a "select 1" 2>&1)
    h_eq "no client certificate: exit 2" 2 $?
    h_check "no client certificate: readable error" grep -qiE 'certificate|handshake|alert' <<<"$err"
    "$H_ROOT/tests/lib/gencerts.sh" "$H_TMP/otherca" app >/dev/null
    err=$(DTXSSLCERT=$H_TMP/otherca/app.crt DTXSSLKEY=$H_TMP/otherca/app.key h_dtx exec -P a "select 1" 2>&1)
    h_eq "certificate from another CA: exit 2" 2 $?
    h_check "certificate from another CA: readable error" grep -qiE 'certificate|alert|unknown ca' <<<"$err"
    err=$(DTXSSLCERT=$H_CERTS/mallory.crt DTXSSLKEY=$H_CERTS/mallory.key h_dtx exec -P a "select 1" 2>&1)
    h_eq "name not allowed: exit 2" 2 $?
    h_check "name not allowed: the client is told why" \
        grep -q 'client certificate name "mallory" is not allowed (SQLSTATE 28000)' <<<"$err" ||
        h_log "client said: $err"
    h_check "coordinator logged the refused name" \
        h_wait_log coord 'refused client connection from .*"mallory" is not allowed' 5
fi

# 12. malformed and oversized frames close only that connection: a transaction
# open on another connection meanwhile goes on and commits.  (s_client -quiet
# keeps reading after its input ends, so it returns only when the coordinator
# closes the connection; timeout's 124 means it did not.)
if h_case frames; then
    "$PROBE" steps a "update accounts set balance = balance - 1 where id = 'acct200'" sleep 3000 \
        b "update accounts set balance = balance + 1 where id = 'acct200'" >"$H_TMP/bystander.out" 2>&1 &
    by_pid=$!
    h_wait_until 10 grep -q "acct200" "$H_TMP/pg-pa/server.log"
    printf 'H\xff\xff\xff\xff' | tls >"$H_TMP/oversized.out"
    h_check "oversized start-up frame: the coordinator closed the connection" test $? -ne 124
    h_check "oversized start-up frame: error returned" grep -qa 'exceeds the maximum' "$H_TMP/oversized.out"
    printf 'H\x00\x00\x00\x19XTX1\x00\x01\x00\x02\x01\x00\x00\x00\x03raw\x00\x00\x00\x00\x00\x00\x00\x00\x00' |
        tls >"$H_TMP/magic.out"
    h_check "HELLO with the wrong magic: told so, not an unsupported version" \
        grep -qa 'bad protocol magic' "$H_TMP/magic.out"
    printf 'H\x00\x00\x00\x03abc' | tls >"$H_TMP/malformed.out"
    h_check "malformed start-up frame: the coordinator closed the connection" test $? -ne 124
    h_check "malformed start-up frame: error returned" grep -qa 'start-up' "$H_TMP/malformed.out"
    { hello '\x02'; printf 'B\x7f\xff\xff\xff'; } | tls >"$H_TMP/oversized2.out"
    h_check "oversized frame after start-up: the coordinator closed the connection" test $? -ne 124
    h_check "oversized frame after start-up: error returned" grep -qa 'exceeds the maximum' "$H_TMP/oversized2.out"
    { hello '\x02'; printf 'X\x00\x00\x00\x02ab'; } | tls >"$H_TMP/malformed2.out"
    h_check "unknown frame type after start-up: the coordinator closed the connection" test $? -ne 124
    h_check "unknown frame type after start-up: error returned" grep -qa '08P01' "$H_TMP/malformed2.out"
    h_check "... all while a transaction stood open on another connection" kill -0 $by_pid
    wait $by_pid
    h_check "the transaction open meanwhile on another connection committed" \
        grep -q '^COMMITTED' "$H_TMP/bystander.out"
    h_eq "... and both of its changes are there" "999 1001" \
        "$(bal pa postgres acct200) $(bal pb postgres acct200)"
    h_check "coordinator still serves others" h_dtx exec -P a "select 1"
fi

# 12b. reserved gids (protocol 1.2).  A BEGIN returns at once with a gid the
# coordinator set aside for the connection; STATUS answers IN PROGRESS for
# it while the connection lives, and presumed abort once it is gone unused.
if h_case reserved; then
    out=$("$PROBE" reserved a "select 1" 2>&1)
    h_eq "reserved gid: as STATUS sees it while reserved, running, rolled back, abandoned" \
        "reserved IN PROGRESS: reserved by a connected client, not started yet|running IN PROGRESS|rolled back ABORTED ABORTED|oneshot inside ABORTED, gid kept|begin inside failed 25001|still open yes|next new|abandoned ABORTED" \
        "$(tr '\n' '|' <<<"$out" | sed 's/|$//')"
    # The frames themselves, as hex bytes: HELLO of protocol 1.1 or 1.2, then
    # requests.  A frame is type, u32 length, payload; a str is u32 length,
    # bytes, NUL.
    hexof() { tls | od -An -v -tx1 | tr -s ' \n' '  '; }
    gidframe() { echo " $1 00 00 00 [0-9a-f]{2} 00 00 00 [0-9a-f]{2} 64 74 78 3a 63 31"; } # TYPE len len "dtx:c1"
    old=$( { hello '\x01'; printf 'B\x00\x00\x00\x00A\x00\x00\x00\x00'; sleep 1; } | hexof)
    h_check "a 1.1 client gets BEGIN_OK" grep -qE "$(gidframe 62)" <<<"$old"
    h_check "and no NEXT_GID" bash -c "! grep -qE '$(gidframe 67)' <<<'$old'"
    new=$( { hello '\x02'; printf 'B\x00\x00\x00\x00A\x00\x00\x00\x00'; sleep 1; } | hexof)
    h_eq "a 1.2 client gets a NEXT_GID after HELLO_OK and before the OUTCOME" 2 \
        "$(grep -oE "$(gidframe 67)" <<<"$new" | wc -l)"
    h_check "a plain BEGIN still gets its BEGIN_OK" grep -qE "$(gidframe 62)" <<<"$new"
    h_check "the OUTCOME (ABORTED) follows the NEXT_GID" grep -qE "$(gidframe 67)[0-9a-f ]* 4f 00 00 00 [0-9a-f]{2} 01 " <<<"$new"
    nc=$( { hello '\x01'; printf 'C\x00\x00\x00\x00'; sleep 1; } | hexof)
    h_check "COMMIT without a transaction: ERROR, then OUTCOME ABORTED" \
        grep -qE " 45 00 00 00 [0-9a-f]{2} [0-9a-f ]*32 35 50 30 31[0-9a-f ]* 4f 00 00 00 [0-9a-f]{2} 01 " <<<"$nc"
    wrong=$( { hello '\x02'; printf 'N\x00\x00\x00\x12\x00\x00\x00\x0ddtx:c1:99:999\x00'; sleep 1; } | tls | tr -d '\0')
    h_check "BEGIN_RESERVED naming another gid closes the connection (08P01)" grep -qa 'which is not reserved' <<<"$wrong"
    one=$( { hello '\x01'; printf 'N\x00\x00\x00\x12\x00\x00\x00\x0ddtx:c1:99:999\x00'; sleep 1; } | tls | tr -d '\0')
    h_check "BEGIN_RESERVED from a 1.1 client is malformed" grep -qa "malformed message of type 'N'" <<<"$one"
    h_check "coordinator still serves others" h_dtx exec -P a "select 1"
fi

# 13. the participant refuses a coordinator that is not on its allow-list
# (mallory's certificate is from the right CA; its name is not allowed)
if h_case rogue-coordinator; then
    cp "$H_TMP/coord.ini" "$H_TMP/rogue.ini"
    rport=$(h_free_port)
    sed -i -e "s/^listen_port = .*/listen_port = $rport/" -e "s|coord-data|rogue-data|" \
        -e "s|/coord.crt|/mallory.crt|" -e "s|/coord.key|/mallory.key|" -e "s/^name = c1/name = rogue/" \
        "$H_TMP/rogue.ini"
    h_start rogue "$H_BIN/dtx-coordinator" -c "$H_TMP/rogue.ini"
    h_check "rogue coordinator refused by the participant, and told why" \
        h_wait_log rogue 'participant "a" .*refused: coordinator certificate name "mallory" is not allowed' 15
    h_check "the participant logged the refusal" \
        h_wait_log part-a 'refused coordinator connection from .*certificate name "mallory" is not allowed' 5
    h_kill rogue
fi

# 14. 200 concurrent clients
if h_case many-clients; then
    sum() { h_psql "$1" "select sum(balance) from accounts where id like 'acct%'"; }
    before=$(( $(sum pa) + $(sum pb) ))
    # (under valgrind, every process runs some 30 times slower: 50 clients)
    nc=200
    [ "${DTX_VALGRIND:-0}" = 1 ] && nc=50
    # (each client makes a one-shot transfer, then an interactive one)
    nfd() { ls "/proc/$(h_pid "$1")/fd" | wc -l; }
    fd0=$(nfd coord)
    pgconns() { h_psql "$1" "select count(*) from pg_stat_activity where application_name = 'dtx-participant'"; }
    "$PROBE" transfers $nc 2 a b >"$H_TMP/transfers.out" 2>&1 &
    probe_pid=$!
    maxa=0 maxb=0
    while kill -0 $probe_pid 2>/dev/null; do
        na=$(pgconns pa) nb=$(pgconns pb)
        [ "${na:-0}" -gt $maxa ] && maxa=$na
        [ "${nb:-0}" -gt $maxb ] && maxb=$nb
        sleep 0.2
    done
    wait $probe_pid
    out=$(cat "$H_TMP/transfers.out")
    h_eq "$nc clients: all committed" "committed=$((nc * 2)) aborted=0 unknown=0 errors=0" "$(head -n 1 <<<"$out")" ||
        sed 's/^/# /' <<<"$out"
    after=$(( $(sum pa) + $(sum pb) ))
    h_eq "$nc clients: sum unchanged" "$before" "$after"
    h_eq "$nc clients: nothing left prepared" 0 "$(( $(nprepared pa) + $(nprepared pb) ))"
    # nothing held on to once they are gone: the coordinator's descriptors are
    # back to what they were; and while they ran, neither participant opened
    # more PostgreSQL connections than its pool_size (8; pb serves b and c)
    fds_back() { [ "$(nfd coord)" = "$fd0" ]; }
    h_check "$nc clients: the coordinator's descriptors back to $fd0" h_wait_until 10 fds_back ||
        h_log "now: $(nfd coord)"
    h_check "$nc clients: at most 8 PostgreSQL connections from participant a (most seen: $maxa)" \
        test $maxa -ge 1 -a $maxa -le 8
    h_check "$nc clients: at most 16 from participants b and c on pb (most seen: $maxb)" \
        test $maxb -ge 1 -a $maxb -le 16
fi

# 15. participants named by host name
if h_case hostnames; then
    h_check "participant c, configured as localhost, was reached" \
        grep -q 'participant "c" at localhost:[0-9]* is ready' "$H_TMP/coord.log"
    h_check "participant \"nowhere\": its name could not be resolved, and the coordinator said so" \
        h_wait_log coord 'participant "nowhere" at no-such-host.invalid:9: could not resolve the host name' 60
    err=$(h_dtx exec -P nowhere "select 1" 2>&1)
    h_eq "a transaction on \"nowhere\": exit 1 (aborted)" 1 $?
    h_check "... with a clear error" grep -q 'participant "nowhere" is not reachable' <<<"$err" ||
        h_log "client said: $err"
fi

# 16. allowed_clients must name someone ("*" for any certificate of the CA)
if h_case allowed-clients; then
    sed 's/^allowed_clients = .*/allowed_clients = " , "/' "$H_TMP/coord.ini" >"$H_TMP/blank.ini"
    out=$("$H_BIN/dtx-coordinator" -t -c "$H_TMP/blank.ini" 2>&1)
    h_eq "a blank allowed_clients: the coordinator refuses the configuration" 1 $?
    h_check "... saying so" grep -q 'allowed_clients: empty certificate name in the list' <<<"$out" ||
        h_log "$out"
    sed 's/^allowed_clients = .*/allowed_clients = "  "/' "$H_TMP/coord.ini" >"$H_TMP/blank.ini"
    out=$("$H_BIN/dtx-coordinator" -t -c "$H_TMP/blank.ini" 2>&1)
    h_check "an allowed_clients of blanks names nobody, and says so" \
        grep -q 'allowed_clients: the list names no certificate' <<<"$out"
    out=$("$H_BIN/dtx-coordinator" -t -c "$H_TMP/coord.ini" 2>&1)
    h_eq "the configuration in use passes -t" 0 $? || h_log "$out"
fi

# clean shutdown; ASan (test build) reports leaks at exit as a non-zero status
h_end_case
h_stop_clean a b c
h_done
