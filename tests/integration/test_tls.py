"""TLS at the proxy and on the direct connections, on the tier's real cluster.

serve_core is restarted with TLS for this module (HTTPS at the proxy, mutual TLS between
callers and replicas) and restarted with the tier's options afterwards.
"""

import socket
import ssl
import subprocess
from pathlib import Path

import pytest
import requests

import serve_core as serve
from serve_core import ray_seam
from serve_core.data import handshake
from tests.integration.apps import CallsFail, Counter
from tests.integration.conftest import HTTP_OPTIONS, PORT

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tls(serve_instance, tmp_path_factory):
    certs = tmp_path_factory.mktemp("tls")
    subprocess.run(["bash", str(REPO_ROOT / "scripts" / "make_tls_certs.sh"), str(certs)], check=True, capture_output=True)
    cert, key, ca = (str(certs / f) for f in ("node.crt", "node.key", "ca.crt"))
    serve.shutdown()
    serve.start(http_options={**HTTP_OPTIONS, "ssl_certfile": cert, "ssl_keyfile": key, "debug_errors": True,
                              "data_path": {"tls_certfile": cert, "tls_keyfile": key, "tls_ca_certs": ca}})
    try:
        yield {"cert": cert, "key": key, "ca": ca}
    finally:
        serve.shutdown()
        serve.start(http_options=HTTP_OPTIONS)


def _replica(app):
    raw = ray_seam.get_controller().status()
    return next(iter(raw["applications"][app]["deployments"].values()))["replicas"][0]


def test_https_at_the_proxy_and_mutual_tls_to_the_replica(tls):
    handle = serve.run(Counter.bind(), name="tls", route_prefix="/tls")
    r = requests.get(f"https://127.0.0.1:{PORT}/tls", verify=tls["ca"], timeout=10)
    assert r.status_code == 200 and r.json()["n"] >= 1  # HTTPS in, TLS proxy -> replica
    assert handle.add.remote(1).result() >= 2  # a handle in this driver: TLS driver -> replica
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{PORT}/tls", timeout=5)  # no plain HTTP

    replica = _replica("tls")
    addr = (replica["host"], replica["port"])
    # In the clear, the replica says nothing: no handshake hello before TLS.
    with socket.create_connection(addr, timeout=3) as s:
        s.settimeout(1)
        try:
            first = s.recv(64)
        except TimeoutError:
            first = b""
    assert not first.startswith(handshake.MAGIC)
    # TLS without a certificate of the cluster's CA is refused (mutual TLS).
    anonymous = ssl.create_default_context(cafile=tls["ca"])
    anonymous.check_hostname = False
    with pytest.raises((ssl.SSLError, ConnectionError)):
        with socket.create_connection(addr, timeout=3) as raw, anonymous.wrap_socket(raw) as s:
            s.sendall(b"\0" * handshake.PROOF_BYTES)
            assert s.recv(64) == b""  # TLS 1.3 reports the refused certificate on the first read
            raise ConnectionError("closed")
    # A member's certificate but not the secret: the hello, then nothing.
    member = ssl.create_default_context(cafile=tls["ca"])
    member.check_hostname = False
    member.load_cert_chain(tls["cert"], tls["key"])
    with socket.create_connection(addr, timeout=3) as raw, member.wrap_socket(raw) as s:
        hello = b""
        while len(hello) < handshake.HELLO_BYTES:
            hello += s.recv(handshake.HELLO_BYTES - len(hello))
        assert hello.startswith(handshake.MAGIC)
        s.sendall(b"\0" * handshake.PROOF_BYTES)
        s.settimeout(3)
        try:
            assert s.recv(64) == b""
        except (ConnectionError, ssl.SSLError):
            pass
    r = requests.get(f"https://127.0.0.1:{PORT}/tls", verify=tls["ca"], timeout=10)
    assert r.status_code == 200
    serve.delete("tls")


def test_debug_errors_reaches_the_replicas(tls):
    """This module's serve_core runs with debug_errors=True: the error's whole text reaches the
    client (the tier's default, off, sends its first line and logs the rest)."""
    serve.run(CallsFail.bind(Counter.bind()), name="dbg", route_prefix="/dbg")
    r = requests.get(f"https://127.0.0.1:{PORT}/dbg", verify=tls["ca"], timeout=10)
    assert r.status_code == 500 and "deep trouble" in r.json()["message"]
    assert "second line of detail" in r.json()["message"], r.json()
    serve.delete("dbg")
