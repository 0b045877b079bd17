"""The search of chaos.shrink.shrink, pure and generic: ``ddmin`` (delta debugging) reduces a failing
sequence to a 1-minimal failing subsequence, ``simplify`` tries simpler versions of each item,
and ``Memo`` is the predicate they call ("does this schedule fail?"): each schedule is run once,
and a budget stops the search (``Exhausted``) with the smallest failing schedule seen so far.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class Exhausted(Exception):
    """The budget is spent: no further run."""


class Memo(Generic[T]):
    """A predicate on schedules ("does it fail?") that runs each schedule once and stops at a
    budget: ``limit(runs so far)`` returns why no further run may start, or None."""

    def __init__(self, predicate: Callable[[tuple[T, ...]], bool], limit: Callable[[int], str | None]) -> None:
        self.predicate, self.limit = predicate, limit
        self.runs = 0
        self.known: dict[frozenset[T], bool] = {}
        self.stopped: str | None = None

    def __call__(self, items: Sequence[T]) -> bool:
        key = frozenset(items)
        if key in self.known:
            return self.known[key]
        why = self.limit(self.runs)
        if why is not None:
            self.stopped = why
            raise Exhausted(why)
        self.runs += 1
        self.known[key] = result = bool(self.predicate(tuple(items)))
        return result


def ddmin(items: Sequence[T], fails: Callable[[Sequence[T]], bool]) -> tuple[list[T], bool]:
    """Delta debugging (Zeller and Hildebrandt, 2002) from a failing ``items``: the failing
    subset it reduces to (in the original order), and whether it finished (True: 1-minimal,
    the empty schedule included; False: ``fails`` raised Exhausted and the result is the
    smallest failing schedule seen). ``items`` is assumed to fail."""
    current = list(items)
    n = 2
    try:
        while len(current) >= 2:
            chunks = _split(current, n)
            reduced = next((c for c in chunks if fails(c)), None)
            if reduced is not None:
                current, n = reduced, 2
                continue
            if n > 2:  # with two chunks the complements are the chunks
                comps = ([x for j, c in enumerate(chunks) if j != i for x in c] for i in range(len(chunks)))
                reduced = next((c for c in comps if fails(c)), None)
                if reduced is not None:
                    current, n = reduced, max(n - 1, 2)
                    continue
            if n >= len(current):
                break
            n = min(2 * n, len(current))
        if len(current) == 1 and fails([]):
            current = []
        return current, True
    except Exhausted:
        return current, False


def _split(items: list[T], n: int) -> list[list[T]]:
    size, extra = divmod(len(items), n)
    out, at = [], 0
    for i in range(n):
        step = size + (1 if i < extra else 0)
        out.append(items[at:at + step])
        at += step
    return [c for c in out if c]


def simplify(items: Sequence[T], steps: Sequence[Callable[[T], T | None]],
             fails: Callable[[Sequence[T]], bool]) -> tuple[list[T], bool]:
    """One pass: each step applied to each item in turn, kept when the schedule still fails
    (a step returning None or the same item is skipped). Returns the schedule and whether the
    pass finished within the budget."""
    current = list(items)
    try:
        for i in range(len(current)):
            for step in steps:
                simpler = step(current[i])
                if simpler is None or simpler == current[i]:
                    continue
                trial = current[:i] + [simpler] + current[i + 1:]
                if fails(trial):
                    current = trial
        return current, True
    except Exhausted:
        return current, False
