"""A weighted canary with gradual promotion and automatic rollback.

The canary's share of traffic climbs through ``steps`` (5%, 25%, 50%, then all of it). Each
step holds for ``step_s`` seconds and at least ``min_requests`` canary answers; it is then
judged on that step's answers alone: an error rate above ``max_error_rate`` or a p99 above
``max_p99_ms`` rolls the canary back (share 0, for good), otherwise it moves to the next step.
A breach rolls back as soon as it is seen, without waiting for the step to end. Requests are
sticky by key (``serve_core.patterns.traffic_split``): while the share only grows, a user who got the
canary keeps it.

The policy takes its clock as an argument and does no I/O; ``examples/canary`` puts it in
front of two deployments' handles. The share is exported as ``serve_core_canary_share``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from serve_core import metrics
from serve_core.errors import ConfigError
from serve_core.patterns.traffic_split import bucket

PROGRESSING, PROMOTED, ROLLED_BACK = "progressing", "promoted", "rolled_back"
STABLE, CANARY = "stable", "canary"


@dataclass
class CanaryPolicy:
    steps: Sequence[float] = (0.05, 0.25, 0.5, 1.0)
    step_s: float = 60.0
    min_requests: int = 50
    max_error_rate: float = 0.01
    max_p99_ms: float | None = None

    def __post_init__(self) -> None:
        steps = list(self.steps)
        if not steps or any(not 0 < s <= 1 for s in steps) or steps != sorted(steps):
            raise ConfigError("steps", steps, "give rising shares in (0, 1], e.g. [0.05, 0.25, 0.5, 1.0]")
        if steps[-1] != 1.0:
            raise ConfigError("steps", steps, "end with 1.0 (promotion sends the canary all traffic)")
        if self.step_s <= 0:
            raise ConfigError("step_s", self.step_s, "give seconds > 0")
        if self.min_requests < 1:
            raise ConfigError("min_requests", self.min_requests, "give at least 1")
        if not 0 <= self.max_error_rate < 1:
            raise ConfigError("max_error_rate", self.max_error_rate, "give a ratio in [0, 1), e.g. 0.01")
        if self.max_p99_ms is not None and self.max_p99_ms <= 0:
            raise ConfigError("max_p99_ms", self.max_p99_ms, "give milliseconds > 0, or leave it out")


@dataclass
class StepStats:
    ok: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def count(self) -> int:
        return self.ok + self.errors

    def p99_ms(self) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else 0.0


class Canary:
    def __init__(self, policy: CanaryPolicy, name: str = "canary", clock: Callable[[], float] = time.monotonic,
                 seed: int | None = None) -> None:
        self.policy, self.name, self.clock = policy, name, clock
        self.state = PROGRESSING
        self.step = 0
        self.step_started = clock()
        self.stats = StepStats()
        self.reason = ""
        self._rng = random.Random(seed)
        self._export()

    @property
    def share(self) -> float:
        if self.state == ROLLED_BACK:
            return 0.0
        return 1.0 if self.state == PROMOTED else self.policy.steps[self.step]

    def route(self, key: str | None = None) -> str:
        """STABLE or CANARY for one request."""
        point = bucket(key) if key else self._rng.random()
        return CANARY if point < self.share else STABLE

    def record(self, arm: str, ok: bool, latency_ms: float) -> None:
        """One answer of ``arm``; only the canary's are judged."""
        if arm != CANARY or self.state != PROGRESSING:
            return
        if ok:
            self.stats.ok += 1
            self.stats.latencies_ms.append(latency_ms)
        else:
            self.stats.errors += 1
        self.tick()

    def tick(self) -> None:
        """Judge the current step; call it now and then even without traffic."""
        if self.state != PROGRESSING or self.stats.count < self.policy.min_requests:
            return
        s, p = self.stats, self.policy
        error_rate = s.errors / s.count
        if error_rate > p.max_error_rate:
            return self._roll_back(f"error rate {error_rate:.1%} > {p.max_error_rate:.1%} over {s.count} requests")
        if p.max_p99_ms is not None and s.p99_ms() > p.max_p99_ms:
            return self._roll_back(f"p99 {s.p99_ms():.0f} ms > {p.max_p99_ms:.0f} ms over {s.count} requests")
        if self.clock() - self.step_started >= p.step_s:
            self.step += 1
            if self.step == len(p.steps) - 1:
                self.state = PROMOTED
            self.step_started, self.stats = self.clock(), StepStats()
            self._export()

    def _roll_back(self, why: str) -> None:
        self.state, self.reason = ROLLED_BACK, why
        metrics.child(metrics.CANARY_ROLLBACKS, self.name).inc()
        self._export()

    def _export(self) -> None:
        metrics.child(metrics.CANARY_SHARE, self.name).set(self.share)

    def status(self) -> dict[str, object]:
        return {
            "canary": self.name, "state": self.state, "share": self.share, "step": self.step,
            "step_requests": self.stats.count, "step_errors": self.stats.errors, "reason": self.reason,
        }
