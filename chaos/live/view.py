"""What the live view shows, from a journal, a cluster status and Prometheus series. Pure.

Times on the page are seconds since the load started (the journal's ``load_start``), as in
the reports: a fault planned at ``at_s`` 25 is drawn at 25.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

RUNNING = "running"
STOPPED = "stopped without a verdict"  # the runner is gone and wrote no verdict (killed, machine rebooted)

J = Mapping[str, Any]


def run_state(journal: J, runner_alive: bool) -> str:
    if journal.get("verdict"):
        return str(journal["verdict"])
    return RUNNING if runner_alive else STOPPED


def run_summary(run_id: str, journal: J, runner_alive: bool, has_report: bool) -> dict[str, Any]:
    """One row of the runs list."""
    return {"id": run_id, "name": journal.get("name") or run_id, "start": journal.get("start"),
            "end": journal.get("end"), "state": run_state(journal, runner_alive),
            "report": f"runs/{run_id}/report.html" if has_report else None}


def _duration_s(experiment: J | None) -> float | None:
    if not experiment:
        return None
    try:
        from chaos.spec.experiment import Experiment

        return float(Experiment.model_validate(experiment).run_s)
    except Exception:  # an older journal's experiment: the page draws up to now instead
        return None


def availability_objective(experiment: J | None) -> float | None:
    slos = (((experiment or {}).get("steady_state") or {}).get("slos")) or []
    return next((float(s["objective"]) for s in slos if s.get("kind") == "availability"), None)


def _fault(f: J) -> dict[str, Any]:
    target = (f.get("output") or {}).get("target") if isinstance(f.get("output"), Mapping) else None
    return {"id": f.get("id"), "action": f.get("action"), "label": f.get("label") or f.get("action"),
            "offset_s": f.get("offset_s"), "planned_s": f.get("at_s"), "ok": f.get("ok"),
            "description": f.get("description") or f.get("action"), "error": f.get("error"),
            "target": target if isinstance(target, Mapping) else None}


def run_view(run_id: str, journal: J, runner_alive: bool, now: float) -> dict[str, Any]:
    """The run panel: state, clock, planned and injected faults, aborts, windows and verdict."""
    state = run_state(journal, runner_alive)
    load_start = journal.get("load_start")
    end = journal.get("end")
    elapsed = None if load_start is None else max(0.0, (end if end else now) - float(load_start))
    windows = {name: {"results": w.get("results") or [], "error": w.get("error")}
               for name, w in (journal.get("steady_state") or {}).items() if isinstance(w, Mapping)}
    return {
        "id": run_id, "name": journal.get("name") or run_id, "state": state, "backend": journal.get("backend"),
        "target": journal.get("target"), "start": journal.get("start"), "load_start": load_start, "end": end,
        "elapsed_s": elapsed, "duration_s": _duration_s(journal.get("experiment")),
        "objective": availability_objective(journal.get("experiment")),
        "planned": [{"id": p.get("id"), "label": p.get("label") or p.get("action"), "at_s": p.get("at_s")}
                    for p in journal.get("plan") or []],
        "faults": [_fault(f) for f in [*(journal.get("faults") or []), *(journal.get("rollbacks") or [])]],
        "aborts": [{"offset_s": a.get("offset_s"), "reason": a.get("reason")} for a in journal.get("aborts") or []],
        "windows": windows, "verdict": journal.get("verdict"), "reasons": journal.get("reasons") or [],
        "error": journal.get("error"),
    }


def _summed(entry: J | None) -> list[tuple[float, float | None]]:
    """One line from a range query's series: the sum at each time (a gap stays a gap)."""
    totals: dict[float, float | None] = {}
    for s in (entry or {}).get("series") or []:
        for t, v in s.get("points") or []:
            if v is None:
                totals.setdefault(float(t), None)
            else:
                totals[float(t)] = (totals.get(float(t)) or 0.0) + float(v)
    return sorted(totals.items())


def _offsets(points: Sequence[tuple[float, float | None]], t0: float) -> list[list[float | None]]:
    return [[round(t - t0, 3), None if v is None else round(v, 4)] for t, v in points]


def budget_burned(requests: Sequence[tuple[float, float | None]], errors: Sequence[tuple[float, float | None]],
                  objective: float, step_s: float) -> list[tuple[float, float]]:
    """The share of the error budget spent so far at each time: errors so far over what the
    objective allows of the requests so far (1.0: all of it). Rates per second times the step."""
    errs = dict(errors)
    allowed_share = 1.0 - objective
    sent = failed = 0.0
    out = []
    for t, rate in requests:
        sent += (rate or 0.0) * step_s
        failed += (errs.get(t) or 0.0) * step_s
        out.append((t, 0.0 if sent <= 0 else failed / (allowed_share * sent)))
    return out


def timeline(series: J, load_start: float, objective: float | None, step_s: float) -> dict[str, Any]:
    """The page's lines, in seconds since the load started: requests/s, errors/s, p99 ms,
    replicas per deployment, and the error budget burned."""
    requests, errors = _summed(series.get("requests")), _summed(series.get("errors"))
    replicas = {}
    for s in (series.get("replicas") or {}).get("series") or []:
        labels = s.get("labels") or {}
        name = "/".join(str(labels[k]) for k in ("application", "deployment") if labels.get(k)) or "replicas"
        replicas[name] = _offsets([(float(t), v) for t, v in s.get("points") or []], load_start)
    out: dict[str, Any] = {
        "requests": _offsets(requests, load_start), "errors": _offsets(errors, load_start),
        "p99": _offsets(_summed(series.get("p99")), load_start), "replicas": replicas,
        "errors_read": {k: v.get("error") for k, v in series.items() if isinstance(v, Mapping) and v.get("error")},
    }
    if objective is not None:
        out["budget"] = _offsets(budget_burned(requests, errors, objective, step_s), load_start)
    return out


def cluster_view(doc: J | None, error: str | None = None) -> dict[str, Any]:
    """The cluster panel from a target's status (`cluster status --json` or compose's)."""
    if doc is None:
        return {"error": error or "not read yet", "nodes": [], "proxies": [], "applications": []}
    apps = []
    for app_name, app in sorted((doc.get("applications") or {}).items()):
        deps = []
        for dep_name, dep in sorted((app.get("deployments") or {}).items()):
            deps.append({"name": dep_name, "status": dep.get("status"), "target": dep.get("target"),
                         "replicas": dep.get("replica_list") or [
                             {"id": "", "state": state, "node": "", "version": "", "count": n}
                             for state, n in sorted((dep.get("replicas") or {}).items())]})
        apps.append({"name": app_name, "status": app.get("status"), "route_prefix": app.get("route_prefix"),
                     "deployments": deps})
    nodes = [{"name": n.get("name"), "role": n.get("role"), "address": n.get("address"),
              "alive": bool(n.get("alive")), "cpus": n.get("cpus")} for n in doc.get("nodes") or []]
    return {"error": error or doc.get("ray_error"), "nodes": nodes, "proxies": doc.get("proxies") or [],
            "applications": apps}
