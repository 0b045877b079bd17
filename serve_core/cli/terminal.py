"""A progress bar with the time left, for long commands attached to a terminal (rich); on
anything else (a pipe, a CI log), or without rich installed (it comes with the testbed's
extra), nothing: callers print their quiet lines instead. Used by the testbed's long
commands (`chaos run`, `loadgen run`, `tune run`, `cluster up`).

    bar = Bar(sys.stdout, total=600, description="load")
    bar.print("fault f0 done")          # a line above the bar (or just a line)
    bar.update(42.0, "4200 sent, 0 failed")
    bar.stop()
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any, TextIO


def is_terminal(stream: TextIO) -> bool:
    """A terminal a bar can be drawn on (and rich there to draw it)."""
    if not (bool(getattr(stream, "isatty", lambda: False)()) and os.environ.get("TERM") != "dumb"):
        return False
    return importlib.util.find_spec("rich") is not None


class Bar:
    def __init__(self, stream: TextIO, total: float, description: str = "") -> None:
        self.stream = stream
        self.live = is_terminal(stream)
        self._progress: Any = None
        if not self.live:
            return
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.console = Console(file=stream, force_terminal=True, highlight=False)
        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(), TextColumn("elapsed,"), TimeRemainingColumn(), TextColumn("left"),
            console=self.console, transient=False, refresh_per_second=4)
        self._task = self._progress.add_task(description, total=max(total, 1e-9))
        self._progress.start()

    def update(self, completed: float, description: str | None = None) -> None:
        if self._progress is not None:
            extra = {} if description is None else {"description": description}
            self._progress.update(self._task, completed=completed, **extra)

    def print(self, text: str) -> None:
        if self._progress is not None:
            self.console.print(text, markup=False)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
