"""inventory_service — the inventory service of the example: it owns the
`inventory` database (participant "inventory"): how many of each item are
in stock, and which order reserved how many.

    python3 inventory_service.py PORT

    GET  /stock/SKU       {"sku": ..., "available": N}
    POST /reservations    {"order_id", "sku", "qty"} ->
                          {"statements": [[participant, sql, params], ...]}

Reserving stock is part of someone else's transaction (placing an order),
so this service does not write anything itself when asked to reserve: it
answers with the statements that make the reservation in its database —
its SQL, its tables, its rules — and the caller runs them, together with
its own, in one dtx transaction.  No other service writes SQL against the
inventory database, and no reservation can outlive an order that failed,
or the other way round.

The rule "never more than is in stock" is the database's: the CHECK
(available >= 0) on stock.  Checking first and writing later would let
two orders both see enough stock; the constraint cannot be raced.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from http_json import dtx_conn, serve

import dtx

PARTICIPANT = "inventory"


def stock(body: dict[str, Any], m: re.Match[str]) -> tuple[int, dict[str, Any]]:
    _, (r,) = dtx_conn("inventory").oneshot(
        [(PARTICIPANT, "SELECT available FROM stock WHERE sku = $1", [m.group(1)])])
    if not r.rows:
        return 404, {"error": f"unknown item {m.group(1)!r}"}
    return 200, {"sku": m.group(1), "available": r.scalar()}


def reservations(body: dict[str, Any], m: re.Match[str]) -> tuple[int, dict[str, Any]]:
    sku, qty, order_id = body.get("sku"), body.get("qty"), body.get("order_id")
    if not isinstance(sku, str) or not isinstance(qty, int) or qty < 1 or not isinstance(order_id, str):
        return 400, {"error": "expected {\"order_id\": str, \"sku\": str, \"qty\": int >= 1}"}
    _, (r,) = dtx_conn("inventory").oneshot([(PARTICIPANT, "SELECT 1 FROM stock WHERE sku = $1", [sku])])
    if not r.rows:
        return 404, {"error": f"unknown item {sku!r}"}
    return 200, {"statements": [
        [PARTICIPANT, "UPDATE stock SET available = available - $2 WHERE sku = $1", [sku, qty]],
        [PARTICIPANT, "INSERT INTO reservations (order_id, sku, qty) VALUES ($1, $2, $3)", [order_id, sku, qty]],
    ]}


def is_out_of_stock(e: dtx.Error) -> bool:
    """True when `e` is this service's database refusing a reservation for
    lack of stock (its CHECK constraint); for the callers."""
    return isinstance(e, dtx.IntegrityError) and e.participant == PARTICIPANT and e.sqlstate == "23514"


if __name__ == "__main__":
    serve("inventory", int(sys.argv[1]), {
        ("GET", r"/stock/([\w-]+)"): stock,
        ("POST", r"/reservations"): reservations,
    })
