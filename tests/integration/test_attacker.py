"""An attacker on the network, against a real replica and a real proxy.

From this process (it learns the ports, not the secret) it connects to every port the
replica and the proxy processes listen on and sends a pickle frame whose loading would
create a file, a handshake recorded from a genuine caller, a frame declaring 1 GiB, and
random bytes. Nothing may execute, the replica's memory may not grow by what was
declared, and the application keeps answering.
"""

import os
import socket

import psutil
import requests

import serve_core as serve
from serve_core import ray_seam
from serve_core.data import handshake
from tests.attack import attack, pickle_frame, send
from tests.integration.apps import Counter
from tests.integration.conftest import BASE


def _listening(pid):
    out = {}
    for c in psutil.Process(pid).net_connections(kind="inet"):
        if c.status == psutil.CONN_LISTEN:
            out[c.laddr.port] = "127.0.0.1" if c.laddr.ip in ("0.0.0.0", "::") else c.laddr.ip
    return out


def _recorded_proof(host, port):
    """A genuine caller's handshake, captured on the wire (the attacker replays it)."""
    with socket.create_connection((host, port), timeout=3) as s:
        hello = b""
        while len(hello) < handshake.HELLO_BYTES:
            hello += s.recv(handshake.HELLO_BYTES - len(hello))
        proof, _ = handshake.ClientHandshake(ray_seam.data_path_secret()).feed(hello)
        s.sendall(proof)
        answer = s.recv(handshake.ANSWER_BYTES)
        assert len(answer) == handshake.ANSWER_BYTES  # accepted: it was genuine
        return proof


def _auth_failures(host, metrics_port):
    text = requests.get(f"http://{host}:{metrics_port}/metrics", timeout=5).text
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("serve_core_auth_failures_total{"))


def test_network_attacker_gets_nothing(serve_core_app, tmp_path):
    marker = str(tmp_path / "pwned")
    serve.run(Counter.bind(), name="target", route_prefix="/target")
    raw = ray_seam.get_controller().status()
    replica = raw["applications"]["target"]["deployments"]["Counter"]["replicas"][0]
    proxy = next(iter(raw["proxies"].values()))
    rpid, ppid = replica["pid"], proxy["pid"]
    host, port = replica["host"], replica["port"]
    rss_before = psutil.Process(rpid).memory_info().rss
    failures_before = _auth_failures(host, replica["metrics_port"])

    # The replica's data port answers every attack with its hello and nothing more.
    replies = attack(host, port, marker)
    assert replies == {name: handshake.HELLO_BYTES for name in replies}, replies
    # A handshake recorded from a genuine caller, replayed on a new connection, then a frame:
    # no answer, because the proof was for another nonce.
    assert len(send(host, port, _recorded_proof(host, port) + pickle_frame(marker))) == handshake.HELLO_BYTES

    # Every other port either process listens on: metrics, the proxy's HTTP port, Ray's own.
    for pid in (rpid, ppid):
        for p, h in _listening(pid).items():
            attack(h, p, marker)

    assert not os.path.exists(marker), "a pickle from the network was loaded"
    assert psutil.pid_exists(rpid) and psutil.pid_exists(ppid)
    rss_growth = psutil.Process(rpid).memory_info().rss - rss_before
    assert rss_growth < 64 * 1024 * 1024, f"the replica grew by {rss_growth} bytes"
    assert _auth_failures(host, replica["metrics_port"]) >= failures_before + 5
    for _ in range(20):
        r = requests.get(f"{BASE}/target", timeout=5)
        assert r.status_code == 200 and r.json()["pid"] == rpid
