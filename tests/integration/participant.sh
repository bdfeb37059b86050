#!/usr/bin/env bash
# tests/integration/participant.sh — dtx-participant against a real
# PostgreSQL, driven by tool-partprobe (a scripted coordinator stand-in).
#
# Covers: start-up refusals (bad config, max_prepared_transactions = 0,
# PostgreSQL unreachable), the TLS allow-list and HELLO, WORK/PREPARE/FINISH/
# LIST, read-only votes, statement errors, multiplexed branches, a dropped
# coordinator connection, phase-two priority in a full pool, CANCEL of a
# waiting and of a running WORK, pool_wait_timeout, the
# prepared-slot limit, lost PostgreSQL connections, the three participant
# failpoints, and SIGTERM.
#
#   DTX_BUILD=test bash tests/integration/participant.sh
#
# Each section is a case (CASE=name runs one alone, docs/testing.md).  start
# (the participant everything after it talks to) always runs; cache-evict
# and dealloc need the statement cache that cache leaves, sigterm the
# participant that failpoints leaves: those run first, as set-up.
. "$(dirname "$0")/../lib/harness.sh"
h_cases cmdline config start-refusals +start tls prepare-finish read-only stmt-error refusals session-state \
    cache cache-evict:cache xid-planted dealloc:cache planted max-frame gid-in-use list \
    multiplex dropped priority cancel pool-wait malformed-cancel slots pg-lost failpoints \
    sigterm:failpoints
h_init

PART=$H_BIN/dtx-participant
PROBE=$H_BIN/tool-partprobe
if [ ! -x "$PART" ] || [ ! -x "$PROBE" ]; then
    h_fail "binaries missing: make BUILD=$H_BUILD build/$H_BUILD/bin/dtx-participant build/$H_BUILD/bin/tool-partprobe"
    h_done
fi

h_certs coord coord2 mallory part-a || { h_fail "certificates"; h_done; }
h_pg_start a 4 || { h_fail "start PostgreSQL cluster a"; h_done; }

PORT=$(h_free_port)
CONF=$H_TMP/part.ini

# write_conf FILE CONNINFO — a participant configuration on $PORT
write_conf() {
    cat >"$1" <<EOF
# dtx-participant configuration for tests
[participant]
name = part-a
listen_addr = 127.0.0.1
listen_port = $PORT
tls_cert = $H_CERTS/part-a.crt
tls_key = $H_CERTS/part-a.key
tls_ca = $H_CERTS/ca.crt
allowed_coordinators = coord, coord2
conninfo = $2
pool_size = 2
statement_cache_size = 2
prepare_wait_timeout = 1s
statement_timeout = 20s
max_frame = 1MB
log_level = debug
EOF
}

# probe [CERT] — run probe commands from stdin as coordinator CERT (default coord)
probe() {
    local cert=${1:-coord}
    if [ "$cert" = none ]; then
        "$PROBE" --port "$PORT" --ca "$H_CERTS/ca.crt" --timeout 10
    else
        "$PROBE" --port "$PORT" --ca "$H_CERTS/ca.crt" --cert "$H_CERTS/$cert.crt" \
            --key "$H_CERTS/$cert.key" --timeout 10
    fi
}

# start_part NAME [FAILPOINTS] — start the participant, wait for "ready"
start_part() {
    h_start "$1" env DTX_FAILPOINTS="${2:-}" "$PART" -c "$CONF"
    h_wait_log "$1" "ready: listening on 127.0.0.1:$PORT" 15
}

# prepared GID — is GID prepared in cluster a?
prepared() {
    [ "$(h_psql a "SELECT count(*) FROM pg_prepared_xacts WHERE gid = '$1'")" = 1 ]
}

# field NAME LINE — value of NAME=... in a probe output line
field() { sed -nE "s/.* $1=([^ ]*).*/\1/p" <<<"$2" | head -n 1; }

h_psql a "CREATE TABLE acct (id int PRIMARY KEY, v text)" >/dev/null
h_psql a "INSERT INTO acct SELECT g, 'v' || g FROM generate_series(1, 10) g" >/dev/null
write_conf "$CONF" "$(h_pg_conninfo a)"

# ---------------------------------------------------------------------------
# Start-up and configuration

if h_case cmdline; then
    out=$("$PART" -c "$CONF" -t 2>&1)
    h_check "-t accepts a valid configuration" grep -q "is valid" <<<"$out"

    # the command line (common/cmdline.c, shared by both daemons)
    for d in "$PART" "$H_BIN/dtx-coordinator"; do
        n=$(basename "$d")
        h_check "$n --version" bash -c "'$d' --version | grep -q '^$n (dtx) [0-9]'"
        h_check "$n --help exits 0" bash -c "'$d' --help | grep -q -- '-c, --config'"
        out=$("$d" 2>&1)
        h_check "$n without -c: exit 2, says so" test $? = 2 -a -n "$(grep 'no configuration file given' <<<"$out")"
        out=$("$d" -c "$CONF" extra 2>&1)
        h_check "$n with an extra argument: exit 2, names it" test $? = 2 -a -n "$(grep 'unexpected argument "extra"' <<<"$out")"
        out=$("$d" --bogus 2>&1)
        h_check "$n with an unknown option: exit 2, names it" test $? = 2 -a -n "$(grep 'unknown option "--bogus"' <<<"$out")"
        out=$("$d" -c 2>&1)
        h_check "$n -c without a value: exit 2" test $? = 2 -a -n "$(grep 'option "-c" needs a value' <<<"$out")"
    done
fi

if h_case config; then
    cp "$CONF" "$H_TMP/bad.ini"
    echo "pool_sise = 3" >>"$H_TMP/bad.ini"
    line=$(grep -n pool_sise "$H_TMP/bad.ini" | cut -d: -f1)
    out=$(timeout 20 "$PART" -c "$H_TMP/bad.ini" 2>&1)
    rc=$?
    if [ $rc = 1 ] && grep -q "bad.ini:$line: unknown key \"pool_sise\"" <<<"$out"; then
        h_ok "a bad configuration is refused with file:line"
    else
        h_fail "a bad configuration is refused with file:line (rc=$rc: $out)"
    fi

    grep -v '^conninfo' "$CONF" >"$H_TMP/noci.ini"
    out=$(timeout 20 "$PART" -c "$H_TMP/noci.ini" -t 2>&1)
    rc=$?
    if [ $rc = 1 ] && grep -q 'missing required key "conninfo"' <<<"$out"; then
        h_ok "a missing required key is refused"
    else
        h_fail "a missing required key is refused (rc=$rc: $out)"
    fi

    sed 's/^allowed_coordinators = .*/allowed_coordinators = coord, ,x/' "$CONF" >"$H_TMP/allow.ini"
    line=$(grep -n '^allowed_coordinators' "$H_TMP/allow.ini" | cut -d: -f1)
    out=$(timeout 20 "$PART" -c "$H_TMP/allow.ini" -t 2>&1)
    rc=$?
    if [ $rc = 1 ] && grep -q "allow.ini:$line: .*allowed_coordinators" <<<"$out"; then
        h_ok "an empty name in allowed_coordinators is refused with file:line"
    else
        h_fail "an empty name in allowed_coordinators is refused (rc=$rc: $out)"
    fi
fi

if h_case start-refusals; then
    h_pg_start nomp 0 || h_fail "start PostgreSQL cluster nomp"
    write_conf "$H_TMP/nomp.ini" "$(h_pg_conninfo nomp)"
    out=$(timeout 20 "$PART" -c "$H_TMP/nomp.ini" 2>&1)
    rc=$?
    if [ $rc = 1 ] && grep -q "max_prepared_transactions = 0" <<<"$out" &&
        grep -q "set max_prepared_transactions in postgresql.conf and restart the server" <<<"$out"; then
        h_ok "refuses to start when max_prepared_transactions is 0"
    else
        h_fail "refuses to start when max_prepared_transactions is 0 (rc=$rc: $out)"
    fi
    h_pg_stop nomp immediate

    deadport=$(h_free_port)
    write_conf "$H_TMP/dead.ini" "host=127.0.0.1 port=$deadport user=postgres dbname=postgres"
    out=$(timeout 20 "$PART" -c "$H_TMP/dead.ini" 2>&1)
    rc=$?
    if [ $rc = 1 ] && grep -q "could not connect to PostgreSQL" <<<"$out"; then
        h_ok "refuses to start when PostgreSQL is unreachable"
    else
        h_fail "refuses to start when PostgreSQL is unreachable (rc=$rc: $out)"
    fi
fi

if h_case start; then
    start_part part1 && h_ok "starts and logs ready" || h_fail "starts and logs ready"
fi

# ---------------------------------------------------------------------------
# TLS and HELLO

if h_case tls; then
    out=$(probe <<<"hello coord 1")
    h_check "HELLO gets HELLO_OK with the participant's name" grep -q "^HELLO_OK server=part-a epoch=1" <<<"$out"

    out=$(probe mallory <<<"hello coord 1")
    if grep -q '^ERROR tag=0 sqlstate=28000 message="coordinator certificate name \\"mallory\\" is not allowed"' <<<"$out" &&
        ! grep -q HELLO_OK <<<"$out"; then
        h_ok "a certificate name not on allowed_coordinators gets ERROR 28000"
    else
        h_fail "a certificate name not on allowed_coordinators gets ERROR 28000 ($out)"
    fi

    out=$(probe none <<<"hello coord 1" 2>&1)
    if ! grep -q HELLO_OK <<<"$out" && grep -qE "TLS-ERROR|CLOSED" <<<"$out"; then
        h_ok "a client without a certificate is refused"
    else
        h_fail "a client without a certificate is refused ($out)"
    fi

    out=$(probe <<<"hello app 1 1")
    h_check "a HELLO with the client role is refused" grep -q "^ERROR tag=0 sqlstate=28000" <<<"$out"

    out=$(probe <<'EOF'
hello coord 1
raw Z 00
expect-close
EOF
    )
    h_check "an unknown frame type is a protocol error (08P01)" grep -q "^ERROR tag=0 sqlstate=08P01" <<<"$out"
fi

# ---------------------------------------------------------------------------
# Prepare, finish, list

if h_case prepare-finish; then
    B1=dtx:coord:1:1:part-a
    out=$(probe <<EOF
hello coord 1
work 1 open,prepare $B1
sql INSERT INTO acct VALUES (\$1, \$2)
param 101
param hundred-one
sql SELECT id, v FROM acct WHERE id = 101
send
list 2 dtx:coord:1:
EOF
    )
    done1=$(grep "^DONE tag=1 " <<<"$out")
    xid1=$(field xid "$done1")
    if grep -q "status=prepared" <<<"$done1" && [ "${xid1:-0}" -gt 0 ] && prepared "$B1"; then
        h_ok "WORK OPEN+PREPARE votes PREPARED with an xid and the branch is in pg_prepared_xacts"
    else
        h_fail "WORK OPEN+PREPARE votes PREPARED ($out)"
    fi
    h_check "statements answer RESULT frames with rows" grep -q '^RESULT tag=1 cmd="SELECT 1" affected=1 cols=id:23,v:25 rows=1' <<<"$out"
    entry=$(grep "^ENTRY gid=$B1 " <<<"$out")
    h_eq "LIST reports the branch with the xid8 of the vote" "$xid1" "$(field xid "$entry")"
    h_eq "the vote's xid is the prepared transaction's (pg_xact_status)" "in progress" \
        "$(h_psql a "SELECT pg_xact_status('$xid1'::xid8)")"

    out=$(probe <<EOF
hello coord 1
finish 3 commit $B1 $xid1
EOF
    )
    if grep -q "^DONE tag=3 status=ok" <<<"$out" && ! prepared "$B1" &&
        [ "$(h_psql a "SELECT v FROM acct WHERE id = 101")" = hundred-one ]; then
        h_ok "FINISH commit makes the row visible"
    else
        h_fail "FINISH commit makes the row visible ($out)"
    fi

    out=$(probe <<EOF
hello coord 1
finish 4 commit $B1 $xid1
finish 5 rollback dtx:coord:1:999:part-a 0
EOF
    )
    h_check "FINISH of a finished branch: NOT_FOUND, committed" grep -q "^DONE tag=4 status=not found xid=0 xact=committed sqlstate=42704" <<<"$out"
    h_check "FINISH without xid of an unknown branch: NOT_FOUND, unknown" grep -q "^DONE tag=5 status=not found xid=0 xact=unknown" <<<"$out"
fi

if h_case read-only; then
    B2=dtx:coord:1:2:part-a
    out=$(probe <<EOF
hello coord 1
work 6 open $B2
sql SELECT count(*) FROM acct
send
work 7 prepare $B2
sql SELECT v FROM acct WHERE id = 1
send
EOF
    )
    if grep -q "^DONE tag=6 status=ok" <<<"$out" && grep -q "^DONE tag=7 status=read-only" <<<"$out" &&
        ! prepared "$B2"; then
        h_ok "a read-only branch votes READ-ONLY and leaves nothing prepared"
    else
        h_fail "a read-only branch votes READ-ONLY ($out)"
    fi
fi

if h_case stmt-error; then
    B3=dtx:coord:1:3:part-a
    out=$(probe <<EOF
hello coord 1
work 8 open,prepare $B3
sql INSERT INTO acct VALUES (102, 'x')
sql INSERT INTO acct VALUES (1, 'duplicate')
sql INSERT INTO acct VALUES (103, 'never')
send
work 9 none $B3
sql SELECT 1
send
work 10 rollback $B3
send
EOF
    )
    if grep -q '^DONE tag=8 status=error .*sqlstate=23505 message="duplicate key value violates unique constraint \\"acct_pkey\\"" detail="Key (id)=(1) already exists."' <<<"$out" &&
        ! prepared "$B3" && [ "$(h_psql a "SELECT count(*) FROM acct WHERE id IN (102, 103)")" = 0 ]; then
        h_ok "a statement error gives DONE_ERROR with SQLSTATE and detail, and rolls back"
    else
        h_fail "a statement error gives DONE_ERROR with SQLSTATE and detail ($out)"
    fi
    h_check "a failed branch is forgotten" grep -q "^DONE tag=9 status=error .*sqlstate=25P01" <<<"$out"
    h_check "ROLLBACK of a forgotten branch is DONE_OK" grep -q "^DONE tag=10 status=ok" <<<"$out"
fi

if h_case refusals; then
    out=$(probe <<EOF
hello coord 1
work 11 open dtx:coord:1:4:part-a
sql COMMIT
send
work 12 open dtx:other:1:4:part-a
send
work 13 open dtx:coord:1:5:it's
send
EOF
    )
    h_check "transaction control statements are refused (0A000)" grep -q "^DONE tag=11 status=error .*sqlstate=0A000" <<<"$out"
    h_check "a branch of another coordinator is refused" grep -q "^DONE tag=12 status=error .*sqlstate=22023" <<<"$out"
    h_check "a branch name with a quote is refused" grep -q "^DONE tag=13 status=error .*sqlstate=22023" <<<"$out"
fi

# Session state: every statement that would leave state on the pooled
# connection for the next branch is refused before anything runs (0A000),
# with the reason and what to do instead; what ends with the transaction is
# allowed, and a following branch on the same connection (pool_size = 2:
# branches share one) finds the defaults.
if h_case session-state; then
    n=100
    script="hello coord 1"$'\n'
    refused=("SET statement_timeout = 5" "set session statement_timeout to 5" "SET ROLE postgres"
        "SET LOCAL ROLE postgres" "SET SESSION AUTHORIZATION postgres" "RESET ROLE"
        "reset statement_timeout" "RESET ALL" "LISTEN chan" "UNLISTEN *"
        "PREPARE p1 AS SELECT 1" "DISCARD ALL" "CREATE TEMP TABLE tt (a int)"
        "create global temporary table tt (a int)" "CREATE TEMPORARY VIEW v AS SELECT 1"
        "SELECT 1 INTO TEMP tt2" "DECLARE c CURSOR WITH HOLD FOR SELECT 1"
        "SELECT pg_advisory_lock(42)" "select pg_try_advisory_lock_shared(42)"
        "SELECT set_config('search_path', 'x', false)" "/* hi */ SET work_mem = '64MB'"
        "SET LOCAL \"role\" TO 'postgres'" "set local session_authorization to default"
        "SET TIME ZONE 'UTC'" "create or replace temp view v2 as select 1"
        "create table pg_temp.t3 (a int)" "LOAD 'plpgsql'"
        $'DECLARE c3 CURSOR\t WITH \t HOLD FOR SELECT 1' $'select 1 into\t temp tt4')
    for sql in "${refused[@]}"; do
        n=$((n + 1))
        script+="work $n open,rollback dtx:coord:1:$n:part-a"$'\n'"sql $sql"$'\n'"send"$'\n'
    done
    allowed=("SET LOCAL statement_timeout = 1234" "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"
        "SET CONSTRAINTS ALL DEFERRED" "SELECT pg_advisory_xact_lock(42)"
        "DECLARE c2 CURSOR FOR SELECT 1" "SELECT 1 AS asset_config, 2 AS temp"
        "CREATE TABLE not_temp (temp int)" "DO \$\$BEGIN PERFORM 1; END\$\$")
    a0=$n
    for sql in "${allowed[@]}"; do
        n=$((n + 1))
        script+="work $n open,rollback dtx:coord:1:$n:part-a"$'\n'"sql $sql"$'\n'"send"$'\n'
    done
    n=$((n + 1))
    script+="work $n open,commit dtx:coord:1:$n:part-a"$'\n'"sql SET LOCAL statement_timeout = 4321"$'\n'"send"$'\n'
    n=$((n + 1))
    script+="work $n open,commit dtx:coord:1:$n:part-a"$'\n'"sql SHOW statement_timeout"$'\n'"send"$'\n'
    out=$(probe <<<"$script")
    i=100
    for sql in "${refused[@]}"; do
        i=$((i + 1))
        h_check "session state: '$sql' is refused (0A000)" \
            grep -q "^DONE tag=$i status=error .*sqlstate=0A000 .*would leave session state on a pooled connection" <<<"$out"
    done
    for sql in "${allowed[@]}"; do
        i=$((i + 1))
        h_check "session state: '$sql' (ends with the transaction) runs" grep -q "^DONE tag=$i status=ok" <<<"$out"
    done
    h_check "session state: the reason says what to use instead" \
        grep -q "^DONE tag=101 .*SET without LOCAL is not allowed.*use SET LOCAL" <<<"$out"
    h_check "session state: a session advisory lock points at the transaction-level one" \
        grep -q "use pg_advisory_xact_lock" <<<"$out"
    # (20s: the participant's own statement_timeout, set on each connection)
    h_check "session state: SET LOCAL of one branch is gone in the next" \
        grep -qx "ROW 20s" <<<"$(grep -A1 "^RESULT tag=$n " <<<"$out")"
    h_eq "session state: no advisory lock is left held" 0 \
        "$(h_psql a "select count(*) from pg_locks where locktype = 'advisory'")"
fi

# Statement cache (statement_cache_size = 2 here).  pool_size = 2: branches
# use one connection, the other is kept for phase two, so everything below
# runs on the same one until it is replaced.  An UPDATE seen a second time
# runs as a prepared statement of that connection; the client sees the same
# results either way.
if h_case cache; then
    H_LOG_FROM[part1]=$(stat -c %s "$H_TMP/part1.log")
    out=$(probe <<'EOF'
hello coord 1
work 20 open,commit dtx:coord:1:20:part-a
sql UPDATE acct SET v = v WHERE id = $1
param 1
send
work 21 open,commit dtx:coord:1:21:part-a
sql UPDATE acct SET v = v WHERE id = $1
param 2
sql UPDATE acct SET v = v WHERE id = $1
param 3
send
work 22 open,commit dtx:coord:1:22:part-a
sql UPDATE acct SET v = v WHERE id = $1
param 99
send
EOF
    )
    h_eq "a cached UPDATE gives the same results (twice in one batch)" 3 \
        "$(grep -c '^RESULT tag=2[01] cmd="UPDATE 1" affected=1' <<<"$out")"
    h_check "and none when no row matches" grep -q '^RESULT tag=22 cmd="UPDATE 0" affected=0' <<<"$out"
    h_eq "the second sighting prepared it, once" 1 \
        "$(h_newlog part1 | grep -c 'pg#[0-9]*: preparing dtx_s1: UPDATE acct SET v = v WHERE id = \$1')"
    h_eq "and PostgreSQL took it" 1 \
        "$(h_newlog part1 | grep -c 'pg#[0-9]*: prepared a statement of the cache')"
fi

# A Parse skipped after an earlier error in its batch leaves nothing
# behind: the next use parses again and runs.  With two slots, a third
# text evicts the least recently used statement (DEALLOCATE in the same
# batch), and the evicted text comes back under a new name.
if h_case cache-evict; then
    H_LOG_FROM[part1]=$(stat -c %s "$H_TMP/part1.log")
    out=$(probe <<'EOF'
hello coord 1
work 23 open,commit dtx:coord:1:23:part-a
sql DELETE FROM acct WHERE id = $1
param 1000
send
work 24 open,commit dtx:coord:1:24:part-a
sql SELECT 1/0
sql DELETE FROM acct WHERE id = $1
param 1000
send
work 25 open,commit dtx:coord:1:25:part-a
sql DELETE FROM acct WHERE id = $1
param 1000
send
work 26 open,commit dtx:coord:1:26:part-a
sql INSERT INTO acct VALUES ($1, 'cache')
param 26
send
work 27 open,commit dtx:coord:1:27:part-a
sql INSERT INTO acct VALUES ($1, 'cache')
param 27
send
work 28 open,commit dtx:coord:1:28:part-a
sql UPDATE acct SET v = v WHERE id = $1
param 1
send
EOF
    )
    h_check "a batch whose Parse was skipped fails with its own error" grep -q "^DONE tag=24 status=error .*sqlstate=22012" <<<"$out"
    h_check "the next use prepares again and runs" grep -q "^DONE tag=25 status=ok" <<<"$out"
    h_eq "two Parses of the DELETE" 2 "$(h_newlog part1 | grep -c 'preparing dtx_s[0-9]*: DELETE FROM acct')"
    h_check "a third text evicts the least recently used" h_wait_newlog part1 "deallocating dtx_s1$" 2
    h_check "and the evicted one comes back, deallocating another" h_wait_newlog part1 "preparing dtx_s[0-9]+: UPDATE acct SET v = v WHERE id = \\\$1" 2
    h_eq "every branch of that ran" 4 "$(grep -cE '^DONE tag=2[5-8] status=ok' <<<"$out")"
    h_eq "and the rows are there" 2 "$(h_psql a "SELECT count(*) FROM acct WHERE v = 'cache'")"
fi

# The xid query is never a prepared statement: a "dtx_xid" planted by a
# function, answering NULL, cannot make a branch that wrote vote READ-ONLY
# (and so commit at once, whatever the other participants vote).
if h_case xid-planted; then
    H_LOG_FROM[part1]=$(stat -c %s "$H_TMP/part1.log")
    out=$(probe <<'EOF'
hello coord 1
work 40 open,commit dtx:coord:1:40:part-a
sql DO $$BEGIN BEGIN EXECUTE 'DEALLOCATE dtx_xid'; EXCEPTION WHEN invalid_sql_statement_name THEN NULL; END; EXECUTE 'PREPARE dtx_xid AS SELECT NULL::text'; END$$
send
work 41 open,prepare dtx:coord:1:41:part-a
sql INSERT INTO acct VALUES (41, 'xid')
send
finish 42 rollback dtx:coord:1:41:part-a
EOF
    )
    h_check "a planted dtx_xid is in place (the function ran)" grep -q "^DONE tag=40 status=ok" <<<"$out"
    h_check "a branch that wrote still votes PREPARED" grep -q "^DONE tag=41 status=prepared" <<<"$out"
    h_check "and is rolled back on request" grep -q "^DONE tag=42 status=ok" <<<"$out"
    h_eq "nothing of it was committed" 0 "$(h_psql a "SELECT count(*) FROM acct WHERE id = 41")"
    h_eq "on the connection that holds the planted statement" 0 \
        "$(h_newlog part1 | grep -c 'closing connection pg#')"
fi

# A client deallocates the participant's statements: DEALLOCATE is
# refused; run from a function it is noticed when the cached statement is
# next used (that branch fails, 26000) and the connection is replaced.
if h_case dealloc; then
    H_LOG_FROM[part1]=$(stat -c %s "$H_TMP/part1.log")
    out=$(probe <<'EOF'
hello coord 1
work 14 open dtx:coord:1:14:part-a
sql DEALLOCATE ALL
send
work 15 open,commit dtx:coord:1:15:part-a
sql DO $$BEGIN EXECUTE 'DEALLOCATE ALL'; END$$
send
work 16 open,prepare dtx:coord:1:16:part-a
sql UPDATE acct SET v = v WHERE id = $1
param 4
send
work 17 open,prepare dtx:coord:1:17:part-a
sql UPDATE acct SET v = v WHERE id = $1
param 4
send
finish 18 rollback dtx:coord:1:17:part-a
EOF
    )
    h_check "DEALLOCATE is refused (0A000)" grep -q "^DONE tag=14 status=error .*sqlstate=0A000" <<<"$out"
    h_check "a function may deallocate (one-phase commit)" grep -q "^DONE tag=15 status=ok" <<<"$out"
    h_check "the next use of the cached statement fails (26000)" grep -q "^DONE tag=16 status=error .*sqlstate=26000" <<<"$out"
    h_check "the connection is replaced" h_wait_newlog part1 "closing connection pg#[0-9]+: a prepared statement of the participant was deallocated or replaced" 5
    h_check "and the statement runs on the next one" grep -q "^DONE tag=17 status=prepared" <<<"$out"
    h_check "(rolled back)" grep -q "^DONE tag=18 status=ok" <<<"$out"
fi

# A statement planted under the cache's next name makes that Parse fail
# (42P05): the branch fails and the connection is replaced.
if h_case planted; then
    H_LOG_FROM[part1]=$(stat -c %s "$H_TMP/part1.log")
    out=$(probe <<'EOF'
hello coord 1
work 30 open,commit dtx:coord:1:30:part-a
sql DO $$BEGIN FOR i IN 1..50 LOOP BEGIN EXECUTE format('PREPARE dtx_s%s AS SELECT 1', i); EXCEPTION WHEN duplicate_prepared_statement THEN NULL; END; END LOOP; END$$
send
work 31 open,commit dtx:coord:1:31:part-a
sql DELETE FROM acct WHERE id = $1 AND v = 'planted'
param 5
send
work 32 open,commit dtx:coord:1:32:part-a
sql DELETE FROM acct WHERE id = $1 AND v = 'planted'
param 6
send
work 33 open,commit dtx:coord:1:33:part-a
sql DELETE FROM acct WHERE id = $1 AND v = 'planted'
param 7
send
EOF
    )
    h_check "statements planted under the cache's names" grep -q "^DONE tag=30 status=ok" <<<"$out"
    h_check "a Parse over a planted name fails the branch (42P05)" grep -q "^DONE tag=32 status=error .*sqlstate=42P05" <<<"$out"
    h_check "the connection is replaced" h_wait_newlog part1 "closing connection pg#[0-9]+: a prepared statement of the participant was deallocated or replaced" 5
    h_check "and the next branch runs" grep -q "^DONE tag=33 status=ok" <<<"$out"
fi

# results larger than max_frame (1MB here) cannot be sent
if h_case max-frame; then
    out=$(probe <<'EOF'
hello coord 1
work 90 open,prepare dtx:coord:1:90:part-a
sql INSERT INTO acct VALUES (300, 'big-prepare')
sql SELECT repeat('x', 2000000)
send
work 91 open,commit dtx:coord:1:91:part-a
sql INSERT INTO acct VALUES (301, 'big-commit')
sql SELECT repeat('x', 2000000)
send
EOF
    )
    if grep -q "^DONE tag=90 status=error .*sqlstate=54000" <<<"$out" && ! prepared dtx:coord:1:90:part-a &&
        [ "$(h_psql a "SELECT count(*) FROM acct WHERE id = 300")" = 0 ]; then
        h_ok "an oversized result fails a PREPARE, and the vote is taken back"
    else
        h_fail "an oversized result fails a PREPARE ($out)"
    fi
    if grep -q "^DONE tag=91 status=unknown .*sqlstate=54000" <<<"$out" &&
        [ "$(h_psql a "SELECT count(*) FROM acct WHERE id = 301")" = 1 ]; then
        h_ok "an oversized result after a one-phase COMMIT is reported UNKNOWN, never ERROR"
    else
        h_fail "an oversized result after a one-phase COMMIT is reported UNKNOWN ($out)"
    fi
fi

# PREPARE of a name already in use (42710) fails and leaves no transaction open
if h_case gid-in-use; then
    h_psql a "BEGIN; INSERT INTO acct VALUES (302, 'dup'); PREPARE TRANSACTION 'dtx:coord:1:92:part-a'" >/dev/null
    out=$(probe <<'EOF'
hello coord 1
work 92 open,prepare dtx:coord:1:92:part-a
sql INSERT INTO acct VALUES (303, 'dup2')
send
EOF
    )
    h_psql a "ROLLBACK PREPARED 'dtx:coord:1:92:part-a'" >/dev/null
    if grep -q "^DONE tag=92 status=error .*sqlstate=42710" <<<"$out" &&
        [ "$(h_psql a "SELECT count(*) FROM acct WHERE id IN (302, 303)")" = 0 ] &&
        [ "$(h_psql a "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dtx-participant' AND state LIKE 'idle in transaction%'")" = 0 ]; then
        h_ok "PREPARE with a name in use gives 42710 and rolls the branch back"
    else
        h_fail "PREPARE with a name in use gives 42710 ($out)"
    fi
fi

# LIST: only our prefix, our database; not other applications' transactions
if h_case list; then
    h_psql a "BEGIN; INSERT INTO acct VALUES (201, 'o'); PREPARE TRANSACTION 'other-app-1'" >/dev/null
    h_psql a "BEGIN; INSERT INTO acct VALUES (202, 'o'); PREPARE TRANSACTION 'dtx:coord2:1:1:part-a'" >/dev/null
    B4=dtx:coord:1:6:part-a
    out=$(probe <<EOF
hello coord 1
work 14 open,prepare $B4
sql UPDATE acct SET v = 'six' WHERE id = 6
send
list 15 dtx:coord:
list 16 dtx:coord:1:6
EOF
    )
    if grep -q "^LIST tag=15 n=1" <<<"$out" && grep -q "^ENTRY gid=$B4 " <<<"$out" &&
        ! grep -qE "ENTRY gid=(other-app-1|dtx:coord2)" <<<"$out" && grep -q "^LIST tag=16 n=1" <<<"$out"; then
        h_ok "LIST returns only branches with the prefix"
    else
        h_fail "LIST returns only branches with the prefix ($out)"
    fi
    h_psql a "ROLLBACK PREPARED 'other-app-1'" >/dev/null
    h_psql a "ROLLBACK PREPARED 'dtx:coord2:1:1:part-a'" >/dev/null
    out=$(probe <<EOF
hello coord 1
finish 17 rollback $B4 0
EOF
    )
    if grep -q "^DONE tag=17 status=ok" <<<"$out" && ! prepared "$B4" &&
        [ "$(h_psql a "SELECT v FROM acct WHERE id = 6")" = v6 ]; then
        h_ok "FINISH rollback discards the branch"
    else
        h_fail "FINISH rollback discards the branch ($out)"
    fi
fi

# ---------------------------------------------------------------------------
# Multiplexing, dropped coordinators, priorities

# a slow statement of one branch does not hold up the replies to other
# requests on the same connection: each reply carries its request's tag
if h_case multiplex; then
    out=$(probe <<'EOF'
hello coord 1
work 20 open dtx:coord:1:20:part-a
sql SELECT 1
send
work 21 none dtx:coord:1:20:part-a
sql SELECT pg_sleep(0.5), 'slow'
send-nowait
list 22 dtx:coord:1:20
wait 21
work 23 commit dtx:coord:1:20:part-a
send
EOF
    )
    l21=$(grep -n "^DONE tag=21 status=ok" <<<"$out" | cut -d: -f1)
    l22=$(grep -n "^LIST tag=22 n=0" <<<"$out" | cut -d: -f1)
    if [ -n "$l21" ] && [ -n "$l22" ] && [ "$l22" -lt "$l21" ] &&
        grep -q "^DONE tag=23 status=ok" <<<"$out"; then
        h_ok "requests are multiplexed on one connection by tag"
    else
        h_fail "requests are multiplexed on one connection by tag ($out)"
    fi
fi

if h_case dropped; then
    probe <<'EOF' >"$H_TMP/drop.out"
hello coord 1
work 30 open dtx:coord:1:30:part-a
sql UPDATE acct SET v = 'locked' WHERE id = 3
send
quit
EOF
    if grep -q "^DONE tag=30 status=ok" "$H_TMP/drop.out" &&
        h_psql a "SET lock_timeout = '5s'; UPDATE acct SET v = 'free' WHERE id = 3" >/dev/null &&
        [ "$(h_psql a "SELECT v FROM acct WHERE id = 3")" = free ]; then
        h_ok "a dropped coordinator connection rolls back its open branch (row lock released)"
    else
        h_fail "a dropped coordinator connection rolls back its open branch ($(cat "$H_TMP/drop.out"))"
    fi
fi

# pool_size = 2: one connection is kept for phase two.  Branch A holds one;
# branch B must wait, but FINISH and LIST are still served at once.
if h_case priority; then
    out=$(probe <<'EOF'
hello coord 1
work 40 open dtx:coord:1:40:part-a
sql SELECT 1
send
work 41 open dtx:coord:1:41:part-a
sql SELECT 'b'
send-nowait
finish 42 rollback dtx:coord:1:999:part-a 0
list 43 dtx:coord:1:40
work 44 rollback dtx:coord:1:40:part-a
send
wait 41
work 45 rollback dtx:coord:1:41:part-a
send
EOF
    )
    l41=$(grep -n "^DONE tag=41 status=ok" <<<"$out" | cut -d: -f1)
    l42=$(grep -n "^DONE tag=42 status=not found" <<<"$out" | cut -d: -f1)
    l43=$(grep -n "^LIST tag=43" <<<"$out" | cut -d: -f1)
    l44=$(grep -n "^DONE tag=44 status=ok" <<<"$out" | cut -d: -f1)
    if [ -n "$l41" ] && [ -n "$l42" ] && [ -n "$l43" ] && [ -n "$l44" ] && [ "$l42" -lt "$l41" ] &&
        [ "$l43" -lt "$l41" ] && [ "$l44" -lt "$l41" ]; then
        h_ok "phase two is served while new work waits for a full pool"
    else
        h_fail "phase two is served while new work waits for a full pool ($out)"
    fi
fi

# CANCEL (protocol 1.1).  A WORK OPEN waiting for the pool fails with 57014
# at once; a statement running in PostgreSQL is cancelled there; an unknown
# branch is answered OK.
if h_case cancel; then
    out=$(probe <<'EOF'
hello coord 1
work 60 open dtx:coord:1:60:part-a
sql SELECT 1
send
work 61 open dtx:coord:1:61:part-a
sql SELECT 'waits'
send-nowait
sleep 200
cancel 62 dtx:coord:1:61:part-a
wait 61
cancel 63 dtx:coord:1:999:part-a
work 64 rollback dtx:coord:1:60:part-a
send
work 65 open dtx:coord:1:65:part-a
sql SELECT pg_sleep(30)
send-nowait
sleep 500
cancel 66 dtx:coord:1:65:part-a
wait 65
EOF
    )
    if grep -q "^DONE tag=61 status=error .*sqlstate=57014 .*before it got a PostgreSQL connection" <<<"$out" &&
        grep -q "^DONE tag=62 status=ok" <<<"$out" && grep -q "^DONE tag=63 status=ok" <<<"$out"; then
        h_ok "CANCEL fails a WORK waiting for a pool connection with 57014"
    else
        h_fail "CANCEL fails a WORK waiting for a pool connection ($out)"
    fi
    if grep -q "^DONE tag=65 status=error .*sqlstate=57014" <<<"$out" &&
        grep -q "^DONE tag=66 status=ok" <<<"$out" &&
        [ "$(h_psql a "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'")" = 0 ]; then
        h_ok "CANCEL stops a statement running in PostgreSQL (57014, backend idle again)"
    else
        h_fail "CANCEL stops a statement running in PostgreSQL ($out)"
    fi
fi

# pool_wait_timeout (5 s by default): a WORK OPEN that finds the pool's one
# work connection held fails with 53300, naming pool_size.
if h_case pool-wait; then
    start=$SECONDS
    out=$(probe <<'EOF'
hello coord 1
work 70 open dtx:coord:1:70:part-a
sql SELECT 1
send
work 71 open dtx:coord:1:71:part-a
sql SELECT 'waits'
send
work 72 rollback dtx:coord:1:70:part-a
send
EOF
    )
    took=$((SECONDS - start))
    if grep -q "^DONE tag=71 status=error .*sqlstate=53300 .*pool_wait_timeout (5000 ms).*pool_size = 2" <<<"$out" &&
        grep -q 'hint="Retry the transaction' <<<"$out" && [ "$took" -ge 4 ] && [ "$took" -lt 9 ]; then
        h_ok "a WORK OPEN waiting longer than pool_wait_timeout fails with 53300 (${took}s)"
    else
        h_fail "pool_wait_timeout (${took}s): $out"
    fi
fi

# a malformed CANCEL is a protocol error on that connection only
if h_case malformed-cancel; then
    out=$(probe <<'EOF'
hello coord 1
raw K 00000001
expect-close
EOF
    )
    h_check "a malformed CANCEL: ERROR 08P01 and the connection is closed" \
        grep -q '^ERROR tag=0 sqlstate=08P01 message="malformed CANCEL message"' <<<"$out"
fi

# ---------------------------------------------------------------------------
# Prepared-transaction slots: max_prepared_transactions = 4 on cluster a

if h_case slots; then
    {
        echo "hello coord 1"
        for i in 1 2 3 4; do
            echo "work 5$i open,prepare dtx:coord:1:5$i:part-a"
            echo "sql UPDATE acct SET v = 'slot' WHERE id = $((i + 3))"
            echo "send"
        done
        echo "work 55 open,prepare dtx:coord:1:55:part-a"
        echo "sql SELECT 1"
        echo "send"
        echo "work 56 open,prepare dtx:coord:1:56:part-a"
        echo "sql UPDATE acct SET v = 'slot' WHERE id = 9"
        echo "send-nowait"
        echo "sleep 200"
        echo "finish 57 commit dtx:coord:1:51:part-a"
        echo "wait 56"
    } | probe >"$H_TMP/slots.out"
    out=$(cat "$H_TMP/slots.out")
    if [ "$(grep -c "status=prepared" <<<"$out")" = 5 ] &&
        grep -q '^DONE tag=55 status=error .*sqlstate=53400' <<<"$out" &&
        grep -q "^DONE tag=56 status=prepared" <<<"$out"; then
        h_ok "a PREPARE beyond max_prepared_transactions waits, then fails with 53400; a freed slot is reused"
    else
        h_fail "prepared-transaction slot limit ($out)"
    fi
    {
        echo "hello coord 1"
        for i in 52 53 54 56; do echo "finish $i rollback dtx:coord:1:$i:part-a"; done
    } | probe >/dev/null
    h_eq "all slot-test branches finished" 0 "$(h_psql a "SELECT count(*) FROM pg_prepared_xacts")"
fi

# ---------------------------------------------------------------------------
# PostgreSQL connections lost

if h_case pg-lost; then
    probe <<'EOF' >"$H_TMP/pglost.out" &
hello coord 1
work 60 open dtx:coord:1:60:part-a
sql SELECT 1
send
sleep 1500
work 61 none dtx:coord:1:60:part-a
sql SELECT 2
send
work 62 open,commit dtx:coord:1:62:part-a
sql SELECT 'after reconnect'
send
EOF
    probe_pid=$!
    h_wait_until 10 grep -q "^DONE tag=60" "$H_TMP/pglost.out"
    h_psql a "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'dtx-participant'" >/dev/null
    wait $probe_pid
    out=$(cat "$H_TMP/pglost.out")
    h_check "an open branch whose PostgreSQL connection broke fails with 08006" grep -q "^DONE tag=61 status=error .*sqlstate=08006" <<<"$out"
    h_check "the pool reconnects and serves new branches" grep -q "^DONE tag=62 status=ok" <<<"$out"
fi

# ---------------------------------------------------------------------------
# Failpoints

if h_case failpoints; then
    h_stop part1 10
    rc=$?
    h_eq "SIGTERM stops the participant with status 0" 0 "$rc"

    start_part part2 "participant-before-prepare=error@1;participant-after-prepare=kill@1" ||
        h_fail "restart with failpoints"
    B7=dtx:coord:1:70:part-a
    B8=dtx:coord:1:71:part-a
    out=$(probe <<EOF
hello coord 1
work 70 open,prepare $B7
sql UPDATE acct SET v = 'fp' WHERE id = 7
send
work 71 open,prepare $B8
sql UPDATE acct SET v = 'killed' WHERE id = 8
send
EOF
    )
    if grep -q '^DONE tag=70 status=error .*sqlstate=XX000 message="failpoint participant-before-prepare' <<<"$out" &&
        ! prepared "$B7"; then
        h_ok "failpoint participant-before-prepare: DONE_ERROR, nothing prepared"
    else
        h_fail "failpoint participant-before-prepare ($out)"
    fi
    sleep 0.3
    if ! h_alive part2 && prepared "$B8" && ! grep -q "DONE tag=71" <<<"$out"; then
        h_ok "failpoint participant-after-prepare=kill: the process dies, the branch stays prepared"
    else
        h_fail "failpoint participant-after-prepare=kill ($out)"
    fi
    h_kill part2

    start_part part3 "participant-before-commit-prepared-reply=kill@1" ||
        h_fail "restart with failpoints"
    xid8=$(h_psql a "SELECT transaction FROM pg_prepared_xacts WHERE gid = '$B8'")
    out=$(probe <<EOF
hello coord 1
list 72 dtx:coord:1:71
finish 73 commit $B8 0
EOF
    )
    entry=$(grep "^ENTRY gid=$B8 " <<<"$out")
    sleep 0.3
    if [ "$(field xid "$entry")" = "$xid8" ] && ! grep -q "DONE tag=73" <<<"$out" && ! h_alive part3 &&
        ! prepared "$B8"; then
        h_ok "failpoint participant-before-commit-prepared-reply=kill: committed, no reply"
    else
        h_fail "failpoint participant-before-commit-prepared-reply=kill ($out)"
    fi
    h_kill part3

    start_part part4 || h_fail "restart"
    out=$(probe <<EOF
hello coord 1
finish 74 commit $B8 $xid8
EOF
    )
    if grep -q "^DONE tag=74 status=not found xid=0 xact=committed" <<<"$out" &&
        [ "$(h_psql a "SELECT v FROM acct WHERE id = 8")" = killed ]; then
        h_ok "after the restart, FINISH reports NOT_FOUND + committed"
    else
        h_fail "after the restart, FINISH reports NOT_FOUND + committed ($out)"
    fi
fi

# SIGTERM while a coordinator holds an open branch: it is rolled back
if h_case sigterm; then
    probe <<'EOF' >"$H_TMP/term.out" &
hello coord 1
work 80 open dtx:coord:1:80:part-a
sql UPDATE acct SET v = 'term' WHERE id = 10
send
sleep 3000
work 81 none dtx:coord:1:80:part-a
sql SELECT 1
send
EOF
    probe_pid=$!
    h_wait_until 10 grep -q "^DONE tag=80" "$H_TMP/term.out"
    h_stop part4 10
    rc=$?
    wait $probe_pid
    if [ "$rc" = 0 ] && [ "$(h_psql a "SELECT v FROM acct WHERE id = 10")" = v10 ] &&
        h_psql a "SET lock_timeout = '3s'; UPDATE acct SET v = 'v10' WHERE id = 10" >/dev/null; then
        h_ok "SIGTERM rolls back open branches and exits 0"
    else
        h_fail "SIGTERM rolls back open branches and exits 0 (rc=$rc; $(cat "$H_TMP/term.out"))"
    fi
fi

h_end_case
if grep -lE "AddressSanitizer|LeakSanitizer|runtime error:|PANIC" "$H_TMP"/part*.log >/dev/null 2>&1; then
    h_fail "no sanitizer reports or PANICs in the participant logs"
    grep -hE -A20 "AddressSanitizer|LeakSanitizer|runtime error:|PANIC" "$H_TMP"/part*.log | head -60 >&2
else
    h_ok "no sanitizer reports or PANICs in the participant logs"
fi

h_done
