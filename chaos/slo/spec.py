"""The steady-state hypothesis: SLOs as declared in an experiment (YAML or Python).

Only the declaration lives here; ``chaos.slo.evaluate`` turns each into PromQL for a backend's metric
names, evaluates it in Prometheus over a run's window and cross-checks it with the client.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # .inf or .nan: a clear error, not a run that never ends


class Availability(_Strict):
    """Share of requests answered with a 2xx status."""

    kind: Literal["availability"] = "availability"
    name: str = Field("availability", description="Name in the journal and report.")
    objective: float = Field(..., gt=0, lt=1, description="Required share, e.g. 0.999.")
    route: str | None = Field(None, description="Only this route (default: every route).")


class Latency(_Strict):
    """A latency percentile below a threshold."""

    kind: Literal["latency"] = "latency"
    name: str = Field("latency", description="Name in the journal and report.")
    percentile: float = Field(..., gt=0, lt=100, description="Percentile, e.g. 99.")
    threshold_ms: float = Field(..., gt=0, description="The percentile must stay below this many milliseconds.")
    route: str | None = Field(None, description="Only this route (default: every route).")


class Recovery(_Strict):
    """Time from each fault until the error ratio is back under ``healthy_error_ratio``."""

    kind: Literal["recovery"] = "recovery"
    name: str = Field("recovery", description="Name in the journal and report.")
    max_s: float = Field(..., gt=0, description="Each fault must be recovered from within this many seconds.")
    healthy_error_ratio: float = Field(0.01, ge=0, lt=1, description="Error ratio (over window_s) that counts as recovered.")
    window_s: float = Field(
        5, gt=0,
        description="Window of the error ratio, seconds. Keep it at least twice the metrics update interval "
                    "(Prometheus scrape; Ray's metrics_report_interval_ms, 10 s by default): a window with "
                    "no counted request counts as not recovered.",
    )
    route: str | None = Field(None, description="Only this route (default: every route).")


class PromQL(_Strict):
    """Any Prometheus query with a threshold. ``{window}`` in the query is replaced by the
    window being checked (e.g. ``30s``)."""

    kind: Literal["promql"] = "promql"
    name: str = Field(..., description="Name in the journal and report.")
    query: str = Field(..., description="PromQL returning one number.")
    op: Literal["<", "<=", ">", ">=", "=="] = Field(..., description="How the value compares to the threshold.")
    threshold: float = Field(..., description="The value to compare with.")


SLO = Annotated[Availability | Latency | Recovery | PromQL, Field(discriminator="kind")]
