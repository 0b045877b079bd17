"""``steady_state.resources``: what an experiment asks of its processes' memory and open files
(the sampling and the verdicts are chaos.run.resources)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

TESTBED_ROLES = ("prometheus", "targets")  # the testbed's own processes: shown, not judged by default


class ResourceCheck(BaseModel):
    """Sample every process of the cluster during the run and require memory and open files to stay
    flat (``steady_state.resources``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # .inf or .nan: a clear error, not a run that never ends

    sample_every_s: float = Field(10.0, ge=1, le=600, description="Seconds between two samples of every process.")
    require_flat: bool = Field(True, description="A growing process fails the run (false: reported as a finding).")
    max_rss_growth_mib_per_h: float = Field(
        16.0, gt=0, description="Allowed memory growth of one process, MiB per hour (least-squares slope).")
    max_fd_growth_per_h: float = Field(10.0, gt=0, description="Allowed open-file growth of one process, per hour.")
    min_rss_rise_mib: float = Field(
        8.0, ge=0, description="A process grows only when its line also rises this much over the time judged "
        "(slope times span): a short-lived process's one-off step is not a leak.")
    min_fd_rise: float = Field(5.0, ge=0, description="The same for open files (a connection or two opened once is "
                                                      "not a leak).")
    warmup_s: float = Field(60.0, ge=0, description="Each process's first seconds (imports, caches) are not judged.")
    min_span_s: float = Field(120.0, gt=0, description="A process sampled for less than this after its warm-up is "
                                                       "too short to judge.")
    roles: list[str] | None = Field(None, description="Roles judged (default: every role but the testbed's own: "
                                                      f"{', '.join(TESTBED_ROLES)}).")

    def judged(self, role: str) -> bool:
        return role in self.roles if self.roles is not None else role not in TESTBED_ROLES
