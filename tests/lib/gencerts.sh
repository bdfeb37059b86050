#!/bin/sh
# gencerts.sh DIR NAME... — make a throw-away CA and certificates for tests.
#
# Creates DIR/ca.crt and DIR/ca.key (unless DIR/ca.key already exists, in
# which case that CA is reused), and for each NAME DIR/NAME.crt + DIR/NAME.key
# signed by the CA, with
#   subject          CN=NAME
#   subjectAltName   DNS:NAME, DNS:localhost, IP:127.0.0.1
#   extendedKeyUsage serverAuth, clientAuth  (one certificate serves both roles)
# Keys are EC P-256, certificates are valid for 2 days, all files are mode 0600
# (readable by the owner only).  Quiet on success; on failure prints
# openssl's output and exits non-zero.
#
# Example:  tests/lib/gencerts.sh /tmp/dtx-certs coordinator participant-a
set -eu

if [ $# -lt 1 ]; then
    echo "usage: $0 DIR [NAME...]" >&2
    exit 2
fi
dir=$1
shift

for name in "$@"; do
    case $name in
    "" | ca | *[!A-Za-z0-9._-]* | .*)
        echo "gencerts: invalid name \"$name\" (letters, digits, '.', '_', '-'; not \"ca\")" >&2
        exit 2
        ;;
    esac
done

umask 077
mkdir -p "$dir"
log="$dir/.gencerts.log"
cnf="$dir/.gencerts.cnf"
: >"$log"

cleanup() {
    rm -f "$cnf" "$log" "$dir"/.gencerts.*.csr
}
fail() {
    echo "gencerts: $1" >&2
    cat "$log" >&2
    cleanup
    exit 1
}
trap cleanup EXIT

# A self-contained OpenSSL configuration, so the system's openssl.cnf (and its
# default extensions) cannot change what we produce.
cat >"$cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[leaf_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:${ENV::GENCERTS_NAME}, DNS:localhost, IP:127.0.0.1
EOF

serial() {
    # 63 random bits, positive, as hex.
    printf '0x%s' "$(openssl rand -hex 8 | sed 's/^./7/')"
}

export GENCERTS_NAME=unused
if [ ! -f "$dir/ca.key" ]; then
    openssl req -x509 -new -config "$cnf" -extensions ca_ext \
        -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$dir/ca.key" -out "$dir/ca.crt" -days 2 -set_serial "$(serial)" \
        -subj "/CN=dtx test CA $(openssl rand -hex 4)" >>"$log" 2>&1 ||
        fail "could not create the CA in $dir"
fi

for name in "$@"; do
    csr="$dir/.gencerts.$name.csr"
    GENCERTS_NAME=$name
    export GENCERTS_NAME
    openssl req -new -config "$cnf" -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$dir/$name.key" -out "$csr" -subj "/CN=$name" >>"$log" 2>&1 ||
        fail "could not create a key for $name"
    openssl x509 -req -in "$csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
        -set_serial "$(serial)" -days 2 -extfile "$cnf" -extensions leaf_ext \
        -out "$dir/$name.crt" >>"$log" 2>&1 ||
        fail "could not sign the certificate of $name"
    rm -f "$csr"
done
chmod 600 "$dir"/*.crt "$dir"/*.key 2>/dev/null || true
exit 0
