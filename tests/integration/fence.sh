#!/usr/bin/env bash
# tests/integration/fence.sh — the participant's durable epoch fence
# (docs/participant.md, "Fencing"), against a real PostgreSQL over real TLS,
# driven by tool-partprobe (a scripted coordinator stand-in).
#
# Covers: the dtx_fence table created at start-up; a higher epoch recorded
# before its HELLO_OK (held by a lock on the table); a lower epoch refused,
# at HELLO and per request, naming both epochs; the older connection closed
# (its open branch rolled back) once a higher epoch is admitted; a WORK
# queued for the pool on the older connection never reaching PostgreSQL
# (statement log); one instance per epoch (also two HELLOs racing), a
# reconnect of the same instance; a HELLO without an instance (older
# coordinators); the fence read back from the table after a restart; a
# role that may not create the table (start-up refused, then the table made
# by hand as docs/participant.md shows); and PostgreSQL down: new epochs
# refused, start-up refused.
#
#   DTX_BUILD=test bash tests/integration/fence.sh
#
# Every case uses its own coordinator name, so each can run alone
# (CASE=name, docs/testing.md); pg-down stops PostgreSQL and runs last.
. "$(dirname "$0")/../lib/harness.sh"
h_cases +start table admit lower old-conn queued instance old-hello restart no-create pg-down
h_init

PART=$H_BIN/dtx-participant
PROBE=$H_BIN/tool-partprobe
if [ ! -x "$PART" ] || [ ! -x "$PROBE" ]; then
    h_fail "binaries missing: make BUILD=$H_BUILD build/$H_BUILD/bin/dtx-participant build/$H_BUILD/bin/tool-partprobe"
    h_done
fi

h_certs coord part-a || { h_fail "certificates"; h_done; }
h_pg_start a 8 || { h_fail "start PostgreSQL cluster a"; h_done; }
PGLOG=${H_PG_DIR[a]}/server.log
# every statement in the server log; the database's own default would make
# commits asynchronous: the participant must record the fence durably anyway
h_psql a "ALTER SYSTEM SET log_statement = 'all'" >/dev/null
h_psql a "SELECT pg_reload_conf()" >/dev/null
h_psql a "ALTER DATABASE postgres SET synchronous_commit = off" >/dev/null
h_psql a "CREATE TABLE acct (id int PRIMARY KEY, v text)" >/dev/null
h_psql a "INSERT INTO acct SELECT g, 'v' || g FROM generate_series(1, 10) g" >/dev/null
h_psql a "CREATE TABLE marker (v text)" >/dev/null

PORT=$(h_free_port)
CONF=$H_TMP/part.ini
cat >"$CONF" <<EOF
[participant]
name = part-a
listen_addr = 127.0.0.1
listen_port = $PORT
tls_cert = $H_CERTS/part-a.crt
tls_key = $H_CERTS/part-a.key
tls_ca = $H_CERTS/ca.crt
allowed_coordinators = coord
conninfo = $(h_pg_conninfo a)
pool_size = 2
pool_wait_timeout = 30s
log_level = debug
EOF

probe() {
    "$PROBE" --port "$PORT" --ca "$H_CERTS/ca.crt" --cert "$H_CERTS/coord.crt" \
        --key "$H_CERTS/coord.key" --timeout "${PROBE_TIMEOUT:-10}"
}

# A probe kept open, fed through a fifo: bg_probe NAME starts it (output in
# $H_TMP/NAME.log), to_probe NAME CMD sends one command, end_probe NAME
# closes its input.
declare -A PROBE_FD=()
bg_probe() {
    mkfifo "$H_TMP/$1.in"
    # shellcheck disable=SC2016 # $0 and $@ are the inner shell's
    h_start "$1" bash -c 'exec "$0" "$@" <"'"$H_TMP/$1.in"'"' "$PROBE" --port "$PORT" \
        --ca "$H_CERTS/ca.crt" --cert "$H_CERTS/coord.crt" --key "$H_CERTS/coord.key" --timeout 30
    local fd
    exec {fd}>"$H_TMP/$1.in"
    PROBE_FD[$1]=$fd
}
# (in a subshell: a probe that has exited makes the write fail with SIGPIPE)
to_probe() { (printf '%s\n' "$2" >&"${PROBE_FD[$1]}") 2>/dev/null; }
end_probe() {
    local fd=${PROBE_FD[$1]}
    exec {fd}>&-
    unset "PROBE_FD[$1]"
}

# start_part NAME — start the participant, wait for "ready"
start_part() {
    h_start "$1" "$PART" -c "$CONF"
    h_wait_log "$1" "ready: listening on 127.0.0.1:$PORT" 15
}

# fence_row NAME — "epoch|instance" of coordinator NAME in the fence table
fence_row() { h_psql a "SELECT epoch || '|' || instance FROM dtx_fence WHERE coordinator = '$1'"; }

if h_case start; then
    start_part part1 && h_ok "starts and logs ready" || h_fail "starts and logs ready"
fi

# ---------------------------------------------------------------------------

if h_case table; then
    h_check "start-up creates the fence table" grep -q "created the fence table dtx_fence" "$H_TMP/part1.log"
    cols=$(h_psql a "SELECT string_agg(column_name || ':' || data_type, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'dtx_fence'")
    h_eq "dtx_fence has the documented columns" \
        "coordinator:text,epoch:numeric,instance:numeric,since:timestamp with time zone" "$cols"
    desc=$(h_psql a "SELECT obj_description('dtx_fence'::regclass)")
    h_check "the table says what it is" grep -q "Do not edit, except to re-admit a coordinator" <<<"$desc"
fi

# A new epoch is committed in the table before its HELLO_OK: with the table
# locked, the HELLO waits; the row and the HELLO_OK come once the lock goes.
if h_case admit; then
    out=$(probe <<<"hello-instance c1 5 111")
    h_check "a first HELLO is admitted" grep -q "^HELLO_OK server=part-a epoch=5" <<<"$out"
    h_eq "its epoch and instance are in the table" "5|111" "$(fence_row c1)"

    h_psql a "BEGIN; LOCK TABLE dtx_fence IN EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT" >/dev/null &
    lock_pid=$!
    locked() {
        [ "$(h_psql a "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'dtx_fence' AND l.mode = 'ExclusiveLock' AND l.granted")" = 1 ]
    }
    h_wait_until 5 locked || h_fail "the fence table is locked"
    start=$(date +%s%N)
    probe <<<"hello-instance c1 6 112" >"$H_TMP/admit.out" &
    probe_pid=$!
    sleep 1.5
    early=$(cat "$H_TMP/admit.out")
    row_early=$(fence_row c1)
    wait $probe_pid
    took=$((($(date +%s%N) - start) / 1000000))
    wait $lock_pid
    out=$(cat "$H_TMP/admit.out")
    if ! grep -q HELLO_OK <<<"$early" && [ "$row_early" = "5|111" ] &&
        grep -q "^HELLO_OK server=part-a epoch=6" <<<"$out" && [ "$took" -ge 1200 ]; then
        h_ok "while the record cannot commit there is no HELLO_OK (${took} ms)"
    else
        h_fail "HELLO_OK waits for the record (took ${took} ms; early: $early; row then: $row_early; $out)"
    fi
    h_eq "the higher epoch is in the table" "6|112" "$(fence_row c1)"
    h_check "the record is committed with synchronous_commit on (database default: off)" \
        grep -q "set_config('synchronous_commit', 'on', true)" "$PGLOG"
fi

if h_case lower; then
    probe <<<"hello-instance c8 5 81" >/dev/null
    out=$(probe <<<"hello-instance c8 4 81")
    h_check "a lower epoch's HELLO is refused naming both epochs" \
        grep -q '^ERROR tag=0 sqlstate=08004 message="coordinator \\"c8\\" with epoch 4 is fenced: epoch 5 has taken over"' <<<"$out"
    out=$(probe <<'EOF'
hello-instance c8 5 81
work 1 open,commit dtx:c8:4:1:part-a 4
sql INSERT INTO marker VALUES ('fence-lower-request')
send
list 2 dtx:c8: 4
finish 3 rollback dtx:c8:4:1:part-a 0 4
cancel 4 dtx:c8:4:1:part-a 4
work 5 open,commit dtx:c8:5:5:part-a 6
sql INSERT INTO marker VALUES ('fence-lower-request')
send
EOF
    )
    if [ "$(grep -c 'status=error .*sqlstate=08004 message="coordinator \\"c8\\" with epoch 4 is fenced: epoch 5 has taken over"' <<<"$out")" = 4 ]; then
        h_ok "WORK, LIST, FINISH and CANCEL of a lower epoch are refused with 08004 naming both epochs"
    else
        h_fail "requests of a lower epoch are refused ($out)"
    fi
    h_check "a request of an epoch its connection was not admitted with is refused" \
        grep -q '^DONE tag=5 status=error .*sqlstate=08004 message="request of epoch 6 on a connection of coordinator \\"c8\\" admitted with epoch 5"' <<<"$out"
    h_check "no refused request ran" bash -c "! grep -q fence-lower-request '$PGLOG'"
fi

# The older connection is closed once a higher epoch is admitted: ERROR
# 08004 naming both epochs, its open branch rolled back.
if h_case old-conn; then
    bg_probe old2
    to_probe old2 "hello-instance c2 1 21"
    to_probe old2 "work 1 open dtx:c2:1:1:part-a"
    to_probe old2 "sql UPDATE acct SET v = 'held' WHERE id = 1"
    to_probe old2 "send"
    h_wait_log old2 "^DONE tag=1 status=ok" 10 || h_fail "the old epoch's branch opens"
    out=$(probe <<<"hello-instance c2 2 22")
    h_check "the higher epoch is admitted" grep -q "^HELLO_OK server=part-a epoch=2" <<<"$out"
    to_probe old2 "expect-close"
    h_wait_log old2 "^CLOSED|TLS-ERROR" 10
    if grep -q '^ERROR tag=0 sqlstate=08004 message="coordinator \\"c2\\" with epoch 1 is fenced: epoch 2 has taken over"' "$H_TMP/old2.log"; then
        h_ok "the older connection gets ERROR 08004 naming both epochs and is closed"
    else
        h_fail "the older connection is closed ($(cat "$H_TMP/old2.log"))"
    fi
    end_probe old2
    if h_psql a "SET lock_timeout = '5s'; UPDATE acct SET v = 'free' WHERE id = 1" >/dev/null &&
        [ "$(h_psql a "SELECT v FROM acct WHERE id = 1")" = free ]; then
        h_ok "its open branch was rolled back (row lock released, its update gone)"
    else
        h_fail "its open branch was rolled back"
    fi
    h_check "the participant logs the closing" grep -q 'closing the connection of coordinator "c2" .*epoch 1 is fenced' "$H_TMP/part1.log"
fi

# A WORK of the older epoch queued for the pool never reaches PostgreSQL:
# another coordinator holds the pool's one connection for new work, the old
# epoch queues a WORK, the new epoch is admitted (through the connection
# kept for phase two), then the pool is released.
if h_case queued; then
    bg_probe hold
    to_probe hold "hello-instance c9 1 91"
    to_probe hold "work 1 open dtx:c9:1:1:part-a"
    to_probe hold "sql SELECT 1"
    to_probe hold "send"
    h_wait_log hold "^DONE tag=1 status=ok" 10 || h_fail "a branch holds the pool"
    bg_probe old3
    to_probe old3 "hello-instance c3 1 31"
    to_probe old3 "work 2 open,commit dtx:c3:1:2:part-a"
    to_probe old3 "sql INSERT INTO marker VALUES ('fence-queued-marker')"
    to_probe old3 "send-nowait"
    to_probe old3 "sleep 500"
    to_probe old3 "expect-close"
    h_wait_log old3 "^HELLO_OK" 10
    sleep 0.3
    out=$(probe <<<"hello-instance c3 2 32")
    h_check "the higher epoch is admitted while the pool is held" grep -q "^HELLO_OK server=part-a epoch=2" <<<"$out"
    h_wait_log old3 "^CLOSED|TLS-ERROR" 10
    to_probe hold "work 3 rollback dtx:c9:1:1:part-a"
    to_probe hold "send"
    h_wait_log hold "^DONE tag=3 status=ok" 10 || h_fail "the pool is released"
    end_probe hold
    end_probe old3
    # anything still queued would have been dispatched by now
    out=$(probe <<'EOF'
hello-instance c9 1 91
work 4 open,commit dtx:c9:1:4:part-a
sql SELECT 'pool free'
send
EOF
    )
    h_check "the pool serves new work again" grep -q "^DONE tag=4 status=ok" <<<"$out"
    if grep -q '^ERROR tag=0 sqlstate=08004 .*epoch 1 is fenced: epoch 2 has taken over' "$H_TMP/old3.log" &&
        ! grep -q "^DONE tag=2" "$H_TMP/old3.log"; then
        h_ok "the queued WORK's connection is closed with 08004; the WORK is never answered"
    else
        h_fail "the queued WORK's connection is closed ($(cat "$H_TMP/old3.log"))"
    fi
    if ! grep -q fence-queued-marker "$PGLOG" && [ "$(h_psql a "SELECT count(*) FROM marker")" = 0 ]; then
        h_ok "the queued WORK of the lower epoch never ran (PostgreSQL's statement log)"
    else
        h_fail "the queued WORK of the lower epoch never ran ($(grep fence-queued-marker "$PGLOG"))"
    fi
fi

# One instance per epoch: the first to claim it keeps it; the same instance
# reconnects; of two HELLOs of one new epoch racing, exactly one is admitted.
if h_case instance; then
    out=$(probe <<<"hello-instance c4 9 900")
    h_check "epoch 9 of instance 900 is admitted" grep -q "^HELLO_OK server=part-a epoch=9" <<<"$out"
    out=$(probe <<<"hello-instance c4 9 901")
    h_check "the same epoch from another instance is refused" \
        grep -q '^ERROR tag=0 sqlstate=08004 message="epoch 9 of coordinator \\"c4\\" is claimed by another instance: instance 900 holds it, this is instance 901"' <<<"$out"
    out=$(probe <<<"hello-instance c4 9 900")
    h_check "the same instance reconnects" grep -q "^HELLO_OK server=part-a epoch=9" <<<"$out"
    h_eq "the table still names the first instance" "9|900" "$(fence_row c4)"

    pids=()
    for i in 1 2 3 4; do
        probe <<<"hello-instance c4 10 100$i" >"$H_TMP/race$i.out" &
        pids+=($!)
    done
    wait "${pids[@]}"
    ok=$(cat "$H_TMP"/race?.out | grep -c "^HELLO_OK server=part-a epoch=10")
    refused=$(cat "$H_TMP"/race?.out | grep -c 'sqlstate=08004 message="epoch 10 of coordinator \\"c4\\" is claimed by another instance')
    winner=$(grep -l HELLO_OK "$H_TMP"/race?.out | head -n 1 | sed -E 's/.*race([0-9])\.out/100\1/')
    if [ "$ok" = 1 ] && [ "$refused" = 3 ] && [ "$(fence_row c4)" = "10|$winner" ]; then
        h_ok "four instances racing for one epoch: exactly one is admitted, and it is in the table"
    else
        h_fail "instances racing for one epoch ($ok admitted, $refused refused, row $(fence_row c4), winner $winner)"
    fi
fi

# A HELLO without the instance field (coordinators before it) decodes as
# instance 0, which matches only instance 0.
if h_case old-hello; then
    # H: magic "DTX1", major 1, minor 2, role 2, str "c5", epoch 3 — and no
    # instance
    hello_hex=$(printf '%s' 44545831 0001 0002 02 00000002633500 0000000000000003)
    out=$(probe <<EOF
raw H $hello_hex
wait
EOF
    )
    h_check "a HELLO without an instance is admitted" grep -q "^HELLO_OK server=part-a epoch=3" <<<"$out"
    h_eq "it is recorded as instance 0" "3|0" "$(fence_row c5)"
    out=$(probe <<<"hello c5 3")
    h_check "it reconnects" grep -q "^HELLO_OK server=part-a epoch=3" <<<"$out"
    out=$(probe <<<"hello-instance c5 3 7")
    h_check "an instance that names itself does not match instance 0" \
        grep -q 'sqlstate=08004 message="epoch 3 of coordinator \\"c5\\" is claimed by another instance: instance 0 holds it, this is instance 7"' <<<"$out"
    out=$(probe <<EOF
raw H ${hello_hex}000000
wait
EOF
    )
    h_check "a HELLO cut inside the instance is malformed (08P01)" \
        grep -q '^ERROR tag=0 sqlstate=08P01 message="expected a HELLO message"' <<<"$out"
fi

# The fence survives a restart: it is read back from the table.
if h_case restart; then
    out=$(probe <<<"hello-instance c6 3 60")
    h_check "epoch 3 is admitted before the restart" grep -q "^HELLO_OK server=part-a epoch=3" <<<"$out"
    h_stop part1 10
    h_eq "SIGTERM stops the participant with status 0" 0 "$?"
    start_part part2 || h_fail "restart"
    h_check "the restarted participant loads the fence" \
        grep -q 'fence: coordinator "c6" at epoch 3 (instance 60)' "$H_TMP/part2.log"
    out=$(probe <<<"hello-instance c6 2 60")
    h_check "the restarted participant still refuses the old epoch" \
        grep -q '^ERROR tag=0 sqlstate=08004 message="coordinator \\"c6\\" with epoch 2 is fenced: epoch 3 has taken over"' <<<"$out"
    out=$(probe <<<"hello-instance c6 3 61")
    h_check "and another instance of its epoch" grep -q 'sqlstate=08004 message="epoch 3 of coordinator \\"c6\\" is claimed by another instance' <<<"$out"
    n=$(grep -c "INSERT INTO .*dtx_fence" "$PGLOG")
    out=$(probe <<<"hello-instance c6 3 60")
    h_check "the instance holding the epoch reconnects" grep -q "^HELLO_OK server=part-a epoch=3" <<<"$out"
    h_eq "a reconnect writes nothing" "$n" "$(grep -c "INSERT INTO .*dtx_fence" "$PGLOG")"
fi

# A role that may not create the table: the participant does not start and
# says what to do; with the table made by hand (docs/participant.md) it
# needs the grant too, then starts and records.
if h_case no-create; then
    h_psql a "CREATE ROLE fenceless LOGIN" >/dev/null
    h_psql a "CREATE DATABASE fdb" >/dev/null
    NPORT=$(h_free_port)
    sed -e "s/^listen_port = .*/listen_port = $NPORT/" \
        -e "s/^conninfo = .*/conninfo = host=127.0.0.1 port=$(h_pg_port a) user=fenceless dbname=fdb/" \
        "$CONF" >"$H_TMP/nocreate.ini"
    out=$(timeout 30 "$PART" -c "$H_TMP/nocreate.ini" 2>&1)
    rc=$?
    if [ $rc = 1 ] && grep -q "FATAL: .*could not load the coordinators' fence: could not create the fence table dtx_fence: permission denied for schema public; HINT: " <<<"$out"; then
        h_ok "a role that may not create the fence table: start-up refused, with a hint"
    else
        h_fail "a role that may not create the fence table (rc=$rc: $out)"
    fi
    sql=$(sed -n '/^CREATE TABLE dtx_fence (/,/^);/p' "$H_ROOT/docs/participant.md")
    h_psql a "$sql" fdb >/dev/null || h_fail "the documented CREATE TABLE runs"
    out=$(timeout 30 "$PART" -c "$H_TMP/nocreate.ini" 2>&1)
    rc=$?
    h_check "without the grant: refused, naming the GRANT" \
        grep -q 'may not read and write the fence table public.dtx_fence; HINT: GRANT SELECT, INSERT, UPDATE ON public.dtx_fence' <<<"$out"
    h_psql a "GRANT SELECT, INSERT, UPDATE ON dtx_fence TO fenceless" fdb >/dev/null
    h_start partnc "$PART" -c "$H_TMP/nocreate.ini"
    if h_wait_log partnc "ready: listening" 15; then
        out=$("$PROBE" --port "$NPORT" --ca "$H_CERTS/ca.crt" --cert "$H_CERTS/coord.crt" \
            --key "$H_CERTS/coord.key" --timeout 10 <<<"hello-instance c10 4 40")
        h_check "with the table made by hand and the grant: starts and admits" grep -q "^HELLO_OK server=part-a epoch=4" <<<"$out"
        h_eq "and records" "4|40" "$(h_psql a "SELECT epoch || '|' || instance FROM dtx_fence" fdb)"
    else
        h_fail "with the table made by hand and the grant: starts"
    fi
    h_stop partnc 10
fi

# PostgreSQL down: an epoch the fence already holds is admitted (it is
# durable), a new one cannot be recorded and is refused; a participant that
# cannot read its fence does not start.
if h_case pg-down; then
    cur=part1
    h_ran restart && cur=part2
    out=$(probe <<<"hello-instance c7 1 70")
    h_check "epoch 1 is admitted" grep -q "^HELLO_OK server=part-a epoch=1" <<<"$out"
    h_pg_stop a fast
    out=$(probe <<<"hello-instance c7 1 70")
    h_check "PostgreSQL down: the epoch the fence holds reconnects" grep -q "^HELLO_OK server=part-a epoch=1" <<<"$out"
    out=$(probe <<<"hello-instance c7 2 71")
    if grep -q '^ERROR tag=0 sqlstate=08006 message="could not record epoch 2 of coordinator \\"c7\\" in the fence table' <<<"$out" &&
        ! grep -q HELLO_OK <<<"$out"; then
        h_ok "PostgreSQL down: a new epoch is refused (08006), not admitted"
    else
        h_fail "PostgreSQL down: a new epoch is refused ($out)"
    fi
    h_stop $cur 10
    out=$(timeout 30 "$PART" -c "$CONF" 2>&1)
    rc=$?
    if [ $rc = 1 ] && grep -q "could not connect to PostgreSQL" <<<"$out" && ! grep -q "ready" <<<"$out"; then
        h_ok "PostgreSQL down: the participant does not start without its fence"
    else
        h_fail "PostgreSQL down: start-up refused (rc=$rc: $out)"
    fi
    h_pg_ctl_start a || h_fail "restart PostgreSQL"
    start_part part3 || h_fail "start after PostgreSQL is back"
    out=$(probe <<<"hello-instance c7 2 71")
    h_check "PostgreSQL back: the new epoch is admitted" grep -q "^HELLO_OK server=part-a epoch=2" <<<"$out"
    h_eq "and recorded" "2|71" "$(fence_row c7)"
fi

h_end_case
if grep -lE "AddressSanitizer|LeakSanitizer|runtime error:|PANIC" "$H_TMP"/part*.log >/dev/null 2>&1; then
    h_fail "no sanitizer reports or PANICs in the participant logs"
    grep -hE -A20 "AddressSanitizer|LeakSanitizer|runtime error:|PANIC" "$H_TMP"/part*.log | head -60 >&2
else
    h_ok "no sanitizer reports or PANICs in the participant logs"
fi

h_done
