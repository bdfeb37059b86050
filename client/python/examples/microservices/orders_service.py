"""orders_service — the orders service of the example: it owns the
`orders` database (participant "orders") and places orders.

    python3 orders_service.py PORT INVENTORY_URL

    POST /orders        {"customer", "sku", "qty"} ->
                        201 {"order_id", "gid"}          placed
                        409 {"error"}                    not enough stock
                        404 {"error"}                    unknown item
                        503 {"error", "gid"}             outcome unknown
    GET  /orders/ID     the order

Placing an order is one dtx transaction over two databases: the
inventory service's statements that reserve the stock (asked of it over
HTTP) and this service's INSERT of the order, sent together in one
request (conn.oneshot).  Both commit or neither does: an order for more
than is in stock fails on the inventory database's CHECK constraint, and
the order row is not written either.

An unknown outcome (the connection to the coordinator broke after the
commit was sent) is not a failure to retry: the order may exist.  The
service answers 503 with the gid, and `dtx status GID` (or
conn.status(gid)) tells later what became of it.
"""

from __future__ import annotations

import json
import re
import sys
import urllib.error
import urllib.request
import uuid
from typing import Any

from http_json import dtx_conn, serve
from inventory_service import is_out_of_stock

import dtx

PARTICIPANT = "orders"
INVENTORY_URL = ""


def ask_inventory(path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(INVENTORY_URL + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def place(body: dict[str, Any], m: re.Match[str]) -> tuple[int, dict[str, Any]]:
    customer, sku, qty = body.get("customer"), body.get("sku"), body.get("qty")
    if not isinstance(customer, str) or not isinstance(sku, str) or not isinstance(qty, int):
        return 400, {"error": "expected {\"customer\": str, \"sku\": str, \"qty\": int}"}
    order_id = str(uuid.uuid4())
    status, plan = ask_inventory("/reservations", {"order_id": order_id, "sku": sku, "qty": qty})
    if status != 200:
        return status, plan
    statements = [tuple(s) for s in plan["statements"]]
    statements.append((PARTICIPANT, "INSERT INTO orders (id, customer, sku, qty) VALUES ($1, $2, $3, $4)",
                       [uuid.UUID(order_id), customer, sku, qty]))
    try:
        gid, _ = dtx_conn("orders").oneshot(statements)
    except dtx.OutcomeUnknown as e:
        return 503, {"error": "the outcome of the order is unknown: ask again later", "gid": e.gid}
    except dtx.Error as e:
        if is_out_of_stock(e):
            return 409, {"error": f"not enough stock of {sku} for {qty}", "gid": e.gid}
        return 500, {"error": str(e), "sqlstate": e.sqlstate, "participant": e.participant}
    return 201, {"order_id": order_id, "gid": gid}


def get(body: dict[str, Any], m: re.Match[str]) -> tuple[int, dict[str, Any]]:
    try:
        order_id = uuid.UUID(m.group(1))
    except ValueError:
        return 404, {"error": "no such order"}
    _, (r,) = dtx_conn("orders").oneshot(
        [(PARTICIPANT, "SELECT customer, sku, qty, placed_at FROM orders WHERE id = $1", [order_id])])
    row = r.one()
    if row is None:
        return 404, {"error": "no such order"}
    return 200, {"order_id": str(order_id), "customer": row[0], "sku": row[1], "qty": row[2],
                 "placed_at": row[3].isoformat()}


if __name__ == "__main__":
    INVENTORY_URL = sys.argv[2].rstrip("/")
    serve("orders", int(sys.argv[1]), {
        ("POST", r"/orders"): place,
        ("GET", r"/orders/([\w-]+)"): get,
    })
