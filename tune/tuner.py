"""One sweep from start to end: simulate every candidate, rank them, draw the frontier, run the
best few (and the baselines) for real through ``tune.confirm``, and assemble the report's
document. ``run_sweep`` takes the real-run ``Runner`` so tests drive it with a fake."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from chaos.slo.spec import Availability, Latency
from serve_core.cli.terminal import Bar, is_terminal
from serve_core.config import AutoscalingConfig
from tune import confirm as cf
from tune.frontier import Point, pareto
from tune.search import (
    Evaluated,
    arrivals,
    evaluate,
    fixed_peak_replicas,
    mean_service_s,
    peak_rate,
    ranked,
    run_seconds,
    simulate_values,
)
from tune.sweep import Sweep

J = dict[str, Any]
NO_FAST_PATH = 1e9  # a panic_threshold demand never reaches


def _slo_text(x: Any) -> str:
    if isinstance(x, Availability):
        return f"{x.name} >= {x.objective:g}"
    if isinstance(x, Latency):
        return f"{x.name}: p{x.percentile:g} < {x.threshold_ms:g} ms"
    return f"{x.name} ({x.kind}, real runs only)"


def _load_text(sweep: Sweep) -> str:
    p = sweep.load.profile.model_dump(mode="json", exclude_none=True)
    kind = p.pop("kind")
    return f"{kind} " + ", ".join(f"{k}={v}" for k, v in p.items()) + f", timeout {sweep.load.timeout_s:g}s"


def default_values(sweep: Sweep) -> dict[str, Any]:
    """Ray Serve's default autoscaling_config (serve_core's defaults are the same), the sweep's bounds."""
    d = AutoscalingConfig()
    base = sweep.base.get("autoscaling_config") or {}
    return {"target_ongoing_requests": d.target_ongoing_requests, "upscale_delay_s": d.upscale_delay_s,
            "downscale_delay_s": d.downscale_delay_s, "look_back_period_s": d.look_back_period_s,
            "metrics_interval_s": d.metrics_interval_s, "min_replicas": base.get("min_replicas", d.min_replicas),
            "max_replicas": base.get("max_replicas", d.max_replicas)}


def run_sweep(sweep: Sweep, *, confirm_top: int | None = None, runner: cf.Runner | None = None,
              work_dir: str = "reports/tune/work", log: Callable[[str], None] = print,
              backend: str = "serve_core") -> J:
    """The sweep's result document (``tune.report`` renders it). ``runner`` None: no real run."""
    started = time.time()
    times = arrivals(sweep)
    run_s = run_seconds(sweep, times)
    t = time.perf_counter()
    # Ray Serve has no fast path: its candidates are simulated without it.
    bar = Bar(sys.stdout, 1, "simulating") if is_terminal(sys.stdout) else None
    try:
        evaluated = evaluate(sweep, times, {"panic_threshold": NO_FAST_PATH} if backend == "ray_serve" else None,
                             done=(lambda n, total: bar.update(n / total, f"simulated {n}/{total} settings"))
                             if bar else (lambda n, total: None))
    finally:
        if bar is not None:
            bar.stop()
    simulated_s = time.perf_counter() - t
    order = ranked(evaluated)
    log(f"simulated {len(evaluated)} settings in {simulated_s:.1f}s")
    points = [Point(e.candidate.label, e.figures.replica_seconds, e.figures.attainment or 0.0) for e in evaluated]
    front = pareto(points)
    by_label = {e.candidate.label: e for e in evaluated}
    best = order[0] if order and order[0].figures.all_met else None

    def cand(e: Evaluated) -> J:
        return {"label": e.candidate.label, "values": e.candidate.values, "simulated": e.figures.to_dict()}

    doc: J = {
        "name": sweep.name, "description": sweep.description,
        "started_utc": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started)),
        "search": sweep.search.kind, "seed": sweep.search.seed, "candidates": len(evaluated),
        "simulated_s": simulated_s, "run_s": run_s, "requests": len(times),
        "load": _load_text(sweep), "slos": [_slo_text(x) for x in sweep.slos],
        "ranked": [cand(e) for e in order],
        "frontier": [{"label": p.key, "cost": p.cost, "attainment": p.attainment,
                      "met": by_label[p.key].figures.all_met, "values": by_label[p.key].candidate.values}
                     for p in front],
        "real_runs": [], "comparisons": [],
    }
    # Baselines in the simulator (and, below, for real).
    base_settings = sweep.settings()
    peak = peak_rate(times)
    target = (best.candidate.values.get("target_ongoing_requests") if best else None) or \
        base_settings.autoscaling_config.target_ongoing_requests
    fixed = sweep.confirm.fixed_replicas or fixed_peak_replicas(peak, mean_service_s(base_settings), target)
    defaults = default_values(sweep)
    baselines: list[tuple[str, cf.Setting, dict[str, Any]]] = []
    for kind in sweep.confirm.compare:
        if kind == "fixed_peak":
            s = cf.Setting(f"fixed_{fixed}", "serve_core", None, sweep.base.get("max_ongoing_requests"), fixed)
            sim_values: dict[str, Any] = {"min_replicas": fixed, "max_replicas": fixed}
            extra: dict[str, Any] = {}
        else:
            which_backend = "serve_core" if kind == "serve_core_defaults" else "ray_serve"
            # Only autoscaling_config takes the defaults: max_ongoing_requests is the deployment's own capacity.
            s = cf.Setting(kind, which_backend, dict(defaults), sweep.base.get("max_ongoing_requests"))
            sim_values, extra = dict(defaults), {}
            if which_backend == "ray_serve":  # Ray Serve's policy is serve_core's without the fast path
                sim_values["panic_threshold"] = NO_FAST_PATH
        baselines.append((kind, s, {"values": sim_values, "extra": extra}))

    def simulate_baseline(sim: dict[str, Any]) -> J:
        settings_extra = dict(sim["extra"])
        settings_extra["autoscaling_config"] = {**(sweep.base.get("autoscaling_config") or {}), **sim["values"]}
        _, fig = simulate_values(sweep, times, {}, **settings_extra)
        return fig.to_dict()

    for which, s, sim in baselines:
        doc["comparisons"].append({"label": s.label, "kind": which, "backend": s.backend,
                                   "simulated": simulate_baseline(sim)})
    # Real runs.
    top = sweep.confirm.top if confirm_top is None else confirm_top
    chosen = [e for e in order if e.figures.all_met][:top] if runner is not None else []
    errors_rs, errors_p99 = [], []
    for e in chosen:
        s = cf.setting_of(sweep, e.candidate.label, e.candidate.values, backend)
        log(f"real run of {s.label}: {e.candidate.values}")
        rr = cf.run_setting(sweep, s, work_dir, run_s, runner)  # type: ignore[arg-type]
        err = cf.prediction_error(e.figures, rr.figures) if rr.figures else {}
        errors_rs.append(err.get("replica_seconds_ratio"))
        errors_p99.append(err.get("p99_ratio"))
        doc["real_runs"].append({"label": s.label, "backend": s.backend, "values": e.candidate.values,
                                 "verdict": rr.verdict, "reasons": rr.reasons, "run_dir": rr.run_dir,
                                 "error": rr.error, "simulated": e.figures.to_dict(),
                                 "measured": rr.figures.to_dict() if rr.figures else None, "error_vs_real": err})
        log(f"  {rr.verdict}: {rr.run_dir or rr.error}")
    if runner is not None:
        for c, (_, s, _) in zip(doc["comparisons"], baselines, strict=True):
            log(f"real run of baseline {s.label} on {s.backend}")
            rr = cf.run_setting(sweep, s, work_dir, run_s, runner)
            c.update({"verdict": rr.verdict, "run_dir": rr.run_dir, "error": rr.error,
                      "measured": rr.figures.to_dict() if rr.figures else None})
    doc["simulator_error"] = {"replica_seconds": cf.mean_abs_log_error(errors_rs),
                              "p99": cf.mean_abs_log_error(errors_p99)}
    doc["recommendation"] = _recommend(sweep, doc, best)
    return doc


def _recommend(sweep: Sweep, doc: J, best: Evaluated | None) -> J | None:
    """The cheapest setting whose real run passed; without real runs, the simulator's best."""
    passed = [x for x in doc["real_runs"] if x["verdict"] == "passed" and x.get("measured")]
    if passed:
        pick = min(passed, key=lambda x: x["measured"]["replica_seconds"])
        label, values, basis = pick["label"], pick["values"], "cheapest setting whose real run held the SLOs"
        simulated, real = pick["simulated"], pick["measured"]
    elif best is not None:
        label, values, simulated, real = best.candidate.label, best.candidate.values, best.figures.to_dict(), None
        basis = ("the simulator's cheapest setting meeting the SLOs; no real run passed" if doc["real_runs"]
                 else "the simulator's cheapest setting meeting the SLOs; not confirmed by a real run")
    else:
        return None
    config = cf.serve_config(sweep, cf.setting_of(sweep, label, values))
    from tune.report import snippet

    return {"label": label, "values": values, "basis": basis, "simulated": simulated, "measured": real,
            "config": config, "snippet": snippet(config)}
