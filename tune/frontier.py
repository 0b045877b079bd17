"""The cost versus SLO attainment frontier: the settings no other setting beats on both (as
cheap or cheaper, attaining as much or more, and strictly better on one). Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Point:
    key: str  # the candidate's label
    cost: float  # replica-seconds (or CPU-seconds)
    attainment: float  # share of good requests, 0..1


def dominates(a: Point, b: Point) -> bool:
    """``a`` is at least as good as ``b`` on both and strictly better on one."""
    return a.cost <= b.cost and a.attainment >= b.attainment and (a.cost < b.cost or a.attainment > b.attainment)


def pareto(points: Sequence[Point]) -> list[Point]:
    """The non-dominated points, cheapest first. Equal points are all kept."""
    ordered = sorted(points, key=lambda p: (p.cost, -p.attainment, p.key))
    out: list[Point] = []
    best = -1.0
    for p in ordered:
        if p.attainment > best or (out and p.cost == out[-1].cost and p.attainment == out[-1].attainment):
            if p.attainment > best:
                best = p.attainment
            out.append(p)
    return out


def cheapest_meeting(points: Sequence[Point], attainment: float) -> Point | None:
    """The cheapest point attaining at least ``attainment`` (None: none does)."""
    good = [p for p in points if p.attainment >= attainment]
    return min(good, key=lambda p: (p.cost, -p.attainment, p.key)) if good else None
