"""Where the live view's data comes from: the run directories on disk, whether a run's runner
still runs, the target's status (refreshed in a thread: `cluster status` takes seconds) and the
run's series from the target's Prometheus, with the report's queries."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from chaos.run.journal import JOURNAL_FILE
from chaos.slo.prometheus import Prometheus
from chaos.slo.timeseries import PLOT_WINDOW_S, Collector, plot_queries, range_step

log = logging.getLogger("chaos.live")
REPORT_FILE = "report.html"
STEP_S = 1.0  # one point a second (coarser for long runs: range_step)
UNKNOWN_RUNNER_FRESH_S = 600.0


class Runs:
    """The run directories under ``root`` (each with a journal.json), newest first; journals
    are re-read only when their file changed."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}

    def ids(self) -> list[str]:
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        found = [n for n in names if os.path.isfile(os.path.join(self.root, n, JOURNAL_FILE))]
        return sorted(found, key=lambda n: os.path.getmtime(os.path.join(self.root, n, JOURNAL_FILE)), reverse=True)

    def journal(self, run_id: str) -> dict[str, Any] | None:
        if not run_id or os.sep in run_id or run_id.startswith("."):
            return None
        path = os.path.join(self.root, run_id, JOURNAL_FILE)
        try:
            mtime = os.path.getmtime(path)
            cached = self._cache.get(run_id)
            if cached and cached[0] == mtime:
                return cached[1]
            with open(path) as f:
                doc = json.load(f)
        except (OSError, ValueError):  # gone, or caught mid-rename on a filesystem without atomic replace
            cached = self._cache.get(run_id)
            return cached[1] if cached else None
        self._cache[run_id] = (mtime, doc)
        return doc

    def alive(self, run_id: str, journal: dict[str, Any]) -> bool:
        try:
            written = os.path.getmtime(os.path.join(self.root, run_id, JOURNAL_FILE))
        except OSError:
            written = None
        return runner_alive(journal, written)

    def has_report(self, run_id: str) -> bool:
        return os.path.isfile(os.path.join(self.root, run_id, REPORT_FILE))


def runner_alive(journal: dict[str, Any], written_at: float | None = None, now: float | None = None) -> bool:
    """Whether the process that writes ``journal`` still runs: by its pid on this machine; for a
    journal from elsewhere or from before runners recorded themselves, by whether it has no end
    and was written in the last ``UNKNOWN_RUNNER_FRESH_S``."""
    runner = journal.get("runner") or {}
    pid = runner.get("pid")
    if not pid or runner.get("host") != socket.gethostname():
        fresh = written_at is not None and (now or time.time()) - written_at < UNKNOWN_RUNNER_FRESH_S
        return not journal.get("end") and fresh
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StatusWatcher:
    """A target's status, asked for every ``every_s`` in a thread while someone looks (``wanted``
    in the last ``idle_s``); the last answer or error. Asking costs: the embedded cluster's
    status is a Ray driver started on the head (about a second of CPU), so nobody watching
    means nothing asked."""

    def __init__(self, status: Callable[[], dict[str, Any]], every_s: float = 5.0, idle_s: float = 30.0) -> None:
        self.status, self.every_s, self.idle_s = status, every_s, idle_s
        self.doc: dict[str, Any] | None = None
        self.error: str | None = None
        self.at: float | None = None
        self._wanted_at = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="live-status", daemon=True)

    def start(self) -> StatusWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def wanted(self) -> None:
        """Someone is looking: keep the status fresh for another ``idle_s``."""
        self._wanted_at = time.monotonic()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if time.monotonic() - self._wanted_at < self.idle_s:
                try:
                    self.doc, self.error = self.status(), None
                except Exception as e:  # a cluster going down is news for the page, not a crash
                    self.error = f"{type(e).__name__}: {e}"
                self.at = time.time()
            self._stop.wait(self.every_s)


def read_series(prometheus_url: str, backend: str, start: float, end: float) -> tuple[dict[str, Any], float]:
    """The report's plot series for [start, end], and the step they came at."""
    step = range_step(start, end, STEP_S)
    prom = Prometheus(prometheus_url, timeout_s=5.0)
    return Collector(prom, start, end).collect(plot_queries(backend, PLOT_WINDOW_S), step), step
