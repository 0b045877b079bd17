"""`python -m chaos compare`: the same experiments on serve_core and on Ray Serve, one after
the other on one cluster, and a table of their figures side by side (reports/chaos/compare-*).

A comparison is a listener's product too: it reads each run's ``summary.json``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from chaos.report.run_report import SUMMARY_FILE

Row = dict[str, Any]
RunOne = Callable[[str, str], str]  # (experiment file, backend) -> run directory


def compare(files: Sequence[str], backends: Sequence[str], run_one: RunOne, out_root: str,
            log: Callable[[str], None] = print) -> str:
    """Run every file with every backend; write compare.md and compare.json; return the .md path."""
    rows: list[Row] = []
    for path in files:
        for backend in backends:
            log(f"== {os.path.basename(path)} on {backend}")
            run_dir = run_one(path, backend)
            rows.append(row_of(path, backend, _summary(run_dir), run_dir))
    directory = os.path.join(out_root, f"compare-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}")
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "compare.json"), "w") as f:
        json.dump(rows, f, indent=2)
    md = os.path.join(directory, "compare.md")
    with open(md, "w") as f:
        f.write(render(rows))
    return md


def _summary(run_dir: str) -> dict[str, Any]:
    try:
        with open(os.path.join(run_dir, SUMMARY_FILE)) as f:
            return dict(json.load(f))
    except (OSError, ValueError):
        return {}


def row_of(path: str, backend: str, s: dict[str, Any], run_dir: str) -> Row:
    """The figures of one run that the table shows. Pure."""
    recoveries = [f.get("recovery_s") for f in s.get("faults") or [] if f.get("action") != "restart-node"]
    return {
        "experiment": s.get("name") or os.path.splitext(os.path.basename(path))[0], "backend": backend,
        "verdict": s.get("verdict", "did not run"), "sent": s.get("sent"), "failed": s.get("failed"),
        "failed_by_cause": s.get("failed_by_cause") or {},
        "availability": s.get("availability_client"), "p99_ms": s.get("p99_client_ms"),
        "recovery_s": None if any(r is None for r in recoveries) else max(recoveries, default=0.0),
        "never_recovered": sum(1 for r in recoveries if r is None), "run_dir": run_dir,
    }


def render(rows: Sequence[Row]) -> str:
    """The comparison table, one line per experiment and backend. Pure."""
    lines = ["# serve_core and Ray Serve under the same faults", "",
             "Client-side figures (the load generator's truth); recovery is the worst over the run's faults, "
             "from Prometheus.", "",
             "| experiment | backend | verdict | sent | failed | availability | p99 (ms) | recovery (s) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        avail = "-" if r["availability"] is None else f"{100 * r['availability']:.3f}%"
        p99 = "-" if r["p99_ms"] is None else f"{r['p99_ms']:.1f}"
        rec = (f"never ({r['never_recovered']} fault(s))" if r["never_recovered"]
               else "-" if r["recovery_s"] is None else f"{r['recovery_s']:.1f}")
        causes = ", ".join(f"{k} {v}" for k, v in sorted(r["failed_by_cause"].items()))
        failed = "-" if r["failed"] is None else f"{r['failed']}" + (f" ({causes})" if causes else "")
        lines.append(f"| {r['experiment']} | {r['backend']} | {r['verdict']} | {r['sent'] if r['sent'] is not None else '-'} "
                     f"| {failed} | {avail} | {p99} | {rec} |")
    return "\n".join(lines) + "\n"
