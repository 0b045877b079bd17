"""Weighted traffic splitting between versions (arms), sticky by a key.

A key (a user id, a session) hashes to a fixed point in [0, 1); arms own consecutive slices
of that interval by weight, so one key always lands on the same arm while the weights hold,
and when a weight grows, the keys that were in it stay there. A request without a key gets a
random point. Pure: no clock, no I/O; ``examples/ab_test`` and ``serve_core.patterns.canary`` use it.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping

from serve_core.errors import ConfigError


def bucket(key: str) -> float:
    """A key's fixed point in [0, 1), the same in every process (unlike ``hash``)."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def check_weights(weights: Mapping[str, float], field: str = "weights") -> dict[str, float]:
    """Weights as shares summing to 1, or ConfigError naming ``field``."""
    if len(weights) < 2:
        raise ConfigError(field, dict(weights), "give two or more arms, e.g. {a: 50, b: 50}")
    for arm, w in weights.items():
        if not isinstance(w, (int, float)) or isinstance(w, bool) or w < 0:
            raise ConfigError(f"{field}.{arm}", w, "give a number >= 0")
    total = float(sum(weights.values()))
    if total <= 0:
        raise ConfigError(field, dict(weights), "give at least one arm a weight above 0")
    return {arm: w / total for arm, w in weights.items()}


def pick(shares: Mapping[str, float], point: float) -> str:
    """The arm whose slice of [0, 1) holds ``point`` (slices in the mapping's order)."""
    edge = 0.0
    last = ""
    for arm, share in shares.items():
        edge += share
        if share > 0:
            last = arm
            if point < edge:
                return arm
    return last  # rounding left point just past the last edge


class Split:
    """An A/B split: ``assign`` gives the arm for a request."""

    def __init__(self, weights: Mapping[str, float], seed: int | None = None) -> None:
        self.shares = check_weights(weights)
        self._rng = random.Random(seed)

    def assign(self, key: str | None = None, forced: str | None = None) -> str:
        """``forced`` (an arm named by a request header) wins; then the key's slice."""
        if forced:
            if forced not in self.shares:
                raise ConfigError("arm", forced, f"name one of the arms: {', '.join(self.shares)}")
            return forced
        return pick(self.shares, bucket(key) if key else self._rng.random())
