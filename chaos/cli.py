"""``python -m chaos``: validate an experiment (and see its planned faults), run it, list the
ready ones, (re)write a run's report.

    python -m chaos validate chaos/experiments/replica_kills.yaml
    python -m chaos run chaos/experiments/replica_kills.yaml --target embedded:default --backend ray_serve
    python -m chaos shrink reports/chaos/mixed_soak-20261207-180000 --max-runs 30 --max-time 3600
    python -m chaos report reports/chaos/replica_kills-20261122-045639
    python -m chaos campaign chaos/campaigns/ci.yaml --target embedded:default
    python -m chaos slo export chaos/experiments/replica_kills.yaml -o out/slo

Exit status of ``run``: 0 passed, 1 failed, 2 aborted, 3 could not run (bad file, cluster
unreachable), 130 interrupted. ``validate``: 0 valid, 3 invalid. ``report``: 0, 3 no journal.
``shrink``: 0 a smaller failing schedule found (or the original is minimal), 1 the run did not fail
again on replay, 3 could not run, 130 interrupted.
``campaign``: 0 every run passed and every health check was clean, 1 otherwise, 3 could not run.
``slo export``: 0 written, 3 a bad file, option or SLO, or a directory that cannot be written.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from collections.abc import Callable
from typing import Any, TextIO

from chaos.errors import NO_VALUE, ChaosError, ExperimentError, Problem
from chaos.report.run_report import HTML_FILE, SUMMARY_FILE, ReportListener, load_run, write_report
from chaos.run.journal import (
    Abort,
    Event,
    FaultFinished,
    FaultStarted,
    LoadStarted,
    Note,
    ProbeResult,
    Progress,
    RunFinished,
    RunStarted,
    SchedulePlanned,
)
from chaos.slo.alerts import alert_rules_yaml
from chaos.slo.openslo import DEFAULT_PROMETHEUS_URL, openslo_documents, to_yaml
from chaos.slo.queries import SLOError
from chaos.spec.experiment import Experiment
from chaos.spec.loading import load_experiment
from chaos.spec.schedule import PlannedFault, Snapshot, plan
from serve_core.cli.terminal import Bar, is_terminal

EXPERIMENTS_DIR = os.path.join(os.path.dirname(__file__), "experiments")
EXIT = {"passed": 0, "failed": 1, "aborted": 2}
EXIT_ERROR, EXIT_INTERRUPTED = 3, 130


def main(argv: list[str] | None = None, prog: str = "python -m chaos") -> int:
    p = argparse.ArgumentParser(prog=prog, description="Chaos experiments on a serve_core or Ray Serve "
                                                                    "cluster: faults on a schedule, SLOs from Prometheus.")
    sub = p.add_subparsers(dest="command", required=True)

    def overrides(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("file", help="experiment YAML (ready ones: chaos/experiments/)")
        sp.add_argument("--target", help="where to run: embedded:CLUSTER or compose:PROJECT (default: the file's target)")
        sp.add_argument("--backend", choices=["serve_core", "ray_serve"], help="what serves the app (default: the file's)")
        sp.add_argument("--seed", type=int, help="seed of the random choices (default: the file's)")
        sp.add_argument("--rate", type=float, help="requests/s of a constant load (default: the file's)")
        sp.add_argument("--duration", type=float, metavar="SECONDS",
                        help="a short run of a long experiment: windows and schedule times scaled to last this long, "
                             "fault rates and holds as they are (default: the file's)")

    v = sub.add_parser("validate", help="check an experiment and print its planned faults")
    overrides(v)
    v.add_argument("--json", action="store_true", help="print the experiment and plan as JSON")
    v.set_defaults(handler=cmd_validate)
    r = sub.add_parser("run", help="run an experiment and write its journal")
    overrides(r)
    r.add_argument("--out", default="reports/chaos", help="where run directories go (default reports/chaos)")
    r.add_argument("--no-deploy", action="store_true", help="the application is deployed already")
    r.add_argument("--quiet", action="store_true", help="print only the verdict")
    r.set_defaults(handler=cmd_run)
    cp = sub.add_parser("compare", help="run experiments on serve_core and Ray Serve, write a side-by-side table")
    cp.add_argument("files", nargs="+", help="experiment YAML files")
    cp.add_argument("--backends", default="serve_core,ray_serve", help="comma-separated (default both)")
    cp.add_argument("--target", help="where to run: embedded:CLUSTER (default: each file's target)")
    cp.add_argument("--rate", type=float, help="requests/s of a constant load, for every run (default: the files')")
    cp.add_argument("--seed", type=int, help="seed of the random choices (default: the files')")
    cp.add_argument("--out", default="reports/chaos", help="where run directories go (default reports/chaos)")
    cp.set_defaults(handler=cmd_compare)
    sh = sub.add_parser("shrink", help="replay a failed run's schedule with faults removed: the smallest one that "
                                       "still fails (chaos.shrink.shrink)")
    sh.add_argument("run", help="a failed or aborted run's directory (reports/chaos/NAME-TIME) or its journal.json")
    sh.add_argument("--out", help="the shrink directory (default: RUN/shrink-<UTC time>)")
    sh.add_argument("--max-runs", type=int, default=30, help="runs at most, the replay included (default 30)")
    sh.add_argument("--max-time", type=float, default=3600.0, metavar="SECONDS", help="seconds at most (default 3600)")
    sh.add_argument("--match", choices=["same", "exact", "any", "verdict"], default="same",
                    help="what counts as failing: the same SLO violated or abort condition tripped as the original, "
                         "failed requests as one (default); exact: without that; any SLO or abort condition; any "
                         "failed or aborted verdict")
    sh.add_argument("--confirm", type=int, default=0, metavar="N", help="rerun the result N times (flaky runs)")
    sh.add_argument("--simplify", action="store_true", help="then try shorter holds, smaller args, earlier starts")
    sh.add_argument("--target", help="run the candidates here: embedded:CLUSTER or compose:PROJECT (default: the run's)")
    sh.add_argument("--no-deploy", action="store_true", help="the application is deployed already: do not redeploy it "
                                                             "before each candidate")
    sh.set_defaults(handler=cmd_shrink)
    ls = sub.add_parser("list", help="the ready experiments")
    ls.set_defaults(handler=cmd_list)
    rp = sub.add_parser("report", help="(re)write a run's report.md, report.html and summary.json, and print the report")
    rp.add_argument("run", help="a run directory (reports/chaos/NAME-TIME) or its journal.json")
    rp.set_defaults(handler=cmd_report)
    cg = sub.add_parser("campaign", help="run experiments back to back on one cluster, checking its health between them")
    cg.add_argument("file", help="campaign YAML (ready ones: chaos/campaigns/)")
    cg.add_argument("--target", help="where every run goes: embedded:CLUSTER or compose:PROJECT (default: the file's)")
    cg.add_argument("--out", default="reports/chaos", help="where the campaign's directory goes (default reports/chaos)")
    cg.add_argument("--validate", action="store_true", help="check the campaign and its experiments; run nothing")
    cg.add_argument("--quiet", action="store_true", help="print only verdicts and health checks")
    cg.set_defaults(handler=cmd_campaign)
    slo = sub.add_parser("slo", help="an experiment's SLOs for the tools a team runs").add_subparsers(
        dest="slo_command", required=True)
    ex = slo.add_parser("export", help="write the SLOs as OpenSLO v1 documents and Prometheus alerting rules",
                        description="Write DIR/openslo.yaml (a DataSource, a Service and an SLO per SLO that OpenSLO "
                                    "can express) and DIR/prometheus-rules.yaml (chaos.slo.alerts' recording and "
                                    "alerting rules), both on the backend's metric names.")
    ex.add_argument("file", help="experiment YAML (ready ones: chaos/experiments/)")
    ex.add_argument("-o", "--out", metavar="DIR", help="the directory to write (default reports/slo/NAME)")
    ex.add_argument("--backend", choices=["serve_core", "ray_serve"], help="whose metric names (default: the file's)")
    ex.add_argument("--prometheus-url", default=DEFAULT_PROMETHEUS_URL,
                    help=f"the OpenSLO DataSource's URL (default {DEFAULT_PROMETHEUS_URL})")
    ex.add_argument("--alert-scale", type=float, default=1.0,
                    help="the alert rules' burn windows times this (default 1: 5m/1m and 30m/5m; runs use 0.1)")
    ex.set_defaults(handler=cmd_slo_export)
    ns = p.parse_args(argv)
    try:
        return int(ns.handler(ns))
    except ChaosError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR


def _load(ns: argparse.Namespace) -> Experiment:
    return load_experiment(ns.file, target=ns.target, backend=ns.backend, seed=ns.seed, rate=ns.rate,
                           duration=getattr(ns, "duration", None))


def cmd_validate(ns: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    exp = _load(ns)
    snapshot = Snapshot.assumed(exp.target.workers)
    planned = plan(exp, snapshot)
    if ns.json:
        json.dump({"experiment": exp.model_dump(mode="json"), "plan": [f.to_dict() for f in planned]}, out, indent=2)
        out.write("\n")
    else:
        out.write(describe(exp, planned, snapshot))
    return 0


def cmd_run(ns: argparse.Namespace) -> int:
    from chaos.run.options import RunOptions
    from chaos.run.runner import run_experiment

    exp = _load(ns)
    report = ReportListener()
    listeners: list[Callable[[Event], None]] = [ProgressPrinter(sys.stdout, quiet=ns.quiet), report]
    result = run_experiment(exp, listeners=listeners, options=RunOptions(out_root=ns.out, deploy=not ns.no_deploy))
    if report.report_path:
        print(f"report: {report.report_path}")
    if report.html_path:
        print(f"html:   {report.html_path}")
    if result.interrupted:
        return EXIT_INTERRUPTED
    return EXIT.get(result.verdict, EXIT_ERROR)


def cmd_compare(ns: argparse.Namespace) -> int:
    from chaos.report.compare import compare
    from chaos.run.options import RunOptions
    from chaos.run.runner import run_experiment

    def run_one(path: str, backend: str) -> str:
        exp = load_experiment(path, target=ns.target, backend=backend, seed=ns.seed, rate=ns.rate, require_before=False)
        listeners: list[Callable[[Event], None]] = [ProgressPrinter(sys.stdout, quiet=True), ReportListener()]
        return run_experiment(exp, listeners=listeners, options=RunOptions(out_root=ns.out)).run_dir

    backends = [b.strip() for b in ns.backends.split(",") if b.strip()]
    bad = [b for b in backends if b not in ("serve_core", "ray_serve")]
    if bad or not backends:
        raise ExperimentError(Problem("--backends", ns.backends, "give serve_core, ray_serve or both, comma-separated"))
    md = compare(ns.files, backends, run_one, ns.out)
    with open(md) as f:
        print(f.read())
    print(f"comparison: {md}")
    return 0


def cmd_campaign(ns: argparse.Namespace) -> int:
    from chaos.campaign.campaign import campaign_command

    return campaign_command(ns.file, ns.target, ns.out, validate_only=ns.validate,
                            listeners=lambda: [ProgressPrinter(sys.stdout, quiet=ns.quiet), ReportListener()])


def cmd_report(ns: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    journal, directory = load_run(ns.run)
    path = write_report(journal, directory)
    with open(path) as f:
        out.write(f.read())
    print(f"wrote {path}, {os.path.join(directory, HTML_FILE)} and {os.path.join(directory, SUMMARY_FILE)}", file=sys.stderr)
    return 0


def cmd_shrink(ns: argparse.Namespace) -> int:
    from chaos.shrink.shrink import Shrinker, ShrinkError, ShrinkOptions

    if ns.max_runs < 1 or ns.max_time <= 0 or ns.confirm < 0:
        raise ShrinkError(f"--max-runs {ns.max_runs}, --max-time {ns.max_time:g}, --confirm {ns.confirm}: give at "
                          "least one run, some seconds, and 0 or more confirmations")
    options = ShrinkOptions(max_runs=ns.max_runs, max_time_s=ns.max_time, match=ns.match, confirm=ns.confirm,
                            simplify=ns.simplify, target=ns.target, deploy=not ns.no_deploy, out=ns.out)
    return Shrinker(ns.run, options, out=sys.stdout).run().exit_code


def cmd_slo_export(ns: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    if not ns.alert_scale > 0:
        raise ExperimentError(Problem("--alert-scale", ns.alert_scale, "give a positive factor, e.g. 0.1 for a run of minutes"))
    exp = load_experiment(ns.file, backend=ns.backend)
    slos = list(exp.steady_state.slos)
    try:
        export = openslo_documents(slos, exp.backend, service=exp.name, window_s=exp.run_s, description=exp.description,
                                   prometheus_url=ns.prometheus_url, annotations={"experiment": exp.name})
        rules = alert_rules_yaml(slos, exp.backend, scale=ns.alert_scale)
    except SLOError as e:
        raise ExperimentError(Problem("steady_state.slos", NO_VALUE, str(e)), ns.file) from None
    directory = ns.out or os.path.join("reports", "slo", exp.name)
    header = f"Generated by `python -m chaos slo export {ns.file}` for {exp.backend}; edit the experiment, not this."
    files = {"openslo.yaml": to_yaml(export.documents, header), "prometheus-rules.yaml": f"# {header}\n{rules}"}
    try:
        os.makedirs(directory, exist_ok=True)
        for name, text in files.items():
            with open(os.path.join(directory, name), "w") as f:
                f.write(text)
    except OSError as e:
        raise ChaosError(f"cannot write into -o {directory!r} ({e.strerror}); give a directory you can write to") from None
    for line in export.left_out:
        out.write(line + "\n")
    for name in files:
        out.write(os.path.join(directory, name) + "\n")
    return 0


def cmd_list(ns: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    for path in sorted(glob.glob(os.path.join(EXPERIMENTS_DIR, "*.yaml"))):
        try:
            exp = load_experiment(path)
            first = exp.description.strip().splitlines()[0] if exp.description.strip() else ""
            out.write(f"{os.path.relpath(path)}  {exp.run_s:g}s  {first}\n")
        except ExperimentError as e:
            out.write(f"{os.path.relpath(path)}  INVALID: {e}\n")
    return 0


# -- text ---------------------------------------------------------------------------------------


def describe(exp: Experiment, planned: list[PlannedFault], snapshot: Snapshot) -> str:
    """The experiment and its plan, for people."""
    s, load, app = exp.steady_state, exp.load, exp.application
    b0, b1 = exp.window("before")
    d0, d1 = exp.window("during")
    a0, a1 = exp.window("after")
    target = exp.target
    where = (f"embedded:{target.name}" if target.kind == "embedded" else f"compose:{target.project}")
    swap = " (serve import swapped per backend)" if app.needs_swap(exp.backend) else ""
    lines = [
        f"experiment {exp.name}" + (f": {exp.description.strip().splitlines()[0]}" if exp.description.strip() else ""),
        f"  target     {where} (head + {target.workers} workers), backend {exp.backend}, seed {exp.seed}",
        f"  app        {app.deploys(exp.backend)}{swap}, {app.method} {app.route}",
        f"  load       {_profile_text(load.profile)}, {load.workers} worker(s), timeout {load.timeout_s:g}s, "
        f"proxies: {', '.join(load.proxies)}",
        f"  windows    before {b0:g}-{b1:g}s | during {d0:g}-{d1:g}s | after {a0:g}-{a1:g}s "
        f"(judged: {', '.join(s.judge)})",
        "  SLOs       " + "; ".join(_slo_text(x) for x in s.slos),
        *([f"  resources  every {s.resources.sample_every_s:g}s, "
            + ("flat required" if s.resources.require_flat else "reported, not required")
            + f": memory <= {s.resources.max_rss_growth_mib_per_h:g} MiB/h, open files <= "
              f"{s.resources.max_fd_growth_per_h:g}/h per process"] if s.resources else []),
        "  abort      " + ("; ".join(_abort_text(c) for c in exp.abort) or "(never)"),
        "  rollbacks  " + ("; ".join(f"{r.action} {r.target.describe() if r.action != 'redeploy' else ''}".strip()
                                     + (" (if down)" if r.action == "restart-node" and r.only_if_down else "")
                                     for r in exp.rollbacks) or "(none)"),
        f"planned faults (assuming nodes {', '.join(snapshot.names)}):",
    ]
    if not planned:
        lines.append("  (none: a baseline run)")
    for f in planned:
        lines.append(f"  t+{f.at_s:8.3f}s  {f.label:<22} {f.describe()}")
    return "\n".join(lines) + "\n"


def _profile_text(p: Any) -> str:
    kind = p.kind
    if kind == "constant":
        return f"constant {p.rate:g} req/s for {p.duration_s:g}s"
    if kind in ("step", "ramp"):
        return f"{kind} {p.rate:g} -> {p.to_rate:g} req/s over {p.duration_s:g}s"
    if kind == "spike":
        return f"spike {p.rate:g} req/s, {p.spike_rate:g} at {p.at_s:g}s for {p.spike_s:g}s, {p.duration_s:g}s"
    if kind == "diurnal":
        return f"diurnal {p.mean_rate:g}±{p.amplitude:g} req/s, period {p.period_s:g}s, {p.duration_s:g}s"
    return f"{kind} {p.path} x{p.speedup:g}" + (f" for {p.duration_s:g}s" if p.duration_s else "")


def _slo_text(x: Any) -> str:
    route = f" on {x.route}" if getattr(x, "route", None) else ""
    if x.kind == "availability":
        return f"{x.name} >= {x.objective:g}{route}"
    if x.kind == "latency":
        label = "latency" if x.name in ("latency", f"p{x.percentile:g}") else f"{x.name}: latency"
        return f"{label} p{x.percentile:g} < {x.threshold_ms:g} ms{route}"
    if x.kind == "recovery":
        return f"{x.name} within {x.max_s:g}s (error ratio < {x.healthy_error_ratio:g})"
    return f"{x.name}: {x.query} {x.op} {x.threshold:g}"


def _abort_text(c: Any) -> str:
    if c.kind == "burn_rate":
        return f"burn rate > {c.above:g} over {c.window_s:g}s"
    return f"client failures > {c.above}"


class ProgressPrinter:
    """A listener printing one line per step of a run; on a terminal, with a progress bar of the
    run's time (elapsed and left) in place of the periodic load lines."""

    def __init__(self, out: TextIO, quiet: bool = False) -> None:
        self.out, self.quiet = out, quiet
        self.t0: float | None = None
        self.run_s: float | None = None
        self.bar: Bar | None = None

    def _line(self, at: float, text: str) -> None:
        stamp = f"[{at - self.t0:7.1f}s] " if self.t0 is not None else "[   prep ] "
        if self.bar is not None:
            self.bar.print(stamp + text)
            return
        self.out.write(stamp + text + "\n")
        self.out.flush()

    def __call__(self, e: Event) -> None:
        if isinstance(e, RunFinished):
            if self.bar is not None:
                self.bar.stop()
                self.bar = None
            self.out.write(f"verdict: {e.verdict.upper()}\n" + "".join(f"  - {r}\n" for r in e.reasons)
                           + "".join(f"  warning: {w}\n" for w in e.warnings))
            self.out.flush()
            return
        if self.quiet:
            return
        if isinstance(e, RunStarted):
            self.run_s = Experiment.model_validate(e.experiment).run_s if e.experiment else None
            self._line(e.at, f"run {e.name} on {e.target.get('kind')}:{e.target.get('name') or e.target.get('project')} "
                             f"with {e.backend}, seed {e.seed}; journal in {e.run_dir}")
        elif isinstance(e, SchedulePlanned):
            self._line(e.at, f"{len(e.faults)} fault(s) planned")
        elif isinstance(e, LoadStarted):
            self.t0 = e.at
            self._line(e.at, f"load started on {', '.join(e.proxies)}")
            if is_terminal(self.out) and self.run_s:
                self.bar = Bar(self.out, self.run_s, "load")
        elif isinstance(e, Note):
            self._line(e.at, e.message)
        elif isinstance(e, FaultStarted):
            self._line(e.at, f"{e.phase} {e.id}: {e.planned.get('description', '')}")
        elif isinstance(e, FaultFinished):
            status = "done" if e.ok else f"FAILED: {e.error}"
            self._line(e.at, f"{e.phase} {e.id} {status} ({e.took_s:.1f}s)")
        elif isinstance(e, ProbeResult):
            if e.error:
                self._line(e.at, f"steady state {e.window}: could not probe: {e.error}")
            else:
                parts = [f"{r.get('name')}={_value(r.get('value'))} "
                         f"{'ok' if r.get('ok') else 'FAIL' if r.get('ok') is False else 'no data'}" for r in e.results]
                self._line(e.at, f"steady state {e.window}: " + ("; ".join(parts) or "(nothing probed)"))
        elif isinstance(e, Progress):
            load = e.load
            counts = f"{load.get('sent', 0)} sent, {load.get('ok', 0)} ok, {load.get('failed', 0)} failed"
            if self.bar is not None:
                self.bar.update(e.offset_s, f"load: {counts}")
            else:
                self._line(e.at, f"load: {counts}")
        elif isinstance(e, Abort):
            self._line(e.at, f"ABORT: {e.reason}")


def _value(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, int | float) else str(v)
