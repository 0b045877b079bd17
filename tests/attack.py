"""What an attacker on the network can send to a serve_core port, without the cluster secret.

Used by the integration tier (from the test process) and the e2e tier (run as a program
from another network namespace: ``python -m tests.attack MARKER HOST:PORT ...``, printing
one JSON line per port). The pickle payload would create the file MARKER if anything
loaded it.
"""

from __future__ import annotations

import json
import pickle
import random
import socket
import struct
import sys

from serve_core.data import frames, handshake

GIB = 1 << 30


class CreatesAFile:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (self.path, "w"))


def pickle_frame(marker: str) -> bytes:
    data = pickle.dumps(frames.to_wire(frames.Req(1, "call", "__call__", (CreatesAFile(marker),), {}, {})))
    return struct.pack(">IQ", len(data), 1) + data


def send(host: str, port: int, payload: bytes, read: bool = True) -> bytes:
    """Send ``payload``; return what came back before the peer closed (or went quiet)."""
    got = b""
    with socket.create_connection((host, port), timeout=3) as s:
        try:
            s.sendall(payload)
            s.settimeout(2)
            while read:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
        except (TimeoutError, ConnectionError):
            pass
    return got


def attack(host: str, port: int, marker: str, seed: int = 7) -> dict[str, int]:
    """Each attack on one port; the byte count each got back (-1: refused or reset)."""
    rng = random.Random(seed)
    payloads = {
        "pickle": pickle_frame(marker),
        "gib_frame": struct.pack(">IQ", GIB, 1) + b"\0" * 65536,
        "random": rng.randbytes(rng.randint(1, 5000)),
        "hello_then_pickle": bytes(handshake.PROOF_BYTES) + pickle_frame(marker),
    }
    out = {}
    for name, payload in payloads.items():
        try:
            out[name] = len(send(host, port, payload))
        except OSError:
            out[name] = -1
    return out


if __name__ == "__main__":
    marker, targets = sys.argv[1], sys.argv[2:]
    for target in targets:
        host, _, port = target.rpartition(":")
        print(json.dumps({"target": target, "replies": attack(host, int(port), marker)}), flush=True)
