"""What a run is given and gives back: its options, its result, and the clock and thread
spawner the runner drives (protocols, so the runner's tests pass a fake clock)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from chaos.errors import ChaosError
from chaos.slo.prometheus import PrometheusAPI
from chaos.slo.timeseries import PLOT_WINDOW_S


class RunError(ChaosError, RuntimeError):
    """The run could not go on (the cause is in the message and the journal)."""


# -- what the runner drives ---------------------------------------------------------------------


class Clock(Protocol):
    def time(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class Worker(Protocol):
    def join(self, timeout: float | None = None) -> None: ...

    def is_alive(self) -> bool: ...


Spawner = Callable[[Callable[[], None], str], Worker]
PrometheusFactory = Callable[[str], PrometheusAPI]  # prometheus url -> client


def thread_spawner(fn: Callable[[], None], name: str) -> Worker:
    t = threading.Thread(target=fn, name=name, daemon=True)
    t.start()
    return t


# -- options and result -------------------------------------------------------------------------


@dataclass
class RunOptions:
    out_root: str = "reports/chaos"
    deploy: bool = True  # False: the application is already deployed
    tick_s: float = 1.0  # abort conditions are checked this often
    scrape_lag_s: float = 2.0  # the before window is probed at its end: leave out what is not scraped yet
    progress_every_s: float = 5.0
    join_timeout_s: float = 300.0  # how long faults still running at the end may take
    abort_join_timeout_s: float = 60.0  # the same after an abort (held faults are interrupted)
    series_step_s: float = 1.0  # the report's plots: one point a second
    series_window_s: float = PLOT_WINDOW_S  # their rates and percentiles are over this much
    alert_scale: float = 0.1  # chaos.slo.alerts' windows times this (5m/1m -> 30s/6s) for a run of minutes
    # Sample every process's memory and open files this often (chaos.run.resources); None: as the
    # experiment's steady_state.resources says (off without it); 0: never.
    resource_every_s: float | None = None


@dataclass
class RunResult:
    verdict: str
    reasons: list[str]
    run_dir: str
    journal_path: str
    interrupted: bool = False
    error: str | None = None


