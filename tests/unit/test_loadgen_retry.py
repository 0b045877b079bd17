"""loadgen's second attempt: a refused connection always goes to the next target; an idempotent
request whose connection ended before any answer goes there only with retry_reset (a load
balancer's retry), and the records and the summary say which. Real loopback sockets."""

import socket
import struct
import threading
import time

import pytest

from loadgen.http_client import RequestFailed, Target, encode_request, exchange
from loadgen.open_loop import retry_reason
from loadgen.profile import Constant
from loadgen.spec import LoadSpec
from loadgen.summary import summarize


def one_shot_server(reply: bytes | None):
    """Accept one connection, read the request, send ``reply`` (None: nothing) and reset it."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve():
        conn, _ = listener.accept()
        conn.recv(65536)
        if reply:
            conn.sendall(reply)
            time.sleep(0.05)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST, as a killed process
        conn.close()
        listener.close()

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{port}"


def attempt(url):
    target = Target(url)
    with pytest.raises(RequestFailed) as failed:
        exchange(target, "GET", encode_request(target, "GET", "/", None, {}), time.monotonic() + 5, 10)
    return failed.value


def test_a_reset_before_any_answer_is_unanswered_and_one_after_part_of_it_is_not():
    first = attempt(one_shot_server(None))
    assert first.kind == "reset" and first.unanswered and not first.connect
    partial = attempt(one_shot_server(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"))
    assert partial.kind == "reset" and not partial.unanswered


def spec(method="GET", retry_reset=True):
    return LoadSpec(profile=Constant(rate=1, duration_s=1), targets=["http://127.0.0.1:1", "http://127.0.0.1:2"],
                    method=method, retry_reset=retry_reset)


def test_only_an_unanswered_idempotent_request_is_sent_again_and_only_when_asked():
    reset = RequestFailed("reset", "", unanswered=True)
    assert retry_reason(reset, spec(), 2) == "reset"
    assert retry_reason(reset, spec(method="POST"), 2) is None  # not idempotent: the server may have acted on it
    assert retry_reason(reset, spec(retry_reset=False), 2) is None  # a client that talks to one proxy loses it
    assert retry_reason(RequestFailed("reset", "", unanswered=False), spec(), 2) is None  # part of an answer came
    assert retry_reason(RequestFailed("timeout", ""), spec(), 2) is None
    assert retry_reason(RequestFailed("refused", "", connect=True), spec(retry_reset=False), 2) == "refused"
    assert retry_reason(reset, spec(), 1) is None  # no other target


def test_the_summary_counts_retries_after_a_reset_apart():
    base = {"intended": 0.0, "started": 0.0, "target": "t", "route": "/", "method": "GET", "status": 200,
            "error": None, "latency_s": 0.01, "late": False}
    records = [{**base, "seq": 0, "retried": False, "retry": None},
               {**base, "seq": 1, "retried": True, "retry": "refused"},
               {**base, "seq": 2, "retried": True, "retry": "reset"}]
    s = summarize(records, scheduled=3)
    assert (s.ok, s.retried, s.retried_after_reset) == (3, 2, 1)
