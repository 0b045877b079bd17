"""Live counters: each Locust process rewrites its shard's file once a second; the runner adds them up."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ValidationError


class Phase(StrEnum):
    STARTING = "starting"  # process up, waiting for the common start time
    RUNNING = "running"  # sending
    LINGERING = "lingering"  # every request answered or failed; metrics still served
    FINISHED = "finished"
    STOPPED = "stopped"  # stopped before the end of its shard


class ShardProgress(BaseModel):
    shard: int
    phase: Phase = Phase.STARTING
    scheduled: int = 0
    started: int = 0  # requests sent
    completed: int = 0  # sent and answered or failed
    ok: int = 0
    failed: int = 0
    retried: int = 0
    late: int = 0
    missed: int = 0
    in_flight: int = 0
    t0: float | None = None  # unix time of the schedule's zero

    def write(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.model_dump_json())
        os.replace(tmp, path)  # readers never see half a file

    @classmethod
    def read(cls, path: Path) -> ShardProgress | None:
        try:
            return cls.model_validate(json.loads(path.read_text()))
        except (OSError, ValueError, ValidationError):
            return None


_ORDER = [Phase.STARTING, Phase.RUNNING, Phase.LINGERING, Phase.STOPPED, Phase.FINISHED]


class Progress(BaseModel):
    """The whole run: sums over shards; ``phase`` is the least advanced shard's."""

    phase: Phase = Phase.STARTING
    shards_reporting: int = 0
    workers: int = 1
    scheduled: int = 0
    started: int = 0
    completed: int = 0
    ok: int = 0
    failed: int = 0
    retried: int = 0
    late: int = 0
    missed: int = 0
    in_flight: int = 0
    elapsed_s: float | None = None

    @classmethod
    def combine(cls, shards: Sequence[ShardProgress | None], workers: int, scheduled: int,
                now: float | None = None) -> Progress:
        present = [s for s in shards if s is not None]
        phase = Phase.STARTING
        if len(present) == workers and present:
            phase = min((s.phase for s in present), key=_ORDER.index)
        t0s = [s.t0 for s in present if s.t0 is not None]
        return cls(
            phase=phase,
            shards_reporting=len(present),
            workers=workers,
            scheduled=scheduled,
            started=sum(s.started for s in present),
            completed=sum(s.completed for s in present),
            ok=sum(s.ok for s in present),
            failed=sum(s.failed for s in present),
            retried=sum(s.retried for s in present),
            late=sum(s.late for s in present),
            missed=sum(s.missed for s in present),
            in_flight=sum(s.in_flight for s in present),
            elapsed_s=(now - min(t0s)) if (now is not None and t0s) else None,
        )

    def line(self) -> str:
        elapsed = f"{self.elapsed_s:6.1f}s" if self.elapsed_s is not None else "   -  "
        return (f"loadgen {elapsed} {self.phase.value:9} sent {self.started}/{self.scheduled} ok {self.ok} "
                f"failed {self.failed} in-flight {self.in_flight} late {self.late} missed {self.missed} "
                f"retried {self.retried}")
