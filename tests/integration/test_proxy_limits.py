"""Slow and greedy HTTP clients against real proxies over real sockets: a withheld
body, thousands of idle connections, oversized heads, the connection limit, what an
error tells a client, the built-in paths turned off, and proxy TLS.

The shared proxy (conftest) keeps its defaults; options it must not have (a low
connection limit, short deadlines, TLS) get a proxy of their own: a ProxyActor on an
ephemeral port that takes its routes from the same controller."""

import http.client
import json
import resource
import select
import socket
import ssl
import statistics
import time

import pytest
import ray
import requests

import serve_core as serve
from serve_core.data.proxy import ProxyActor
from tests.integration import apps
from tests.integration.conftest import PORT
from tests.waiting import wait_for

ROUTE = "/limits"
LIMITED = {"header_timeout_s": 1.0, "body_read_timeout_s": 2.0, "max_connections": 20,
           "expose_routes": False, "expose_metrics": False, "metrics_host": "127.0.0.1"}
ROOMY = {"header_timeout_s": 60.0, "body_read_timeout_s": 60.0}


class Unpicklable(Exception):
    def __init__(self, msg):
        super().__init__(msg)
        self.fn = lambda: None  # cannot cross a process boundary: the caller gets a UserCodeError


@serve.deployment
class Inner:
    def explode(self):
        raise Unpicklable("inner detail")


@serve.deployment
class Outer:
    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, request):
        return await self.inner.explode.remote()


def start_proxy(**options):
    """A proxy of this test's own, on an ephemeral loopback port."""
    actor = ray.remote(ProxyActor).options(num_cpus=0, max_concurrency=8).remote(
        "test-node", {"host": "127.0.0.1", "port": 0, **options})
    return actor


@pytest.fixture(scope="module")
def proxies(serve_instance):
    serve.run(apps.hello.bind(), name="limits", route_prefix=ROUTE)
    serve.run(Outer.bind(Inner.bind()), name="nested", route_prefix="/nested")
    actors = {"limited": start_proxy(**LIMITED), "roomy": start_proxy(**ROOMY)}
    infos = {name: ray.get(a.ready.remote(), timeout=60) for name, a in actors.items()}
    yield {name: (actors[name], infos[name]) for name in actors}
    for actor in actors.values():
        ray.kill(actor)
    serve.delete("limits")
    serve.delete("nested")


def recv_all(sock, timeout_s):
    """Everything the server sends until it closes (or ``timeout_s`` passes)."""
    sock.settimeout(timeout_s)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data


def readable(sock, timeout_s=0.0):
    """Whether the server sent something (or closed): poll, as select() stops at fd 1024."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(timeout_s * 1000))


def status(reply: bytes) -> int:
    assert reply.startswith(b"HTTP/1.1 "), reply[:200]
    return int(reply[9:12])


def get_once(port, path=ROUTE, timeout=10):
    """One GET on a fresh connection; (status, body, seconds)."""
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        return r.status, body, time.perf_counter() - start
    finally:
        conn.close()


def p99(samples):
    return statistics.quantiles(samples, n=100)[98]


def test_withheld_body_gets_408_within_the_deadline(proxies):
    _, info = proxies["limited"]
    deadline = LIMITED["body_read_timeout_s"]
    with socket.create_connection(("127.0.0.1", info["port"])) as s:
        start = time.monotonic()
        s.sendall(b"POST " + ROUTE.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789")
        reply = recv_all(s, deadline + 10)  # generous: a close is what we wait for
        waited = time.monotonic() - start
    assert status(reply) == 408 and b"body_read_timeout_s" in reply
    assert waited < deadline + 5, f"answered after {waited:.1f}s, deadline {deadline}s"
    assert get_once(info["port"])[0] == 200  # and it serves others as before


def test_trickled_body_gets_408_however_slowly_it_comes(proxies):
    _, info = proxies["limited"]
    with socket.create_connection(("127.0.0.1", info["port"])) as s:
        start = time.monotonic()
        s.sendall(b"POST " + ROUTE.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        reply = b""
        while not reply and time.monotonic() - start < 15:
            try:
                s.sendall(b"x")  # a byte every 0.2 s would keep a per-read timeout happy forever
            except OSError:
                break
            if readable(s, 0.2):
                reply = recv_all(s, 5)
    assert status(reply) == 408


def test_idle_connections_do_not_stop_other_clients(proxies):
    actor, info = proxies["roomy"]
    port, n_idle, n_requests = info["port"], 2000, 300
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n_idle + 500:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n_idle + 1000), hard))
    for _ in range(20):
        get_once(port)  # warm the path
    quiet = [get_once(port)[2] for _ in range(n_requests)]
    idle = []
    try:
        for i in range(n_idle):  # half say nothing, half start a head and stall (slowloris)
            s = socket.create_connection(("127.0.0.1", port))
            if i % 2:
                s.sendall(b"GET " + ROUTE.encode() + b" HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            idle.append(s)
        wait_for(lambda: ray.get(actor.open_connections.remote()) >= n_idle, 30, f"{n_idle} connections accepted")
        loaded = []
        for _ in range(n_requests):
            code, _, seconds = get_once(port)
            assert code == 200
            loaded.append(seconds)
        still_open = sum(1 for s in idle[::100] if not readable(s))
    finally:
        for s in idle:
            s.close()
    assert still_open == len(idle[::100]), "the idle connections were dropped before the measurement ended"
    base, under = p99(quiet), p99(loaded)
    print(f"p99 quiet {base * 1000:.2f} ms, with {n_idle} idle connections {under * 1000:.2f} ms")
    # The bound is 2x; on a shared 2-core machine allow 20 ms of noise on top.
    assert under <= 2 * base + 0.020, f"p99 {under * 1000:.1f} ms with {n_idle} idle connections, {base * 1000:.1f} ms quiet"


def test_many_headers_get_431(proxies):
    headers = "".join(f"X-H{i}: {'v' * 500}\r\n" for i in range(200)).encode()  # 100 KB over the 64 KB default
    with socket.create_connection(("127.0.0.1", PORT)) as s:
        s.sendall(b"GET " + ROUTE.encode() + b" HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
        reply = recv_all(s, 10)
    assert status(reply) == 431
    assert get_once(PORT)[0] == 200


def test_huge_header_value_sent_slowly_gets_431_long_before_5_mb(proxies):
    piece, total = b"v" * 16384, 5 * 1024 * 1024
    sent = 0
    with socket.create_connection(("127.0.0.1", PORT)) as s:
        s.sendall(b"GET " + ROUTE.encode() + b" HTTP/1.1\r\nHost: x\r\nX-Big: ")
        while sent < total and not readable(s, 0.01):  # slowly: pieces 10 ms apart
            try:
                s.sendall(piece)
            except OSError:
                break
            sent += len(piece)
        reply = recv_all(s, 10)
    assert status(reply) == 431 and b"max_header_bytes" in reply
    assert sent < 1024 * 1024, f"the proxy read {sent} bytes of one header before answering"
    assert get_once(PORT)[0] == 200


def test_beyond_the_connection_limit_clients_get_503(proxies):
    actor, info = proxies["limited"]
    port, limit = info["port"], LIMITED["max_connections"]
    wait_for(lambda: ray.get(actor.open_connections.remote()) == 0, 30, "earlier connections closed")
    held = []
    try:
        for _ in range(limit):  # keep-alive connections that answered once and now sit idle
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", ROUTE)
            assert conn.getresponse().read()
            held.append(conn)
        assert ray.get(actor.open_connections.remote()) == limit
        code, body, _ = get_once(port)
        assert code == 503 and json.loads(body)["error"] == "TooManyConnections"
        for conn in held[:5]:
            conn.close()
        held = held[5:]
        wait_for(lambda: ray.get(actor.open_connections.remote()) <= limit - 5, 30, "closed connections counted")
        assert get_once(port)[0] == 200
    finally:
        for conn in held:
            conn.close()


def test_clients_that_vanish_at_once_leave_no_replica_slot_held(proxies):
    """A request followed by a garbage byte in the same packet: the proxy forwards the request,
    answers the garbage with 400 and closes, so the request is cancelled right after it was
    sent. The replica must give its slot back every time (max_ongoing_requests is 5: five
    leaked slots would stop the deployment for good). Its own app, so a leak stays here."""
    serve.run(apps.hello.options(graceful_shutdown_timeout_s=0).bind(), name="vanish", route_prefix="/vanish")
    try:
        replicas = [ray.get_actor(a["name"], namespace=a["namespace"])
                    for a in ray.util.list_named_actors(all_namespaces=True)
                    if a["name"].startswith("SERVE_CORE_REPLICA:vanish#")]
        assert replicas
        for _ in range(30):
            with socket.create_connection(("127.0.0.1", PORT)) as s:
                s.sendall(b"GET /vanish HTTP/1.1\r\nHost: x\r\n\r\n\xaa")
                recv_all(s, 10)
        wait_for(lambda: sum(ray.get([r.ongoing.remote() for r in replicas])) == 0, 10,
                 what="replica slots released")
        assert get_once(PORT, "/vanish")[0] == 200
    finally:
        serve.delete("vanish")


def test_internal_error_detail_stays_in_the_logs(proxies):
    r = requests.get(f"http://127.0.0.1:{PORT}/nested", timeout=10)
    doc = r.json()
    assert r.status_code == 500 and doc["error"] == "UserCodeError"
    assert "inner detail" in doc["message"] and "\n" not in doc["message"]
    assert "Traceback" not in r.text and "File " not in r.text
    assert doc["request_id"] and doc["request_id"] == r.headers.get("x-request-id", doc["request_id"])


def test_builtin_paths_can_be_turned_off(proxies):
    actor, info = proxies["limited"]
    base = f"http://127.0.0.1:{info['port']}"
    assert requests.get(base + "/-/healthz", timeout=10).text == "success"
    assert requests.get(base + "/-/routes", timeout=10).status_code == 404
    assert requests.get(base + "/-/metrics", timeout=10).status_code == 404
    missing = requests.get(base + "/nowhere", timeout=10)
    assert missing.status_code == 404 and "routes" not in missing.json()
    # The defaults keep them (the shared proxy), and metrics stay on the metrics listener.
    assert ROUTE in requests.get(f"http://127.0.0.1:{PORT}/-/routes", timeout=10).json()
    assert requests.get(f"http://127.0.0.1:{info['metrics_port']}/", timeout=10).status_code == 200


def make_certificate(tmp_path):
    """A self-signed certificate for 127.0.0.1 and its key (encrypted with a password)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"s3cret")))
    return str(certfile), str(keyfile)


def test_proxy_serves_https_with_the_ray_serve_option_names(proxies, tmp_path):
    certfile, keyfile = make_certificate(tmp_path)
    actor = start_proxy(ssl_certfile=certfile, ssl_keyfile=keyfile, ssl_keyfile_password="s3cret",
                        header_timeout_s=1.0, body_read_timeout_s=2.0)
    bad = start_proxy(ssl_certfile=certfile, ssl_keyfile=str(tmp_path / "missing.pem"))
    try:
        port = ray.get(actor.ready.remote(), timeout=60)["port"]
        r = requests.get(f"https://127.0.0.1:{port}{ROUTE}", verify=certfile, timeout=10)
        assert r.status_code == 200 and r.json() == {"hello": "world"}
        with pytest.raises(requests.ConnectionError):  # plain HTTP is not served on a TLS port
            requests.get(f"http://127.0.0.1:{port}{ROUTE}", timeout=10)
        # The limits hold under TLS too: a withheld body is cut off.
        context = ssl.create_default_context(cafile=certfile)
        with context.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="127.0.0.1") as s:
            s.sendall(b"POST " + ROUTE.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
            reply = recv_all(s, 15)
        assert status(reply) == 408
        with pytest.raises(Exception, match="proxy TLS: cannot load"):
            ray.get(bad.ready.remote(), timeout=60)
    finally:
        ray.kill(actor)
        ray.kill(bad)
