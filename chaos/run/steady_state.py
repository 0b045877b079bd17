"""The steady-state probe a run judges its SLOs with: the ``SteadyStateProbe`` protocol the
runner sees, and the default probe, ``PrometheusProbe``, wrapping ``chaos.slo.evaluate`` (SLOs in
Prometheus) and ``chaos.slo.crosscheck`` (imported lazily).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from chaos.run.journal import to_plain


class SteadyStateProbe(Protocol):
    def evaluate(self, slos: Sequence[Any], start: float, end: float,
                 fault_times: Sequence[float], fault_ends: Sequence[float | None] = ()) -> list[dict[str, Any]]:
        """SLO results (name, kind, value, ok True/False/None, query, detail) over [start, end];
        ``fault_ends`` (one per fault time, when known) say when each fault stopped acting."""
        ...

    def burn_rate(self, objective: float, at: float, window_s: float, route: str | None) -> float | None: ...

    def crosscheck(self, start: float, end: float, records_path: str | None) -> dict[str, Any] | None: ...


ProbeFactory = Callable[[str, str], SteadyStateProbe]  # (prometheus url, backend)


def slo_result_dict(r: Any) -> dict[str, Any]:
    """An SLO result as journal data, with ``ok`` (a property of chaos.slo.evaluate.SLOResult)."""
    d = r if isinstance(r, dict) else to_plain(r)
    d = dict(d) if isinstance(d, dict) else {"result": d}
    if "ok" not in d:
        d["ok"] = getattr(r, "ok", None)
    return d


class PrometheusProbe:
    """``chaos.slo.evaluate`` (SLOs in Prometheus) and ``chaos.slo.crosscheck`` behind ``SteadyStateProbe``."""

    def __init__(self, prometheus_url: str, backend: str) -> None:
        from chaos.slo.prometheus import Prometheus

        self.backend = backend
        self.prom = Prometheus(prometheus_url)

    def evaluate(self, slos: Sequence[Any], start: float, end: float,
                 fault_times: Sequence[float], fault_ends: Sequence[float | None] = ()) -> list[dict[str, Any]]:
        from chaos.slo import evaluate as slo
        results = slo.evaluate(list(slos), self.prom, self.backend, start, end, fault_times=list(fault_times),
                               fault_ends=list(fault_ends))
        return [slo_result_dict(r) for r in results]

    def burn_rate(self, objective: float, at: float, window_s: float, route: str | None) -> float | None:
        from chaos.slo import evaluate as slo
        rate = slo.burn_rate(self.prom, self.backend, objective, at, window_s, route=route)
        return None if rate is None else float(rate)

    def crosscheck(self, start: float, end: float, records_path: str | None) -> dict[str, Any] | None:
        from chaos.slo import crosscheck
        if records_path is None or not os.path.exists(records_path):
            return None
        result = crosscheck.cross_check(self.prom, self.backend, crosscheck.read_records(records_path), start, end)
        return slo_result_dict(result)
