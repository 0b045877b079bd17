"""The verdict of a run, from its probes, aborts and faults: passed, failed or aborted, with
the reasons. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

PASSED, FAILED, ABORTED = "passed", "failed", "aborted"


def decide_verdict(judge: Sequence[str], probes: Mapping[str, Sequence[Mapping[str, Any]]],
                   probe_errors: Mapping[str, str], aborts: Sequence[str], fault_failures: Sequence[str],
                   faults_started: bool) -> tuple[str, list[str]]:
    """passed / failed / aborted, with the reasons. Pure.

    Aborted: the run was stopped early (an abort condition, the steady state not met before
    the faults, Ctrl-C, an error). Failed: an SLO failed, or could not be judged (no data,
    Prometheus unreachable), in a judged window; or a fault could not be injected (the
    hypothesis was then not tested as written). Passed: every judged SLO held."""
    if aborts:
        return ABORTED, list(aborts)
    reasons: list[str] = []
    for window in judge:
        if window in probe_errors:
            reasons.append(f"{window}: steady state could not be probed: {probe_errors[window]}")
            continue
        results = probes.get(window)
        if results is None:
            reasons.append(f"{window}: not probed (the run ended before the window)")
            continue
        for r in results:
            if r.get("ok") is False:
                reasons.append(f"{window}: {result_text(r)}")
            elif r.get("ok") is None and not (r.get("kind") == "recovery" and not faults_started):
                reasons.append(f"{window}: {r.get('name', '?')} could not be judged (no data)"
                               + (f": {r['detail']}" if r.get("detail") else ""))
    reasons += [f"fault not injected: {f}" for f in fault_failures]
    return (FAILED, reasons) if reasons else (PASSED, [])


def result_text(r: Mapping[str, Any]) -> str:
    value = r.get("value")
    shown = f"{value:.6g}" if isinstance(value, int | float) else str(value)
    detail = f" ({r['detail']})" if r.get("detail") else ""
    return f"{r.get('name', '?')} = {shown}{detail}"


