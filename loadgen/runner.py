"""The library API: start a load run as Locust subprocesses, watch it, collect its truth.

Safe in a process that drives Ray: this module never imports Locust or gevent (Locust's
monkey-patching would break the Ray driver); Locust runs only in the processes started here.

    run = LoadRun({"kind": "constant", "rate": 100, "duration_s": 30}, ["http://127.0.0.1:8000"],
                  out_dir="reports/load/run1").start()
    ...                      # inject faults; run.progress() for live counts
    summary = run.wait()     # or run.stop() to end early; both return the Summary
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from loadgen.errors import LoadRunFailed, LocustMissing, SpecError, TargetUnreachable
from loadgen.layout import RunDir
from loadgen.profile import LoadProfile, load_profile, parse_profile
from loadgen.progress import Phase, Progress, ShardProgress
from loadgen.records import merge_parts
from loadgen.schedule import Schedule, build_schedule
from loadgen.spec import LoadSpec
from loadgen.summary import Summary, summarize
from serve_core.cli.terminal import Bar, is_terminal

log = logging.getLogger("loadgen.runner")

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
_REPO_ROOT = Path(__file__).resolve().parent.parent
_NO_PAYLOAD = object()


def as_profile(profile: LoadProfile | Mapping[str, Any] | str | Path) -> LoadProfile:
    """A profile object, a mapping (as from YAML), or the path of a YAML file."""
    if isinstance(profile, str | Path):
        return load_profile(profile)
    return parse_profile(dict(profile) if isinstance(profile, Mapping) else profile)


def make_spec(profile: LoadProfile | Mapping[str, Any] | str | Path, targets: Sequence[str], **options: Any) -> LoadSpec:
    """Validate a run's options into a LoadSpec; every problem is listed in one SpecError."""
    parsed = as_profile(profile)
    try:
        return LoadSpec(profile=parsed, targets=list(targets), **options)
    except ValidationError as exc:
        raise SpecError([f"{'.'.join(str(p) for p in e['loc']) or '(spec)'}: {e['msg']}"
                         for e in exc.errors()]) from None


def check_targets(targets: Sequence[str], timeout_s: float = 2.0) -> dict[str, str]:
    """TCP-connect to each target; returns the unreachable ones with the reason."""
    problems = {}
    for target in targets:
        parts = urlsplit(target)
        try:
            socket.create_connection((parts.hostname, parts.port), timeout=timeout_s).close()
        except OSError as exc:
            problems[target] = exc.strerror or type(exc).__name__
    return problems


class LoadRun:
    """One open-loop load run. ``start()`` returns once every Locust process is up and serving
    /metrics; ``wait()`` or ``stop()`` returns the Summary and leaves in ``out_dir``:
    records.jsonl, summary.json, prometheus_targets.json, locust_stats.csv, logs/."""

    def __init__(
        self,
        profile: LoadProfile | Mapping[str, Any] | str | Path,
        targets: Sequence[str],
        *,
        route: str = "/",
        method: str = "GET",
        payload: Any = _NO_PAYLOAD,
        payloads: Sequence[Any] | None = None,
        headers: Mapping[str, str] | None = None,
        out_dir: str | Path = "reports/load/run",
        workers: int = 1,
        timeout_s: float = 5.0,
        max_in_flight: int = 1000,
        late_tolerance_s: float = 0.05,
        metrics_port: int = 0,
        metrics_host: str = "127.0.0.1",
        linger_s: float = 2.0,
        keepalive_idle_s: float = 2.0,
        retry_reset: bool = False,
        progress_every_s: float | None = None,
        check_targets: bool = True,
        start_timeout_s: float = 60.0,
        python: str | None = None,
        prometheus_sd: str | None = None,
    ) -> None:
        bodies = list(payloads) if payloads is not None else ([] if payload is _NO_PAYLOAD else [payload])
        self.spec = make_spec(
            profile, targets, route=route, method=method, payloads=bodies, headers=dict(headers or {}),
            workers=workers, timeout_s=timeout_s, max_in_flight=max_in_flight, late_tolerance_s=late_tolerance_s,
            metrics_port=metrics_port, metrics_host=metrics_host, linger_s=linger_s,
            keepalive_idle_s=keepalive_idle_s, retry_reset=retry_reset,
        )
        self.dir = RunDir(Path(out_dir).resolve())
        self.prometheus_sd = prometheus_sd
        self.progress_every_s = progress_every_s
        self.check_targets = check_targets
        self.start_timeout_s = start_timeout_s
        self.python = python or sys.executable
        self.schedule: Schedule | None = None
        self.metrics_endpoints: list[str] = []  # host:port of each sending process's /metrics
        self.warnings: list[str] = []
        self.summary: Summary | None = None
        self._procs: dict[str, subprocess.Popen[bytes]] = {}  # name -> process; "master" or "local" first
        self._watcher: threading.Thread | None = None
        self._finished = threading.Event()

    @classmethod
    def from_spec(cls, spec: LoadSpec, out_dir: str | Path, **run_options: Any) -> LoadRun:
        options = spec.model_dump(exclude={"profile", "targets"})
        return cls(spec.profile, spec.targets, out_dir=out_dir, **options, **run_options)

    # -- start ----------------------------------------------------------------------------

    def start(self) -> LoadRun:
        if self._procs:
            raise RuntimeError("this LoadRun was already started; make a new one for another run")
        self.schedule = build_schedule(self.spec.profile)
        self._check_locust()
        if self.check_targets:
            problems = check_targets(self.spec.targets)
            if len(problems) == len(self.spec.targets):
                raise TargetUnreachable(problems)
            for target, why in problems.items():
                self._warn(f"target {target} unreachable at start: {why}")
        self._prepare_dir(self.schedule)
        self._launch()
        try:
            self._wait_started()
        except BaseException:
            self._kill_all()
            raise
        if self.progress_every_s:
            self._watcher = threading.Thread(target=self._print_progress, name="loadgen-progress", daemon=True)
            self._watcher.start()
        log.info("started out_dir=%s requests=%d workers=%d metrics=%s", self.dir.root, len(self.schedule),
                 self.spec.workers, ",".join(self.metrics_endpoints))
        return self

    def _check_locust(self) -> None:
        if self.python == sys.executable:
            if importlib.util.find_spec("locust") is None:
                raise LocustMissing(self.python)
            return
        try:
            probe = subprocess.run([self.python, "-c", "import locust"], capture_output=True, timeout=60)
        except OSError:
            raise LocustMissing(self.python) from None
        if probe.returncode != 0:
            raise LocustMissing(self.python)

    def _prepare_dir(self, schedule: Schedule) -> None:
        root = self.dir.root
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.dir.work, ignore_errors=True)
        shutil.rmtree(self.dir.logs, ignore_errors=True)
        for stale in [self.dir.records, self.dir.summary, self.dir.prometheus_targets, *root.glob("locust_*.csv")]:
            stale.unlink(missing_ok=True)
        self.dir.work.mkdir()
        self.dir.logs.mkdir()
        self.dir.spec.write_text(self.spec.model_dump_json(indent=1))
        self.dir.schedule.write_text(json.dumps({"duration_s": schedule.duration_s, "offsets": schedule.offsets}))

    def _locust_cmd(self, *extra: str) -> list[str]:
        return [self.python, "-m", "locust", "-f", str(LOCUSTFILE), *extra]

    def _launch(self) -> None:
        assert self.schedule is not None
        spec = self.spec
        # A safety net only: the run ends itself once every request is answered or has failed.
        run_time = math.ceil(self.schedule.duration_s + spec.timeout_s + spec.linger_s + 60)
        common = ["--headless", "--run-time", f"{run_time}s", "--csv", str(self.dir.locust_csv_prefix),
                  "--only-summary", "--exit-code-on-error", "0", "--stop-timeout", "0"]
        if spec.workers == 1:
            self._spawn("local", 0, self._locust_cmd(*common, "-u", "1", "-r", "1"))
            return
        port = _free_port()
        self._spawn("master", None, self._locust_cmd(
            *common, "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
            "--expect-workers", str(spec.workers), "--expect-workers-max-wait", str(int(self.start_timeout_s)),
            "-u", str(spec.workers), "-r", str(spec.workers)))
        for i in range(spec.workers):
            self._spawn(f"worker-{i}", i, self._locust_cmd(
                "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)))

    def _spawn(self, name: str, shard: int | None, cmd: list[str]) -> None:
        env = dict(os.environ)
        env["LOADGEN_RUN_DIR"] = str(self.dir.root)
        env["LOADGEN_SHARD"] = f"{shard if shard is not None else 0}/{self.spec.workers}"
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_REPO_ROOT), env.get("PYTHONPATH")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        with open(self.dir.log(name), "wb") as logfile:
            # Own session: stop() signals this process group, and nothing else.
            self._procs[name] = subprocess.Popen(cmd, stdout=logfile, stderr=subprocess.STDOUT, env=env,
                                                 cwd=self.dir.work, start_new_session=True)
        log.debug("spawned name=%s pid=%d", name, self._procs[name].pid)

    def _wait_started(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        ports: dict[int, int] = {}
        while len(ports) < self.spec.workers:
            for name, proc in self._procs.items():
                if proc.poll() is not None:
                    raise LoadRunFailed(f"locust process {name} exited with code {proc.returncode} while starting",
                                        str(self.dir.log(name)), _tail(self.dir.log(name)))
            for i in range(self.spec.workers):
                path = self.dir.metrics_port(i)
                if i not in ports and path.exists():
                    text = path.read_text().strip()
                    if text.isdigit():
                        ports[i] = int(text)
            if time.monotonic() > deadline:
                missing = sorted(set(range(self.spec.workers)) - set(ports))
                raise LoadRunFailed(f"locust shard(s) {missing} not up after {self.start_timeout_s:.0f}s",
                                    str(self.dir.logs), _tail(self.dir.log(self._main_name())))
            time.sleep(0.05)
        host = advertised_host(self.spec.metrics_host)
        self.metrics_endpoints = [f"{host}:{ports[i]}" for i in range(self.spec.workers)]
        groups = [{"targets": self.metrics_endpoints, "labels": {"job": "loadgen"}}]
        self.dir.prometheus_targets.write_text(json.dumps(groups, indent=1))
        if self.prometheus_sd:  # a Prometheus file_sd file elsewhere (compose: the shared targets volume)
            tmp = f"{self.prometheus_sd}.tmp"
            Path(tmp).write_text(json.dumps(groups))
            os.replace(tmp, self.prometheus_sd)

    # -- watch ----------------------------------------------------------------------------

    def progress(self) -> Progress:
        """Live counts summed over the workers (files the workers rewrite every second)."""
        shards = [ShardProgress.read(self.dir.progress(i)) for i in range(self.spec.workers)]
        return Progress.combine(shards, self.spec.workers, len(self.schedule or []), now=time.time())

    def _print_progress(self) -> None:
        """A line every ``progress_every_s``; on a terminal, a bar of the schedule with the time left."""
        assert self.progress_every_s is not None
        bar = Bar(sys.stderr, self.schedule.duration_s if self.schedule else 0.0, "load") if is_terminal(sys.stderr) \
            else None
        try:
            while not self._finished.wait(self.progress_every_s):
                p = self.progress()
                if bar is None:
                    print(p.line(), file=sys.stderr, flush=True)
                else:
                    bar.update(p.elapsed_s or 0.0, f"load: {p.started}/{p.scheduled} sent, {p.ok} ok, {p.failed} failed")
        finally:
            if bar is not None:
                bar.stop()

    @property
    def running(self) -> bool:
        return any(p.poll() is None for p in self._procs.values())

    # -- end ------------------------------------------------------------------------------

    def wait(self, timeout_s: float | None = None) -> Summary:
        """Wait for the run to end by itself; returns the Summary. On ``timeout_s`` (default: the
        profile's duration plus request timeout, linger and two minutes) the run is stopped and
        LoadRunFailed raised."""
        if self.summary is not None:
            return self.summary
        if not self._procs:
            raise RuntimeError("start() the run first")
        assert self.schedule is not None
        limit = timeout_s if timeout_s is not None else (
            self.schedule.duration_s + self.spec.timeout_s + self.spec.linger_s + 120)
        main = self._procs[self._main_name()]
        try:
            main.wait(limit)
        except subprocess.TimeoutExpired:
            self.stop()
            raise LoadRunFailed(f"the run did not end within {limit:.0f}s; stopped it", str(self.dir.logs)) from None
        self._reap(grace_s=15)
        return self._finish()

    def stop(self, grace_s: float = 15.0) -> Summary:
        """End the run now: requests in flight are recorded as cancelled, later starts are not sent."""
        if self.summary is not None:
            return self.summary
        main = self._procs.get(self._main_name())
        if main is not None and main.poll() is None:
            _signal(main, signal.SIGTERM)
        self._reap(grace_s)
        return self._finish()

    def _reap(self, grace_s: float) -> None:
        """Wait for every process (workers follow their master); SIGTERM, then SIGKILL, stragglers."""
        deadline = time.monotonic() + grace_s
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            for proc in self._procs.values():
                if proc.poll() is None and sig is not None:
                    _signal(proc, sig)
            for proc in self._procs.values():
                try:
                    proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
            if not self.running:
                break
            deadline = time.monotonic() + 5

    def _kill_all(self) -> None:
        for proc in self._procs.values():
            if proc.poll() is None:
                _signal(proc, signal.SIGKILL)
                proc.wait(10)
        self._finished.set()

    def _finish(self) -> Summary:
        self._finished.set()
        assert self.schedule is not None
        workers = self.spec.workers
        shards = [ShardProgress.read(self.dir.progress(i)) for i in range(workers)]
        parts = [self.dir.records_part(i) for i in range(workers)]
        if not any(p.exists() for p in parts):
            name = self._main_name()
            raise LoadRunFailed("no Locust process wrote records", str(self.dir.log(name)), _tail(self.dir.log(name)))
        records = merge_parts(parts, self.dir.records)
        done = all(s is not None and s.phase in (Phase.LINGERING, Phase.FINISHED) for s in shards)
        for i, s in enumerate(shards):
            if s is None or s.phase not in (Phase.LINGERING, Phase.FINISHED):
                self._warn(f"shard {i} did not finish (phase: {s.phase.value if s else 'never reported'})")
        self.summary = summarize(
            records, len(self.schedule), self.schedule.duration_s, complete=done, workers=workers,
            targets=self.spec.targets, route=self.spec.route, method=self.spec.method,
            records_path=str(self.dir.records),
        )
        self.dir.summary.write_text(self.summary.model_dump_json(indent=1))
        for name, proc in self._procs.items():
            if proc.returncode not in (0, None, -signal.SIGTERM):
                self._warn(f"locust process {name} exited with code {proc.returncode} (log: {self.dir.log(name)})")
        log.info("finished sent=%d ok=%d failed=%d missed=%d complete=%s", self.summary.sent, self.summary.ok,
                 self.summary.failed, self.summary.missed_starts, self.summary.complete)
        return self.summary

    def _warn(self, message: str) -> None:
        """Kept in ``warnings`` for the caller, and logged once."""
        self.warnings.append(message)
        log.warning("%s", message)

    def _main_name(self) -> str:
        return "local" if self.spec.workers == 1 else "master"

    def __enter__(self) -> LoadRun:
        return self if self._procs else self.start()

    def __exit__(self, *exc: object) -> None:
        if self.running:
            self.stop()


def advertised_host(bind: str) -> str:
    """The address others scrape the metrics at: the bind address, or for 0.0.0.0 this
    machine's (a container's address on its network), else loopback."""
    if bind not in ("0.0.0.0", ""):
        return bind
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # the process's own group (start_new_session)
    except (ProcessLookupError, PermissionError):
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
