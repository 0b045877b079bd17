"""The sweep document: the application, the load, the SLOs, the ranges to explore, how to
search them and how to confirm the best. User-facing, so pydantic with descriptions; errors
name the field, the value and the fix (``load_sweep`` / ``parse_sweep`` raise ``SweepError``).

    name: bursty
    application: {import_path: tune.app:build, args: {work_s: 0.075}, deployment: TuneWork}
    load: {profile: {kind: trace, path: bursty.txt}, timeout_s: 5}
    slos: [{kind: availability, objective: 0.99}, {kind: latency, percentile: 99, threshold_ms: 1000}]
    base: {autoscaling_config: {max_replicas: 6, look_back_period_s: 2}, max_ongoing_requests: 4}
    model: {service_time: 0.075, replica_start_time: 2}
    space: {target_ongoing_requests: {min: 1, max: 4, step: 1}, upscale_delay_s: [0, 2, 5]}
    search: {kind: grid}
    confirm: {top: 2, compare: [serve_core_defaults, ray_serve_defaults, fixed_peak]}
"""

from __future__ import annotations

import math
import os
import random
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from chaos.slo.spec import SLO, Availability, Latency
from chaos.spec.experiment import Application, EmbeddedTarget, Fault, TargetSpec
from loadgen.profile import LoadProfile, Trace
from serve_core.errors import ConfigError
from tune.simulation_settings import SimulationSettings

# What a sweep may range over: the autoscaling_config fields and the deployment's max_ongoing_requests.
AUTOSCALING_PARAMS = ("target_ongoing_requests", "upscale_delay_s", "downscale_delay_s", "min_replicas",
                      "panic_threshold", "panic_window_s")
DEPLOYMENT_PARAMS = ("max_ongoing_requests",)
PARAMS = AUTOSCALING_PARAMS + DEPLOYMENT_PARAMS
INTEGER_PARAMS = frozenset({"min_replicas", "max_ongoing_requests"})
SERVE_CORE_ONLY = ("panic_threshold", "panic_window_s")  # not Ray Serve fields
Comparison = Literal["serve_core_defaults", "ray_serve_defaults", "fixed_peak"]
COMPARISONS: tuple[str, ...] = typing.get_args(Comparison)
MAX_GRID = 5000


class SweepError(ConfigError):
    """A bad sweep document: the field, the value and the fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Range(_Strict):
    """Values of one setting: ``values`` (a list), or ``min``..``max`` (with ``step`` for a grid;
    random search draws uniformly, or log-uniformly with ``log``). A number is one fixed value,
    a list is ``values``."""

    values: list[float] | None = Field(None, min_length=1, description="The values to try.")
    min: float | None = Field(None, ge=0, allow_inf_nan=False, description="Smallest value.")
    max: float | None = Field(None, ge=0, allow_inf_nan=False, description="Largest value.")
    step: float | None = Field(None, gt=0, allow_inf_nan=False, description="Grid spacing from min to max.")
    log: bool = Field(False, description="Random search: draw log-uniformly (min must be > 0).")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return {"values": [v]}
        if isinstance(v, list):
            return {"values": v}
        return v

    @model_validator(mode="after")
    def _one_form(self) -> Range:
        bounded = self.min is not None or self.max is not None
        if self.values is not None and (bounded or self.step is not None):
            raise ValueError("give values, or min and max (and step), not both")
        if self.values is None:
            if self.min is None or self.max is None:
                raise ValueError("give values: [...], or both min and max")
            if self.min > self.max:
                raise ValueError(f"min={self.min:g} is above max={self.max:g}; swap them")
            if self.log and self.min <= 0:
                raise ValueError(f"log needs min > 0 (got min={self.min:g})")
        elif any(not math.isfinite(v) or v < 0 for v in self.values):
            raise ValueError(f"values must be finite and >= 0 (got {self.values})")
        return self

    def grid(self) -> list[float]:
        """Every value of a grid: the values, or min, min+step, ... up to max (both ends in)."""
        if self.values is not None:
            return sorted(set(self.values))
        assert self.min is not None and self.max is not None
        if self.step is None:
            return sorted({self.min, self.max})
        n = int(math.floor((self.max - self.min) / self.step + 1e-9))
        out = [round(self.min + k * self.step, 9) for k in range(n + 1)]
        if self.max - out[-1] > 1e-9:
            out.append(self.max)
        return out

    def sample(self, rng: random.Random, integer: bool) -> float:
        if self.values is not None:
            return rng.choice(sorted(set(self.values)))
        assert self.min is not None and self.max is not None
        if self.step is not None:
            return rng.choice(self.grid())
        if integer:
            return float(rng.randint(math.ceil(self.min), math.floor(self.max)))
        if self.log:
            return math.exp(rng.uniform(math.log(self.min), math.log(self.max)))
        return rng.uniform(self.min, self.max)


class Space(_Strict):
    """The settings explored; one not given keeps the base value."""

    target_ongoing_requests: Range | None = Field(None, description="autoscaling_config.target_ongoing_requests.")
    max_ongoing_requests: Range | None = Field(None, description="The deployment's max_ongoing_requests.")
    upscale_delay_s: Range | None = Field(None, description="autoscaling_config.upscale_delay_s.")
    downscale_delay_s: Range | None = Field(None, description="autoscaling_config.downscale_delay_s.")
    min_replicas: Range | None = Field(None, description="autoscaling_config.min_replicas.")
    panic_threshold: Range | None = Field(None, description="Fast path: autoscaling_config.panic_threshold (> 1).")
    panic_window_s: Range | None = Field(None, description="Fast path: autoscaling_config.panic_window_s.")

    @model_validator(mode="after")
    def _integers(self) -> Space:
        for name in INTEGER_PARAMS:
            r: Range | None = getattr(self, name)
            if r is None:
                continue
            given = r.values or [v for v in (r.min, r.max, r.step) if v is not None]
            bad = [v for v in given if v != int(v)]
            if bad:
                raise ValueError(f"{name} takes whole numbers (got {bad[0]:g}); round it")
        if self.panic_threshold is not None:
            lowest = min(self.panic_threshold.values or [self.panic_threshold.min or 0.0])
            if lowest <= 1:
                raise ValueError(f"panic_threshold must stay above 1 (got {lowest:g}): at 1 the fast path fires "
                                 "at every tick; raise it")
        return self

    def ranges(self) -> dict[str, Range]:
        return {name: getattr(self, name) for name in PARAMS if getattr(self, name) is not None}


class Search(_Strict):
    """How the space is explored in the simulator."""

    kind: Literal["grid", "random"] = Field("grid", description="grid: every combination; random: samples draws.")
    samples: int = Field(50, ge=1, le=MAX_GRID, description="random: how many settings to draw.")
    seed: int = Field(0, ge=0, description="Seeds the draws and the simulator: same seed, same result.")
    max_candidates: int = Field(1000, ge=1, le=MAX_GRID, description="A grid larger than this is an error.")


class TunedApplication(Application):
    """The application (as in a chaos experiment) and the deployment being tuned."""

    deployment: str = Field(..., min_length=1, description="Name of the deployment whose autoscaling is tuned.")
    args: dict[str, Any] = Field(default_factory=dict, description="Arguments of an application builder.")
    num_cpus: float = Field(1.0, ge=0, allow_inf_nan=False, description="CPUs a replica reserves (the cost's CPU-seconds).")
    num_gpus: float = Field(0.0, ge=0, allow_inf_nan=False, description="GPUs a replica reserves (GPU-seconds).")


class SweepLoad(_Strict):
    """The load of the simulation and of the real runs."""

    profile: LoadProfile = Field(..., description="A shape (constant, step, spike, ramp, diurnal) or a recorded trace.")
    timeout_s: float = Field(5.0, gt=0, description="A request unanswered this long after its intended start failed.")
    proxies: list[str] = Field(["workers"], min_length=1, description="Real runs: proxies the load goes to.")
    workers: int = Field(1, ge=1, description="Real runs: Locust worker processes.")

    @field_validator("proxies", mode="before")
    @classmethod
    def _one_word(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class Confirm(_Strict):
    """The real runs: the best candidates (and the comparisons) through the chaos runner."""

    top: int = Field(3, ge=0, le=20, description="Candidates confirmed with a real run (the best of the simulator).")
    target: TargetSpec = Field(default_factory=EmbeddedTarget, description="Where (kind: embedded or compose).")
    before_s: float | None = Field(None, gt=0, description="Seconds before the faults (default: a quarter of the run, "
                                                           "at most 10).")
    after_s: float | None = Field(None, ge=0, description="Seconds after the faults (default as before_s).")
    compare: list[Comparison] = Field(
        default_factory=list, description="Baselines run on the same trace: serve_core_defaults, ray_serve_defaults "
                                          "(Ray Serve's default autoscaling), fixed_peak (a fixed count sized for peak).")
    fixed_replicas: int | None = Field(None, ge=1, description="fixed_peak's count (default: sized from the peak rate).")
    settle_s: float = Field(5.0, ge=0, description="Wait after the load so Prometheus scrapes the last samples.")


class Sweep(_Strict):
    """A sweep of autoscaling settings against SLOs."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Name; the report directory starts with it.")
    description: str = Field("", description="What the sweep is for.")
    application: TunedApplication = Field(..., description="What is deployed and which deployment is tuned.")
    load: SweepLoad = Field(..., description="The load profile, for the simulator and the real runs.")
    slos: list[SLO] = Field(..., min_length=1, description="The SLOs (availability and latency are simulated).")
    base: dict[str, Any] = Field(
        default_factory=dict, description="The deployment's settings not swept: autoscaling_config (max_replicas, "
                                          "look_back_period_s, ...), max_ongoing_requests, max_queued_requests.")
    model: dict[str, Any] = Field(
        default_factory=dict, description="The simulator's model: service_time, replica_start_time, discovery_time, "
                                          "overhead_s (as serve-core simulate's settings).")
    space: Space = Field(..., description="The ranges explored.")
    search: Search = Field(default_factory=Search, description="grid or random search in the simulator.")
    faults: list[Fault] = Field(default_factory=list, description="Faults of the real runs (chaos experiment method); "
                                                                  "kill-replica times are simulated too.")
    confirm: Confirm = Field(default_factory=Confirm, description="Real runs of the best candidates.")

    @field_validator("base")
    @classmethod
    def _base_keys(cls, v: dict[str, Any]) -> dict[str, Any]:
        allowed = {"autoscaling_config", "max_ongoing_requests", "max_queued_requests"}
        unknown = sorted(set(v) - allowed)
        if unknown:
            raise ValueError(f"unknown key {unknown[0]!r}; base takes {', '.join(sorted(allowed))}")
        return v

    @field_validator("model")
    @classmethod
    def _model_keys(cls, v: dict[str, Any]) -> dict[str, Any]:
        allowed = {"service_time", "replica_start_time", "discovery_time", "overhead_s", "graceful_shutdown_timeout_s",
                   "idempotent", "no_replica_timeout_s"}
        unknown = sorted(set(v) - allowed)
        if unknown:
            raise ValueError(f"unknown key {unknown[0]!r}; model takes {', '.join(sorted(allowed))}")
        if "service_time" not in v:
            raise ValueError("give service_time (seconds a request takes at a replica, e.g. 0.075)")
        return v

    @model_validator(mode="after")
    def _simulated_slo(self) -> Sweep:
        if not any(isinstance(s, Availability | Latency) for s in self.slos):
            raise ValueError("give at least one availability or latency SLO: the simulator judges only those")
        return self

    # -- derived --

    def settings(self, values: dict[str, float] | None = None, **extra: Any) -> SimulationSettings:
        """The simulation settings of the base with ``values`` (a candidate) applied."""
        base = dict(self.base)
        ac = dict(base.pop("autoscaling_config", None) or {})
        for k, v in (values or {}).items():
            if k in AUTOSCALING_PARAMS:
                ac[k] = int(v) if k in INTEGER_PARAMS else v
            else:
                base[k] = int(v) if k in INTEGER_PARAMS else v
        doc = {**self.model, **base, "autoscaling_config": ac, "request_timeout_s": self.load.timeout_s,
               "seed": self.search.seed, **extra}
        return SimulationSettings.model_validate(doc)

    def windows(self, run_s: float) -> tuple[float, float, float]:
        """(before, during, after) seconds of a real run of ``run_s``."""
        default = min(10.0, run_s / 4)
        before = self.confirm.before_s if self.confirm.before_s is not None else default
        after = self.confirm.after_s if self.confirm.after_s is not None else default
        return before, run_s - before - after, after


def parse_sweep(doc: Any, source: str = "<sweep>", base_dir: str | None = None) -> Sweep:
    """Validate a sweep mapping; ``SweepError`` names the first bad field. A trace's relative path
    is resolved against ``base_dir`` (the sweep file's folder)."""
    if not isinstance(doc, dict):
        raise SweepError("(document)", doc, "a sweep is a mapping with name, application, load, slos, model, space")
    try:
        sweep = Sweep.model_validate(doc)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "(document)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field; check the spelling (python -m tune validate lists what a sweep takes)"
        raise SweepError(f"{source}: {loc}", err.get("input"), msg) from None
    try:
        sweep.settings()
        for name, r in sweep.space.ranges().items():  # both ends of every range must make valid settings
            for v in r.grid() if r.step is not None or r.values is not None else [r.min or 0.0, r.max or 0.0]:
                sweep.settings({name: v})
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        where = f"base.{loc}" if loc.split(".")[0] in ("autoscaling_config", "max_ongoing_requests",
                                                       "max_queued_requests") else f"model.{loc}"
        raise SweepError(f"{source}: {where}", err.get("input"), err["msg"].removeprefix("Value error, ")) from None
    profile = sweep.load.profile
    if isinstance(profile, Trace) and base_dir and not Path(profile.path).is_absolute():
        resolved = os.path.abspath(os.path.join(base_dir, profile.path))
        sweep.load.profile = profile.model_copy(update={"path": resolved})
    return sweep


def load_sweep(path: str) -> Sweep:
    """Read and validate a sweep file."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise SweepError("file", path, "no such file; ready sweeps are in tune/sweeps/") from None
    except OSError as e:
        raise SweepError("file", path, f"cannot read it: {e.strerror}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SweepError(f"{path}: YAML", None, f"{e}; fix the syntax") from None
    return parse_sweep(doc, path, str(Path(path).parent))
