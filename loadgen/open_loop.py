"""The open-loop driver of one shard, run inside a Locust process (gevent).

Each intended start gets a greenlet of its own at its time, whatever earlier requests are doing,
so a stalled server shows as latency (measured from the intended start) and timeouts, not as
fewer requests. Two things can still bend the schedule, and both are counted: a start skipped
because the in-flight cap is reached (missed), and a start that runs late because this process
was busy (late; it is still sent).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import gevent
from gevent import Greenlet, GreenletExit

from loadgen.http_client import RequestFailed, Target, encode_request, exchange
from loadgen.layout import RunDir
from loadgen.metrics import LoadMetrics
from loadgen.progress import Phase, ShardProgress
from loadgen.records import CANCELLED, MISSED, Record, RecordWriter
from loadgen.spec import IDEMPOTENT, LoadSpec

log = logging.getLogger("loadgen.open_loop")

# (method, route, latency_s, body bytes, error or None, target) -> None; e.g. Locust's request event
OnRequest = Callable[[str, str, float, int, Exception | None, str], None]


class OpenLoop:
    def __init__(self, spec: LoadSpec, shard: list[tuple[int, float]], shard_index: int, run_dir: RunDir,
                 metrics: LoadMetrics | None = None, on_request: OnRequest | None = None) -> None:
        self.spec, self.shard, self.shard_index = spec, shard, shard_index
        self.run_dir, self.metrics, self.on_request = run_dir, metrics, on_request
        self.targets = [Target(url, spec.keepalive_idle_s) for url in spec.targets]
        bodies: list[bytes | None] = [json.dumps(p).encode() for p in spec.payloads] or [None]
        # Request bytes per (target, payload), built once.
        self.requests = [[encode_request(t, spec.method, spec.route, b, spec.headers) for b in bodies]
                         for t in self.targets]
        self.route_label = urlsplit(spec.route).path or "/"
        self.writer = RecordWriter(run_dir.records_part(shard_index))
        self.progress = ShardProgress(shard=shard_index, scheduled=len(shard))
        self.in_flight: dict[int, Greenlet] = {}
        self.finished = False  # every start passed and every request answered or failed
        self._t0_mono = 0.0

    # -- progress -------------------------------------------------------------------------

    def report(self, phase: Phase | None = None) -> None:
        if phase is not None:
            self.progress.phase = phase
        self.progress.in_flight = len(self.in_flight)
        self.writer.flush()
        self.progress.write(self.run_dir.progress(self.shard_index))

    def _reporter(self) -> None:
        while True:
            gevent.sleep(1.0)
            self.report()

    # -- the schedule ---------------------------------------------------------------------

    def run(self, t0_unix: float) -> None:
        """Send the shard's requests on schedule, then wait for every answer. ``t0_unix`` is the
        schedule's zero, common to all workers."""
        self._t0_mono = time.monotonic() + (t0_unix - time.time())
        self.progress.t0 = t0_unix
        self.report(Phase.RUNNING)
        log.info("shard=%d starts=%d t0=%.3f", self.shard_index, len(self.shard), t0_unix)
        reporter = gevent.spawn(self._reporter)
        try:
            cap = self.spec.max_in_flight
            for seq, offset in self.shard:
                intended = self._t0_mono + offset
                delay = intended - time.monotonic()
                if delay > 0:
                    gevent.sleep(delay)
                if len(self.in_flight) >= cap:
                    self._missed(seq, offset)
                    continue
                greenlet = gevent.spawn(self._one, seq, offset, intended)
                self.in_flight[seq] = greenlet
            # Every request ends by its deadline; the margin only covers scheduling noise.
            gevent.joinall(list(self.in_flight.values()), timeout=self.spec.timeout_s + 5)
            if self.in_flight:  # past their deadline and still running: this process is wedged
                log.warning("shard=%d cancelling %d requests past their deadline", self.shard_index,
                            len(self.in_flight))
                self.cancel()
            self.finished = True
        finally:
            reporter.kill(block=False)
        self.report(Phase.LINGERING)
        log.info("shard=%d done sent=%d ok=%d failed=%d late=%d missed=%d retried=%d", self.shard_index,
                 self.progress.started, self.progress.ok, self.progress.failed, self.progress.late,
                 self.progress.missed, self.progress.retried)

    def cancel(self) -> None:
        """Stop early: unanswered requests are recorded as cancelled."""
        for greenlet in list(self.in_flight.values()):
            greenlet.kill(block=True, timeout=1.0)
        # Greenlets killed before their first run never sent anything: no record, counted as not started.
        self.in_flight.clear()

    def close(self, phase: Phase) -> None:
        self.report(phase)
        self.writer.close()
        for target in self.targets:
            target.close()

    def _missed(self, seq: int, offset: float) -> None:
        self.progress.missed += 1
        if self.metrics:
            self.metrics.missed_starts.inc()
        self.writer.write(Record(seq, self.shard_index, self.progress.t0 + offset if self.progress.t0 else offset,
                                 None, None, self.spec.route, self.spec.method, None, MISSED, None))

    def _one(self, seq: int, offset: float, intended: float) -> None:
        spec, progress = self.spec, self.progress
        started = time.monotonic()
        started_unix = time.time()
        late = started - intended > spec.late_tolerance_s
        progress.started += 1
        if late:
            progress.late += 1
            if self.metrics:
                self.metrics.late_starts.inc()
        deadline = intended + spec.timeout_s
        index = seq % len(self.targets)
        body_index = seq % len(self.requests[0])
        status: int | None = None
        error: RequestFailed | None = None
        retry: str | None = None
        size = 0
        try:
            try:
                status, size = exchange(self.targets[index], spec.method, self.requests[index][body_index],
                                        deadline, spec.max_in_flight)
            except RequestFailed as first:
                retry = retry_reason(first, spec, len(self.targets))
                if retry is None:
                    raise
                # Sent once more, to the next target: it never reached the first (refused), or
                # (retry_reset) an idempotent request's connection ended before any answer.
                progress.retried += 1
                if self.metrics:
                    (self.metrics.connection_retries if retry == "refused" else self.metrics.reset_retries).inc()
                index = (index + 1) % len(self.targets)
                status, size = exchange(self.targets[index], spec.method, self.requests[index][body_index],
                                        deadline, spec.max_in_flight)
        except RequestFailed as failure:
            error = failure
        except Exception as exc:  # a bug here must not lose the record
            log.exception("shard=%d seq=%d unexpected error", self.shard_index, seq)
            error = RequestFailed("error", repr(exc))
        except GreenletExit:
            error = RequestFailed(CANCELLED, "the run was stopped first")
            raise
        finally:
            self.in_flight.pop(seq, None)
            latency = time.monotonic() - intended
            record = Record(seq, self.shard_index, (progress.t0 or 0.0) + offset, started_unix,
                            self.targets[index].url, spec.route, spec.method, status,
                            error.kind if error else None, latency, retry is not None, late, retry)
            self._account(record, size)

    def _account(self, record: Record, size: int) -> None:
        progress = self.progress
        progress.completed += 1
        if record.ok:
            progress.ok += 1
        else:
            progress.failed += 1
        status_label = record.error or str(record.status)
        latency = record.latency_s or 0.0
        if self.metrics and record.error != CANCELLED:  # cut short by a stop: not a judgement on the server
            self.metrics.requests.labels(self.route_label, status_label).inc()
            self.metrics.latency.labels(self.route_label).observe(latency)
        self.writer.write(record)
        if self.on_request:
            # One stable message per cause, so Locust's failure table has a row per cause.
            problem = None if record.ok else Failure(record.error or f"HTTP {record.status}")
            self.on_request(record.method, record.route, latency, size, problem, record.target or "")


def retry_reason(failure: RequestFailed, spec: LoadSpec, targets: int) -> str | None:
    """Why a failed first attempt may be sent to the next target, or None. Pure."""
    if targets < 2:
        return None
    if failure.connect:
        return "refused"
    if spec.retry_reset and failure.kind == "reset" and failure.unanswered and spec.method in IDEMPOTENT:
        return "reset"
    return None


class Failure(Exception):
    """A failed request as Locust's request event sees it."""
