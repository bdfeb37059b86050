#!/usr/bin/env bash
# make example — two services, two databases, one atomic order.
#
# Starts two PostgreSQL clusters ("orders" and "inventory", each the
# database of one service), a dtx-participant in front of each, a
# dtx-coordinator with generated certificates, and the two Python services
# (inventory_service.py, orders_service.py).  Then, as a shop's front end:
# an order for 3 pens, placed in both databases at once; an order for 50,
# which the inventory database refuses, and which leaves the orders
# database untouched too.  Exit 0 only if everything behaved.
#
# The lines starting "check:" are what tests/integration/python.sh reads.
# DTX_BUILD (default release) picks the build; PYTHON the interpreter.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
export DTX_BUILD=${DTX_BUILD:-release}
. "$HERE/../../../../tests/lib/harness.sh"
. "$HERE/../../../../tests/lib/dtx.sh"
PY=${PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() {
    printf '\nEXAMPLE FAILED: %s\n' "$*"
    for s in inventory orders; do [ -f "$H_TMP/$s.log" ] && tail -n 5 "$H_TMP/$s.log" | sed "s/^/  $s: /"; done
    exit 1
}
orders() { h_psql orders "$1"; }
inventory() { h_psql inventory "$1"; }
# state: "N order(s), stock M" — what the two databases hold
state() {
    local n
    n=$(orders "select count(*) from orders")
    echo "$n order$([ "$n" = 1 ] || echo s), stock $(inventory "select available from stock where sku = 'pen'")"
}

h_init
step "Two PostgreSQL clusters: one database per service"
h_pg_start orders || die "could not start PostgreSQL for orders"
h_pg_start inventory || die "could not start PostgreSQL for inventory"
orders "create table orders (id uuid primary key, customer text not null, sku text not null,
                             qty int not null check (qty > 0), placed_at timestamptz not null default now())" ||
    die "could not create the orders table"
inventory "create table stock (sku text primary key, available int not null check (available >= 0));
           create table reservations (order_id uuid primary key, sku text not null references stock,
                                      qty int not null);
           insert into stock values ('pen', 10), ('ink', 3)" || die "could not create the inventory tables"
echo "orders on 127.0.0.1:$(h_pg_port orders), inventory on 127.0.0.1:$(h_pg_port inventory)"

step "Certificates, a participant per database, the coordinator"
h_dtx_certs || die "could not generate certificates"
h_part_start orders orders || die "participant orders did not start"
h_part_start inventory inventory || die "participant inventory did not start"
h_coord_start || die "coordinator did not start"
for p in orders inventory; do h_wait_log coord "participant \"$p\" .* is ready" 20 || die "coordinator did not reach $p"; done
echo "coordinator on 127.0.0.1:$H_COORD_PORT (the services find it through DTXHOST, DTXPORT, DTXSSL*)"

step "The two services (Python, the dtx package)"
export PYTHONPATH="$HERE/../..:$HERE" PYTHONDONTWRITEBYTECODE=1
export LIBDTX_PATH=${LIBDTX_PATH:-$H_ROOT/build/$DTX_BUILD/lib/libdtx.so.1}
svc_env=()
if ldd "$LIBDTX_PATH" 2>/dev/null | grep -q libasan; then
    # a sanitizer build of libdtx needs its runtime loaded first (in the
    # services only: other programs, psql among them, are not built for it)
    svc_env=(LD_PRELOAD="$(gcc -print-file-name=libasan.so)" ASAN_OPTIONS=detect_leaks=0)
fi
inv_port=$(h_free_port)
ord_port=$(h_free_port)
h_start inventory env "${svc_env[@]}" "$PY" "$HERE/inventory_service.py" "$inv_port"
h_start orders env "${svc_env[@]}" "$PY" "$HERE/orders_service.py" "$ord_port" "http://127.0.0.1:$inv_port"
h_wait_log inventory "listening" 20 || die "the inventory service did not start"
h_wait_log orders "listening" 20 || die "the orders service did not start"
echo "inventory service on 127.0.0.1:$inv_port, orders service on 127.0.0.1:$ord_port"
shop() { "$PY" "$HERE/client.py" "$@"; }

step "Before"
echo "  $(state)"
shop "http://127.0.0.1:$inv_port" stock pen | sed 's/^/  GET \/stock\/pen -> /'

step "Alice orders 3 pens: the order and the reservation commit together"
out=$(shop "http://127.0.0.1:$ord_port" order alice pen 3)
echo "  POST /orders -> $out"
[[ $out == 201* ]] || die "the order was not placed"
gid=$(grep -oE 'dtx:[^"]+' <<<"$out")
"$H_BIN/dtx" status "$gid" | sed 's/^/  dtx status: /'
echo "  $(state)"
echo "check: order placed: $(state)"
[ "$(state)" = "1 order, stock 7" ] || die "expected 1 order and 7 pens in stock"
[ "$(inventory "select qty from reservations")" = 3 ] || die "the reservation is missing"

step "Bob orders 50 pens: the inventory database refuses, so neither database changes"
out=$(shop "http://127.0.0.1:$ord_port" order bob pen 50)
echo "  POST /orders -> $out"
echo "check: order refused: $out"
[[ $out == 409* ]] || die "the order should have been refused with 409"
echo "  $(state)"
echo "check: after the refused order: $(state)"
[ "$(state)" = "1 order, stock 7" ] || die "the refused order changed a database"
[ "$(orders "select count(*) from orders where customer = 'bob'")" = 0 ] || die "bob's order was written"
prepared=$(( $(orders "select count(*) from pg_prepared_xacts") + $(inventory "select count(*) from pg_prepared_xacts") ))
echo "  prepared transactions left in either database: $prepared"
[ "$prepared" -eq 0 ] || die "prepared transactions were left behind"

step "Stopping everything"
h_kill orders TERM
h_kill inventory TERM
h_stop coord || die "coordinator did not stop cleanly"
h_stop part-orders || die "participant orders did not stop cleanly"
h_stop part-inventory || die "participant inventory did not stop cleanly"
printf '\nEXAMPLE OK: the order committed in both databases; the one beyond stock changed neither.\n'
exit 0
