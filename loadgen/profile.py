"""The load profile: a declarative shape of arrival rate over time (YAML or Python).

A profile is only a description; ``loadgen.schedule`` turns it into intended start times.
Rates are requests per second over the whole run (all Locust workers together).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # .inf or .nan: a clear error, not a run that never ends


class Constant(_Strict):
    """A constant arrival rate."""

    kind: Literal["constant"] = "constant"
    rate: float = Field(..., gt=0, description="Requests per second.")
    duration_s: float = Field(..., gt=0, description="Length of the run in seconds.")


class Step(_Strict):
    """Rate ``rate`` until ``at_s``, then ``to_rate`` until the end."""

    kind: Literal["step"] = "step"
    rate: float = Field(..., ge=0, description="Requests per second before the step.")
    to_rate: float = Field(..., ge=0, description="Requests per second after the step.")
    at_s: float = Field(..., ge=0, description="Seconds from the start to the step.")
    duration_s: float = Field(..., gt=0, description="Length of the run in seconds.")

    @model_validator(mode="after")
    def _step_inside(self) -> Step:
        if self.at_s >= self.duration_s:
            raise ValueError(f"at_s ({self.at_s}) must be before duration_s ({self.duration_s}): the step would never happen")
        return self


class Spike(_Strict):
    """Rate ``rate``, with ``spike_rate`` from ``at_s`` for ``spike_s`` seconds."""

    kind: Literal["spike"] = "spike"
    rate: float = Field(..., ge=0, description="Base requests per second.")
    spike_rate: float = Field(..., gt=0, description="Requests per second during the spike.")
    at_s: float = Field(..., ge=0, description="Seconds from the start to the spike.")
    spike_s: float = Field(..., gt=0, description="Length of the spike in seconds.")
    duration_s: float = Field(..., gt=0, description="Length of the run in seconds.")

    @model_validator(mode="after")
    def _spike_inside(self) -> Spike:
        if self.at_s + self.spike_s > self.duration_s:
            raise ValueError(f"at_s + spike_s ({self.at_s + self.spike_s}) must not pass duration_s ({self.duration_s})")
        return self


class Ramp(_Strict):
    """Rate rising (or falling) linearly from ``rate`` to ``to_rate`` over the run."""

    kind: Literal["ramp"] = "ramp"
    rate: float = Field(..., ge=0, description="Requests per second at the start.")
    to_rate: float = Field(..., ge=0, description="Requests per second at the end.")
    duration_s: float = Field(..., gt=0, description="Length of the run in seconds.")


class Diurnal(_Strict):
    """A daily cycle compressed into ``period_s``: rate = mean + amplitude * sin(2 pi t / period)."""

    kind: Literal["diurnal"] = "diurnal"
    mean_rate: float = Field(..., gt=0, description="Average requests per second.")
    amplitude: float = Field(..., ge=0, description="Swing above and below the mean, requests per second.")
    period_s: float = Field(..., gt=0, description="Seconds for one full cycle.")
    duration_s: float = Field(..., gt=0, description="Length of the run in seconds.")

    @model_validator(mode="after")
    def _rate_never_negative(self) -> Diurnal:
        if self.amplitude > self.mean_rate:
            raise ValueError(f"amplitude ({self.amplitude}) must not exceed mean_rate ({self.mean_rate}): the rate would go negative")
        return self


class Trace(_Strict):
    """Replay of recorded request times: a file with one timestamp (seconds) per line, or a
    CSV whose ``timestamp`` column holds them. Times are shifted so the first is at 0."""

    kind: Literal["trace"] = "trace"
    path: str = Field(..., description="File of recorded request timestamps.")
    speedup: float = Field(1.0, gt=0, description="Replay this many times faster than recorded.")
    duration_s: float | None = Field(None, gt=0, description="Cut the replay after this many seconds.")


LoadProfile = Annotated[Constant | Step | Spike | Ramp | Diurnal | Trace, Field(discriminator="kind")]


_ADAPTER: TypeAdapter[LoadProfile] = TypeAdapter(LoadProfile)


def parse_profile(data: object, source: str = "<profile>") -> LoadProfile:
    """Validate a profile given as a mapping (as read from YAML or JSON); errors name every field."""
    from loadgen.errors import ProfileError

    if isinstance(data, Constant | Step | Spike | Ramp | Diurnal | Trace):
        return data
    if not isinstance(data, dict):
        raise ProfileError(source, [f"expected a mapping with a 'kind' field, got {type(data).__name__}"])
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(profile)"
            problems.append(f"{where}: {err['msg']}")
        if "kind" not in data:
            problems.append("add kind: constant | step | spike | ramp | diurnal | trace")
        raise ProfileError(source, problems) from None


def load_profile(path: str | Path) -> LoadProfile:
    """Read a profile from a YAML (or JSON) file. A trace's relative ``path`` is resolved
    against the profile file's folder, so a profile and its trace can move together."""
    import yaml

    from loadgen.errors import ProfileError

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ProfileError(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    except yaml.YAMLError as exc:
        raise ProfileError(str(path), [f"not valid YAML: {exc}"]) from None
    profile = parse_profile(data, str(path))
    if isinstance(profile, Trace) and not Path(profile.path).is_absolute():
        profile = profile.model_copy(update={"path": str(path.parent / profile.path)})
    return profile
