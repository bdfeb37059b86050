# shellcheck shell=bash
# tests/lib/dtx.sh — start a whole dtx set-up on top of harness.sh:
#
#   h_dtx_certs                        CA + certs: coord, app, and part-<name>s
#   h_part_start NAME CLUSTER [DB]     a participant named NAME in front of
#                                      database DB (default postgres) of a
#                                      cluster started with h_pg_start
#   h_coord_start [extra ini lines]    the coordinator, with every participant
#                                      started so far in [participants]
#   h_dtx ARGS...                      the dtx CLI, connected to it
#
# Certificates: CN=coord (coordinator), CN=app (client), CN=part-NAME.
# Extra names can be made with h_certs.  Participants allow "coord".

H_PARTS=()
declare -A H_PART_PORT=()
declare -A H_PART_HOST=() # how the coordinator's config names a participant's host (127.0.0.1)
H_COORD_PORT=""

h_dtx_certs() {
    h_certs coord app "$@"
}

# h_part_config NAME CLUSTER DB PORT [extra lines] — write the ini file
h_part_config() {
    local name=$1 cluster=$2 db=$3 port=$4
    shift 4
    [ -f "$H_CERTS/part-$name.crt" ] || h_certs "part-$name"
    h_ini_merge "$H_TMP/part-$name.ini" "$@" <<INI
[participant]
name = $name
listen_addr = 127.0.0.1
listen_port = $port
tls_cert = $H_CERTS/part-$name.crt
tls_key = $H_CERTS/part-$name.key
tls_ca = $H_CERTS/ca.crt
allowed_coordinators = coord
conninfo = "$(h_pg_conninfo "$cluster" "$db")"
pool_size = 8
INI
}

# h_ini_merge FILE [extra lines] < defaults — write the defaults, leaving out
# any key an extra line sets, then the extra lines (so extras override).
h_ini_merge() {
    local file=$1 line key l skip
    shift
    : >"$file"
    while IFS= read -r line; do
        skip=0
        if [[ $line == *=* ]]; then
            key=${line%%=*}
            key=${key//[[:space:]]/}
            for l in "$@"; do
                l=${l%%=*}
                [ "${l//[[:space:]]/}" = "$key" ] && skip=1
            done
        fi
        [ $skip = 1 ] || echo "$line" >>"$file"
    done
    for l in "$@"; do echo "$l" >>"$file"; done
}

h_part_start() {
    local name=$1 cluster=$2 db=${3:-postgres}
    shift 3 2>/dev/null || shift $#
    local port=${H_PART_PORT[$name]:-}
    if [ -z "$port" ]; then
        port=$(h_free_port)
        H_PART_PORT[$name]=$port
        H_PARTS+=("$name")
        h_part_config "$name" "$cluster" "$db" "$port" "$@"
    fi
    h_start "part-$name" "$H_BIN/dtx-participant" -c "$H_TMP/part-$name.ini"
    h_wait_newlog "part-$name" "ready" 20
}

h_coord_config() {
    [ -n "$H_COORD_PORT" ] || H_COORD_PORT=$(h_free_port)
    h_ini_merge "$H_TMP/coord.ini" "$@" <<INI
[coordinator]
name = c1
listen_addr = 127.0.0.1
listen_port = $H_COORD_PORT
tls_cert = $H_CERTS/coord.crt
tls_key = $H_CERTS/coord.key
tls_ca = $H_CERTS/ca.crt
allowed_clients = app
data_dir = $H_TMP/coord-data
prepare_timeout = 10s
sweep_interval = 2s
INI
    echo "[participants]" >>"$H_TMP/coord.ini"
    local p
    for p in "${H_PARTS[@]}"; do
        echo "$p = ${H_PART_HOST[$p]:-127.0.0.1}:${H_PART_PORT[$p]}" >>"$H_TMP/coord.ini"
    done
}

h_coord_start() {
    [ -f "$H_TMP/coord.ini" ] || h_coord_config "$@"
    h_start coord "$H_BIN/dtx-coordinator" -c "$H_TMP/coord.ini"
    h_wait_newlog coord "ready" 20 || return 1
    # wait until every participant link is up (a first sweep has listed it)
    local i=0
    export DTXHOST=127.0.0.1 DTXPORT=$H_COORD_PORT DTXSSLROOTCERT=$H_CERTS/ca.crt \
        DTXSSLCERT=$H_CERTS/app.crt DTXSSLKEY=$H_CERTS/app.key
    return 0
}

# h_stop_clean PART... — the end of a suite: SIGTERM the coordinator, then
# each participant named; each must exit 0 (the sanitizer build fails the
# exit status on a leak)
h_stop_clean() {
    h_stop coord
    h_eq "coordinator exits 0 on SIGTERM (no leaks)" 0 $?
    local p
    for p in "$@"; do
        h_stop "part-$p"
        h_eq "participant $p exits 0 on SIGTERM (no leaks)" 0 $?
    done
}

h_dtx() {
    "$H_BIN/dtx" "$@"
}

# h_dtx_quiet ARGS... — the same, its output discarded (for h_check, whose
# own ok/not ok line must not be redirected with it)
h_dtx_quiet() {
    "$H_BIN/dtx" "$@" >/dev/null
}

# ---- a primary and its standby: two coordinators of one name (c1) -------
#
#   h_pair_config [ini lines]   X and Y, each with its own port (H_PAIR_PORT)
#                               and data_dir, and two files each:
#                               X.primary.ini (standby = Y) and X.standby.ini
#                               ([standby] primary = Y); likewise for Y.
#                               Admin "ops" (certificate made here), standby
#                               "coord".  Clients (DTX*) list both hosts.
#   h_pair_start NAME primary|standby [failpoints]
#   h_pair_dtx NAME ARGS...     the dtx CLI against NAME alone, as "ops"
#   h_pair_is NAME KEY          true when NAME's `dtx replication` says KEY: yes
#   h_pair_role_is NAME ROLE    true when it says role: ROLE (primary, standby)
declare -A H_PAIR_PORT=()

h_pair_config() {
    local n o own
    h_certs ops
    H_PAIR_PORT=([X]=$(h_free_port) [Y]=$(h_free_port))
    H_COORD_PORT=${H_PAIR_PORT[X]}
    h_coord_config "allowed_clients = app, ops, coord" "allowed_standbys = coord" \
        "admin_clients = ops" "fence_timeout = 5s" "$@"
    for n in X Y; do
        o=Y
        [ "$n" = Y ] && o=X
        own=(-e "s/^listen_port = .*/listen_port = ${H_PAIR_PORT[$n]}/"
            -e "s|^data_dir = .*|data_dir = $H_TMP/data-$n|")
        sed "${own[@]}" -e "s/^\\[participants\\]/standby = 127.0.0.1:${H_PAIR_PORT[$o]}\\n[participants]/" \
            "$H_TMP/coord.ini" >"$H_TMP/$n.primary.ini"
        sed "${own[@]}" "$H_TMP/coord.ini" >"$H_TMP/$n.standby.ini"
        printf '[standby]\nprimary = 127.0.0.1:%s\n' "${H_PAIR_PORT[$o]}" >>"$H_TMP/$n.standby.ini"
    done
    export DTXHOST=127.0.0.1,127.0.0.1 DTXPORT=${H_PAIR_PORT[X]},${H_PAIR_PORT[Y]} \
        DTXSSLROOTCERT=$H_CERTS/ca.crt DTXSSLCERT=$H_CERTS/app.crt DTXSSLKEY=$H_CERTS/app.key
}

# h_pair_ha_config [ini lines] — as h_pair_config, plus X.ha.ini and
# Y.ha.ini: the same two instances with [ha] (members X and Y, etcd at
# $ETCD_ENDPOINTS, HA_TTL default 5s); started with h_pair_start NAME ha.
h_pair_ha_config() {
    local n
    h_pair_config "$@"
    for n in X Y; do
        { cat "$H_TMP/$n.standby.ini"; printf '[ha]\netcd = %s\nmember = %s\nttl = %s\n' \
            "$ETCD_ENDPOINTS" "$n" "${HA_TTL:-5s}"; } | grep -v '^\[standby\]\|^primary = ' \
            >"$H_TMP/$n.ha.ini"
    done
}

h_pair_start() {
    DTX_FAILPOINTS=${3:-} h_start "$1" "$H_BIN/dtx-coordinator" -c "$H_TMP/$1.$2.ini"
}

h_pair_dtx() {
    local n=$1
    shift
    DTXHOST=127.0.0.1 DTXPORT=${H_PAIR_PORT[$n]} DTXSSLCERT=$H_CERTS/ops.crt \
        DTXSSLKEY=$H_CERTS/ops.key "$H_BIN/dtx" "$@"
}

# h_pair_role_is NAME ROLE — true when NAME's `dtx replication` says role: ROLE
h_pair_role_is() {
    h_pair_dtx "$1" replication 2>/dev/null | grep -qx "role: $2"
}

h_pair_is() {
    h_pair_dtx "$1" replication 2>/dev/null | grep -q "^$2: yes"
}
