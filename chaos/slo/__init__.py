"""Judging a run from Prometheus: SLOs as data (spec.py), their PromQL per backend
(queries.py), the verdicts (evaluate.py), the cross-check against the client's own record
(crosscheck.py), burn-rate alerts (alerts.py, alert_timeline.py), and the series the
reports plot (timeseries.py)."""
