#!/usr/bin/env python3
"""httpget.py URL [--cacert FILE] [--body] — GET URL; print the status code
(and, with --body, the body after it on the following lines).  Exit 0 when
an answer came (whatever its status), 1 when none did (refused, timed out).

Used by the operations tests to probe /health, /ready, /metrics and
Prometheus' HTTP API."""
import ssl
import sys
import urllib.error
import urllib.request


def main() -> int:
    args = sys.argv[1:]
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    url = args[0]
    cafile = None
    body = "--body" in args
    if "--cacert" in args:
        cafile = args[args.index("--cacert") + 1]
    ctx = ssl.create_default_context(cafile=cafile) if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(url, timeout=5, context=ctx) as r:
            code, data = r.status, r.read()
    except urllib.error.HTTPError as e:
        code, data = e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        print(f"no answer: {e}", file=sys.stderr)
        return 1
    print(code)
    if body:
        sys.stdout.write(data.decode("utf-8", "replace"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
