#!/usr/bin/env bash
# tests/integration/admission.sh — connections that never authenticate, on
# both daemons (conn.c, "Admission"): a silent socket, and one that finished
# TLS but sends no HELLO, are closed after authentication_timeout (1 s here);
# with max_authenticating = 20 and hundreds of silent sockets and stalled
# TLS handshakes held open (reopened as fast as they are dropped), an
# authorised client still connects and commits, and a coordinator still
# gets its HELLO_OK from a participant; max_clients counts authenticated
# clients only, and a client over it is told 53300 "too many connections"
# (the dtx CLI prints it); refusals are logged as one summary line per
# interval, not a line per socket.  Each numbered section is a case
# (CASE=name runs it alone, docs/testing.md).
set -u
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/dtx.sh"
h_cases timeout-coordinator timeout-participant crowd max-clients summary
h_init

SILENT="$H_BIN/tool-silent"
declare -A SILENT_PID=()
PROBE="$H_BIN/tool-dtxprobe"
PPROBE="$H_BIN/tool-partprobe"
ADMIT=("authentication_timeout = 1s" "max_authenticating = 20")
h_pg_start pa
h_pg_start pb
for c in pa pb; do
    h_psql "$c" "create table t (id int primary key, v int not null);
                 insert into t select g, 0 from generate_series(1, 10) g"
done
h_dtx_certs
h_part_start a pa postgres "${ADMIT[@]}"
h_part_start b pb postgres "${ADMIT[@]}"
h_coord_config "${ADMIT[@]}" "max_clients = 2"
h_coord_start
for p in a b; do h_wait_log coord "participant \"$p\" .* is ready" 20; done
PPORT=${H_PART_PORT[a]}

val() { h_psql "$1" "select v from t where id = $2"; }
# closed_after PORT — open a TCP connection that says nothing; print how
# many ms pass until the server closes it ("open" after 5 s)
closed_after() {
    python3 - "$1" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
t = time.monotonic()
s.settimeout(5)
try:
    while s.recv(4096):
        pass
    print(int((time.monotonic() - t) * 1000))
except socket.timeout:
    print("open")
except OSError:
    print(int((time.monotonic() - t) * 1000))
PY
}
in_window() { [ "$1" != open ] && [ "$1" -ge 800 ] && [ "$1" -le 2500 ]; }
# tls_silent PORT CERT — complete TLS with certificate CERT, send nothing;
# print the ms until the server closes the connection, then what it sent
tls_silent() {
    python3 - "$1" "$H_CERTS" "$2" <<'PY'
import socket, ssl, sys, time
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.load_verify_locations(sys.argv[2] + "/ca.crt")
ctx.load_cert_chain(sys.argv[2] + "/" + sys.argv[3] + ".crt", sys.argv[2] + "/" + sys.argv[3] + ".key")
t = time.monotonic()
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))))
s.settimeout(5)
data = b""
try:
    while True:
        d = s.recv(4096)
        if not d:
            break
        data += d
except socket.timeout:
    print("open", data)
    sys.exit(0)
except (ssl.SSLError, OSError):
    pass
print(int((time.monotonic() - t) * 1000), data.replace(b"\0", b" ").decode("ascii", "replace"))
PY
}
# silent_start NAME PORT COUNT [tool-silent options] — tool-silent in the
# background; waits until its first connects have finished
silent_start() {
    local name=$1 port=$2 count=$3
    shift 3
    "$SILENT" --port "$port" --count "$count" "$@" >"$H_TMP/$name.out" 2>&1 &
    SILENT_PID[$name]=$!
    h_wait_until 20 grep -q '^ready' "$H_TMP/$name.out"
}
silent_stop() {
    kill -TERM "${SILENT_PID[$1]}" 2>/dev/null
    wait "${SILENT_PID[$1]}" 2>/dev/null
    h_log "$1: $(tail -n 1 "$H_TMP/$1.out")"
}
transfer() { # ID — move 1 from a to b on row ID; the dtx CLI's exit status
    h_dtx exec -P a "update t set v = v - 1 where id = $1" -P b "update t set v = v + 1 where id = $1" \
        >"$H_TMP/transfer.out" 2>&1
}

# ---------------------------------------------------------------------------
# 1. The coordinator closes a socket that never starts TLS after
# authentication_timeout, counted from the accept; one that completes TLS
# but sends no HELLO is told so (57014) before it is closed.
if h_case timeout-coordinator; then
    ms=$(closed_after "$H_COORD_PORT")
    h_check "coordinator: a silent socket is closed after authentication_timeout ($ms ms)" in_window "$ms"
    out=$(tls_silent "$H_COORD_PORT" app)
    h_log "TLS without HELLO: $out"
    h_check "coordinator: TLS without HELLO gets 57014 'canceling authentication due to timeout'" \
        grep -q '57014.*canceling authentication due to timeout' <<<"$out"
    h_check "coordinator: ... then is closed, after authentication_timeout" in_window "${out%% *}"
    h_check "coordinator: an authorised client is not affected" transfer 1
fi

# 2. The same on a participant (its former fixed 10 s limit is now
# authentication_timeout, counted from the accept, not from the last byte).
if h_case timeout-participant; then
    ms=$(closed_after "$PPORT")
    h_check "participant: a silent socket is closed after authentication_timeout ($ms ms)" in_window "$ms"
    out=$("$PPROBE" --host 127.0.0.1 --port "$PPORT" --ca "$H_CERTS/ca.crt" \
        --cert "$H_CERTS/coord.crt" --key "$H_CERTS/coord.key" --timeout 5 -e "sleep 2000" -e expect-close 2>&1)
    h_check "participant: TLS without HELLO gets 57014 'canceling authentication due to timeout'" \
        grep -qE '^ERROR tag=0 sqlstate=57014 message="canceling authentication due to timeout' <<<"$out"
    h_check "participant: ... then the connection is closed" \
        grep -qE '^(CLOSED|TLS-ERROR unexpected eof)' <<<"$out"
    out=$(tls_silent "$PPORT" coord)
    h_check "participant: ... after authentication_timeout (${out%% *} ms)" in_window "${out%% *}"
    h_check "participant: coordinator links are not affected" transfer 2
fi

# 3. Far more unauthenticated connections than max_authenticating (20):
# silent sockets, reopened as fast as they are dropped, and handshakes held
# half-way (after the ClientHello) or completed with a valid certificate
# but never followed by a HELLO.  An authorised client still connects and
# commits (max_clients is 2: none of them counts against it), and a
# coordinator still gets its HELLO_OK from a participant under the same.
if h_case crowd; then
    v3a=$(val pa 3) v3b=$(val pb 3)
    silent_start crowd_tcp "$H_COORD_PORT" 300 --reopen || h_fail "300 silent sockets opened"
    silent_start crowd_hello "$H_COORD_PORT" 50 --mode hello || h_fail "50 stalled handshakes opened"
    silent_start crowd_tls "$H_COORD_PORT" 50 --mode tls --cert "$H_CERTS/app.crt" --key "$H_CERTS/app.key" ||
        h_fail "50 TLS connections without HELLO opened"
    t0=$(date +%s%N)
    transfer 3
    rc=$?
    ms=$((($(date +%s%N) - t0) / 1000000))
    h_eq "crowd: with 400 unauthenticated connections, an authorised client commits ($ms ms)" 0 "$rc" ||
        h_log "dtx: $(cat "$H_TMP/transfer.out")"
    h_eq "crowd: ... both rows changed" "$((v3a - 1)) $((v3b + 1))" "$(val pa 3) $(val pb 3)"
    h_check "crowd: ... and again" transfer 4 || h_log "dtx: $(cat "$H_TMP/transfer.out")"
    h_check "crowd: the coordinator dropped the oldest silent ones to make room" \
        h_wait_log coord 'refused [0-9]+ connections in the last [0-9]+ s: .*[0-9]+ over max_authenticating' 15
    for n in crowd_tls crowd_hello crowd_tcp; do silent_stop $n; done
    silent_start crowd_ptcp "$PPORT" 300 --reopen || h_fail "300 silent sockets to the participant"
    out=$("$PPROBE" --host 127.0.0.1 --port "$PPORT" --ca "$H_CERTS/ca.crt" \
        --cert "$H_CERTS/coord.crt" --key "$H_CERTS/coord.key" --timeout 10 -e "hello c7 1" 2>&1)
    h_check "crowd: a participant behind 300 silent sockets still answers a coordinator's HELLO" \
        grep -q '^HELLO_OK server=a' <<<"$out"
    h_check "crowd: ... and still serves its coordinator" transfer 5
    silent_stop crowd_ptcp
fi

# 4. max_clients (2) counts authenticated clients: with two connected, a
# third is told 53300 "too many connections", which the dtx CLI prints;
# once one leaves, the next gets in.
if h_case max-clients; then
    established() { ss -Htn state established "( sport = :$H_COORD_PORT )" | wc -l; }
    base=$(established)
    holders=()
    for i in 1 2; do
        "$PROBE" steps a "select 1" sleep 4000 a "select 1" >"$H_TMP/holder$i.out" 2>&1 &
        holders+=($!)
    done
    h_wait_until 10 bash -c "[ \$(ss -Htn state established '( sport = :$H_COORD_PORT )' | wc -l) -ge $((base + 2)) ]"
    sleep 0.5
    out=$(h_dtx exec -P a "select 1" 2>&1)
    rc=$?
    h_eq "max_clients: a third client is refused (exit 2)" 2 "$rc" || h_log "dtx: $out"
    h_check "max_clients: ... told 'too many connections'" grep -q 'too many connections (max_clients = 2)' <<<"$out"
    h_check "max_clients: ... with SQLSTATE 53300" grep -q "(SQLSTATE 53300)" <<<"$out"
    h_check "max_clients: the coordinator logged the refusal" \
        h_wait_log coord 'too many connections \(max_clients = 2\): refused a connection from' 5
    wait "${holders[@]}"
    h_check "max_clients: the two connected clients committed meanwhile" \
        bash -c "grep -q '^COMMITTED' '$H_TMP/holder1.out' && grep -q '^COMMITTED' '$H_TMP/holder2.out'"
    h_check "max_clients: once they have gone, a client gets in again" transfer 6
fi

# 5. Refusals are summed up: one line per interval (10 s), not one per
# socket.  50 silent sockets, held without reopening: 30 dropped at the cap
# at once, 20 at the timeout.
if h_case summary; then
    for d in coord part-a; do
        port=$H_COORD_PORT
        [ $d = part-a ] && port=$PPORT
        from=$(stat -c %s "$H_TMP/$d.log")
        "$SILENT" --port "$port" --count 50 --seconds 4 >"$H_TMP/summary-$d.out" 2>&1
        h_log "$d: $(tail -n 1 "$H_TMP/summary-$d.out")"
        h_check "$d: a summary line of the refusals" \
            h__wait_log_from "$from" "$d" 'refused [0-9]+ connections in the last 1?[0-9] s: ' 25
        line=$(tail -c +$((from + 1)) "$H_TMP/$d.log" | grep -E 'refused [0-9]+ connections in the last' | tail -n 1)
        h_log "$d: $line"
        n=$(grep -oE 'refused [0-9]+' <<<"$line" | grep -oE '[0-9]+')
        h_check "$d: ... which counts all 50 sockets ($n)" test "${n:-0}" -ge 50
        h_check "$d: ... by kind" grep -qE '(authentication timeouts?|over max_authenticating)' <<<"$line"
        per=$(tail -c +$((from + 1)) "$H_TMP/$d.log" | grep -c 'closed connection from')
        h_check "$d: not a line per socket ($per lines of single sockets for 50)" test "$per" -le 2
    done
fi

h_end_case
h_stop_clean a b
h_done
