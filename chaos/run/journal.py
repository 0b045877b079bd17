"""Run events and the run journal.

The runner emits events; everything that records or shows a run (the journal, the
progress printer of the CLI, a report) is a listener on them, never code inside the
runner. ``Journal`` keeps the whole story of a run in one JSON document and rewrites it
atomically after every event that matters, so a crash leaves the journal up to that
moment: ``reports/chaos/<name>-<UTC timestamp>/journal.json``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger("chaos")

JOURNAL_FILE = "journal.json"
JOURNAL_VERSION = 1
RESOURCE_COLUMNS = ("pid", "role", "node", "rss_bytes", "open_fds")  # a resource sample's rows


# -- events -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    at: float  # unix seconds


@dataclass(frozen=True)
class RunStarted(Event):
    name: str
    experiment: dict[str, Any]  # as loaded, after overrides
    seed: int
    target: dict[str, Any]
    backend: str
    run_dir: str
    kind: str = "run_started"


@dataclass(frozen=True)
class Note(Event):
    """A step of the run worth a line: deployed, load started, the plan, ..."""

    message: str
    data: dict[str, Any] = field(default_factory=dict)
    kind: str = "note"


@dataclass(frozen=True)
class SchedulePlanned(Event):
    faults: list[dict[str, Any]]
    snapshot: dict[str, Any]
    kind: str = "schedule_planned"


@dataclass(frozen=True)
class LoadStarted(Event):
    """t=0 of the experiment's timeline."""

    proxies: list[str]
    kind: str = "load_started"


@dataclass(frozen=True)
class FaultStarted(Event):
    id: str
    phase: str  # "method" or "rollback"
    planned: dict[str, Any]
    offset_s: float | None  # seconds from the start of the load (None before it)
    kind: str = "fault_started"


@dataclass(frozen=True)
class FaultFinished(Event):
    id: str
    phase: str
    ok: bool
    started: float | None  # the command's own times (unix s) when it reported them
    ended: float | None
    output: dict[str, Any] | None  # the command's JSON
    error: str | None
    took_s: float
    kind: str = "fault_finished"


@dataclass(frozen=True)
class ProbeResult(Event):
    window: str  # before, during, after, whole
    start: float
    end: float
    results: list[dict[str, Any]]  # SLOResult fields: name, kind, value, ok, query, detail
    error: str | None = None
    kind: str = "probe_result"


@dataclass(frozen=True)
class Progress(Event):
    offset_s: float
    load: dict[str, Any]
    burn_rates: dict[str, float | None] = field(default_factory=dict)
    kind: str = "progress"


@dataclass(frozen=True)
class Abort(Event):
    reason: str
    condition: dict[str, Any] = field(default_factory=dict)
    offset_s: float | None = None
    kind: str = "abort"


@dataclass(frozen=True)
class SeriesCollected(Event):
    """Range queries over the run, read from Prometheus after the SLOs were judged, so a report can
    be drawn (and redrawn) from the journal alone. Each entry is ``{"query", "series": [{"labels",
    "points": [[unix s, value or null], ...]}], "error"}``; ``error`` says why an entry is missing."""

    start: float
    end: float
    step_s: float
    window_s: float  # rates and percentiles are over this much before each point
    series: dict[str, dict[str, Any]]  # plot name (requests, errors, p50, ..., replicas) -> entry
    # The rules chaos.slo.alerts generated, and each alert's condition (recording rules inlined) over
    # [start, end] at its group's interval: {"rules", "scale", "start", "end", "conditions": {key:
    # entry}}, or {"error"} when the rules could not be made.
    alerts: dict[str, Any] = field(default_factory=dict)
    kind: str = "series_collected"


@dataclass(frozen=True)
class ResourceSampled(Event):
    """Memory and open files of every process of the cluster at one moment (chaos.run.resources).
    Journaled without rewriting the file: the next event that matters writes it."""

    offset_s: float  # seconds from the start of the load
    every_s: float  # the sampling period
    procs: list[list[Any]]  # [pid, role, node, rss_bytes, open_fds] each (chaos.run.resources.COLUMNS)
    error: str | None = None  # why the processes could not be found or sampled this time
    kind: str = "resource_sampled"


@dataclass(frozen=True)
class RunFinished(Event):
    verdict: str  # passed, failed, aborted
    reasons: list[str]
    client_summary: dict[str, Any] | None
    crosscheck: dict[str, Any] | None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    kind: str = "run_finished"


class Listener(Protocol):
    def __call__(self, event: Event) -> None: ...


class EventBus:
    """Delivers events to listeners one at a time (faults emit from their own threads); a
    listener that raises is logged and does not stop the run."""

    def __init__(self, listeners: Iterable[Callable[[Event], None]] = ()) -> None:
        self.listeners = list(listeners)
        self._lock = threading.Lock()

    def add(self, listener: Callable[[Event], None]) -> None:
        self.listeners.append(listener)

    def emit(self, event: Event) -> None:
        with self._lock:
            for listener in self.listeners:
                try:
                    listener(event)
                except Exception:  # a broken printer must not break the experiment
                    log.exception("chaos: listener %r failed on %s", listener, type(event).__name__)


# -- the journal --------------------------------------------------------------------------------


def run_dir(out_root: str, name: str, started: float) -> str:
    """``<out_root>/<name>-<UTC YYYYmmdd-HHMMSS>``. Pure."""
    return os.path.join(out_root, f"{name}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime(started))}")


class Journal:
    """A listener that builds the journal document and writes it under ``directory``."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.path = os.path.join(directory, JOURNAL_FILE)
        self.doc: dict[str, Any] = {
            "version": JOURNAL_VERSION, "name": None, "experiment": None, "seed": None, "target": None,
            "backend": None, "start": None, "load_start": None, "end": None, "plan": [], "snapshot": None,
            "steady_state": {}, "faults": [], "rollbacks": [], "aborts": [], "notes": [], "client_summary": None,
            "crosscheck": None, "series": None, "alerts": None, "resources": None, "verdict": None, "reasons": [],
            "warnings": [], "error": None,
            "runner": {"pid": os.getpid(), "host": socket.gethostname()},  # the live view: is it still running?
        }
        self._open: dict[str, dict[str, Any]] = {}

    def __call__(self, event: Event) -> None:
        d = self.doc
        if isinstance(event, RunStarted):
            d.update(name=event.name, experiment=event.experiment, seed=event.seed, target=event.target,
                     backend=event.backend, start=event.at)
        elif isinstance(event, SchedulePlanned):
            d.update(plan=event.faults, snapshot=event.snapshot)
        elif isinstance(event, LoadStarted):
            d.update(load_start=event.at, proxies=event.proxies)
        elif isinstance(event, Note):
            d["notes"].append({"at": event.at, "message": event.message, **({"data": event.data} if event.data else {})})
        elif isinstance(event, FaultStarted):
            entry = {"id": event.id, **event.planned, "launched": event.at, "offset_s": event.offset_s,
                     "returned": None, "ok": None, "started": None, "ended": None, "output": None, "error": None}
            self._open[event.id] = entry
            d["faults" if event.phase == "method" else "rollbacks"].append(entry)
        elif isinstance(event, FaultFinished):
            found = self._open.pop(event.id, None)
            entry = found if found is not None else {"id": event.id}
            if found is None:
                d["faults" if event.phase == "method" else "rollbacks"].append(entry)
            entry.update(returned=event.at, ok=event.ok, started=event.started, ended=event.ended,
                         output=event.output, error=event.error, took_s=event.took_s)
        elif isinstance(event, ProbeResult):
            d["steady_state"][event.window] = {"start": event.start, "end": event.end, "results": event.results,
                                               **({"error": event.error} if event.error else {})}
        elif isinstance(event, Abort):
            d["aborts"].append({"at": event.at, "offset_s": event.offset_s, "reason": event.reason,
                                "condition": event.condition})
        elif isinstance(event, SeriesCollected):
            d.update(series={"start": event.start, "end": event.end, "step_s": event.step_s,
                             "window_s": event.window_s, "plots": event.series},
                     alerts=event.alerts or None)
        elif isinstance(event, RunFinished):
            d.update(end=event.at, verdict=event.verdict, reasons=event.reasons, client_summary=event.client_summary,
                     crosscheck=event.crosscheck, error=event.error, warnings=event.warnings)
        elif isinstance(event, Progress):
            return  # not journaled: Prometheus and the client records have the detail
        elif isinstance(event, ResourceSampled):
            res = d["resources"] = d["resources"] or {"every_s": event.every_s, "columns": list(RESOURCE_COLUMNS),
                                                      "samples": [], "errors": []}
            if event.error:
                res["errors"].append({"at": event.at, "offset_s": event.offset_s, "error": event.error})
            else:
                res["samples"].append({"at": event.at, "offset_s": event.offset_s, "procs": event.procs})
            return  # written with the next event: a sample every few seconds would rewrite a growing file
        self.write()

    def write(self) -> None:
        write_json_atomic(self.path, self.doc)


def write_json_atomic(path: str, doc: Any) -> None:
    """Write JSON to a temporary file in the same directory, then rename it over ``path``."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".journal-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=2, default=jsonable, sort_keys=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def jsonable(obj: Any) -> Any:
    """Dataclasses, pydantic models, mappings, sets, and anything else as its repr."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if isinstance(obj, Mapping):
        return dict(obj)
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    return repr(obj)


def to_plain(obj: Any) -> Any:
    """``obj`` as JSON-ready data (through ``jsonable``)."""
    return json.loads(json.dumps(obj, default=jsonable))


def load_journal(path: str) -> dict[str, Any]:
    with open(path) as f:
        return dict(json.load(f))
