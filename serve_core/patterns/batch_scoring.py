"""Batch scoring: a dataset through a running deployment in mini-batches, results written as
each batch finishes, resumable after a crash without scoring finished items again.

Items are JSON values, one per line of ``.jsonl`` files (a file, or every ``*.jsonl`` of a
directory in name order), or any iterable through :func:`score`. An item's key is its
``"id"`` field when it is an object with one, else ``FILE:LINE``. The deployment's method
takes a list of items and returns a list of results of the same length (a ``@serve.batch``
method or a plain one). Every finished item is one line ``{"id": KEY, "result": ...}`` of the
output file, flushed at once; on a restart the keys already there are skipped, and a line cut
short by the crash is dropped. A batch that still fails after its retries is written to
``OUT.errors.jsonl`` (this run's failures only) and not to the output, so the next run scores
it again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serve_core.errors import ConfigError, ServeCoreError

log = logging.getLogger("serve_core.patterns.batch_scoring")
PROGRESS_EVERY_S = 5.0


@dataclass
class ScoreSummary:
    total: int = 0  # items seen in the input
    skipped: int = 0  # finished by an earlier run
    scored: int = 0  # finished by this run
    failed: int = 0  # in batches that failed (written to the errors file)
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return self.failed == 0 and self.skipped + self.scored == self.total


def read_jsonl(paths: Iterable[Path]) -> Iterator[tuple[str, Any]]:
    """(key, item) for every non-empty line; a bad line names its file and line."""
    for path in paths:
        with open(path) as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ConfigError(f"{path}:{n}", line.strip()[:80], f"is not JSON ({e.msg}): one JSON value per line") from None
                key = item.get("id") if isinstance(item, dict) else None
                yield (str(key) if key is not None else f"{path.name}:{n}"), item


def input_files(path: str) -> list[Path]:
    p = Path(path)
    if p.is_dir():
        files = sorted(p.glob("*.jsonl"))
        if not files:
            raise ConfigError("input", path, "the directory has no *.jsonl files")
        return files
    if not p.is_file():
        raise ConfigError("input", path, "no such file or directory: give a .jsonl file or a directory of them")
    return [p]


def finished_keys(out: Path) -> set[str]:
    """Keys already in the output; a last line cut short by a crash is truncated away."""
    if not out.exists():
        return set()
    keys: set[str] = set()
    good = 0  # bytes up to the end of the last whole line
    with open(out, "rb") as f:
        for raw in f:
            try:
                key = str(json.loads(raw)["id"])
            except (ValueError, KeyError, TypeError):
                break
            if not raw.endswith(b"\n"):
                break
            keys.add(key)
            good += len(raw)
        else:
            return keys
    log.warning("dropping a cut-short line at the end of %s (the previous run died while writing it)", out)
    with open(out, "r+b") as f:
        f.truncate(good)
    return keys


async def _batches(items: Iterable[tuple[str, Any]], done: set[str], size: int, summary: ScoreSummary) -> AsyncIterator[list[tuple[str, Any]]]:
    batch: list[tuple[str, Any]] = []
    for key, item in items:
        summary.total += 1
        if key in done:
            summary.skipped += 1
            continue
        batch.append((key, item))
        if len(batch) == size:
            yield batch
            batch = []
        await asyncio.sleep(0)  # a large input does not hold the loop
    if batch:
        yield batch


async def score_async(
    items: Iterable[tuple[str, Any]], handle: Any, out: str | Path, batch_size: int = 32,
    concurrency: int = 4, retries: int = 2, progress: bool = True,
) -> ScoreSummary:
    """Score ``(key, item)`` pairs through ``handle`` (a DeploymentHandle, with the method
    chosen by ``handle.options(method_name=...)``) and append results to ``out``."""
    if batch_size < 1:
        raise ConfigError("batch_size", batch_size, "give a batch size of at least 1")
    if concurrency < 1:
        raise ConfigError("concurrency", concurrency, "give at least 1 batch in flight")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    errors_path = out.with_name(out.name + ".errors.jsonl")
    done = finished_keys(out)
    summary = ScoreSummary()
    start = last_report = time.monotonic()
    # Batches are idempotent by construction (a result is only kept once written), so a
    # replica that dies holding one has it run again elsewhere.
    caller = handle.options(idempotent=True)
    slots = asyncio.Semaphore(concurrency)
    running: set[asyncio.Task[None]] = set()

    with open(out, "a") as results, open(errors_path, "w") as errors:  # errors: this run's only
        async def run(batch: list[tuple[str, Any]]) -> None:
            try:
                last: Exception | None = None
                for attempt in range(retries + 1):
                    try:
                        answers = await caller.remote([item for _, item in batch])
                        if not isinstance(answers, list) or len(answers) != len(batch):
                            got = f"{len(answers)} results" if isinstance(answers, list) else type(answers).__name__
                            raise ServeCoreError(f"the method returned {got} for a batch of {len(batch)}: "
                                                 "return one result per item, in order")
                        try:
                            lines = "".join(json.dumps({"id": k, "result": a}) + "\n" for (k, _), a in zip(batch, answers, strict=True))
                        except TypeError as e:
                            raise ServeCoreError(f"a result is not JSON ({e}): return JSON values") from None
                        results.write(lines)
                        results.flush()
                        summary.scored += len(batch)
                        return
                    except ServeCoreError as e:  # includes the user's exceptions, as UserCodeError
                        last = e
                        if attempt < retries:
                            await asyncio.sleep(0.5 * 2**attempt)
                summary.failed += len(batch)
                errors.write("".join(json.dumps({"id": k, "error": str(last)}) + "\n" for k, _ in batch))
                errors.flush()
                log.warning("a batch of %d failed after %d attempts: %s", len(batch), retries + 1, last)
            finally:
                slots.release()

        async for batch in _batches(items, done, batch_size, summary):
            await slots.acquire()
            task = asyncio.ensure_future(run(batch))
            running.add(task)
            task.add_done_callback(running.discard)
            now = time.monotonic()
            if progress and now - last_report >= PROGRESS_EVERY_S:
                last_report = now
                rate = summary.scored / (now - start)
                print(f"[score] {summary.skipped + summary.scored} of {summary.total}+ done "
                      f"({summary.scored} this run, {rate:.0f} items/s, {summary.failed} failed)", flush=True)
        if running:
            await asyncio.gather(*running)
    summary.seconds = time.monotonic() - start
    if summary.failed == 0 and errors_path.exists() and errors_path.stat().st_size == 0:
        os.remove(errors_path)
    return summary


def score(items: Iterable[tuple[str, Any]] | Iterable[Any], handle: Any, out: str | Path, **kw: Any) -> ScoreSummary:
    """:func:`score_async` from synchronous code. Plain items (not ``(key, item)`` pairs) are
    keyed by their position, so the same iterable resumes the same way."""
    pairs = (x if isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str) else (str(i), x)
             for i, x in enumerate(items))
    return asyncio.run(score_async(pairs, handle, out, **kw))
