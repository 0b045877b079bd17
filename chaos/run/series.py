"""After the SLOs are judged: the report's time series and every alert's condition over the
run, read from Prometheus. Nothing here fails a run: what could not be read becomes an entry
that says why, and a warning."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chaos.slo.alert_timeline import AlertExpansionError, alert_conditions
from chaos.slo.alerts import alert_rules
from chaos.slo.prometheus import PrometheusAPI
from chaos.slo.queries import SLOError
from chaos.slo.timeseries import Collector, plot_queries
from chaos.spec.experiment import Experiment


def collect_series(exp: Experiment, prometheus: Callable[[], PrometheusAPI], start: float, end: float,
                   step_s: float, window_s: float, alert_scale: float,
                   ) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """The plots' series, the alerts (rules and conditions), and the warnings to say."""
    warnings: list[str] = []
    plots = plot_queries(exp.backend, window_s)
    alerts: dict[str, Any]
    try:
        rules = alert_rules(list(exp.steady_state.slos), exp.backend, scale=alert_scale)
        conditions = alert_conditions(rules)
        alerts = {"rules": rules, "scale": alert_scale, "start": start, "end": end, "conditions": {}}
    except (SLOError, AlertExpansionError) as e:
        conditions, alerts = [], {"error": f"the alert rules could not be made: {e}"}
        warnings.append(alerts["error"])
    try:
        collector = Collector(prometheus(), start, end)
        series = collector.collect(plots, step_s)
        for step in sorted({c.step_s for c in conditions}):  # each at its group's evaluation interval
            alerts["conditions"].update(collector.collect({c.key: c.query for c in conditions if c.step_s == step},
                                                          step))
    except Exception as e:  # a broken client or target: every entry says so
        error = f"{type(e).__name__}: {e}"
        series = {name: {"query": q, "series": [], "error": error} for name, q in plots.items()}
        if conditions:
            alerts["conditions"] = {c.key: {"query": c.query, "series": [], "error": error} for c in conditions}
    failed: dict[str, list[str]] = {}
    for name, got in [*series.items(), *alerts.get("conditions", {}).items()]:
        if got.get("error"):
            failed.setdefault(str(got["error"]).removeprefix("not queried: "), []).append(name.split("{")[0])
    for error, names in failed.items():
        warnings.append(f"report series not read from Prometheus ({', '.join(dict.fromkeys(names))}): {error}")
    return series, alerts, warnings
