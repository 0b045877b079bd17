"""Real runs: one chaos experiment per setting (the application deployed from a serve config
carrying the setting's autoscaling_config, the sweep's load and SLOs, its faults), run by
``chaos.run.runner.run_experiment`` on the embedded cluster or compose, with serve_core or Ray
Serve. The measured figures come from the client's records (latency, availability) and the
replica gauge read from Prometheus after the run (replica-seconds).

The pure parts (``serve_config``, ``experiment_doc``, ``replica_seconds``, ``measured``,
``prediction_error``) are unit-tested; ``confirm`` needs a cluster.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from loadgen.records import read_records
from tune.search import Figures, figures_of
from tune.sweep import AUTOSCALING_PARAMS, INTEGER_PARAMS, SERVE_CORE_ONLY, Sweep

RAY_SERVE_SUFFIX = "_ray_serve"  # tune.app:build -> tune.app:build_ray_serve


@dataclass
class Setting:
    """What one real run deploys: the autoscaling_config (None: a fixed count) and the rest."""

    label: str
    backend: str
    autoscaling_config: dict[str, Any] | None
    max_ongoing_requests: int | None = None
    num_replicas: int | None = None
    values: dict[str, float] = field(default_factory=dict)


def setting_of(sweep: Sweep, label: str, values: Mapping[str, float], backend: str = "serve_core") -> Setting:
    """The sweep's base with the candidate's values, as deployed."""
    ac = dict(sweep.base.get("autoscaling_config") or {})
    mor = sweep.base.get("max_ongoing_requests")
    for k, v in values.items():
        value: float | int = int(v) if k in INTEGER_PARAMS else v
        if k in AUTOSCALING_PARAMS:
            ac[k] = value
        elif k == "max_ongoing_requests":
            mor = int(value)
    return Setting(label, backend, ac, mor, values=dict(values))


def serve_config(sweep: Sweep, s: Setting) -> dict[str, Any]:
    """The serve config (serve-core deploy / serve deploy) of a setting. Ray Serve gets no
    serve_core-only field (the fast path)."""
    app = sweep.application
    dep: dict[str, Any] = {"name": app.deployment}
    if s.autoscaling_config is not None:
        ac = dict(s.autoscaling_config)
        if s.backend == "ray_serve":
            for k in SERVE_CORE_ONLY:
                ac.pop(k, None)
        dep["num_replicas"] = "auto"
        dep["autoscaling_config"] = ac
    else:
        dep["num_replicas"] = s.num_replicas
    if s.max_ongoing_requests is not None:
        dep["max_ongoing_requests"] = s.max_ongoing_requests
    path = app.import_path_for(s.backend) or ""
    if s.backend == "ray_serve" and s.backend not in app.import_paths and path:
        path += RAY_SERVE_SUFFIX
    return {"applications": [{"name": app.name, "route_prefix": app.route, "import_path": path,
                              "args": dict(app.args), "deployments": [dep]}]}


def experiment_doc(sweep: Sweep, s: Setting, config_path: str, run_s: float) -> dict[str, Any]:
    """The chaos experiment of one real run (judged over the whole run)."""
    before, during, after = sweep.windows(run_s)
    app = sweep.application
    profile = sweep.load.profile.model_dump(mode="json", exclude_none=True)
    profile.setdefault("duration_s", run_s)  # a trace's own length, stated: an experiment needs it
    return {
        "name": f"tune-{sweep.name}-{s.label}",
        "description": f"sweep {sweep.name}: {s.label} with {s.backend}",
        "seed": sweep.search.seed,
        "target": sweep.confirm.target.model_dump(mode="json"),
        "backend": s.backend,
        "application": {"config": config_path, "fresh": True, "name": app.name, "route": app.route, "method": app.method,
                        "ready_timeout_s": app.ready_timeout_s,
                        **({"payload": app.payload} if app.payload is not None else {})},
        "load": {"profile": profile, "timeout_s": sweep.load.timeout_s,
                 "proxies": list(sweep.load.proxies), "workers": sweep.load.workers},
        "steady_state": {"slos": [x.model_dump(mode="json") for x in sweep.slos], "before_s": before,
                         "during_s": during, "after_s": after, "judge": ["whole"], "require_before": False,
                         "settle_s": sweep.confirm.settle_s},
        "method": [f.model_dump(mode="json", exclude_none=True) for f in sweep.faults],
        "rollbacks": [{"action": "restart-node", "target": "all"}] if any(
            f.action in ("kill-node",) for f in sweep.faults) else [],
    }


def replica_seconds(entry: Mapping[str, Any] | None, deployment: str, start: float, end: float) -> float | None:
    """Integral of the deployment's replica gauge (a journal series entry) over [start, end]:
    each point holds until the next. None when there is no series."""
    if not entry or entry.get("error"):
        return None
    total, found = 0.0, False
    for series in entry.get("series") or []:
        if (series.get("labels") or {}).get("deployment") not in (deployment, None):
            continue
        pts = [(float(t), float(v)) for t, v in series.get("points") or [] if v is not None and start <= float(t) <= end]
        for (t0, v0), (t1, _) in zip(pts, pts[1:], strict=False):
            total += v0 * (t1 - t0)
            found = True
        if pts:
            total += pts[-1][1] * max(0.0, end - pts[-1][0])
            found = True
    return total if found else None


def measured(records: Sequence[Mapping[str, Any]], sweep: Sweep, running_seconds: float | None,
             max_replicas: int = 0) -> Figures:
    """A real run's figures from the client's records (sent requests; missed ones are not settled)."""
    sent = [r for r in records if r.get("started") is not None]
    ok = sorted(float(r["latency_s"]) for r in sent if r.get("ok") and r.get("latency_s") is not None)
    rs = running_seconds if running_seconds is not None else math.nan
    app = sweep.application
    return figures_of(requests=len(records), ok_latencies=ok, settled=len(sent), slos=sweep.slos,
                      replica_seconds=rs, running_replica_seconds=rs, max_replicas=max_replicas,
                      num_cpus=app.num_cpus, num_gpus=app.num_gpus)


def prediction_error(predicted: Figures, real: Figures) -> dict[str, float | None]:
    """How far the simulator was from the real run: ratios predicted / real (1 is exact) and
    differences predicted - real."""
    def ratio(a: float | None, b: float | None) -> float | None:
        if a is None or b is None or not b or math.isnan(a) or math.isnan(b):
            return None
        return a / b

    def diff(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a - b

    return {
        "replica_seconds_ratio": ratio(predicted.running_replica_seconds, real.running_replica_seconds),
        "p50_ratio": ratio(predicted.p50_s, real.p50_s), "p95_ratio": ratio(predicted.p95_s, real.p95_s),
        "p99_ratio": ratio(predicted.p99_s, real.p99_s),
        "availability_diff": diff(predicted.availability, real.availability),
        "attainment_diff": diff(predicted.attainment, real.attainment),
    }


def mean_abs_log_error(ratios: Sequence[float | None]) -> float | None:
    """Mean |ln ratio| (0: exact; 0.69: off by 2x on average)."""
    vals = [abs(math.log(r)) for r in ratios if r is not None and r > 0]
    return sum(vals) / len(vals) if vals else None


@dataclass
class RealRun:
    setting: Setting
    verdict: str
    run_dir: str
    figures: Figures | None
    reasons: list[str] = field(default_factory=list)
    error: str | None = None


Runner = Callable[[dict[str, Any]], tuple[str, list[str], str, dict[str, Any] | None]]


def chaos_runner(out_root: str) -> Runner:
    """Runs an experiment document with the chaos runner; returns (verdict, reasons, run_dir, the
    replicas series entry)."""
    from chaos.report.run_report import ReportListener
    from chaos.run.journal import Event, SeriesCollected
    from chaos.run.options import RunOptions
    from chaos.run.runner import run_experiment
    from chaos.spec.loading import parse_experiment

    def run(doc: dict[str, Any]) -> tuple[str, list[str], str, dict[str, Any] | None]:
        got: dict[str, Any] = {}

        def keep(e: Event) -> None:
            if isinstance(e, SeriesCollected):
                got["replicas"] = e.series.get("replicas")
                got["span"] = (e.start, e.end)

        exp = parse_experiment(doc)
        result = run_experiment(exp, listeners=[keep, ReportListener()], options=RunOptions(out_root=out_root))
        entry = got.get("replicas")
        if entry is not None:
            entry = {**entry, "span": got.get("span")}
        return result.verdict, list(result.reasons), result.run_dir, entry

    return run


def run_setting(sweep: Sweep, s: Setting, work_dir: str, run_s: float, runner: Runner) -> RealRun:
    """Write the setting's serve config, run its experiment, measure it."""
    os.makedirs(work_dir, exist_ok=True)
    config_path = os.path.abspath(os.path.join(work_dir, f"{s.label}-{s.backend}.serve.yaml"))
    Path(config_path).write_text(yaml.safe_dump(serve_config(sweep, s), sort_keys=False))
    try:
        verdict, reasons, run_dir, entry = runner(experiment_doc(sweep, s, config_path, run_s))
    except Exception as e:  # one broken run does not end the sweep
        return RealRun(s, "error", "", None, error=f"{type(e).__name__}: {e}")
    records_path = Path(run_dir) / "load" / "records.jsonl"
    records = list(read_records(records_path)) if records_path.exists() else []
    span = (entry or {}).get("span") or (0.0, math.inf)
    rs = replica_seconds(entry, sweep.application.deployment, span[0], span[1])
    peak = 0
    for series in (entry or {}).get("series") or []:
        peak = max([peak, *(int(v) for _, v in series.get("points") or [] if v is not None)])
    return RealRun(s, verdict, run_dir, measured(records, sweep, rs, peak) if records else None, reasons)
