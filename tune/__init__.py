"""Tune autoscaling settings against SLOs: a sweep in the simulator, confirmed by real runs."""

from __future__ import annotations

from typing import Any


def add_serve_core_commands(sub: Any) -> None:
    """``serve-core tune ...`` (the ``serve_core.cli`` entry point group, pyproject.toml)."""
    from serve_core.cli import passthrough

    passthrough(sub, "tune", "tune autoscaling settings against SLOs (python -m tune)", "tune.__main__:main")
