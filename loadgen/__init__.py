"""Open-loop load with Locust: schedules of intended start times, client-side truth per request.

Locust runs in processes of its own (gevent patches the standard library, which breaks a Ray
driver in the same process); this package's library API starts and watches them.
"""

from __future__ import annotations

from typing import Any


def add_serve_core_commands(sub: Any) -> None:
    """``serve-core load ...`` (the ``serve_core.cli`` entry point group, pyproject.toml)."""
    from serve_core.cli import passthrough

    passthrough(sub, "load", "open-loop load with client-side truth (python -m loadgen)", "loadgen.cli:main")
