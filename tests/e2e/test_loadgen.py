"""Open-loop load through real Locust subprocesses against a real HTTP server on 127.0.0.1.

The server (asyncio, in a thread of the test process) counts what it receives and can stall:
every request arriving in a window is held until the window ends, as a frozen server would.
Assertions are about counts and about latency lower bounds that follow from the open-loop
design, never about how fast this machine is.
"""

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from loadgen.errors import TargetUnreachable
from loadgen.progress import Phase
from loadgen.records import read_records
from loadgen.runner import LoadRun
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


class StallServer:
    """HTTP/1.1 keep-alive server answering 200 {"ok": true}. With ``stall_s``, requests arriving
    from ``stall_after_s`` after the first request until ``stall_s`` later are held to the end."""

    def __init__(self, stall_after_s: float | None = None, stall_s: float = 0.0) -> None:
        self.stall_after_s, self.stall_s = stall_after_s, stall_s
        self.count = 0
        self.bodies: list[bytes] = []
        self.methods: set[str] = set()
        self.window: tuple[float, float] | None = None  # unix times
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.port = 0
        self._tasks: set[asyncio.Task] = set()

    def __enter__(self) -> "StallServer":
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=2048)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stop.wait()
        server.close()
        for task in self._tasks:  # handlers still holding stalled requests
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                length = 0
                while (header := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = header.decode("latin-1").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                body = await reader.readexactly(length) if length else b""
                now = time.time()
                self.count += 1
                self.methods.add(line.split()[0].decode())
                if len(self.bodies) < 50:
                    self.bodies.append(body)
                if self.window is None and self.stall_after_s is not None:
                    start = now + self.stall_after_s
                    self.window = (start, start + self.stall_s)
                if self.window and self.window[0] <= now < self.window[1]:
                    await asyncio.sleep(self.window[1] - now)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 12\r\n\r\n"
                             b'{"ok": true}')
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client gave up (timeout) or went away, or the test is over
        finally:
            writer.close()
            self._tasks.discard(task)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens here once closed: connections are refused


def constant(rate: float, duration_s: float) -> dict:
    return {"kind": "constant", "rate": rate, "duration_s": duration_s}


def locust_request_count(out: Path) -> int:
    rows = (out / "locust_stats.csv").read_text().splitlines()
    aggregated = next(r for r in rows if r.startswith(",Aggregated,"))
    return int(aggregated.split(",")[2])


def test_stall_shows_as_latency_from_the_intended_start_not_as_fewer_requests(tmp_path):
    with StallServer(stall_after_s=3.5, stall_s=5.0) as server:
        run = LoadRun(constant(100, 12), [server.url], out_dir=tmp_path / "out", timeout_s=8.0, linger_s=0.0)
        summary = run.start().wait()
        received = server.count
    assert summary.scheduled == 1200
    assert (summary.sent, summary.missed_starts, summary.not_started) == (1200, 0, 0)
    assert summary.complete and summary.ok == 1200
    assert received == 1200  # each request sent exactly once

    records = list(read_records(Path(summary.records_path)))
    assert [r["seq"] for r in records] == list(range(1200))
    assert server.window is not None
    start, end = server.window
    stalled = [r for r in records if start <= r["intended"] < end]
    assert len(stalled) >= 300  # the window is inside the run
    for r in stalled:
        # Sent at or after its intended time, answered no earlier than the stall's end.
        assert r["ok"] and r["latency_s"] >= end - r["intended"] - 0.02, r
    assert summary.latency_s.max >= 4.0
    assert locust_request_count(tmp_path / "out") == 1200  # Locust's own stats saw every request


def test_two_locust_workers_send_the_same_schedule(tmp_path):
    with StallServer() as server:
        run = LoadRun(constant(100, 4), [server.url], out_dir=tmp_path / "out", workers=2, linger_s=0.0)
        summary = run.start().wait()
        received = server.count
    assert (summary.scheduled, summary.sent, summary.ok, summary.missed_starts) == (400, 400, 400, 0)
    assert summary.complete and summary.workers == 2
    assert received == 400
    records = list(read_records(Path(summary.records_path)))
    assert [r["seq"] for r in records] == list(range(400))
    assert {r["shard"] for r in records if r["seq"] % 2 == 0} == {0}
    assert {r["shard"] for r in records if r["seq"] % 2 == 1} == {1}
    assert len(run.metrics_endpoints) == 2
    assert locust_request_count(tmp_path / "out") == 400  # the master aggregated both workers


def test_refused_connection_is_retried_once_on_the_next_target(tmp_path):
    dead = f"http://127.0.0.1:{closed_port()}"
    with StallServer() as server:
        run = LoadRun(constant(100, 2), [dead, server.url], out_dir=tmp_path / "out", linger_s=0.0)
        summary = run.start().wait()
        received = server.count
    assert any("unreachable at start" in w for w in run.warnings)
    assert (summary.sent, summary.ok, summary.failed) == (200, 200, 0)
    assert summary.retried == 100  # every request whose turn was the dead target
    assert received == 200
    records = list(read_records(Path(summary.records_path)))
    assert all(r["retried"] == (r["seq"] % 2 == 0) for r in records)
    assert {r["target"] for r in records} == {server.url}


class ResetServer:
    """Accepts connections, reads each request and resets the connection without an answer: a
    proxy killed with requests in flight on it."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.count = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        import struct

        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            if conn.recv(65536):
                self.count += 1
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()


@pytest.mark.parametrize("retry_reset", [False, True])
def test_a_request_reset_before_any_answer_is_lost_unless_retried_as_a_load_balancer_would(tmp_path, retry_reset):
    resetting = ResetServer()
    with StallServer() as server:
        run = LoadRun(constant(50, 2), [resetting.url, server.url], out_dir=tmp_path / "out", linger_s=0.0,
                      retry_reset=retry_reset)
        summary = run.start().wait()
    resetting.listener.close()
    assert summary.sent == 100 and resetting.count == 50  # every other request reached the resetting target
    records = list(read_records(Path(summary.records_path)))
    if retry_reset:
        assert (summary.ok, summary.failed, summary.retried_after_reset) == (100, 0, 50)
        assert all(r["retry"] == ("reset" if r["seq"] % 2 == 0 else None) for r in records)
    else:
        assert (summary.ok, summary.failed_by_cause, summary.retried_after_reset) == (50, {"reset": 50}, 0)


def test_unanswered_requests_fail_at_the_timeout_from_intended_start(tmp_path):
    with StallServer(stall_after_s=0.0, stall_s=6.0) as server:
        run = LoadRun(constant(50, 1), [server.url], out_dir=tmp_path / "out", timeout_s=1.0, linger_s=0.0)
        summary = run.start().wait()
    assert (summary.sent, summary.ok, summary.failed_by_cause) == (50, 0, {"timeout": 50})
    records = list(read_records(Path(summary.records_path)))
    assert all(r["error"] == "timeout" and r["status"] is None and r["latency_s"] >= 1.0 for r in records)


def test_stop_mid_run_records_in_flight_requests_as_cancelled(tmp_path):
    with StallServer(stall_after_s=0.0, stall_s=30.0) as server:  # nothing is answered
        run = LoadRun(constant(50, 10), [server.url], out_dir=tmp_path / "out", timeout_s=20.0).start()
        wait_for(lambda: run.progress().started >= 20, 30, "20 requests started",
                 detail=lambda: f"started: {run.progress().started}")
        summary = run.stop()
    assert not summary.complete and not run.running
    assert summary.cancelled == summary.sent >= 20 and summary.ok == summary.failed == 0
    assert summary.not_started == 500 - summary.sent
    records = list(read_records(Path(summary.records_path)))
    assert len(records) == summary.sent and all(r["error"] == "cancelled" for r in records)


def test_prometheus_endpoint_counts_match_the_records(tmp_path):
    dead = f"http://127.0.0.1:{closed_port()}"
    with StallServer() as server:
        run = LoadRun(constant(100, 2), [dead, server.url], route="/score", method="POST", payload={"x": 1},
                      out_dir=tmp_path / "out", linger_s=60.0)
        run.start()
        try:
            def lingering():  # every request done, metrics still served
                assert run.running, "the load run ended before lingering"
                return run.progress().phase == Phase.LINGERING

            wait_for(lingering, 60, "the load run lingering", detail=lambda: f"phase: {run.progress().phase}")
            (endpoint,) = run.metrics_endpoints
            text = urllib.request.urlopen(f"http://{endpoint}/metrics", timeout=10).read().decode()
        finally:
            summary = run.stop()
    assert summary.complete  # stopped while lingering: every request had its answer
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples[("loadgen_requests_total", (("route", "/score"), ("status", "200")))] == summary.ok == 200
    assert samples[("loadgen_request_latency_seconds_count", (("route", "/score"),))] == summary.sent
    assert samples[("loadgen_connection_retries_total", ())] == summary.retried == 100
    assert samples[("loadgen_late_starts_total", ())] == summary.late_starts
    assert samples[("loadgen_missed_starts_total", ())] == summary.missed_starts == 0
    buckets = [s for (name, labels), s in samples.items() if name == "loadgen_request_latency_seconds_bucket"]
    assert len(buckets) == 28  # the server side's 27 bounds plus +Inf
    port = (tmp_path / "out" / "run" / "metrics-0.port").read_text().strip()
    assert endpoint.endswith(f":{port}")
    assert json.loads((tmp_path / "out" / "prometheus_targets.json").read_text())[0]["targets"] == [endpoint]
    assert server.methods == {"POST"} and json.loads(server.bodies[0]) == {"x": 1}


def test_cli_run_with_an_example_payload_prints_the_summary(tmp_path):
    with StallServer() as server:
        out = tmp_path / "out"
        proc = subprocess.run(
            [sys.executable, "-m", "loadgen", "run", "--rate", "50", "--duration", "2", "--target", server.url,
             "--payload-from", "example:sklearn", "--out", str(out), "--linger-s", "0"],
            capture_output=True, text=True, timeout=120, cwd=REPO,
        )
        bodies = list(server.bodies)
    assert proc.returncode == 0, proc.stderr
    assert "100 scheduled, 100 sent, 100 ok, 0 failed" in proc.stdout
    assert json.loads((out / "summary.json").read_text())["sent"] == 100
    assert all(len(json.loads(b)["features"][0]) == 4 for b in bodies)


def test_no_reachable_target_fails_before_starting_locust(tmp_path):
    run = LoadRun(constant(10, 1), [f"http://127.0.0.1:{closed_port()}"], out_dir=tmp_path / "out")
    with pytest.raises(TargetUnreachable, match="no target is reachable.*Fix: start the server"):
        run.start()
    assert not run.running and not (tmp_path / "out" / "logs").exists()
