"""Fuzz a running proxy over raw sockets with hypothesis-generated malformed requests:
bad methods and targets, broken chunked encoding, bad JSON, huge and odd headers,
garbage bytes, all sent in arbitrary pieces. Each one must end in an answer below 500
or a close within the proxy's deadlines, the proxy process must stay the same, and a
well-formed client must be served after every example.

CI runs 60 examples in a fixed order; for a deeper local run:
FUZZ_EXAMPLES=1000 FUZZ_RANDOM=1 pytest tests/integration/test_proxy_fuzz.py -m integration"""

import http.client
import json
import os
import re
import socket
import time

import pytest
import ray
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import serve_core as serve
from serve_core.data.proxy import ProxyActor

ROUTE = "/fuzz"
OPTIONS = {"host": "127.0.0.1", "port": 0, "header_timeout_s": 0.5, "body_read_timeout_s": 1.0,
           "max_header_bytes": 16 * 1024, "max_body_bytes": 64 * 1024}
ANSWER_WITHIN_S = 10.0  # deadline 1 s plus the rejection grace plus a noisy machine's slack
STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3}) ")


@serve.deployment
class Keys:
    """Answers a JSON object's keys; anything else is the client's fault (4xx), never a 500."""

    async def __call__(self, request):
        from starlette.responses import JSONResponse

        try:
            body = json.loads(await request.body())  # a JSONDecodeError is the replica's 400
        except (UnicodeDecodeError, RecursionError):  # not UTF-8, or "[" nested 50,000 deep
            return JSONResponse({"error": "unreadable body"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "want a JSON object"}, status_code=422)
        return {"keys": sorted(body)}


@pytest.fixture(scope="module")
def fuzz_proxy(serve_instance):
    serve.run(Keys.bind(), name="fuzz", route_prefix=ROUTE)
    actor = ray.remote(ProxyActor).options(num_cpus=0, max_concurrency=8).remote("fuzz-node", OPTIONS)
    info = ray.get(actor.ready.remote(), timeout=60)
    yield actor, info
    ray.kill(actor)
    serve.delete("fuzz")


# -- what a malformed request is made of ---------------------------------------------
# A request is well formed except for the faults drawn for it (none to three), so that
# examples reach every layer: the parser, the limits, the proxy's routing, the replica.

TOKEN = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
FAULTS = ["method", "target", "version", "header_name", "header_value", "huge_header", "many_headers",
          "framing", "chunked", "json", "line_endings", "tail"]
odd = st.binary(max_size=40)
odd_methods = st.one_of(st.sampled_from([b"get", b"GETT", b"CONNECT", b"TRACE", b"PRI", b"", b"G T", b"\x00GET",
                                         b"POST" * 300, b"DELETE", b"PATCH", b"OPTIONS", b"HEAD"]),
                        st.text(alphabet=TOKEN, min_size=1, max_size=12).map(str.encode), odd)
odd_targets = st.one_of(st.sampled_from([b"/fuzz?x=%zz", b"/fuzz/%00", b"/fuzz/../../etc/passwd", b"*", b"http://evil/fuzz",
                                         b"/fuzz?" + b"q" * 20000, b"/\xff\xfe", b"", b"/fuzz#frag", b"//fuzz",
                                         b"/-/routes", b"/-/metrics", b"/-/nothing", b"/nowhere"]),
                        odd.map(lambda b: b"/fuzz/" + b))
odd_versions = st.sampled_from([b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1x", b"HTTP/9.9", b"", b"http/1.1", b"HTTP/1"])
odd_names = st.one_of(odd, st.sampled_from([b"Content-Length", b"Transfer-Encoding", b"Expect", b"Connection",
                                            b"Upgrade", b"x-request-id", b"serve_multiplexed_model_id", b"Host",
                                            b"Content-Type", b"X Space", b"X:Colon", b""]))
odd_values = st.one_of(
    st.sampled_from([b"chunked", b"chunked, gzip", b"gzip, chunked", b"-1", b"1e3", b"0x10", b"99999999999999999999",
                     b"100-continue", b"upgrade", b"websocket", b"close", b"keep-alive", b"\xff\xfe\xfd", b"a\x7fb",
                     b"obs\r\n fold", b"\x00", b" "]),
    odd)
bad_json = st.one_of(st.sampled_from([b"{not json", b'{"a": 1', b"[1, 2, 3]", b'{"k": "\\ud800"}', b"null",
                                      b"\x00" * 10, b"\xff\xfe{}", b"1" * 5000]),
                     st.binary(max_size=2000), st.integers(0, 50_000).map(lambda n: b"[" * n))


@st.composite
def chunked_body(draw, body: bytes, broken: bool):
    """``body`` in chunks; when ``broken``: bad sizes, missing CRLFs, no last chunk, odd extensions."""
    out, pos = b"", 0
    for n in draw(st.lists(st.integers(1, 64), max_size=4)) + [len(body)]:
        data, pos = body[pos:pos + n], pos + n
        if not data:
            continue
        size = b"%x" % len(data)
        end = b"\r\n"
        if broken and draw(st.booleans()):
            size = draw(st.sampled_from([b"%x" % (len(data) + 5), b"zz", b"-1", b"%x;ext=\x01" % len(data),
                                         b"ffffffffffffffffff", b"", b"%x " % len(data)]))
            end = draw(st.sampled_from([b"", b"\n", b"XX", b"\r\n"]))
        out += size + b"\r\n" + data + end
    last = b"0\r\n\r\n"
    if broken:
        last = draw(st.sampled_from([b"0\r\n", b"", b"0\r\nTrailer: x\r\n\r\n", b"0\r\n\r\nGARBAGE", last]))
    return out + last


@st.composite
def requests_(draw):
    faults = set(draw(st.lists(st.sampled_from(FAULTS), max_size=3)))
    method = draw(odd_methods) if "method" in faults else b"POST"
    target = draw(odd_targets) if "target" in faults else ROUTE.encode()
    version = draw(odd_versions) if "version" in faults else b"HTTP/1.1"
    nl = draw(st.sampled_from([b"\n", b"\r", b"\r\r\n", b"\n\r"])) if "line_endings" in faults else b"\r\n"
    lines = [method + b" " + target + (b" " + version if version else b""), b"Host: 127.0.0.1",
             b"Content-Type: application/json"]
    if "header_name" in faults or "header_value" in faults:
        for _ in range(draw(st.integers(1, 4))):
            name = draw(odd_names) if "header_name" in faults else b"X-Odd"
            value = draw(odd_values) if "header_value" in faults else b"v"
            lines.append(name + draw(st.sampled_from([b": ", b":", b" : ", b"\t:"])) + value)
    if "huge_header" in faults:
        lines.append(b"X-Huge: " + b"h" * draw(st.integers(10_000, 300_000)))
    if "many_headers" in faults:
        lines += [b"X-Many-%d: %s" % (i, b"m" * 50) for i in range(draw(st.integers(50, 2000)))]
    body = draw(bad_json) if "json" in faults else b'{"b": 1, "a": 2}'
    if "chunked" in faults:
        lines.append(b"Transfer-Encoding: chunked")
        body = draw(chunked_body(body, broken="framing" in faults))
    elif "framing" in faults:
        lines.append(b"Content-Length: %s" % draw(st.sampled_from(
            [b"0", b"%d" % max(0, len(body) - 1), b"%d" % (len(body) + 10), b"-5", b"abc", b"%d, %d" % (len(body), len(body)),
             b"99999999999999999999"])))
    else:
        lines.append(b"Content-Length: %d" % len(body))
    message = nl.join(lines) + nl + nl + body
    if "tail" in faults:
        message += draw(st.binary(min_size=1, max_size=500))
    return message


messages = st.one_of(requests_(), requests_(), requests_(), st.binary(min_size=1, max_size=4000))


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:], strict=False) if b > a]


def exchange(port: int, pieces: list[bytes]) -> tuple[list[int], bool]:
    """Send ``pieces``; return the statuses of the answers and whether the proxy closed
    (a keep-alive connection that answered and then stays quiet counts as done)."""
    data = b""
    with socket.create_connection(("127.0.0.1", port), timeout=ANSWER_WITHIN_S) as s:
        try:
            for piece in pieces:
                s.sendall(piece)
        except OSError:  # the proxy may close mid-send (a 431, a 400): that is an answer too
            pass
        deadline = time.monotonic() + ANSWER_WITHIN_S
        closed = False
        while time.monotonic() < deadline:
            answered = any(int(c) >= 200 for c in STATUS_LINE.findall(data))
            s.settimeout(0.3 if answered else max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                if answered:
                    break  # answered, and the rest (if any) waits for bytes we never send
                continue
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            data += chunk
        else:
            raise AssertionError(f"no answer and no close within {ANSWER_WITHIN_S}s; got {data[:300]!r}")
    first = STATUS_LINE.match(data.lstrip(b"\r\n")) if data else None
    assert data == b"" or first is not None, f"not an HTTP answer: {data[:300]!r}"
    return [int(c) for c in STATUS_LINE.findall(data)], closed


def well_formed_ok(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", ROUTE, body=b'{"b": 1, "a": 2}', headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status == 200 and r.read() == b'{"keys":["a","b"]}'
    finally:
        conn.close()


def test_malformed_requests_get_4xx_or_a_close_and_never_hurt_the_proxy(fuzz_proxy):
    actor, info = fuzz_proxy
    port, pid = info["port"], info["pid"]
    assert well_formed_ok(port)
    seen: dict[int, int] = {}

    @settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "60")), deadline=None, database=None, derandomize=not os.environ.get("FUZZ_RANDOM"),
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
    @given(message=messages, cuts=st.lists(st.integers(0, 10**6), max_size=4))
    def check(message, cuts):
        statuses, _ = exchange(port, split(message, cuts))
        for code in statuses:
            seen[code] = seen.get(code, 0) + 1
        first_final = next((c for c in statuses if c >= 200), None)
        assert first_final is None or first_final < 500, f"{first_final} for {message[:300]!r}"
        assert well_formed_ok(port), f"a well-formed request failed after {message[:300]!r}"

    check()
    assert ray.get(actor.ready.remote(), timeout=30)["pid"] == pid  # the same process throughout
    print("fuzz statuses", sorted(seen.items()))
    assert seen, "no example got an answer: the fuzzing did not reach the proxy"
