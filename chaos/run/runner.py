"""Run an experiment: check the target, deploy, start the load, probe the steady state,
inject the planned faults on time (each in a thread of its own, so a long one delays no
other), check the abort conditions every second, stop, roll back (always: also after an
abort, an error or Ctrl-C), judge the SLOs over the windows, and give the verdict.

Everything outside is behind a small protocol so the runner's logic is tested with fakes
and a fake clock: ``Target`` (chaos.targets.embedded), ``LoadDriver`` (chaos.run.load_driver; made by a
``LoadFactory``; ``LocustLoad`` wraps ``loadgen.runner.LoadRun``), ``SteadyStateProbe``
(chaos.run.steady_state; made by a ``ProbeFactory``; ``PrometheusProbe`` wraps
``chaos.slo.evaluate``), ``Clock`` and ``Spawner``; after the SLOs are judged it reads the report's time
series and the alerts' conditions through a ``PrometheusAPI`` (made by a ``PrometheusFactory``).
The runner reports only through events (chaos.run.journal); the journal, the progress printer and
the reports are listeners.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chaos.errors import ChaosError
from chaos.run import resources
from chaos.run.journal import (
    Abort,
    Event,
    EventBus,
    FaultFinished,
    FaultStarted,
    Journal,
    LoadStarted,
    Note,
    ProbeResult,
    Progress,
    ResourceSampled,
    RunFinished,
    RunStarted,
    SchedulePlanned,
    SeriesCollected,
    run_dir,
    to_plain,
)
from chaos.run.load_driver import LoadDriver, LoadFactory, LoadProgress, LoadRequest, LocustLoad
from chaos.run.options import (
    Clock,
    PrometheusFactory,
    RunOptions,
    RunResult,
    Spawner,
    SystemClock,
    Worker,
    thread_spawner,
)
from chaos.run.resources import Usage
from chaos.run.series import collect_series
from chaos.run.steady_state import ProbeFactory, PrometheusProbe, SteadyStateProbe
from chaos.run.verdict import decide_verdict, result_text
from chaos.slo.prometheus import Prometheus
from chaos.slo.timeseries import range_step
from chaos.spec import schedule as scheduling
from chaos.spec.experiment import BurnRateAbort, ClientFailuresAbort, Experiment
from chaos.spec.resource_check import ResourceCheck
from chaos.spec.schedule import PlannedFault, Snapshot
from chaos.targets import make_target
from chaos.targets.base import FaultOutcome, Target

WINDOWS = ("before", "during", "after", "whole")
NO_FAULT_WINDOWS = ("before", "after")  # recovery SLOs are not probed there


@dataclass
class _Launched:
    fault: PlannedFault
    id: str
    launched: float
    worker: Worker | None = None
    outcome: FaultOutcome | None = None


@dataclass
class _State:
    t0: float | None = None  # unix time the load started
    end: float | None = None  # unix time the run's timeline ended
    aborts: list[str] = field(default_factory=list)
    interrupted: bool = False
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    warned: set[str] = field(default_factory=set)  # keys of the warnings said
    snapshot: Snapshot | None = None
    plan: list[PlannedFault] = field(default_factory=list)
    launched: list[_Launched] = field(default_factory=list)
    probes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    probe_errors: dict[str, str] = field(default_factory=dict)
    load: LoadDriver | None = None
    probe: SteadyStateProbe | None = None
    summary: dict[str, Any] | None = None
    crosscheck: dict[str, Any] | None = None
    resource_samples: list[tuple[float, list[Usage]]] = field(default_factory=list)
    resource_errors: list[str] = field(default_factory=list)
    sampler: Worker | None = None  # the resource sample in progress

    @property
    def aborted(self) -> bool:
        return bool(self.aborts)


# -- the runner ---------------------------------------------------------------------------------


class Runner:
    """Runs one experiment. ``run()`` returns the verdict; the journal is in ``run_dir``."""

    def __init__(self, experiment: Experiment, target: Target | None = None, *,
                 load_factory: LoadFactory | None = None, probe_factory: ProbeFactory | None = None,
                 listeners: Iterable[Callable[[Event], None]] = (), clock: Clock | None = None,
                 spawn: Spawner = thread_spawner, options: RunOptions | None = None,
                 prometheus_factory: PrometheusFactory | None = None) -> None:
        self.exp = experiment
        self.target = target if target is not None else make_target(experiment.target, experiment.backend)
        self.load_factory: LoadFactory = load_factory or LocustLoad
        self.probe_factory: ProbeFactory = probe_factory or PrometheusProbe
        self.prometheus_factory: PrometheusFactory = prometheus_factory or Prometheus
        self.bus = EventBus(listeners)
        self.clock = clock or SystemClock()
        self.spawn = spawn
        self.options = options or RunOptions()
        self.run_dir = ""
        self._lock = threading.Lock()
        self._seq = 0

    # -- the run --

    def run(self) -> RunResult:
        exp = self.exp
        self.target.check()  # a TargetError here: nothing started, nothing to journal
        started = self.clock.time()
        self.run_dir = run_dir(self.options.out_root, exp.name, started)
        journal = Journal(self.run_dir)
        self.bus.listeners.insert(0, journal)
        self.bus.emit(RunStarted(started, exp.name, exp.model_dump(mode="json"), exp.seed,
                                 exp.target.model_dump(mode="json"), exp.backend, self.run_dir))
        st = _State()
        try:
            self._prepare(st)
            self._drive(st)
        except KeyboardInterrupt:
            st.interrupted = True
            self._abort(st, "interrupted (Ctrl-C)", {"kind": "interrupt"})
        except Exception as e:  # recorded in the journal; the rollbacks still run
            st.error = f"{type(e).__name__}: {e}"
            self._abort(st, f"error: {st.error}", {"kind": "error"})
        finally:
            verdict, reasons = self._wind_down(st)
        return RunResult(verdict, reasons, self.run_dir, journal.path, st.interrupted, st.error)

    def _prepare(self, st: _State) -> None:
        exp, app, target = self.exp, self.exp.application, self.target
        if self.options.deploy:
            self._note(f"deploying {app.deploys(exp.backend)} with {exp.backend}")
            out = target.deploy(app, exp.backend)
            self._note("deployed", out)
        proxies = target.proxy_urls(exp.backend, list(exp.load.proxies))
        target.wait_ready(proxies, app.route, app.ready_timeout_s)
        st.snapshot = target.snapshot()
        st.plan = scheduling.plan(exp, st.snapshot)
        self.bus.emit(SchedulePlanned(self.clock.time(), [p.to_dict() for p in st.plan], to_plain(st.snapshot)))
        st.probe = self.probe_factory(target.prometheus_url(), exp.backend)
        st.load = self.load_factory(LoadRequest(
            exp.load.profile, proxies, app.route, app.method, app.payload, app.payload_name, app.payload_file,
            os.path.join(self.run_dir, "load"), exp.load.workers, exp.load.timeout_s, exp.load.metrics_port,
            getattr(target, "load_metrics_host", "127.0.0.1"), exp.load.retry_reset))
        st.load.start()
        scrape = getattr(target, "add_scrape_targets", None)  # the client's metrics next to the servers'
        if scrape is not None:
            scrape(list(getattr(st.load, "metrics_endpoints", [])))
        st.t0 = self.clock.time()
        self.bus.emit(LoadStarted(st.t0, proxies))

    def _drive(self, st: _State) -> None:
        exp, opts, clock = self.exp, self.options, self.clock
        assert st.t0 is not None and st.load is not None
        t0, run_s = st.t0, exp.run_s
        before_s = exp.steady_state.before_s
        pending = deque(st.plan)
        before_done = False
        next_check = next_progress = next_sample = 0.0
        every = self._resource_every()
        while True:
            now = clock.time()
            off = now - t0
            if off >= run_s:
                break
            if not before_done and off >= before_s:
                before_done = True
                if not self._probe_before(st, t0):
                    break
            while before_done and pending and pending[0].at_s <= off + 1e-9:
                self._launch(st, pending.popleft())
            if off >= next_check:
                next_check = off + opts.tick_s
                if self._check_aborts(st, now, off):
                    break
            if off >= next_progress:
                next_progress = off + opts.progress_every_s
                self.bus.emit(Progress(now, off, to_plain(self._progress(st))))
            if every and off >= next_sample:
                next_sample = off + every
                self._sample_resources(st, off, every)
            wake = min(next_check, next_progress, next_sample if every else run_s, run_s)
            if not before_done:
                wake = min(wake, before_s)
            elif pending:
                wake = min(wake, pending[0].at_s)
            clock.sleep(max(0.0, wake - off))
        st.end = min(clock.time(), t0 + run_s)

    def _probe_before(self, st: _State, t0: float) -> bool:
        """Probe the before window; False when the hypothesis fails and must stop the run."""
        before_s, lag = self.exp.steady_state.before_s, self.options.scrape_lag_s
        end = t0 + (before_s - lag if before_s - lag >= 1.0 else before_s)  # what Prometheus has scraped by now
        results = self._probe(st, "before", t0, end, [])
        if "before" in st.probe_errors:
            self._warn(st, f"steady state not probed before the faults ({st.probe_errors['before']}): the faults "
                           "go ahead unchecked")
        failed = [r for r in results if r.get("ok") is False]
        unknown = [str(r.get("name")) for r in results if r.get("ok") is None]
        if unknown:
            self._warn(st, f"no data before the faults for {', '.join(unknown)}: the faults go ahead unchecked")
        if failed and self.exp.steady_state.require_before:
            self._abort(st, "steady state not met before the faults: " + "; ".join(result_text(r) for r in failed),
                        {"kind": "steady_state_before"})
            return False
        return True

    def _check_aborts(self, st: _State, now: float, off: float) -> bool:
        """Check the abort conditions; True when one fired."""
        assert st.probe is not None
        progress: LoadProgress | None = None
        for cond in self.exp.abort:
            if isinstance(cond, BurnRateAbort):
                if off < cond.window_s:
                    continue  # not a full window of data yet
                objective = cond.objective or self.exp.availability_objective()
                assert objective is not None  # checked when the experiment was parsed
                try:
                    rate = st.probe.burn_rate(objective, now, cond.window_s, cond.route)
                except Exception as e:
                    self._warn(st, f"burn rate could not be read (first at {off:.0f}s): {type(e).__name__}: {e}",
                               key=f"burn rate: {type(e).__name__}: {e}")
                    continue
                if rate is not None and rate > cond.above:
                    self._abort(st, f"error budget burn rate {rate:.1f} > {cond.above:g} over the last "
                                    f"{cond.window_s:g}s (objective {objective:g})",
                                {**cond.model_dump(mode="json"), "value": rate}, off)
                    return True
            elif isinstance(cond, ClientFailuresAbort):
                progress = progress or self._progress(st)
                if progress.failed > cond.above:
                    self._abort(st, f"{progress.failed} client requests failed (more than {cond.above})",
                                {**cond.model_dump(mode="json"), "value": progress.failed}, off)
                    return True
        return False

    def _progress(self, st: _State) -> LoadProgress:
        assert st.load is not None
        try:
            return st.load.progress()
        except Exception as e:
            self._warn(st, f"load progress could not be read: {type(e).__name__}: {e}")
            return LoadProgress()

    # -- resources --

    def _resource_every(self) -> float:
        check = self.exp.steady_state.resources
        every = self.options.resource_every_s
        return float(every if every is not None else check.sample_every_s if check is not None else 0.0)

    def _sample_resources(self, st: _State, off: float, every: float) -> None:
        """Sample the cluster's processes in a thread of its own (none while the last one runs)."""
        if st.sampler is not None and st.sampler.is_alive():
            return

        def take() -> None:
            try:
                usages, error = resources.sample(resources.cluster_processes(self.target)), None
            except Exception as e:  # said in the journal and once as a warning; sampling goes on
                usages, error = [], f"{type(e).__name__}: {e}"
            now = self.clock.time()
            if error is None:
                st.resource_samples.append((now, usages))
            else:
                st.resource_errors.append(error)
                self._warn(st, f"resources not sampled (first at {off:.0f}s): {error}", key=f"resources: {error}")
            self.bus.emit(ResourceSampled(now, round(off, 3), every, resources.rows_of(usages), error))

        st.sampler = self.spawn(take, "chaos-resources")

    def _judge_resources(self, st: _State) -> None:
        """The resources window: memory and open files of every process flat (steady_state.resources)."""
        check = self.exp.steady_state.resources
        if check is None and not st.resource_samples:
            return
        if st.sampler is not None:
            st.sampler.join(60.0)
        check = check or ResourceCheck(require_flat=False)
        error = st.resource_errors[-1] if st.resource_errors else None
        results = resources.results(resources.judge(st.resource_samples, check), check, error)
        st.probes["resources"] = results
        self.bus.emit(ProbeResult(self.clock.time(), "resources", st.t0 or 0.0, st.end or self.clock.time(), results))

    def _judged_windows(self) -> list[str]:
        check = self.exp.steady_state.resources
        return [*self.exp.steady_state.judge, *(["resources"] if check is not None and check.require_flat else [])]

    # -- faults --

    def _launch(self, st: _State, fault: PlannedFault) -> None:
        with self._lock:
            fid = f"f{self._seq}"
            self._seq += 1
        item = _Launched(fault, fid, self.clock.time())
        st.launched.append(item)
        item.worker = self.spawn(lambda: self._inject(st, item), f"chaos-{fid}-{fault.action}")

    def _inject(self, st: _State, item: _Launched) -> None:
        fault = item.fault
        offset = None if st.t0 is None else round(item.launched - st.t0, 3)
        self.bus.emit(FaultStarted(item.launched, item.id, fault.phase, fault.to_dict(), offset))
        try:
            outcome = self.target.inject(fault)
        except Exception as e:  # a target must return failures; still, never lose the thread's story
            outcome = FaultOutcome(False, error=f"{type(e).__name__}: {e}")
        item.outcome = outcome
        now = self.clock.time()
        self.bus.emit(FaultFinished(now, item.id, fault.phase, outcome.ok, outcome.started, outcome.ended,
                                    outcome.output, outcome.error, round(now - item.launched, 3)))

    def _join(self, st: _State) -> None:
        timeout = self.options.abort_join_timeout_s if st.aborted else self.options.join_timeout_s
        deadline = time.monotonic() + timeout
        for item in st.launched:
            if item.worker is not None:
                item.worker.join(max(0.0, deadline - time.monotonic()))
                if item.worker.is_alive():
                    self._warn(st, f"fault {item.id} ({item.fault.describe()}) still running after {timeout:.0f}s")

    # -- the end --

    def _wind_down(self, st: _State) -> tuple[str, list[str]]:
        rollbacks_done = False
        try:
            self._stop_load(st)
            if st.aborted:
                self.target.interrupt()  # held faults heal now
            self._join(st)
            self._rollbacks(st)
            rollbacks_done = True
            self._evaluate(st)
        except KeyboardInterrupt:
            st.interrupted = True
            self._abort(st, "interrupted (Ctrl-C) while " + ("judging" if rollbacks_done else "rolling back"),
                        {"kind": "interrupt"})
        except Exception as e:
            self._warn(st, f"winding down failed: {type(e).__name__}: {e}")
        verdict, reasons = decide_verdict(self._judged_windows(), st.probes, st.probe_errors, st.aborts,
                                          _fault_failures(st), any(i.fault.phase == "method" for i in st.launched))
        self.bus.emit(RunFinished(self.clock.time(), verdict, reasons, st.summary, st.crosscheck, st.error,
                                  list(st.warnings)))
        return verdict, reasons

    def _stop_load(self, st: _State) -> None:
        if st.load is None or st.t0 is None:
            return
        if st.end is None:
            st.end = self.clock.time()
        profile_s = getattr(self.exp.load.profile, "duration_s", None) or 0.0
        try:
            if st.aborted or profile_s > self.exp.run_s + 1.0:
                st.load.stop()
            st.summary = st.load.wait()
        except Exception as e:
            self._warn(st, f"the load did not end cleanly: {type(e).__name__}: {e}")

    def _rollbacks(self, st: _State) -> None:
        if not self.exp.rollbacks:
            return
        try:
            snap = self.target.snapshot()
        except Exception as e:
            self._warn(st, f"rollbacks planned on the snapshot from the start: {type(e).__name__}: {e}")
            snap = st.snapshot or Snapshot.assumed(self.exp.target.workers)
        try:
            planned = scheduling.plan_rollbacks(self.exp, snap)
        except ChaosError as e:
            self._warn(st, f"rollbacks could not be planned: {e}")
            return
        for fault in planned:
            with self._lock:
                fid = f"r{self._seq}"
                self._seq += 1
            item = _Launched(fault, fid, self.clock.time())
            self._inject(st, item)  # one after another, in document order
            if item.outcome is not None and not item.outcome.ok:
                self._warn(st, f"rollback {fault.describe()} failed: {item.outcome.error}")

    def _evaluate(self, st: _State) -> None:
        if st.t0 is None or st.probe is None:
            return
        exp, t0 = self.exp, st.t0
        end = st.end if st.end is not None else self.clock.time()
        self.clock.sleep(exp.steady_state.settle_s)
        # When each fault acted, and until when (a held fault until its heal; None: still acting).
        acted = sorted(((i.outcome.started if i.outcome and i.outcome.started else i.launched,
                         i.outcome.ended if i.outcome else None)
                        for i in st.launched if i.fault.phase == "method"), key=lambda a: a[0])
        for window in ("during", "after", "whole"):
            a, b = exp.window(window)
            start, stop = t0 + a, min(t0 + b, end)
            if stop - start < 1.0:
                continue  # the run ended before this window
            inside = [(t, e) for t, e in acted if start <= t <= stop]
            self._probe(st, window, start, stop, [t for t, _ in inside], [e for _, e in inside])
        try:
            st.crosscheck = st.probe.crosscheck(t0, end, st.load.records_path if st.load else None)
        except Exception as e:
            self._warn(st, f"the cross-check of Prometheus with the client records failed: {type(e).__name__}: {e}")
        self._judge_resources(st)
        self._collect_series(st, t0, end)

    def _collect_series(self, st: _State, start: float, end: float) -> None:
        """Read the plots' series and every alert's condition over the run for the reports. Nothing
        here fails the run: what could not be read is a warning, and an entry that says why."""
        exp, opts = self.exp, self.options
        series, alerts, warnings = collect_series(
            exp, lambda: self.prometheus_factory(self.target.prometheus_url()), start, end,
            opts.series_step_s, opts.series_window_s, opts.alert_scale)
        for warning in warnings:
            self._warn(st, warning)
        self.bus.emit(SeriesCollected(self.clock.time(), start, end, range_step(start, end, opts.series_step_s),
                                      opts.series_window_s, series, alerts))

    def _probe(self, st: _State, window: str, start: float, end: float,
               fault_times: list[float], fault_ends: list[float | None] | None = None) -> list[dict[str, Any]]:
        assert st.probe is not None
        slos = [s for s in self.exp.steady_state.slos if not (window in NO_FAULT_WINDOWS and s.kind == "recovery")]
        error = None
        try:
            results = [dict(r) for r in st.probe.evaluate(slos, start, end, fault_times, fault_ends or ())]
        except Exception as e:
            results, error = [], f"{type(e).__name__}: {e}"
            st.probe_errors[window] = error
        st.probes[window] = results
        self.bus.emit(ProbeResult(self.clock.time(), window, start, end, results, error))
        return results

    # -- reporting --

    def _abort(self, st: _State, reason: str, condition: Mapping[str, Any], offset: float | None = None) -> None:
        st.aborts.append(reason)
        self.bus.emit(Abort(self.clock.time(), reason, dict(condition), offset))

    def _warn(self, st: _State, message: str, key: str | None = None) -> None:
        """Say a warning once (per ``key``, default the message itself)."""
        key = key or message
        if key not in st.warned:
            st.warned.add(key)
            st.warnings.append(message)
            self._note(f"warning: {message}")

    def _note(self, message: str, data: Mapping[str, Any] | None = None) -> None:
        self.bus.emit(Note(self.clock.time(), message, to_plain(dict(data or {}))))


def run_experiment(experiment: Experiment, *, listeners: Iterable[Callable[[Event], None]] = (),
                   options: RunOptions | None = None, target: Target | None = None,
                   load_factory: LoadFactory | None = None, probe_factory: ProbeFactory | None = None,
                   prometheus_factory: PrometheusFactory | None = None) -> RunResult:
    """Run ``experiment`` on the target it names (or ``target``) with Locust load and SLOs
    in Prometheus (or the given factories)."""
    return Runner(experiment, target, load_factory=load_factory, probe_factory=probe_factory,
                  listeners=listeners, options=options, prometheus_factory=prometheus_factory).run()


def _fault_failures(st: _State) -> list[str]:
    return [f"{i.fault.describe()} at {i.fault.at_s:g}s: {i.outcome.error}"
            for i in st.launched if i.fault.phase == "method" and i.outcome is not None and not i.outcome.ok]
