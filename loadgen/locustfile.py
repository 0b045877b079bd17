"""Locust entry point of a load run: ``python -m locust -f loadgen/locustfile.py`` (``loadgen.runner``
starts it; the run's folder and this process's shard come in LOADGEN_RUN_DIR and LOADGEN_SHARD).

One OpenLoopUser per sending process owns that process's shard of the schedule. In distributed
mode the master picks the common start time once every worker's user exists, tells the workers,
and quits when every worker has reported its shard done; a local run quits itself.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any, NoReturn

import gevent
from gevent import GreenletExit
from gevent.event import AsyncResult
from locust import User, events, task
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from loadgen.layout import RunDir
from loadgen.metrics import LoadMetrics
from loadgen.open_loop import OpenLoop
from loadgen.progress import Phase
from loadgen.schedule import Schedule
from loadgen.spec import LoadSpec

RUN_DIR_ENV = "LOADGEN_RUN_DIR"
SHARD_ENV = "LOADGEN_SHARD"
START_LEAD_S = 1.0  # time for the start message to reach every worker
T0_WAIT_S = 60.0
CSV_SETTLE_S = 1.2  # Locust rewrites its CSV once a second and not at exit: outlive one rewrite

log = logging.getLogger("loadgen.locust")


class _State:
    """What this process knows about the run (module level: Locust makes users, not us)."""

    spec: LoadSpec
    run_dir: RunDir
    shard_index = 0
    shard_count = 1
    driver: OpenLoop | None = None
    claimed = False
    t0: AsyncResult = AsyncResult()
    done_shards: set[int] = set()


def _load() -> None:
    if RUN_DIR_ENV not in os.environ:
        raise RuntimeError(f"{RUN_DIR_ENV} is not set: start load runs with loadgen.runner.LoadRun or "
                           "python -m loadgen run, not with locust directly")
    _State.run_dir = RunDir(Path(os.environ[RUN_DIR_ENV]))
    _State.spec = LoadSpec.model_validate_json(_State.run_dir.spec.read_text())
    index, _, count = os.environ.get(SHARD_ENV, "0/1").partition("/")
    _State.shard_index, _State.shard_count = int(index), int(count or 1)


@events.init.add_listener
def _on_init(environment: Environment, **_kw: Any) -> None:
    _load()
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        runner.register_message("loadgen_done", _on_done)
        environment.events.spawning_complete.add_listener(lambda user_count, **_: _announce_start(environment))
        return
    if isinstance(runner, WorkerRunner):
        runner.register_message("loadgen_t0", _on_t0)
    spec, run_dir = _State.spec, _State.run_dir
    data = json.loads(run_dir.schedule.read_text())
    schedule = Schedule(data["offsets"], data["duration_s"])
    metrics = LoadMetrics()
    port = metrics.serve(spec.metrics_host, spec.metrics_port + _State.shard_index if spec.metrics_port else 0)

    def on_request(method: str, route: str, latency_s: float, size: int, error: Exception | None,
                   target: str) -> None:
        environment.events.request.fire(request_type=method, name=route, response_time=latency_s * 1000.0,
                                        response_length=size, exception=error, context={"target": target})

    _State.driver = OpenLoop(spec, schedule.shard(_State.shard_index, _State.shard_count), _State.shard_index,
                             run_dir, metrics, on_request)
    _State.driver.report(Phase.STARTING)
    run_dir.metrics_port(_State.shard_index).write_text(f"{port}\n")  # last: the runner waits for it
    log.info("shard=%d/%d metrics_port=%d", _State.shard_index, _State.shard_count, port)


def _announce_start(environment: Environment) -> None:
    t0 = time.time() + START_LEAD_S
    assert environment.runner is not None
    environment.runner.send_message("loadgen_t0", {"t0": t0})
    log.info("start announced t0=%.3f", t0)


def _on_t0(environment: Environment, msg: Any, **_kw: Any) -> None:
    if not _State.t0.ready():
        _State.t0.set(float(msg.data["t0"]))


def _on_done(environment: Environment, msg: Any, **_kw: Any) -> None:
    _State.done_shards.add(int(msg.data["shard"]))
    log.info("shard=%s done (%d of %d)", msg.data["shard"], len(_State.done_shards), _State.spec.workers)
    if len(_State.done_shards) >= _State.spec.workers and environment.runner is not None:
        gevent.spawn_later(CSV_SETTLE_S, environment.runner.quit)


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_kw: Any) -> None:
    driver = _State.driver
    if driver is not None and not _State.claimed:  # stopped before the user ever ran
        driver.close(Phase.STOPPED)


class OpenLoopUser(User):
    """Runs this process's shard of the schedule, once; other users in the process stay idle."""

    @task
    def run_schedule(self) -> None:
        driver = _State.driver
        if _State.claimed or driver is None:
            _idle()
        _State.claimed = True
        runner = self.environment.runner
        try:
            if isinstance(runner, WorkerRunner):
                try:
                    t0 = _State.t0.get(timeout=T0_WAIT_S)
                except gevent.Timeout:
                    log.warning("shard=%d no start time from the master in %.0fs; starting now",
                                _State.shard_index, T0_WAIT_S)
                    t0 = time.time()
            else:
                t0 = time.time() + 0.05
            driver.run(t0)
            if isinstance(runner, WorkerRunner):
                runner._send_stats()  # the master's stats (and CSV) get the last requests now, not in 3 s
                gevent.sleep(_State.spec.linger_s)  # /metrics stays up for a last scrape
            else:
                gevent.sleep(max(_State.spec.linger_s, CSV_SETTLE_S))
        except GreenletExit:
            if not driver.finished:
                driver.cancel()
            driver.close(Phase.LINGERING if driver.finished else Phase.STOPPED)
            raise
        driver.close(Phase.FINISHED)
        if isinstance(runner, WorkerRunner):
            runner.send_message("loadgen_done", {"shard": _State.shard_index})
        elif runner is not None:
            gevent.spawn(runner.quit)  # not from this greenlet: quitting kills the users
        _idle()


def _idle() -> NoReturn:
    while True:
        gevent.sleep(3600)
