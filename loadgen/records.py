"""Client-side truth: one record per scheduled request, JSON Lines.

Fields of a record (``records.jsonl``, sorted by ``seq``):

    seq         position in the whole schedule (0-based)
    shard       the worker that owned it
    intended    intended start, unix seconds
    started     actual start, unix seconds (null: never sent)
    target      base URL that answered, or the last one tried (null: never sent)
    route       path requested
    method      HTTP method
    status      HTTP status (null: no answer)
    error       null, or why there is no status: timeout, refused, unreachable, reset,
                protocol, connect_error, error, cancelled (run stopped first), missed (not sent:
                in-flight cap reached)
    latency_s   seconds from the INTENDED start to the full answer or the failure (null: never sent)
    retried     the first target refused the connection and the next one was tried
    late        sent more than the late tolerance after its intended time
    ok          status is 2xx
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

MISSED = "missed"
CANCELLED = "cancelled"


@dataclass(slots=True)
class Record:
    seq: int
    shard: int
    intended: float
    started: float | None
    target: str | None
    route: str
    method: str
    status: int | None
    error: str | None
    latency_s: float | None
    retried: bool = False
    late: bool = False
    retry: str | None = None  # why it was sent twice: "refused" (never reached the first target) or "reset"

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def to_json(self) -> str:
        data = asdict(self)
        data["ok"] = self.ok
        return json.dumps(data, separators=(",", ":"))


def cause(record: dict[str, Any]) -> str | None:
    """Why a sent request failed: its status ("503") or error kind ("timeout"); None when it succeeded."""
    status = record.get("status")
    if status is not None and 200 <= status < 300:
        return None
    if record.get("error"):
        return str(record["error"])
    return str(status)


class RecordWriter:
    """Appends records to a shard's file; buffered, flushed on request (once a second) and on close."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fh: IO[str] | None = open(path, "w", encoding="utf-8")  # noqa: SIM115 (closed in close())
        self.count = 0

    def write(self, record: Record) -> None:
        if self._fh is None:
            return  # closed by a stop: late answers are dropped, their rows already say cancelled
        self._fh.write(record.to_json() + "\n")
        self.count += 1

    def flush(self) -> None:
        if self._fh is not None:
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a file; a torn last line (a process killed mid-write) is skipped."""
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def merge_parts(parts: Iterable[Path], dest: Path) -> list[dict[str, Any]]:
    """Merge shard files into ``dest``, sorted by ``seq``; returns the records.
    A seq seen twice (cannot happen unless two processes claimed one shard) keeps the first."""
    by_seq: dict[int, dict[str, Any]] = {}
    for part in parts:
        if part.exists():
            for record in read_records(part):
                by_seq.setdefault(int(record["seq"]), record)
    records = [by_seq[k] for k in sorted(by_seq)]
    tmp = dest.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, separators=(",", ":")) + "\n")
    tmp.replace(dest)
    return records
