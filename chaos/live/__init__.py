"""The live view: one web page showing the cluster and, while an experiment runs, its timeline
(requests, errors and latency per second, replicas per deployment, each fault as it is injected,
the error budget burning, the verdict when it ends), with past runs linked to their reports.

It reads what the reports read: each run's journal (chaos.run.journal, rewritten by the runner
at every fault, window and verdict) and the target's Prometheus, with the same queries as the
report's plots (chaos.slo.timeseries); the cluster comes from the target's status. Read-only.

- ``view``: pure functions from a journal and series to what the page shows;
- ``sources``: the runs on disk, whether a runner still runs, the cluster and the series;
- ``server``: the FastAPI app (the page, a JSON state, server-sent events, the reports) and
  ``python -m chaos ui`` / ``serve-core ui``.
"""

from __future__ import annotations

from typing import Any


def add_serve_core_commands(sub: Any) -> None:
    """``serve-core ui`` (the ``serve_core.cli`` entry point group, pyproject.toml)."""
    from serve_core.cli import passthrough

    passthrough(sub, "ui", "the live view in a browser: cluster, running experiment, past runs",
                "chaos.live.server:main")
