"""client — talk to the example's services, as a shop's front end would.

    python3 client.py URL order CUSTOMER SKU QTY     POST URL/orders
    python3 client.py URL stock SKU                  GET URL/stock/SKU

Prints the HTTP status and the JSON answer on one line: "201 {...}".
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request


def call(method: str, url: str, body: dict[str, object] | None = None) -> tuple[int, str]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode().strip()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode().strip()


def main(argv: list[str]) -> int:
    if len(argv) == 5 and argv[1] == "order":
        status, text = call("POST", argv[0] + "/orders", {"customer": argv[2], "sku": argv[3], "qty": int(argv[4])})
    elif len(argv) == 3 and argv[1] == "stock":
        status, text = call("GET", f"{argv[0]}/stock/{argv[2]}")
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(status, text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
