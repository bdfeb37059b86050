# shellcheck shell=bash
# tests/lib/etcd.sh — a real etcd (Debian's etcd-server) on loopback for the
# automatic-failover tests (on top of harness.sh; the harness stops it).
#
#   h_etcd_start [N]      an etcd cluster of N members (1 or 3), fresh;
#                         ETCD_ENDPOINTS="127.0.0.1:p1, ..." once it answers
#   h_etcd_member_start I start member I again (after h_etcd_kill), same data
#   h_etcd_kill I [SIG]   kill member I (default KILL)
#   h_etcd_healthy        true when some member answers /health
#   h_etcd_get KEY        the value of KEY ("" when absent), through the
#                         v3 JSON gateway
#   h_etcd_put KEY VALUE  and h_etcd_del KEY
#
# With H_ETCD_TLS=1 the members serve https with the certificate "etcd" and
# require a client certificate of $H_CERTS/ca.crt (the helpers use "ops").
declare -A H_ETCD_CPORT=() H_ETCD_PPORT=()

h_etcd_member_start() {
    local i=$1 scheme=http tls=()
    if [ "${H_ETCD_TLS:-0}" = 1 ]; then
        scheme=https
        tls=(--cert-file "$H_CERTS/etcd.crt" --key-file "$H_CERTS/etcd.key"
            --client-cert-auth --trusted-ca-file "$H_CERTS/ca.crt")
    fi
    h_start "etcd$i" etcd --name "e$i" --data-dir "$H_TMP/etcd$i" "${tls[@]}" \
        --listen-client-urls "$scheme://127.0.0.1:${H_ETCD_CPORT[$i]}" \
        --advertise-client-urls "$scheme://127.0.0.1:${H_ETCD_CPORT[$i]}" \
        --listen-peer-urls "http://127.0.0.1:${H_ETCD_PPORT[$i]}" \
        --initial-advertise-peer-urls "http://127.0.0.1:${H_ETCD_PPORT[$i]}" \
        --initial-cluster "$H_ETCD_CLUSTER" --initial-cluster-state new \
        --initial-cluster-token "dtx-test-$$" --log-level warn
}

h_etcd_start() {
    local n=${1:-1} i
    H_ETCD_N=$n
    [ "${H_ETCD_TLS:-0}" = 1 ] && h_certs etcd ops
    H_ETCD_CLUSTER=""
    ETCD_ENDPOINTS=""
    for i in $(seq 1 "$n"); do
        H_ETCD_CPORT[$i]=$(h_free_port)
        H_ETCD_PPORT[$i]=$(h_free_port)
        H_ETCD_CLUSTER+="${H_ETCD_CLUSTER:+,}e$i=http://127.0.0.1:${H_ETCD_PPORT[$i]}"
        ETCD_ENDPOINTS+="${ETCD_ENDPOINTS:+, }127.0.0.1:${H_ETCD_CPORT[$i]}"
    done
    for i in $(seq 1 "$n"); do
        h_etcd_member_start "$i"
    done
    h_wait_until 30 h_etcd_healthy || { h_log "etcd did not start"; return 1; }
}

h_etcd_kill() { h_kill "etcd$1" "${2:-KILL}"; }

# h__etcd OP KEY [VALUE] — get, put or del through any member that answers
h__etcd() {
    local ports="" i
    for i in "${!H_ETCD_CPORT[@]}"; do ports+="${H_ETCD_CPORT[$i]} "; done
    H_ETCD_TLS=${H_ETCD_TLS:-0} H_CERTS=$H_CERTS python3 - "$ports" "$@" <<'PY'
import base64, json, os, ssl, sys, urllib.request
ports, op, key = sys.argv[1].split(), sys.argv[2], sys.argv[3]
ctx, scheme = None, "http"
if os.environ["H_ETCD_TLS"] == "1":
    c = os.environ["H_CERTS"]
    ctx = ssl.create_default_context(cafile=c + "/ca.crt")
    ctx.load_cert_chain(c + "/ops.crt", c + "/ops.key")
    scheme = "https"
b = lambda s: base64.b64encode(s.encode()).decode()
if op == "get":
    path, body = "/v3/kv/range", {"key": b(key)}
elif op == "put":
    path, body = "/v3/kv/put", {"key": b(key), "value": b(sys.argv[4])}
elif op == "health":
    path, body = "/health", None
else:
    path, body = "/v3/kv/deleterange", {"key": b(key)}
for p in ports:
    try:
        data = json.dumps(body).encode() if body is not None else None
        r = json.load(urllib.request.urlopen(
            urllib.request.Request("%s://127.0.0.1:%s%s" % (scheme, p, path), data=data),
            timeout=2, context=ctx))
    except Exception:
        continue
    if op == "health":
        sys.exit(0 if r.get("health") == "true" else 1)
    for kv in r.get("kvs", []):
        print(base64.b64decode(kv.get("value", "")).decode())
    sys.exit(0)
sys.exit(1)
PY
}

h_etcd_healthy() { h__etcd health -; }
h_etcd_get() { h__etcd get "$1"; }
h_etcd_put() { h__etcd put "$1" "$2" >/dev/null; }
h_etcd_del() { h__etcd del "$1" >/dev/null; }
