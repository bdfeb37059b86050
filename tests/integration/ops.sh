#!/usr/bin/env bash
# tests/integration/ops.sh — operations (docs/operations.md): /metrics
# scraped by a real Prometheus server during the bank workload and compared
# with its journal, promtool on every /metrics body, the health endpoints
# through coordinator restarts and participant and PostgreSQL outages,
# certificate rotation and allow-list changes by SIGHUP under load, a broken
# file on reload, sd_notify's messages, the systemd units and the alert
# rules.  Every daemon here logs in JSON, and every line of every daemon's
# log must parse as JSON at the end.
set -u
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/dtx.sh"
. "$(dirname "$0")/../lib/bank.sh"
h_cases metrics health reload notify systemd rules
h_init

GET="python3 $H_ROOT/tests/tools/httpget.py"
HTTP_COORD=127.0.0.1:$(h_free_port)
declare -A HTTP_PART=()
# http_code URL [--cacert F]: the status code, or "none" when nothing answered
http_code() { $GET "$@" 2>/dev/null || echo none; }
is_code() { [ "$(http_code "${@:2}")" = "$1" ]; }
# wait_code SECONDS CODE URL [--cacert F]
wait_code() { h_wait_until "$1" is_code "${@:2}"; }
# metric_is URL LINE [--cacert F]: /metrics at URL has LINE
metric_is() { $GET "$1" "${@:3}" --body 2>/dev/null | grep -qxF "$2"; }

# ---------------------------------------------------------------------------
# set-up: the bank's three clusters and participants (JSON logs, an HTTP
# endpoint each), a coordinator with its own (HTTPS)
for p in a b c; do
    port=$(h_free_port)
    HTTP_PART[$p]=127.0.0.1:$port
done
bank_setup 64 "log_format = json" || h_fail "bank set-up"
for p in a b c; do
    h_stop "part-$p" >/dev/null
    echo "http_listen = ${HTTP_PART[$p]}" >>"$H_TMP/part-$p.ini"
    h_part_start "$p" "p$p" >/dev/null
done
h_certs app2 >/dev/null
h_coord_config "log_format = json" "http_listen = $HTTP_COORD" "http_tls = on" \
    "allowed_clients = app, app2" "commit_timeout = 10s"
h_coord_start
for p in a b c; do h_wait_log coord "participant \\\\\"$p\\\\\".*is ready" 20; done
COORD_URL=https://$HTTP_COORD
CA="--cacert $H_CERTS/ca.crt"

# ---------------------------------------------------------------------------
# 1. Prometheus scrapes every daemon once a second during the workload; its
# API's committed and aborted counts equal the journal's; promtool accepts
# every /metrics body
if h_case metrics; then
    PROM_PORT=$(h_free_port)
    mkdir -p "$H_TMP/prom"
    cat >"$H_TMP/prom/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: dtx-coordinator
    scheme: https
    tls_config:
      ca_file: $H_CERTS/ca.crt
      server_name: coord
    static_configs:
      - targets: ['$HTTP_COORD']
  - job_name: dtx-participant
    static_configs:
      - targets: ['${HTTP_PART[a]}', '${HTTP_PART[b]}', '${HTTP_PART[c]}']
YML
    h_start prometheus prometheus --config.file="$H_TMP/prom/prometheus.yml" \
        --storage.tsdb.path="$H_TMP/prom/data" --web.listen-address="127.0.0.1:$PROM_PORT"
    PROM=http://127.0.0.1:$PROM_PORT
    h_check "metrics: Prometheus is up" wait_code 30 200 "$PROM/-/ready"
    bank_run --threads 4 --seconds 6 >"$H_TMP/bank.out" 2>&1
    h_eq "metrics: the workload ran" 0 $?
    committed=$(grep -c ' COMMITTED$' "$BANK_JOURNAL")
    aborted=$(grep -c ' ABORTED$' "$BANK_JOURNAL")
    h_log "journal: $committed committed, $aborted aborted"
    h_check "metrics: the workload committed transactions" test "$committed" -gt 50
    # what Prometheus has, once a scrape after the workload is in
    promq() {
        $GET "$PROM/api/v1/query?query=$1" --body 2>/dev/null | sed 1d |
            python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(int(float(r[0]["value"][1])) if r else -1)'
    }
    sum_outcome() { promq "sum(dtx_transactions_total%7Boutcome%3D%22$1%22%7D)"; }
    prom_has() { [ "$(sum_outcome committed)" = "$committed" ]; }
    h_wait_until 20 prom_has
    h_eq "metrics: Prometheus' committed count = the journal's" "$committed" "$(sum_outcome committed)"
    h_eq "metrics: Prometheus' aborted count = the journal's" "$aborted" "$(sum_outcome aborted)"
    h_eq "metrics: no unknown outcome" 0 "$(sum_outcome unknown)"
    h_eq "metrics: Prometheus scrapes all four daemons" 4 "$(promq 'count(up%3D%3D1)')"
    h_check "metrics: commit latency histogram counts every outcome" \
        test "$(promq 'sum(dtx_commit_duration_seconds_count)')" -ge "$committed"
    h_check "metrics: the participants timed statements" \
        test "$(promq 'sum(dtx_statement_duration_seconds_count)')" -gt "$committed"
    h_check "metrics: records per flush were counted" \
        test "$(promq 'sum(dtx_wal_records_per_flush_count)')" -gt 0
    # the workload's insufficient balances are class 23 errors at a participant
    if [ "$aborted" -gt 0 ]; then
        h_check "metrics: statement errors by SQLSTATE class" \
            test "$(promq 'sum(dtx_statement_errors_total%7Bclass%3D%2223%22%7D)')" -gt 0
    fi
    for url in "$COORD_URL/metrics $CA" "http://${HTTP_PART[a]}/metrics"; do
        # shellcheck disable=SC2086 # the URL and its options
        $GET $url --body | sed 1d >"$H_TMP/m.txt"
        h_check "metrics: promtool check metrics accepts ${url%% *}" \
            bash -c "promtool check metrics <'$H_TMP/m.txt' >'$H_TMP/promtool.out' 2>&1"
        grep -v '^$' "$H_TMP/promtool.out" | sed 's/^/# promtool: /' | head -5 >&2
    done
    $GET "$COORD_URL/metrics" $CA --body >"$H_TMP/m.txt"
    for m in dtx_participant_up dtx_participant_branches_in_doubt \
        dtx_participant_oldest_in_doubt_seconds dtx_participant_requests_in_flight \
        dtx_decision_durable_wait_seconds_bucket dtx_prepare_round_duration_seconds_bucket \
        dtx_wal_fsync_duration_seconds_bucket dtx_wal_size_bytes dtx_wal_checkpoint_age_seconds \
        dtx_resolver_actions_total dtx_transactions_open dtx_clients 'dtx_role{role="primary"} 1'; do
        h_check "metrics: the coordinator exports $m" grep -qF "$m" "$H_TMP/m.txt"
    done
    $GET "http://${HTTP_PART[b]}/metrics" --body >"$H_TMP/m.txt"
    for m in dtx_pool_size dtx_pool_in_use dtx_pool_waiting dtx_prepared_slots_used \
        'dtx_prepared_slots_max 64' 'dtx_postgres_up 1' 'dtx_fence_epoch{coordinator="c1"} 1'; do
        h_check "metrics: participant b exports $m" grep -qF "$m" "$H_TMP/m.txt"
    done
    h_stop prometheus >/dev/null
fi

# ---------------------------------------------------------------------------
# 2. health: /health and /ready through a participant's PostgreSQL outage,
# a participant outage (the coordinator's view) and a coordinator restart
if h_case health; then
    h_eq "health: coordinator /health" 200 "$(http_code "$COORD_URL/health" $CA)"
    h_eq "health: coordinator /ready" 200 "$(http_code "$COORD_URL/ready" $CA)"
    h_eq "health: coordinator /primary" 200 "$(http_code "$COORD_URL/primary" $CA)"
    h_eq "health: coordinator /standby is 503 on a primary" 503 "$(http_code "$COORD_URL/standby" $CA)"
    body=$($GET "$COORD_URL/ready" $CA --body | sed 1d)
    h_check "health: the body names the role and epoch ($body)" \
        python3 -c "import json,sys; d=json.loads(sys.argv[1]); assert d['role']=='primary' and d['epoch']>=1 and d['ready']" "$body"
    h_eq "health: an unknown path is 404" 404 "$(http_code "$COORD_URL/nothing" $CA)"
    h_eq "health: participant a /ready" 200 "$(http_code "http://${HTTP_PART[a]}/ready")"
    h_eq "health: participant /primary is 503" 503 "$(http_code "http://${HTTP_PART[a]}/primary")"
    # PostgreSQL of a stops: a's /ready goes 503 (naming why), /health stays 200
    h_pg_stop pa
    h_check "health: participant a /ready is 503 while its PostgreSQL is down" \
        wait_code 30 503 "http://${HTTP_PART[a]}/ready"
    body=$($GET "http://${HTTP_PART[a]}/ready" --body | sed 1d)
    h_check "health: ...saying why ($body)" grep -q "PostgreSQL is not reachable" <<<"$body"
    h_eq "health: participant a /health is 200 meanwhile" 200 "$(http_code "http://${HTTP_PART[a]}/health")"
    h_pg_ctl_start pa
    h_check "health: participant a /ready is 200 again" wait_code 30 200 "http://${HTTP_PART[a]}/ready"
    # participant c stops: the coordinator says its link is down
    h_stop part-c >/dev/null
    h_check "health: the coordinator reports participant c down" \
        h_wait_until 20 metric_is "$COORD_URL/metrics" 'dtx_participant_up{participant="c"} 0' $CA
    h_part_start c pc >/dev/null
    h_check "health: ...and up again" \
        h_wait_until 20 metric_is "$COORD_URL/metrics" 'dtx_participant_up{participant="c"} 1' $CA
    # the coordinator restarts: nothing answers while it is down, then ready
    h_stop coord >/dev/null
    h_eq "health: nothing answers while the coordinator is down" none "$(http_code "$COORD_URL/health" $CA)"
    h_coord_start
    h_check "health: coordinator /ready is 200 after the restart" wait_code 20 200 "$COORD_URL/ready" $CA
    body=$($GET "$COORD_URL/ready" $CA --body | sed 1d)
    h_check "health: ...at the next epoch ($body)" \
        python3 -c "import json,sys; assert json.loads(sys.argv[1])['epoch']>=2" "$body"
fi

# ---------------------------------------------------------------------------
# 3. reload: new certificates for the coordinator and a participant under
# load (no transaction fails; a new handshake sees them); app2 removed from
# allowed_clients (its connection closed, a new one refused); a broken file
# changes nothing; a key that needs a restart is named
if h_case reload; then
    fp() { # the SHA-256 fingerprint a new TLS handshake to host:port shows
        openssl s_client -connect "$1" -CAfile "$H_CERTS/ca.crt" -cert "$H_CERTS/app.crt" \
            -key "$H_CERTS/app.key" </dev/null 2>/dev/null |
            openssl x509 -noout -fingerprint -sha256 2>/dev/null
    }
    mkdir -p "$H_TMP/certs2"
    cp "$H_CERTS/ca.crt" "$H_CERTS/ca.key" "$H_TMP/certs2/"
    "$H_ROOT/tests/lib/gencerts.sh" "$H_TMP/certs2" coord part-a >/dev/null
    old_c=$(fp "127.0.0.1:$H_COORD_PORT")
    old_a=$(fp "127.0.0.1:${H_PART_PORT[a]}")
    h_check "reload: the old certificates are seen first" test -n "$old_c" -a -n "$old_a"
    : >"$BANK_JOURNAL"
    bank_run --threads 4 --seconds 8 >"$H_TMP/bank2.out" 2>&1 &
    bank=$!
    # app2 holds a transaction open across the reload
    DTXSSLCERT=$H_CERTS/app2.crt DTXSSLKEY=$H_CERTS/app2.key \
        "$H_BIN/tool-dtxprobe" steps a "select 1" sleep 6000 a "select 2" >"$H_TMP/app2.out" 2>&1 &
    app2=$!
    sleep 2
    sed -i -e "s|^tls_cert = .*|tls_cert = $H_TMP/certs2/coord.crt|" \
        -e "s|^tls_key = .*|tls_key = $H_TMP/certs2/coord.key|" \
        -e "s|^allowed_clients = .*|allowed_clients = app|" "$H_TMP/coord.ini"
    kill -HUP "$(h_pid coord)"
    h_check "reload: the coordinator reloads" h_wait_newlog coord "configuration reloaded" 10
    sed -i -e "s|^tls_cert = .*|tls_cert = $H_TMP/certs2/part-a.crt|" \
        -e "s|^tls_key = .*|tls_key = $H_TMP/certs2/part-a.key|" "$H_TMP/part-a.ini"
    kill -HUP "$(h_pid part-a)"
    h_check "reload: participant a reloads" h_wait_newlog part-a "configuration reloaded" 10
    new_c=$(fp "127.0.0.1:$H_COORD_PORT")
    new_a=$(fp "127.0.0.1:${H_PART_PORT[a]}")
    h_check "reload: a new handshake sees the coordinator's new certificate" \
        test -n "$new_c" -a "$new_c" != "$old_c"
    h_check "reload: a new handshake sees participant a's new certificate" \
        test -n "$new_a" -a "$new_a" != "$old_a"
    wait $bank
    h_eq "reload: the workload ran through the reloads" 0 $?
    wait $app2
    h_check "reload: app2's open connection was closed with 28000" \
        grep -q "28000.*no longer allowed" "$H_TMP/app2.out"
    h_check "reload: the coordinator logged why" h_wait_newlog coord "app2.*is no longer allowed" 5
    nb=$(grep -c '^B ' "$BANK_JOURNAL")
    nr=$(grep -c '^R ' "$BANK_JOURNAL")
    h_check "reload: transactions ran during the reloads ($nb)" test "$nb" -gt 20
    h_eq "reload: every transaction got its outcome" "$nb" "$nr"
    h_eq "reload: no outcome is unknown" 0 "$(grep -c ' UNKNOWN$' "$BANK_JOURNAL")"
    h_check "reload: no transaction failed for a connection" \
        bash -c "! grep -qiE 'connection|08006|08001' '$H_TMP/bank2.out'"
    out=$(DTXSSLCERT=$H_CERTS/app2.crt DTXSSLKEY=$H_CERTS/app2.key \
        "$H_BIN/tool-dtxprobe" steps a "select 1" 2>&1)
    h_check "reload: a new connection of app2 is refused ($out)" grep -q "28000" <<<"$out"
    h_check "reload: app still commits (through participant a's new certificate)" \
        bash -c "'$H_BIN/tool-dtxprobe' steps a 'select 1' b 'select 1' 2>&1 | grep -q COMMITTED"
    # a broken file: nothing changes, the reason is logged
    cp "$H_TMP/coord.ini" "$H_TMP/coord.ini.good"
    sed -i -e "s|^allowed_clients = .*|allowed_clients = app,,|" \
        -e "s|^commit_timeout = .*|commit_timeout = forever|" "$H_TMP/coord.ini"
    kill -HUP "$(h_pid coord)"
    h_check "reload: a broken file is refused with its reason" \
        h_wait_newlog coord "configuration not reloaded, nothing changed: .*commit_timeout" 10
    h_check "reload: ...and app still commits" \
        bash -c "'$H_BIN/tool-dtxprobe' steps a 'select 1' b 'select 1' 2>&1 | grep -q COMMITTED"
    # a key that needs a restart: named, and the old value kept
    cp "$H_TMP/coord.ini.good" "$H_TMP/coord.ini"
    sed -i "s|^listen_port = .*|listen_port = $(h_free_port)|" "$H_TMP/coord.ini"
    kill -HUP "$(h_pid coord)"
    h_check "reload: a key needing a restart is named" \
        h_wait_newlog coord 'parameter \\"listen_port\\" in \[coordinator\] changed: it takes effect at the next restart' 10
    h_check "reload: ...and the old port still serves" \
        bash -c "'$H_BIN/tool-dtxprobe' steps a 'select 1' 2>&1 | grep -q COMMITTED"
    cp "$H_TMP/coord.ini.good" "$H_TMP/coord.ini"
    # pool_size changes live, both ways
    sed -i "s|^pool_size = .*|pool_size = 3|" "$H_TMP/part-b.ini"
    kill -HUP "$(h_pid part-b)"
    h_check "reload: participant b's pool shrinks to 3" h_wait_newlog part-b "pool_size is 3 now" 10
    h_check "reload: ...and /metrics says so" metric_is "http://${HTTP_PART[b]}/metrics" "dtx_pool_size 3"
    sed -i "s|^pool_size = 3|pool_size = 10|" "$H_TMP/part-b.ini"
    kill -HUP "$(h_pid part-b)"
    h_check "reload: ...and grows to 10" \
        h_wait_until 10 metric_is "http://${HTTP_PART[b]}/metrics" "dtx_pool_connections_up 10"
    h_check "reload: transactions still commit on b" \
        bash -c "'$H_BIN/tool-dtxprobe' steps b 'select 1' c 'select 1' 2>&1 | grep -q COMMITTED"
fi

# ---------------------------------------------------------------------------
# 4. sd_notify: READY once serving, RELOADING and READY around a SIGHUP,
# STOPPING at SIGTERM — for both daemons
if h_case notify; then
    python3 "$H_ROOT/tests/tools/notifysock.py" "$H_TMP/notify.sock" "$H_TMP/notify.out" &
    nsock=$!
    h_wait_until 10 test -S "$H_TMP/notify.sock"
    h_stop coord >/dev/null
    NOTIFY_SOCKET=$H_TMP/notify.sock h_coord_start
    h_check "notify: the coordinator says READY with its role" \
        h_wait_until 10 grep -q '^READY=1|STATUS=primary, epoch' "$H_TMP/notify.out"
    kill -HUP "$(h_pid coord)"
    h_wait_newlog coord "configuration reloaded" 10
    h_stop coord >/dev/null
    sleep 0.5
    h_eq "notify: READY, RELOADING, READY, STOPPING in order" "READY RELOADING READY STOPPING" \
        "$(sed 's/=.*//' "$H_TMP/notify.out" | tr '\n' ' ' | sed 's/ $//')"
    : >"$H_TMP/notify.out"
    h_stop part-c >/dev/null
    NOTIFY_SOCKET=$H_TMP/notify.sock h_part_start c pc >/dev/null
    kill -HUP "$(h_pid part-c)"
    h_wait_newlog part-c "configuration reloaded" 10
    h_stop part-c >/dev/null
    sleep 0.5
    h_eq "notify: the participant says READY, RELOADING, READY, STOPPING" \
        "READY RELOADING READY STOPPING" "$(sed 's/=.*//' "$H_TMP/notify.out" | tr '\n' ' ' | sed 's/ $//')"
    kill "$nsock" 2>/dev/null
    wait "$nsock" 2>/dev/null
    h_part_start c pc >/dev/null
    h_coord_start
fi

# ---------------------------------------------------------------------------
# 5. the systemd units, as make install writes them, pass systemd-analyze
if h_case systemd; then
    for u in coordinator/dtx-coordinator participant/dtx-participant; do
        f=$H_TMP/$(basename "$u").service
        sed "s|@BINDIR@|$H_BIN|g" "$H_ROOT/$u.service.in" >"$f"
        out=$(systemd-analyze verify "$f" 2>&1)
        rc=$?
        [ -n "$out" ] && h_log "systemd-analyze: $out"
        h_check "systemd: $(basename "$f") verifies without a word" test $rc = 0 -a -z "$out"
        for k in Type=notify ExecReload= ProtectSystem=strict NoNewPrivileges=yes User=dtx TimeoutStopSec=; do
            h_check "systemd: $(basename "$f") sets $k" grep -q "^$k" "$f"
        done
    done
fi

# ---------------------------------------------------------------------------
# 6. the example alert rules
if h_case rules; then
    h_check "rules: promtool check rules accepts docs/prometheus/dtx-alerts.yml" \
        promtool check rules "$H_ROOT/docs/prometheus/dtx-alerts.yml"
fi

h_stop_clean a b c

# every line every daemon logged, in every case, is one JSON object
bad=0
for f in "$H_TMP"/coord.log "$H_TMP"/part-*.log; do
    n=$(python3 - "$f" <<'PY'
import json, sys
bad = 0
for line in open(sys.argv[1], encoding="utf-8", errors="strict"):
    try:
        o = json.loads(line)
        assert {"time", "level", "pid", "component", "message"} <= o.keys()
    except Exception:
        bad += 1
        if bad <= 3:
            print("not JSON: " + line.rstrip(), file=sys.stderr)
print(bad)
PY
)
    h_eq "json logs: every line of $(basename "$f") is a JSON object" 0 "$n"
    bad=$((bad + n))
done
h_check "json logs: lines were written" test "$(wc -l <"$H_TMP/coord.log")" -ge 5
h_check "json logs: a line about a participant names it in its own field" \
    grep -q '"participant":"a"' "$H_TMP/coord.log"
h_done
