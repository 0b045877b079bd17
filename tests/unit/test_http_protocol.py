"""The proxy's HTTP protocol limits on a fake transport and a fake clock: the one
deadline for head and body, the head byte cap counted on partial data, the connection
cap, and how a rejected connection is answered and closed."""

import json
import re
import tomllib
from pathlib import Path

import pytest
import uvicorn
from uvicorn.server import ServerState

from serve_core.config import HTTPOptions, parse
from serve_core.data.http_protocol import (
    SUPPORTED_UVICORN,
    TIMED_OUT,
    Limits,
    UnsupportedUvicornError,
    check_uvicorn,
    protocol_class,
    rejection,
)
from serve_core.errors import ConfigError, UserCodeError, client_message

LIMITS = Limits(header_timeout_s=2.0, body_timeout_s=5.0, max_header_bytes=4096, max_connections=2, reject_grace_s=1.0)


class FakeTimer:
    def __init__(self, when, fn, args):
        self.when, self.fn, self.args, self.cancelled = when, fn, args, False

    def cancel(self):
        self.cancelled = True


class FakeTask:
    def __init__(self, coro):
        self.coro = coro
        self.cancelled = False

    def add_done_callback(self, fn):
        pass

    def done(self):
        return False

    def cancel(self):
        self.cancelled = True


class FakeLoop:
    """Time moves only when a test says so; tasks are recorded, not run."""

    def __init__(self):
        self.now = 1000.0
        self.timers = []
        self.tasks = []

    def time(self):
        return self.now

    def call_at(self, when, fn, *args):
        timer = FakeTimer(when, fn, args)
        self.timers.append(timer)
        return timer

    def call_later(self, delay, fn, *args):
        return self.call_at(self.now + delay, fn, *args)

    def create_task(self, coro, context=None):
        task = FakeTask(coro)
        self.tasks.append(task)
        return task

    def advance(self, seconds):
        end = self.now + seconds
        while True:
            due = sorted((t for t in self.timers if not t.cancelled and t.when <= end), key=lambda t: t.when)
            if not due:
                break
            timer = due[0]
            self.timers.remove(timer)
            self.now = max(self.now, timer.when)
            timer.fn(*timer.args)
        self.now = end

    def close(self):
        for task in self.tasks:
            task.coro.close()


class FakeTransport:
    def __init__(self):
        self.out = bytearray()
        self.closed = False
        self.eof = False

    def write(self, data):
        assert not self.eof and not self.closed, "wrote after closing"
        self.out += data

    def write_eof(self):
        self.eof = True

    def can_write_eof(self):
        return True

    def close(self):
        self.closed = True

    def is_closing(self):
        return self.closed

    def pause_reading(self):
        pass

    def resume_reading(self):
        pass

    def get_extra_info(self, name, default=None):
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 40000)}.get(name, default)


async def app(scope, receive, send):  # never run: FakeLoop records tasks
    raise AssertionError


@pytest.fixture
def server():
    loop = FakeLoop()
    config = uvicorn.Config(app, http=protocol_class(LIMITS), ws="none", lifespan="off", log_config=None)
    config.load()
    state = ServerState()

    def connect():
        proto = config.http_protocol_class(config=config, server_state=state, app_state={}, _loop=loop)
        transport = FakeTransport()
        proto.connection_made(transport)
        return proto, transport

    yield loop, state, connect
    loop.close()


def status_of(out: bytes) -> int:
    m = re.match(rb"HTTP/1.1 (\d{3}) ", bytes(out))
    assert m, out
    return int(m.group(1))


def json_body(out: bytes) -> dict:
    return json.loads(bytes(out).split(b"\r\n\r\n", 1)[1])


def drive(coro):
    """Run a coroutine that does not block (a cycle's send with no flow-control wait)."""
    try:
        coro.send(None)
    except StopIteration:
        return
    raise AssertionError("coroutine blocked")


def finish_response(proto):
    drive(proto.cycle.send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}))
    drive(proto.cycle.send({"type": "http.response.body", "body": b"ok"}))


def test_rejection_is_a_closing_json_response():
    out = rejection(431, "RequestHeaderFieldsTooLarge", "too big")
    head, body = out.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert b"connection: close" in head and b"content-length: %d" % len(body) in head
    assert json.loads(body) == {"error": "RequestHeaderFieldsTooLarge", "message": "too big"}


def test_silent_connection_gets_408_at_the_head_deadline_then_closes_after_the_grace(server):
    loop, state, connect = server
    proto, t = connect()
    loop.advance(1.9)
    assert not t.out
    loop.advance(0.2)
    assert status_of(t.out) == 408 and "header_timeout_s=2.0" in json_body(t.out)["message"]
    assert t.eof and not t.closed and proto not in state.connections  # half-closed, no longer counted
    proto.data_received(b"more bytes are read and dropped")
    loop.advance(1.0)
    assert t.closed


def test_slow_head_gets_408_however_the_bytes_are_spread(server):
    loop, _, connect = server
    proto, t = connect()
    for ch in b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"v" * 100:  # a byte now and then extends nothing
        proto.data_received(bytes([ch]))
        loop.advance(0.05)
        if t.out:
            break
    assert status_of(t.out) == 408 and loop.now - 1000.0 <= 2.0 + 0.05


def test_withheld_body_gets_408_at_the_body_deadline_and_the_app_reads_a_disconnect(server):
    loop, _, connect = server
    proto, t = connect()
    proto.data_received(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
    cycle = proto.cycle
    loop.advance(4.9)  # past the head deadline: the head is complete, the body has its own
    assert not t.out
    loop.advance(0.2)
    assert status_of(t.out) == 408 and "body_read_timeout_s=5.0" in json_body(t.out)["message"]
    assert cycle.disconnected and cycle.scope[TIMED_OUT] and cycle.message_event.is_set()


def test_trickled_body_is_one_deadline_not_one_per_read(server):
    loop, _, connect = server
    proto, t = connect()
    proto.data_received(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
    for _ in range(20):
        loop.advance(0.3)
        if t.out:
            break
        proto.data_received(b"a")
    assert status_of(t.out) == 408
    assert loop.now - 1000.0 <= 5.0 + 0.3


def test_body_in_time_disarms_the_deadline_and_the_next_request_has_its_own(server):
    loop, _, connect = server
    proto, t = connect()
    proto.data_received(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nab")
    loop.advance(4.0)
    proto.data_received(b"c")
    finish_response(proto)
    loop.advance(3.0)  # idle between requests is uvicorn's keep-alive timer, not a deadline
    assert status_of(t.out) == 200 and b"408" not in t.out
    start = len(t.out)
    proto.data_received(b"GET /y HTTP/1.1\r\n")  # the second request's clock starts at its first byte
    loop.advance(1.9)
    assert len(t.out) == start
    loop.advance(0.2)
    assert status_of(t.out[start:]) == 408


def test_an_answered_request_whose_body_never_ends_is_closed_at_the_deadline(server):
    loop, _, connect = server
    proto, t = connect()
    proto.data_received(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
    finish_response(proto)  # answered (a 404, say) without reading the body
    loop.advance(5.1)
    assert status_of(t.out) == 200 and b"408" not in t.out
    assert t.eof or t.closed


def test_huge_header_value_sent_in_pieces_gets_431_before_it_is_buffered(server):
    loop, _, connect = server
    proto, t = connect()
    proto.data_received(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ")
    sent = 0
    while not t.out and sent < 5 * 1024 * 1024:
        proto.data_received(b"v" * 1000)  # httptools calls nothing back for a partial value
        sent += 1000
    assert status_of(t.out) == 431 and sent <= LIMITS.max_header_bytes + 1000  # within one read of the cap
    assert proto.cycle is None  # the app never saw it
    proto.data_received(b"v" * 1000)  # dropped, not parsed


def test_many_headers_in_one_read_get_431(server):
    _, _, connect = server
    proto, t = connect()
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(60))
    proto.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert status_of(t.out) == 431 and proto.cycle is None


def test_a_head_just_under_the_cap_passes(server):
    _, _, connect = server
    proto, t = connect()
    proto.data_received(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: " + b"v" * 3900 + b"\r\n\r\n")
    assert not t.out and proto.cycle is not None


def test_pipelined_small_requests_are_not_counted_as_one_head(server):
    _, _, connect = server
    proto, t = connect()
    one = b"GET /p HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 900 + b"\r\n\r\n"
    proto.data_received(one * 10 + one[:500])  # 10 KB in one read, over the 4 KB cap
    assert not t.out and len(proto.pipeline) == 9


def test_connections_beyond_the_limit_get_503_and_are_not_counted(server):
    loop, state, connect = server
    (p1, t1), (p2, t2) = connect(), connect()
    p3, t3 = connect()
    assert not t1.out and not t2.out
    assert status_of(t3.out) == 503 and json_body(t3.out)["error"] == "TooManyConnections"
    assert t3.eof and state.connections == {p1, p2}
    p3.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # read and dropped
    assert p3.cycle is None
    p1.connection_lost(None)
    p4, t4 = connect()  # a slot is free again
    assert not t4.out and p4 in state.connections


def test_garbage_gets_a_json_400_and_a_half_close(server):
    loop, _, connect = server
    proto, t = connect()
    proto.data_received(b"\x00\x01\x02 not http\r\n\r\n")
    assert status_of(t.out) == 400 and json_body(t.out)["error"] == "BadRequest"
    assert t.eof
    loop.advance(1.0)
    assert t.closed


def test_a_rejection_during_an_earlier_response_closes_without_writing(server):
    loop, _, connect = server
    proto, t = connect()
    proto.data_received(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")  # its answer is still being computed
    proto.data_received(b"GET /next HTTP/1.1\r\nX-Big: " + b"v" * 5000)
    assert t.closed and not t.out  # a 431 here would read as the answer to /slow


def test_a_pipelined_head_waiting_behind_an_unanswered_request_is_not_late(server):
    loop, _, connect = server
    proto, t = connect()
    proto.data_received(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\n")
    loop.advance(2.1)  # /slow is still being answered: the connection is held by it anyway
    assert not t.out and not t.closed and not t.eof
    finish_response(proto)
    loop.advance(2.1)
    assert status_of(t.out) == 200 and b"408 Request Timeout" in t.out


def test_broken_chunked_body_gets_400_and_the_app_reads_a_disconnect(server):
    _, _, connect = server
    proto, t = connect()
    proto.data_received(b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    cycle = proto.cycle
    proto.data_received(b"zz\r\nabc\r\n")
    assert status_of(t.out) == 400 and t.eof
    assert cycle.disconnected and cycle.message_event.is_set()


def test_connection_lost_cancels_the_request_task_and_the_timers(server):
    loop, _, connect = server
    proto, t = connect()
    proto.data_received(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
    task = loop.tasks[-1]
    proto.connection_lost(None)
    assert task.cancelled and all(timer.cancelled for timer in loop.timers)


@pytest.mark.parametrize("version", ["0.45.9", "0.56.0", "1.0.0", "dev"])
def test_unsupported_uvicorn_fails_loudly_naming_versions_and_fix(version):
    with pytest.raises(UnsupportedUvicornError) as e:
        check_uvicorn(version)
    msg = str(e.value)
    low, high = SUPPORTED_UVICORN
    assert version in msg and f"pip install 'uvicorn>={low[0]}.{low[1]},<{high[0]}.{high[1]}'" in msg


def test_installed_uvicorn_is_supported_and_pyproject_pins_the_same_range():
    check_uvicorn()
    deps = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]["dependencies"]
    (pin,) = [d for d in deps if d.startswith("uvicorn")]
    low, high = SUPPORTED_UVICORN
    assert pin.replace(" ", "") == f"uvicorn>={low[0]}.{low[1]},<{high[0]}.{high[1]}"


def test_client_message_is_one_line_unless_debug():
    err = UserCodeError("Outer", "ValueError", "bad input", "Traceback (most recent call last):\n  File secret.py\n")
    assert client_message(err) == "ValueError in deployment 'Outer': bad input"
    assert "secret.py" in client_message(err, debug=True)
    assert len(client_message(ValueError("x" * 1000))) == 300


def test_http_options_check_deadlines_and_tls_together():
    assert HTTPOptions().max_connections == 10_000 and not HTTPOptions().debug_errors
    with pytest.raises(ConfigError, match="header_timeout_s"):
        parse(HTTPOptions, {"header_timeout_s": 60, "body_read_timeout_s": 30})
    with pytest.raises(ConfigError, match="ssl_certfile and ssl_keyfile together"):
        parse(HTTPOptions, {"ssl_certfile": "/c.pem"})
    with pytest.raises(ConfigError, match="ssl_keyfile_password"):
        parse(HTTPOptions, {"ssl_ca_certs": "/ca.pem"})
    assert parse(HTTPOptions, {"ssl_certfile": "/c.pem", "ssl_keyfile": "/k.pem"}).ssl_certfile == "/c.pem"
