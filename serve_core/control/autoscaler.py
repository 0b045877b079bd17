"""The autoscaling decision: a pure function of the config, a demand history, a
clock and the policy's own state. No I/O, so tests step it with a fake clock.

Demand is requests running at replicas plus requests queued at callers, summed
over callers. The policy averages it over ``look_back_period_s``, sizes the
deployment for ``target_ongoing_requests`` per replica, and applies delays in
wall-clock seconds. Two additions to Ray Serve's policy:

- a fast path (Knative's panic mode): when the latest demand needs at least twice
  the running capacity, scale up at once and block scale-down for a window;
- a restart guard: a controller younger than the look-back window has lost its
  history and does not scale down on it.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from serve_core.config import AutoscalingConfig

# The fast path's defaults; a deployment sets its own with autoscaling_config.panic_threshold / panic_window_s.
PANIC_THRESHOLD = 2.0  # latest demand / (running * target) that triggers the fast path
PANIC_WINDOW_S = 30.0  # no scale-down this long after a panic


@dataclass(frozen=True)
class Decision:
    desired: int
    reason: str  # "steady", "scale_up", "scale_down", "panic", "from_zero", "to_zero"


class AutoscalerState:
    """What the policy remembers between ticks (one per deployment)."""

    def __init__(self, created_at: float) -> None:
        self.created_at = created_at
        self.samples: deque[tuple[float, float]] = deque()
        self.up_since: float | None = None
        self.down_since: float | None = None
        self.panic_until = 0.0

    def record(self, now: float, demand: float, window_s: float) -> None:
        self.samples.append((now, demand))
        while self.samples and self.samples[0][0] < now - window_s:
            self.samples.popleft()

    def average(self) -> float:
        return sum(d for _, d in self.samples) / len(self.samples) if self.samples else 0.0

    def latest(self) -> float:
        return self.samples[-1][1] if self.samples else 0.0


def replicas_for(demand: float, target: float, cap: int) -> int:
    """Replicas ``demand`` needs at ``target`` per replica, at most ``cap``. Capped before rounding
    (a huge ratio would overflow ``math.ceil``), with 1e-9 of slack (21 / 0.7 is 30.000000000000004:
    30 replicas' worth, not 31)."""
    return math.ceil(min(demand / target, cap) - 1e-9)


def decide(cfg: AutoscalingConfig, current: int, state: AutoscalerState, now: float) -> Decision:
    """Replicas the deployment should have now, given ``current`` (its target so far)."""
    lo, hi = cfg.min_replicas, cfg.max_replicas
    avg, latest = state.average(), state.latest()
    raw = replicas_for(avg, cfg.target_ongoing_requests, hi) if avg > 0 else 0
    wanted = min(hi, max(lo, raw))

    if current == 0:
        if latest > 0:  # someone is waiting: no delay from zero
            state.up_since = state.down_since = None
            return Decision(max(1, replicas_for(latest, cfg.target_ongoing_requests, hi)), "from_zero")
        return Decision(max(lo, 0), "steady")

    if latest > 0 and latest >= cfg.panic_threshold * current * cfg.target_ongoing_requests:
        panic = min(hi, max(current, replicas_for(latest, cfg.target_ongoing_requests, hi)))
        state.panic_until = now + cfg.panic_window_s
        if panic > current:
            state.up_since = state.down_since = None
            return Decision(panic, "panic")

    if wanted > current:
        state.down_since = None
        state.up_since = state.up_since if state.up_since is not None else now
        if now - state.up_since >= cfg.upscale_delay_s:
            state.up_since = None
            step = (wanted - current) * (cfg.upscaling_factor or 1.0)
            return Decision(min(hi, current + max(1, math.ceil(min(step, hi)))), "scale_up")  # capped: no overflow
        return Decision(current, "steady")

    if wanted < current:
        state.up_since = None
        if now < state.panic_until or now - state.created_at < cfg.look_back_period_s:
            return Decision(current, "steady")  # panicking, or history lost in a restart
        state.down_since = state.down_since if state.down_since is not None else now
        to_zero = wanted == 0
        delay = cfg.downscale_delay_s
        if to_zero and current == 1:
            delay = cfg.downscale_to_zero_delay_s if cfg.downscale_to_zero_delay_s is not None else cfg.downscale_delay_s
        if now - state.down_since >= delay:
            state.down_since = None
            step = (current - wanted) * (cfg.downscaling_factor or 1.0)
            target = max(wanted, current - max(1, math.floor(min(step, current))))
            if target == 0 and current > 1:
                target = 1  # the last replica waits for downscale_to_zero_delay_s
            return Decision(target, "to_zero" if target == 0 else "scale_down")
        return Decision(current, "steady")

    state.up_since = state.down_since = None
    return Decision(current, "steady")
