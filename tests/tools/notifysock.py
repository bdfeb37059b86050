#!/usr/bin/env python3
"""notifysock.py PATH OUT — stand in for systemd's notification socket: bind
a Unix datagram socket at PATH and append each message received to OUT, one
per line (newlines inside a message become '|'), until killed."""
import os
import socket
import sys

path, out = sys.argv[1], sys.argv[2]
if os.path.exists(path):
    os.unlink(path)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
with open(out, "a", buffering=1) as f:
    while True:
        msg = s.recv(4096).decode("utf-8", "replace")
        f.write(msg.replace("\n", "|") + "\n")
