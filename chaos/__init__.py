"""Chaos experiments: declarative faults on a schedule, steady-state SLOs read from Prometheus,
and a journal of every run. Reaches serve_core only through its CLI and the cluster."""

from __future__ import annotations

from typing import Any


def add_serve_core_commands(sub: Any) -> None:
    """``serve-core chaos ...`` (the ``serve_core.cli`` entry point group, pyproject.toml)."""
    from serve_core.cli import passthrough

    passthrough(sub, "chaos", "chaos experiments, campaigns, reports (python -m chaos)", "chaos.cli:main")
