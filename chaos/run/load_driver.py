"""The load a run drives: what the load generator is asked to do (``LoadRequest``), what the
runner reads back (``LoadProgress``), the ``LoadDriver`` protocol the runner sees, and the
default driver, ``LocustLoad``, wrapping ``loadgen.runner.LoadRun`` (imported lazily).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from chaos.run.journal import to_plain


@dataclass(frozen=True)
class LoadProgress:
    sent: int = 0
    ok: int = 0
    failed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadRequest:
    """What the load generator is asked to do (loadgen.runner.LoadRun's arguments)."""

    profile: Any  # loadgen.profile.LoadProfile
    targets: list[str]  # proxy base URLs
    route: str
    method: str
    payload: Any  # a JSON body, or None
    payload_name: str | None  # loadgen's example:NAME
    payload_file: str | None
    out_dir: str
    workers: int
    timeout_s: float
    metrics_port: int | None
    metrics_host: str = "127.0.0.1"  # 0.0.0.0 where Prometheus runs elsewhere (compose)
    retry_reset: bool = False  # loadgen's: an idempotent request reset before any answer goes to the next proxy


class LoadDriver(Protocol):
    def start(self) -> None: ...

    def progress(self) -> LoadProgress: ...

    def stop(self) -> None: ...

    def wait(self) -> dict[str, Any]:
        """Block until the load has ended; the client summary."""
        ...

    @property
    def records_path(self) -> str | None:
        """The JSONL file of per-request records."""
        ...


LoadFactory = Callable[[LoadRequest], LoadDriver]


class LocustLoad:
    """``loadgen.runner.LoadRun`` behind ``LoadDriver``."""

    def __init__(self, request: LoadRequest) -> None:
        from loadgen.runner import LoadRun

        self.run = LoadRun(request.profile, request.targets, route=request.route, method=request.method,
                           payloads=payloads_of(request), out_dir=request.out_dir, workers=request.workers,
                           timeout_s=request.timeout_s, metrics_port=request.metrics_port or 0,
                           metrics_host=request.metrics_host, retry_reset=request.retry_reset)

    def start(self) -> None:
        self.run.start()

    @property
    def metrics_endpoints(self) -> list[str]:
        return list(self.run.metrics_endpoints)

    def progress(self) -> LoadProgress:
        return normalize_progress(self.run.progress())

    def stop(self) -> None:
        self.run.stop()

    def wait(self) -> dict[str, Any]:
        summary = to_plain(self.run.wait())
        return summary if isinstance(summary, dict) else {"summary": summary}

    @property
    def records_path(self) -> str | None:
        summary = self.run.summary
        if summary is not None and summary.records_path:
            return str(summary.records_path)
        return str(self.run.dir.records)


def payloads_of(request: LoadRequest) -> list[Any]:
    """Request bodies: the inline payload, a named payload's bodies, a .json file's body, or a
    .jsonl file's bodies."""
    if request.payload_name:
        from loadgen.payloads import example

        return list(example(request.payload_name).bodies())
    if request.payload_file:
        with open(request.payload_file) as f:
            if request.payload_file.endswith(".jsonl"):
                return [json.loads(line) for line in f if line.strip()]
            return [json.load(f)]
    return [] if request.payload is None else [request.payload]


def normalize_progress(p: Any) -> LoadProgress:
    """A LoadProgress from ``LoadRun.progress()`` (loadgen.progress.Progress, or a mapping)."""
    d = to_plain(p)
    if not isinstance(d, dict):
        return LoadProgress(extra={"progress": d})

    def first(*keys: str) -> int | None:
        for k in keys:
            if isinstance(d.get(k), int | float):
                return int(d[k])
        return None

    sent = first("started", "sent", "requests") or 0
    failed = first("failed", "failures", "errors") or 0
    ok = first("ok", "succeeded")
    return LoadProgress(sent, ok if ok is not None else max(0, sent - failed), failed, d)
