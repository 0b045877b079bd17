"""The side-by-side comparison: rows from each run's summary.json, and the table."""

import json
import os

import pytest

from chaos.report.compare import compare, render, row_of

pytestmark = pytest.mark.unit


def summary(verdict, sent, failed, availability, p99, recoveries, causes=None):
    return {"name": "replica_kills", "verdict": verdict, "sent": sent, "failed": failed,
            "failed_by_cause": causes or {}, "availability_client": availability, "p99_client_ms": p99,
            "faults": [{"action": "kill-replica", "recovery_s": r} for r in recoveries]
            + [{"action": "restart-node", "recovery_s": None}]}


def test_row_takes_the_worst_recovery_and_counts_faults_never_recovered():
    ok = row_of("x/replica_kills.yaml", "serve_core", summary("passed", 100, 0, 1.0, 12.5, [0.0, 3.0]), "d")
    assert ok["recovery_s"] == 3.0 and ok["never_recovered"] == 0  # restart-node rows are not faults to recover from
    bad = row_of("x/replica_kills.yaml", "ray_serve", summary("failed", 100, 36, 0.64, 5000.0, [2.0, None]), "d")
    assert bad["recovery_s"] is None and bad["never_recovered"] == 1
    assert row_of("x/gone.yaml", "ray_serve", {}, "d")["verdict"] == "did not run"


def test_compare_runs_every_file_on_every_backend_and_writes_the_table(tmp_path):
    runs = []

    def run_one(path, backend):
        d = tmp_path / f"{len(runs)}"
        d.mkdir()
        failed = 0 if backend == "serve_core" else 36
        (d / "summary.json").write_text(json.dumps(
            summary("passed" if not failed else "failed", 100, failed, 1 - failed / 100, 10.0, [1.0],
                    {"timeout": failed} if failed else None)))
        runs.append((os.path.basename(path), backend))
        return str(d)

    md = compare(["a/replica_kills.yaml"], ["serve_core", "ray_serve"], run_one, str(tmp_path), log=lambda m: None)
    assert runs == [("replica_kills.yaml", "serve_core"), ("replica_kills.yaml", "ray_serve")]
    text = open(md).read()
    assert "| replica_kills | serve_core | passed | 100 | 0 | 100.000% | 10.0 | 1.0 |" in text
    assert "| replica_kills | ray_serve | failed | 100 | 36 (timeout 36) | 64.000% | 10.0 | 1.0 |" in text
    assert json.load(open(os.path.join(os.path.dirname(md), "compare.json")))[1]["failed"] == 36
    assert render([]).count("\n") == 6
