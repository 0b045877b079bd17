"""One autoscaling step for one deployment, as the controller takes it on every pass and
when a caller reports demand at zero replicas. Pure: reports, state and time in, decision
out. tune/simulator.py calls the same function, so a simulated run scales exactly as the
controller would.
"""

from __future__ import annotations

from collections.abc import Mapping

from serve_core.config import AutoscalingConfig
from serve_core.control.autoscaler import AutoscalerState, Decision, decide

DEMAND_FRESH_S = 2.0  # a caller's demand report counts this long (callers report every 0.5 s)

# caller id -> (when it reported, running plus queued requests per deployment key)
Reports = Mapping[str, tuple[float, Mapping[str, int]]]


def fresh_demand(reports: Reports, key: str, now: float, fresh_s: float = DEMAND_FRESH_S) -> int:
    """The deployment's demand: the sum over callers whose report is still fresh."""
    return sum(d.get(key, 0) for when, d in reports.values() if now - when < fresh_s)


def scale_step(cfg: AutoscalingConfig, current: int, state: AutoscalerState, demand: float, now: float) -> Decision:
    """Record ``demand`` at ``now`` in the deployment's history, then decide its replica count."""
    state.record(now, float(demand), cfg.look_back_period_s)
    return decide(cfg, current, state, now)
