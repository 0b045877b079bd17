"""What a simulation is given: the deployment's settings, the time models, and arrival
times built from rate phases. User-facing (a tuner reads these from YAML), so pydantic with
descriptions and errors that name the field; the engine is tune/simulator.py."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from serve_core.config import AutoscalingConfig, parse
from serve_core.control.scale_step import DEMAND_FRESH_S  # the controller's
from serve_core.errors import ConfigError

# The live system's timings. controller.py and caller.py import Ray, which a simulation must
# not need, so they are restated here; tests/unit/test_simulator.py checks that they agree.
LOOP_PERIOD_S = 0.1  # controller.LOOP_PERIOD_S
REPORT_INTERVAL_S = 0.5  # caller.REPORT_INTERVAL_S
DRAIN_GRACE_S = 0.2  # controller._drain: callers learn the new replica set before the drain


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ConstantTime(_Model):
    """The same number of seconds every time."""

    kind: Literal["constant"] = "constant"
    seconds: float = Field(..., ge=0, allow_inf_nan=False, description="Seconds, every time.")

    def sampler(self, rng: random.Random) -> Callable[[], float]:
        s = self.seconds
        return lambda: s


class LognormalTime(_Model):
    """Seconds drawn from a lognormal distribution (a long right tail, never negative)."""

    kind: Literal["lognormal"] = "lognormal"
    median_s: float = Field(..., gt=0, allow_inf_nan=False, description="Median seconds.")
    sigma: float = Field(0.5, ge=0, allow_inf_nan=False,
                         description="Standard deviation of ln(seconds); 0.5 puts p99 at 3.2x the median.")

    def sampler(self, rng: random.Random) -> Callable[[], float]:
        mu, sigma = math.log(self.median_s), self.sigma
        return lambda: rng.lognormvariate(mu, sigma)


class SampledTime(_Model):
    """Seconds drawn uniformly from measured samples (an empirical distribution)."""

    kind: Literal["samples"] = "samples"
    samples_s: list[Annotated[float, Field(ge=0, allow_inf_nan=False)]] = Field(
        ..., min_length=1, description="Measured seconds; each draw picks one at random.")

    def sampler(self, rng: random.Random) -> Callable[[], float]:
        samples = list(self.samples_s)
        return lambda: rng.choice(samples)


TimeModel = Annotated[ConstantTime | LognormalTime | SampledTime, Field(discriminator="kind")]


class SimulationSettings(_Model):
    """What a simulation runs: the deployment's options and the model of the system around it."""

    autoscaling_config: AutoscalingConfig = Field(..., description="The deployment's autoscaling_config, as deployed.")
    max_ongoing_requests: int = Field(5, ge=1, description="Requests a replica runs at once.")
    max_queued_requests: int = Field(-1, ge=-1, description="Requests the caller queues before answering 503; -1 is unbounded.")
    service_time: TimeModel = Field(
        ..., description="Seconds a request takes at a replica: a number (constant), a list (samples), or "
        "{kind: constant|lognormal|samples, ...}.")
    replica_start_time: TimeModel = Field(
        ConstantTime(seconds=2.0),
        description="Seconds from the controller's decision to a RUNNING replica (2 to 7 s measured on "
        "this 2-core machine, reports/bench/autoscale.md); same forms as service_time.")
    discovery_time: TimeModel = Field(
        ConstantTime(seconds=0.0),
        description="Seconds from a replica being RUNNING until the caller routes to it (the controller's push, "
        "the first connection); same forms as service_time.")
    overhead_s: float = Field(
        0.0, ge=0, allow_inf_nan=False,
        description="Seconds an answer spends outside the replica slot (client, proxy, network): added to "
        "every answered request's latency, not to replica occupancy or demand.")
    request_timeout_s: float | None = Field(
        None, gt=0, allow_inf_nan=False,
        description="A request not answered this long after its arrival fails (and frees its replica slot).")
    no_replica_timeout_s: float = Field(30.0, gt=0, description="A request held while no replica exists fails after this (router).")
    idempotent: bool = Field(False, description="Retry requests a killed replica held (up to router.MAX_RETRIES times).")
    replica_failures_s: list[Annotated[float, Field(ge=0, allow_inf_nan=False)]] = Field(
        default_factory=list, description="Times to kill one RUNNING replica (chosen at random), seconds from the start.")
    graceful_shutdown_timeout_s: float = Field(20.0, ge=0, description="Longest drain of a downscaled replica before it is killed.")
    duration_s: float | None = Field(
        None, gt=0, allow_inf_nan=False,
        description="Simulated seconds (arrivals later are dropped); default: until the last request is answered.")
    seed: int = Field(0, description="Seeds every random draw; same seed, same result.")
    timeline_step_s: float = Field(1.0, gt=0, description="Width of a timeline row.")
    controller_period_s: float = Field(LOOP_PERIOD_S, gt=0, description="Controller loop period (controller.LOOP_PERIOD_S).")
    report_interval_s: float = Field(REPORT_INTERVAL_S, gt=0, description="Caller demand report period (caller.REPORT_INTERVAL_S).")
    demand_fresh_s: float = Field(DEMAND_FRESH_S, gt=0, description="A demand report counts this long (controller.DEMAND_FRESH_S).")

    @field_validator("service_time", "replica_start_time", "discovery_time", mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return {"kind": "constant", "seconds": v}
        if isinstance(v, list):
            return {"kind": "samples", "samples_s": v}
        return v

    @model_validator(mode="after")
    def _fresh_outlasts_reports(self) -> SimulationSettings:
        if self.demand_fresh_s <= self.report_interval_s:
            raise ValueError(
                f"demand_fresh_s={self.demand_fresh_s} is not above report_interval_s={self.report_interval_s}: "
                "demand would drop to zero between reports; raise demand_fresh_s")
        return self


def load_settings(data: Any, where: str = "") -> SimulationSettings:
    """Validate a settings document (a dict, as from YAML); ConfigError names the first bad field."""
    return parse(SimulationSettings, data, where)


def arrivals_from_rates(phases: Sequence[tuple[float, float]], poisson: bool = False, seed: int = 0) -> list[float]:
    """Arrival times for consecutive ``(duration_s, rate)`` phases.

    Request k arrives at the earliest time the rate's integral reaches k, as loadgen schedules
    open-loop load (10/s for 2 s: 0.0, 0.1, ..., 1.9); ``poisson`` draws exponential gaps instead.
    """
    out: list[float] = []
    start, done = 0.0, 0.0
    rng = random.Random(f"{seed}/arrivals")
    for i, (length, rate) in enumerate(phases):
        if not (length >= 0 and rate >= 0 and math.isfinite(length) and math.isfinite(rate)):
            raise ConfigError(f"phases[{i}]", (length, rate), "give (duration_s >= 0, rate >= 0)")
        end = start + length
        if rate > 0:
            if poisson:
                t = start + rng.expovariate(rate)
                while t < end:
                    out.append(t)
                    t += rng.expovariate(rate)
            else:
                top = done + rate * length
                k = math.ceil(done - 1e-9)
                while k < top - 1e-9 * max(1.0, top):
                    out.append(start + (k - done) / rate)
                    k += 1
        done += rate * length
        start = end
    return out
