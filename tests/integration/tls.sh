#!/usr/bin/env bash
# tls.sh — certificates and protocol versions the daemons refuse, each with
# a readable message on both sides (the dtx CLI or the coordinator as the
# client; the daemon's log, whose first TLS refusal of each interval names
# the reason).  Certificates come from an openssl ca database over the
# tests' CA (tests/lib/gencerts.sh), with the dates, usages and revocations
# each case needs.
#
#   expired        a client certificate past its notAfter; a coordinator
#                  whose own certificate has expired
#   not-yet-valid  a client certificate before its notBefore
#   revoked        tls_crl: a revoked client certificate refused by the
#                  coordinator (the others still served); a revoked
#                  coordinator certificate refused by a participant with
#                  tls_crl; a CRL file that does not load stops the start
#   key-usage      a client certificate for servers only (extendedKeyUsage
#                  serverAuth); a coordinator certificate for clients only
#   tls11          a client that offers TLS 1.1 at most, to the coordinator
#                  and to a participant
#   names          the participant matches coordinator names as the
#                  coordinator matches clients: the CN or any DNS
#                  subjectAltName, lists parsed alike (an empty item is
#                  refused by both with the same message)
set -u
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/dtx.sh"
h_cases expired not-yet-valid revoked key-usage tls11 names
h_init

h_pg_start pa
h_dtx_certs
h_part_start a pa
h_coord_config
h_coord_start || exit 1

# ---- an openssl ca over the tests' CA ------------------------------------
CA=$H_TMP/ca
mkdir -p "$CA"
: >"$CA/index.txt"
echo 1000 >"$CA/serial"
echo 1000 >"$CA/crlnumber"
cat >"$CA/ca.cnf" <<CNF
[ca]
default_ca = c
[c]
database = $CA/index.txt
serial = $CA/serial
crlnumber = $CA/crlnumber
new_certs_dir = $CA
certificate = $H_CERTS/ca.crt
private_key = $H_CERTS/ca.key
default_md = sha256
default_crl_days = 2
copy_extensions = copy
unique_subject = no
policy = p
[p]
commonName = supplied
CNF
# issue FILE CN START END [EKU [SAN]] — $CA/FILE.crt and .key
issue() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$CA/$1.key" \
        -subj "/CN=$2" -addext "subjectAltName=DNS:${6:-$2},DNS:localhost,IP:127.0.0.1" \
        -addext "extendedKeyUsage=${5:-serverAuth,clientAuth}" -out "$CA/$1.csr" 2>/dev/null &&
        openssl ca -batch -config "$CA/ca.cnf" -startdate "$3" -enddate "$4" -notext \
            -in "$CA/$1.csr" -out "$CA/$1.crt" >/dev/null 2>&1 && chmod 600 "$CA/$1.key"
}
NOW=$(date -u -d '-1 hour' +%Y%m%d%H%M%SZ)
LATER=$(date -u -d '+1 day' +%Y%m%d%H%M%SZ)

# as_client FILE ARGS... — the dtx CLI with certificate FILE; its output
as_client() {
    local f=$1
    shift
    DTXSSLCERT=$CA/$f.crt DTXSSLKEY=$CA/$f.key DTXCONNECT_TIMEOUT=5 "$H_BIN/dtx" "$@" 2>&1
}
# fresh_coord [ini lines] — the coordinator started again (so that its first
# TLS refusal is logged with its reason), with the ini lines merged in
fresh_coord() {
    h_kill coord
    rm -f "$H_TMP/coord.ini"
    h_coord_config "$@"
    h_coord_start
}
# other_coord CERTFILE — a second coordinator, name c2, presenting CERTFILE
other_coord() {
    h_kill coord2
    C2PORT=$(h_free_port)
    sed -e "s/^listen_port = .*/listen_port = $C2PORT/" -e "s/^name = .*/name = c2/" \
        -e "s|^data_dir = .*|data_dir = $H_TMP/c2-data|" \
        -e "s|^tls_cert = .*|tls_cert = $CA/$1.crt|" -e "s|^tls_key = .*|tls_key = $CA/$1.key|" \
        "$H_TMP/coord.ini" >"$H_TMP/coord2.ini"
    h_start coord2 "$H_BIN/dtx-coordinator" -c "$H_TMP/coord2.ini"
    h_wait_newlog coord2 "ready" 20
}

if h_case expired; then
    issue app-exp app 20200101000000Z 20200102000000Z
    fresh_coord
    out=$(as_client app-exp status dtx:c1:1:1)
    h_check "expired: the client hears why ($(head -n 1 <<<"$out"))" grep -qi "certificate expired" <<<"$out"
    h_check "expired: the coordinator logs why" \
        h_wait_newlog coord "TLS handshake failed: .*certificate has expired" 5
    issue coord-exp coord 20200101000000Z 20200102000000Z
    other_coord coord-exp
    out=$(DTXPORT=$C2PORT "$H_BIN/dtx" status dtx:c2:1:1 2>&1)
    h_check "expired: a client refuses a coordinator whose certificate has expired ($(head -n 1 <<<"$out"))" \
        grep -qi "certificate has expired" <<<"$out"
    h_check "expired: ... and that coordinator logs the client's alert" \
        h_wait_newlog coord2 "TLS handshake failed: .*certificate expired" 5
    h_kill coord2
fi

if h_case not-yet-valid; then
    issue app-future app 20990101000000Z 20990102000000Z
    fresh_coord
    out=$(as_client app-future status dtx:c1:1:1)
    h_check "not-yet-valid: the client hears why ($(head -n 1 <<<"$out"))" \
        grep -qiE "certificate (is )?not yet valid|bad certificate" <<<"$out"
    h_check "not-yet-valid: the coordinator logs why" \
        h_wait_newlog coord "TLS handshake failed: .*certificate is not yet valid" 5
fi

if h_case revoked; then
    issue app-rev app "$NOW" "$LATER"
    issue coord-rev coord "$NOW" "$LATER"
    openssl ca -config "$CA/ca.cnf" -revoke "$CA/app-rev.crt" >/dev/null 2>&1
    openssl ca -config "$CA/ca.cnf" -revoke "$CA/coord-rev.crt" >/dev/null 2>&1
    openssl ca -config "$CA/ca.cnf" -gencrl -out "$CA/crl.pem" >/dev/null 2>&1
    fresh_coord "tls_crl = $CA/crl.pem"
    out=$(as_client app-rev status dtx:c1:1:1)
    h_check "revoked: a revoked client certificate is refused ($(head -n 1 <<<"$out"))" \
        grep -qi "certificate revoked" <<<"$out"
    h_check "revoked: the coordinator logs why" \
        h_wait_newlog coord "TLS handshake failed: .*certificate revoked" 5
    out=$("$H_BIN/dtx" status dtx:c1:1:1 2>&1)
    h_check "revoked: a certificate the CRL does not list is served ($out)" grep -q "ABORTED" <<<"$out"
    # a participant with the CRL refuses a coordinator with a revoked certificate
    h_kill part-a
    sed -i "/^tls_ca = /a tls_crl = $CA/crl.pem" "$H_TMP/part-a.ini"
    h_part_start a pa >/dev/null
    other_coord coord-rev
    h_check "revoked: a coordinator with a revoked certificate logs the participant's refusal" \
        h_wait_newlog coord2 "participant \"a\".*(certificate revoked|alert)" 15
    h_check "revoked: the participant logs why" \
        h_wait_newlog part-a "TLS handshake failed: .*certificate revoked" 15
    h_kill coord2
    h_check "revoked: the coordinator with a good certificate still reaches it" \
        h_wait_until 20 bash -c "DTXCONNECT_TIMEOUT=5 '$H_BIN/dtx' exec -P a 'select 1' 2>&1 | grep -q COMMITTED"
    echo "not a CRL" >"$CA/bad-crl.pem"
    sed "s|^tls_crl = .*|tls_crl = $CA/bad-crl.pem|" "$H_TMP/coord.ini" >"$H_TMP/bad.ini"
    out=$("$H_BIN/dtx-coordinator" -c "$H_TMP/bad.ini" -t 2>&1)
    h_check "revoked: a tls_crl that does not load stops the start ($out)" \
        grep -q "could not load the certificate revocation list" <<<"$out"
    fresh_coord
fi

if h_case key-usage; then
    issue app-srv app "$NOW" "$LATER" serverAuth
    fresh_coord
    out=$(as_client app-srv status dtx:c1:1:1)
    h_check "key-usage: a client certificate for servers only is refused ($(head -n 1 <<<"$out"))" \
        grep -qiE "unsupported certificate|bad certificate" <<<"$out"
    h_check "key-usage: the coordinator logs why" \
        h_wait_newlog coord "TLS handshake failed: .*(unsupported|unsuitable) certificate purpose" 5
    issue coord-cli coord "$NOW" "$LATER" clientAuth
    other_coord coord-cli
    out=$(DTXPORT=$C2PORT "$H_BIN/dtx" status dtx:c2:1:1 2>&1)
    h_check "key-usage: a client refuses a coordinator certificate for clients only ($(head -n 1 <<<"$out"))" \
        grep -qiE "(unsupported|unsuitable) certificate purpose" <<<"$out"
    h_check "key-usage: ... and that coordinator logs the client's alert" \
        h_wait_newlog coord2 "TLS handshake failed: " 5
    h_kill coord2
fi

if h_case tls11; then
    fresh_coord
    h_kill part-a # (started again: its first TLS refusal is logged with its reason)
    h_part_start a pa >/dev/null
    for target in "coordinator:$H_COORD_PORT:coord" "participant:${H_PART_PORT[a]}:part-a"; do
        IFS=: read -r what port logname <<<"$target"
        H_LOG_FROM[$logname]=$(stat -c %s "$H_TMP/$logname.log")
        out=$(openssl s_client -connect "127.0.0.1:$port" -tls1_1 -cipher 'DEFAULT@SECLEVEL=0' \
            -CAfile "$H_CERTS/ca.crt" -cert "$H_CERTS/app.crt" -key "$H_CERTS/app.key" \
            </dev/null 2>&1)
        h_check "tls11: the $what refuses TLS 1.1 ($(grep -m1 -oE 'alert [a-z ]+|unsupported protocol|wrong version number' <<<"$out" | head -n 1))" \
            grep -qiE "alert protocol version|unsupported protocol|wrong version number" <<<"$out"
        h_check "tls11: the $what logs why" \
            h_wait_newlog "$logname" "TLS handshake failed: .*(unsupported protocol|wrong version)" 5
    done
fi

if h_case names; then
    # a coordinator certificate whose CN is not listed, but a DNS name is
    issue coord-san other-cn "$NOW" "$LATER" serverAuth,clientAuth coord-alt
    h_kill part-a
    sed -i "s/^allowed_coordinators = .*/allowed_coordinators = coord coord-alt/" "$H_TMP/part-a.ini"
    h_part_start a pa >/dev/null
    other_coord coord-san
    h_check "names: a participant takes a coordinator by a DNS subjectAltName on its list" \
        h_wait_newlog part-a "coordinator \"c2\" .*connected" 15
    h_kill coord2
    sed "s/^allowed_coordinators = .*/allowed_coordinators = coord,,x/" "$H_TMP/part-a.ini" >"$H_TMP/bad-part.ini"
    pout=$("$H_BIN/dtx-participant" -c "$H_TMP/bad-part.ini" -t 2>&1)
    sed "s/^allowed_clients = .*/allowed_clients = app,,x/" "$H_TMP/coord.ini" >"$H_TMP/bad.ini"
    cout=$("$H_BIN/dtx-coordinator" -c "$H_TMP/bad.ini" -t 2>&1)
    h_check "names: the participant refuses a list with an empty item ($pout)" \
        grep -q "allowed_coordinators.*empty certificate name in the list" <<<"$pout"
    h_check "names: ... and so does the coordinator, in the same words ($cout)" \
        grep -q "allowed_clients: empty certificate name in the list" <<<"$cout"
fi

h_done
