"""http_json — the little HTTP plumbing both example services share: a
threaded HTTP server whose handlers take and return JSON, and one dtx
connection per thread.

Standard library only (http.server), to keep the example about dtx.  A
dtx connection belongs to one thread at a time, and http.server's
ThreadingHTTPServer answers each request in a thread of its own, so each
thread opens its own connection on first use (``dtx_conn()``) and keeps
it for the requests it serves; one that broke is replaced.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import dtx

Route = Callable[[dict[str, Any], re.Match[str]], tuple[int, dict[str, Any]]]

_local = threading.local()


def dtx_conn(application_name: str) -> dtx.Connection:
    """This thread's connection to the coordinator (the DTX* environment
    says where it is)."""
    conn = getattr(_local, "conn", None)
    if conn is None or conn.broken:
        if conn is not None:
            conn.close()
        conn = _local.conn = dtx.connect(application_name=application_name)
    return conn


def serve(name: str, port: int, routes: dict[tuple[str, str], Route]) -> None:
    """Serve `routes` ((method, path regex) -> handler) on 127.0.0.1:port
    until killed.  A handler gets the JSON body and the path's match, and
    returns (status, JSON object)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self, method: str) -> None:
            body: dict[str, Any] = {}
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                try:
                    body = json.loads(self.rfile.read(length))
                except ValueError:
                    return self._reply(400, {"error": "the body is not JSON"})
            for (m, pattern), fn in routes.items():
                match = re.fullmatch(pattern, self.path)
                if m == method and match:
                    try:
                        status, out = fn(body, match)
                    except Exception as e:  # noqa: BLE001 - a service answers, it does not die
                        status, out = 500, {"error": f"{type(e).__name__}: {e}"}
                    return self._reply(status, out)
            self._reply(404, {"error": f"no route for {method} {self.path}"})

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self._handle("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._handle("POST")

        def _reply(self, status: int, out: dict[str, Any]) -> None:
            data = (json.dumps(out) + "\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, fmt: str, *args: Any) -> None:
            print(f"{name}: {self.address_string()} {fmt % args}", file=sys.stderr, flush=True)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"{name}: listening on 127.0.0.1:{port}", file=sys.stderr, flush=True)
    server.serve_forever()
