"""The proxy over real HTTP: routing, conversions, errors, limits, streaming."""

import json
import socket
import time

import pytest
import requests

import serve_core as serve
from tests.integration import apps, conftest
from tests.integration.conftest import BASE, HEADER_TIMEOUT_S, MAX_BODY, PORT, REQUEST_TIMEOUT_S, get, post
from tests.waiting import wait_for


@pytest.fixture(scope="module")
def hello_app(serve_instance):
    """``hello`` at /hello, deployed once: the tests using it only send it requests."""
    with conftest.shared_app(apps.hello.bind(), "fn", "/hello") as handle:
        yield handle


def test_function_deployment_reads_query(serve_core_app, hello_app):
    r = get("/hello?name=ada")
    assert r.status_code == 200 and r.json() == {"hello": "ada"}
    assert r.headers["content-type"] == "application/json"


def test_longest_prefix_wins_and_routes_listed(serve_core_app, hello_app):
    serve.run(apps.hello.bind(), name="short", route_prefix="/a")
    serve.run(apps.Counter.bind(), name="long", route_prefix="/a/b")
    assert "hello" in get("/a/x").json()
    assert "n" in get("/a/b/c").json()
    assert get("/ab").status_code == 404  # a prefix matches whole path segments only
    assert get("/-/routes").json() == {"/a/b": "long", "/a": "short", "/hello": "fn"}  # and the shared app
    assert get("/-/healthz").text == "success"


def test_unknown_route_is_404_json(serve_core_app, hello_app):
    r = get("/nothing-here")
    assert r.status_code == 404
    assert r.json()["error"] == "NotFound" and "/hello" in r.json()["routes"]
    assert r.headers["x-request-id"]  # as every answer: the id a client quotes when it reports the error
    assert get("/nothing-here", headers={"X-Request-ID": "mine-1"}).headers["x-request-id"] == "mine-1"


def test_user_exception_is_500_with_json(serve_core_app):
    serve.run(apps.Raises.bind(), name="raises", route_prefix="/raises")
    r = get("/raises")
    assert r.status_code == 500
    body = r.json()
    assert body["error"] == "RuntimeError" and "model exploded" in body["message"]
    assert body["deployment"] == "Raises"


def test_bad_json_body_is_400(serve_core_app):
    serve.run(apps.ParsesJson.bind(), name="pj", route_prefix="/pj")
    assert post("/pj", json={"b": 1, "a": 2}).json() == {"keys": ["a", "b"]}
    r = post("/pj", data=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "JSONDecodeError"
    r = post("/pj", data=b'{"a": "\xff\xfe"}', headers={"content-type": "application/json"})  # not UTF-8
    assert r.status_code == 400 and r.json()["error"] == "UnicodeDecodeError"


def test_oversize_body_is_413(serve_core_app):
    serve.run(apps.ParsesJson.bind(), name="pj", route_prefix="/pj")
    r = post("/pj", data=b"x" * (MAX_BODY + 1))
    assert r.status_code == 413 and "max_body_bytes" in r.json()["message"]

    def chunks():  # no content-length: the limit holds while streaming the body in
        for _ in range(MAX_BODY // 65536 + 2):
            yield b"y" * 65536

    r = post("/pj", data=chunks())
    assert r.status_code == 413


def test_backpressure_is_503_with_retry_after(serve_core_app):
    serve.run(apps.Busy.bind(), name="busy", route_prefix="/busy")
    import concurrent.futures as cf

    with cf.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: get("/busy?s=1"), range(6)))
    codes = sorted(r.status_code for r in results)
    # one running, one queued: the rest are refused at once
    assert codes.count(200) >= 2 and codes.count(503) >= 3
    refused = next(r for r in results if r.status_code == 503)
    assert refused.headers["retry-after"] == "1" and refused.json()["error"] == "BackPressure"


def test_request_timeout_is_408(serve_core_app):
    serve.run(apps.Slow.bind(), name="slow", route_prefix="/slow")
    t = time.monotonic()
    r = get("/slow")
    assert r.status_code == 408 and r.json()["error"] == "RequestTimeout"
    assert time.monotonic() - t < REQUEST_TIMEOUT_S + 2


def test_client_disconnect_cancels_the_request(serve_core_app):
    h = serve.run(apps.Sleeper.bind(), name="sleeper", route_prefix="/sleep")
    with socket.create_connection(("127.0.0.1", PORT)) as s:
        s.sendall(b"GET /sleep?s=2.5 HTTP/1.1\r\nHost: x\r\n\r\n")
        # Hang up only once the request runs at the replica (it sleeps 2.5 s there).
        wait_for(lambda: conftest.in_flight("sleeper") == 1, 2.0, "the request running at the replica")
    wait_for(lambda: h.counts.remote().result()["cancelled"], 5, "the replica's request cancelled",
             detail=lambda: h.counts.remote().result())
    assert h.counts.remote().result() == {"cancelled": 1, "finished": 0}


def test_streaming_response_arrives_chunk_by_chunk(serve_core_app):
    serve.run(apps.Streamer.bind(), name="stream", route_prefix="/stream")
    arrivals = []
    with requests.get(BASE + "/stream?n=4&delay=0.3", stream=True, timeout=10) as r:
        assert r.status_code == 200
        for chunk in r.iter_content(chunk_size=None):
            arrivals.append((time.monotonic(), chunk))
    assert b"".join(c for _, c in arrivals) == b"chunk-0\nchunk-1\nchunk-2\nchunk-3\n"
    assert len(arrivals) >= 4
    assert arrivals[-1][0] - arrivals[0][0] > 0.6  # not buffered until the end


def test_fastapi_ingress_routes_validation_and_docs(serve_core_app):
    serve.run(apps.Shop.bind(0.5), name="shop", route_prefix="/shop")
    assert get("/shop/items/7?q=x").json() == {"item_id": 7, "q": "x"}
    assert post("/shop/items", json={"name": "pen", "price": 2}).json() == {"name": "pen", "total": 3.0}
    bad = post("/shop/items", json={"name": "pen", "price": "free"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "price"]
    assert get("/shop/items/notanint").status_code == 422
    spec = get("/shop/openapi.json").json()
    assert "/items/{item_id}" in spec["paths"] and "/items" in spec["paths"]
    assert get("/shop/docs").status_code == 200


def test_batching_over_http(serve_core_app):
    h = serve.run(apps.Batcher.bind(), name="batch", route_prefix="/batch")
    import concurrent.futures as cf

    with cf.ThreadPoolExecutor(8) as pool:
        out = list(pool.map(lambda i: get(f"/batch?x={i}").json(), range(8)))
    assert out == [i * 3 for i in range(8)]
    sizes = h.batch_sizes.remote().result()
    assert sum(sizes) == 8 and max(sizes) > 1


def test_metrics_are_exposed(serve_core_app, hello_app):
    series = 'serve_core_http_requests_total{application="fn",method="GET",route="/hello",status="200"}'
    before = metric_value(get("/-/metrics").text, series)
    for _ in range(3):
        get("/hello")
    text = get("/-/metrics").text
    assert metric_value(text, series) == before + 3
    assert "serve_core_http_request_latency_seconds_bucket" in text
    st = serve.status()
    replica = st.applications["fn"].deployments["hello"].replicas[0]
    rtext = requests.get(f"http://{replica['host']}:{replica['metrics_port']}/metrics", timeout=5).text
    assert 'serve_core_replica_requests_total{application="fn",deployment="hello"' in rtext
    assert "serve_core_replica_processing_latency_seconds_bucket" in rtext
    assert "serve_core_replica_ongoing_requests" in rtext


def test_malformed_http_does_not_stall_others(serve_core_app, hello_app):
    slow = socket.create_connection(("127.0.0.1", PORT))
    slow.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n")  # headers never finish
    garbage = socket.create_connection(("127.0.0.1", PORT))
    garbage.sendall(b"\x00\x01 NOT HTTP AT ALL\r\n\r\n")
    try:
        t = time.monotonic()
        assert get("/hello").json() == {"hello": "world"}
        assert time.monotonic() - t < 2
        reply = garbage.recv(1024)
        assert reply == b"" or reply.startswith(b"HTTP/1.1 400")
    finally:
        slow.close()
        garbage.close()


def test_json_conversion_of_types(serve_core_app):
    serve.run(apps.Counter.bind(41), name="c", route_prefix="/c")
    r = get("/c")
    assert json.loads(r.content)["n"] == 42


def metric_value(text, series):
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


def test_slow_headers_get_408_and_are_closed(serve_core_app, hello_app):
    with socket.create_connection(("127.0.0.1", PORT)) as s:
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n")  # and then nothing
        s.settimeout(HEADER_TIMEOUT_S + 5)
        reply = s.recv(1024)
        assert reply.startswith(b"HTTP/1.1 408"), reply
        assert s.recv(1024) == b""  # closed


def test_huge_headers_get_431(serve_core_app, hello_app):
    r = get("/hello", headers={f"x-h{i}": "v" * 1000 for i in range(80)})
    assert r.status_code == 431
    assert get("/hello").status_code == 200
