"""``serve-core``: run, deploy, status and shutdown from the command line; simulate offline."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import math
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from serve_core.errors import ConfigError, ServeCoreError
from serve_core.local_cluster.commands import add_cluster_commands

if TYPE_CHECKING:
    from serve_core import api, simulator
    from serve_core.config import ApplicationConfig, ServeConfig

# serve_core's API, Ray and the config models are imported where a command needs them: a
# `cluster fault` command would otherwise spend about 1.5 s importing them.


def import_app(import_path: str, args: dict[str, Any] | None = None, field: str = "import_path") -> api.Application:
    """``module:attr`` (or ``module.attr``) to an Application; builders get ``args``."""
    from serve_core import api
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module_name, sep, attr = import_path.partition(":")
    if not sep:
        module_name, _, attr = import_path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(field, import_path, f"cannot import module {module_name!r}: {e}") from None
    if not hasattr(module, attr):
        raise ConfigError(field, import_path, f"module {module_name!r} has no attribute {attr!r}")
    target = getattr(module, attr)
    if isinstance(target, api.Deployment):
        raise ConfigError(field, import_path, "this is a deployment; point at `app = X.bind()` instead")
    if not isinstance(target, api.Application) and callable(target):
        target = target(args or {})
    if not isinstance(target, api.Application):
        raise ConfigError(field, import_path, f"expected a bound application, got {type(target).__name__}")
    return target


def apply_overrides(app: api.Application, overrides: dict[str, dict[str, Any]], where: str) -> None:
    """Replace options of the named deployments anywhere in the graph."""
    from serve_core import api
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, api.Application):
            name = value.deployment.name
            if name in overrides:
                value.deployment = value.deployment.options(**overrides[name])
                found.add(name)
            for v in list(value.args) + list(value.kwargs.values()):
                walk(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)

    walk(app)
    missing = sorted(set(overrides) - found)
    if missing:
        raise ConfigError(f"{where}.deployments.name", missing[0], "no deployment with this name in the application")


def load_config(path: str) -> ServeConfig:
    from serve_core.config import ServeConfig, parse
    try:
        with open(path) as f:
            doc = yaml.safe_load(f)
    except OSError as e:
        raise ConfigError("config file", path, f"cannot read it: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError("config file", path, f"is not valid YAML: {e}") from None
    if not isinstance(doc, dict):
        raise ConfigError("config file", path, "must be a mapping with an `applications` list")
    return parse(ServeConfig, doc)


def deploy_app_config(cfg: ApplicationConfig, index: int) -> None:
    from serve_core import api
    where = f"applications[{index}]"
    app = import_app(cfg.import_path, cfg.args, f"{where}.import_path")
    apply_overrides(app, {d.name: d.changes() for d in cfg.deployments}, where)
    api.run(app, name=cfg.name, route_prefix=cfg.route_prefix)


def cmd_run(ns: argparse.Namespace) -> int:
    from serve_core import api, cluster
    app = import_app(ns.import_path)
    cluster.connect(ns.address)
    api.start(http_options={"host": ns.host, "port": ns.port})
    api.run(app, name=ns.name, route_prefix=ns.route_prefix)
    print(f"application {ns.name!r} is running at http://{ns.host}:{ns.port}{ns.route_prefix or ''}", flush=True)
    if ns.non_blocking:
        return 0
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        print("shutting down", flush=True)
        api.shutdown()
    return 0


def cmd_deploy(ns: argparse.Namespace) -> int:
    from serve_core import api, cluster
    cfg = load_config(ns.config)
    cluster.connect(ns.address)
    api.start(http_options=cfg.http_options)
    for i, app_cfg in enumerate(cfg.applications):
        deploy_app_config(app_cfg, i)
        print(f"deployed application {app_cfg.name!r} at {app_cfg.route_prefix}", flush=True)
    return 0


def cmd_status(ns: argparse.Namespace) -> int:
    from serve_core import api, cluster
    cluster.connect(ns.address)
    st = api.status()
    doc = {
        "proxies": {n[:12]: f"{p['state']} {p['host']}:{p['port']}" for n, p in st.proxies.items()},
        "applications": {
            name: {
                "status": str(a.status), "route_prefix": a.route_prefix, "message": a.message,
                "deployments": {
                    d: {"status": str(v.status), "replicas": v.replica_states, "target": v.target_replicas,
                        "message": v.message}
                    for d, v in a.deployments.items()
                },
            }
            for name, a in st.applications.items()
        },
    }
    print(json.dumps(doc, indent=2) if ns.json else yaml.safe_dump(doc, sort_keys=False), end="")
    return 0


def cmd_shutdown(ns: argparse.Namespace) -> int:
    from serve_core import api, cluster
    cluster.connect(ns.address)
    api.shutdown()
    print("serve_core shut down", flush=True)
    return 0


# -- simulate ----------------------------------------------------------------------------

def _timestamp(text: str) -> float | None:
    """Seconds for a number or an ISO 8601 time (loadgen's trace formats); None otherwise."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        return value if math.isfinite(value) else None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def read_arrivals(path: str, speedup: float = 1.0) -> list[float]:
    """Request times of a trace file, sorted, shifted to start at 0 and divided by ``speedup``.

    One timestamp per line (seconds or ISO 8601, ``#`` comments, an optional ``timestamp``
    header), a CSV with a ``timestamp`` column, or loadgen's ``records.jsonl`` (each record's
    ``intended`` start). Read here rather than through loadgen: serve_core never imports the testbed.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("--trace", path, "the file does not exist; check the path") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError("--trace", path, f"cannot read it ({e}); give a UTF-8 text file") from None
    lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1)
             if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise ConfigError("--trace", path, "no timestamps found; give one per line, a CSV with a 'timestamp' "
                          "column, or loadgen's records.jsonl")
    times: list[float] = []
    first = lines[0][1]
    if first.startswith("{"):
        for n, line in lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                if n == lines[-1][0]:
                    continue  # a torn last line: loadgen was killed mid-write
                raise ConfigError(f"{path} line {n}", line[:60], "is not JSON; give one loadgen record per line") from None
            value = record.get("intended", record.get("timestamp")) if isinstance(record, dict) else None
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"{path} line {n}", line[:60], "has no numeric 'intended' field "
                                  "(the intended start of a loadgen record, unix seconds)")
            times.append(float(value))
    else:
        column = 0
        if path.lower().endswith(".csv") or "," in first:
            header = [h.strip().lower() for h in first.split(",")]
            if "timestamp" not in header:
                raise ConfigError(f"{path} line {lines[0][0]}", first[:60],
                                  "the CSV header has no 'timestamp' column; name the column of request times so")
            column, lines = header.index("timestamp"), lines[1:]
        elif first.lower() == "timestamp":
            lines = lines[1:]
        for n, line in lines:
            cells = line.split(",")
            value = _timestamp(cells[column]) if column < len(cells) else None
            if value is None:
                raise ConfigError(f"{path} line {n}", line[:60], "is not a timestamp; write seconds (1712345678.25) "
                                  "or an ISO 8601 time (2024-04-05T12:00:00.250Z)")
            times.append(value)
    if not times:
        raise ConfigError("--trace", path, "no timestamps found after the header")
    t0 = min(times)
    return sorted((t - t0) / speedup for t in times)


def shape_phases(ns: argparse.Namespace) -> list[tuple[float, float]]:
    """(duration_s, rate) phases of a synthetic --shape, as loadgen's profiles of that kind."""
    if ns.rate is None or ns.duration is None:
        raise ConfigError("--rate/--duration", (ns.rate, ns.duration), f"--shape {ns.shape} needs both, e.g. --rate 50 --duration 60")
    rate, d = ns.rate, ns.duration
    at = ns.at if ns.at is not None else d / 2
    if ns.shape != "constant" and not 0 <= at <= d:
        raise ConfigError("--at", at, f"must be within the --duration of {d:g} s")
    if ns.shape == "constant":
        return [(d, rate)]
    if ns.shape == "step":
        if ns.to_rate is None:
            raise ConfigError("--to-rate", None, "--shape step needs the rate after --at, e.g. --to-rate 200")
        return [(at, rate), (d - at, ns.to_rate)]
    if ns.spike_rate is None:
        raise ConfigError("--spike-rate", None, "--shape spike needs the rate of the spike, e.g. --spike-rate 200")
    spike = min(ns.spike_s, d - at)
    return [(at, rate), (spike, ns.spike_rate), (d - at - spike, rate)]


def simulation_settings(ns: argparse.Namespace) -> simulator.SimulationSettings:
    from serve_core import simulator
    doc: dict[str, Any] = {}
    if ns.settings:
        try:
            with open(ns.settings) as f:
                doc = yaml.safe_load(f) or {}
        except OSError as e:
            raise ConfigError("--settings", ns.settings, f"cannot read it: {e.strerror}") from None
        except yaml.YAMLError as e:
            raise ConfigError("--settings", ns.settings, f"is not valid YAML: {e}") from None
        if not isinstance(doc, dict):
            raise ConfigError("--settings", ns.settings, "must be a mapping of simulation settings")
    for item in ns.set:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError("--set", item, "write KEY=VALUE, e.g. autoscaling_config.max_replicas=6")
        node = doc
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError("--set", item, f"{part} is not a mapping")
        node[leaf] = yaml.safe_load(raw)
    try:
        return simulator.load_settings(doc)
    except ConfigError as e:
        if e.fix == "Field required":  # pydantic shows the whole parent document as the value
            example = {"autoscaling_config": "autoscaling_config.max_replicas=4", "service_time": "service_time=0.1"}
            raise ConfigError(e.field, None, f"is required: give it in --settings or with --set "
                              f"{example.get(e.field, e.field + '=...')}") from None
        raise


def _ms(v: float | None) -> str:
    return "n/a" if v is None else f"{v * 1e3:.1f} ms"


def format_simulation(res: simulator.SimulationResult, source: str, compute_s: float, timeline: bool) -> str:
    s, o = res.summary, res.summary.outcomes
    reach = ", ".join(f"{n}: {t:.1f} s" for n, t in s.time_to_replicas_s.items())
    avail = "n/a" if s.availability is None else f"{100 * s.availability:.3f}%"
    lines = [
        f"trace        {source}: {s.requests} requests",
        f"simulated    {s.duration_s:.1f} s in {compute_s:.2f} s of compute (seed {res.settings.seed})",
        f"replicas     max {s.max_replicas} running, mean {s.mean_replicas:.2f}, {s.replica_seconds:.1f} replica-seconds; "
        f"{s.replicas_started} started, {s.replicas_killed} killed, {len(res.decisions)} decisions",
        f"time to N    {reach}   (first time N replicas were RUNNING)",
        f"latency      p50 {_ms(s.p50_s)}  p95 {_ms(s.p95_s)}  p99 {_ms(s.p99_s)}  max {_ms(s.max_s)}   "
        "(ok requests, from arrival)",
        f"requests     {o['ok']} ok, {o['rejected']} rejected (503), {o['timeout']} timed out, "
        f"{o['no_replica']} no replica, {o['replica_died']} replica died, {o['unfinished']} unfinished",
        f"availability {avail}",
    ]
    if timeline:
        lines += ["", "    t_s target starting running stopping queued ongoing arrivals completions rejected failed"]
        lines += [f"{r.t_s:7.1f} {r.target:6d} {r.starting:8d} {r.running:7d} {r.stopping:8d} {r.queued:6d} "
                  f"{r.ongoing:7d} {r.arrivals:8d} {r.completions:11d} {r.rejected:8d} {r.failed:6d}" for r in res.timeline]
    return "\n".join(lines) + "\n"


def cmd_simulate(ns: argparse.Namespace) -> int:
    from serve_core import simulator
    if not ns.trace and not ns.shape:
        raise ConfigError("--trace/--shape", None, "give a trace file (--trace FILE) or a synthetic shape "
                          "(--shape constant --rate 50 --duration 60)")
    if not ns.speedup > 0:
        raise ConfigError("--speedup", ns.speedup, "must be > 0")
    trace = read_arrivals(ns.trace, ns.speedup) if ns.trace else None  # a bad path before a bad setting
    settings = simulation_settings(ns)
    if trace is not None:
        arrivals, source = trace, ns.trace
    else:
        arrivals = simulator.arrivals_from_rates(shape_phases(ns), poisson=ns.poisson, seed=settings.seed)
        source = f"{ns.shape} shape"
    started = time.perf_counter()
    res = simulator.simulate(arrivals, settings)
    compute_s = time.perf_counter() - started
    if ns.json:
        doc = res.to_dict(timeline=True)
        doc.update(source=source, compute_s=compute_s)
        print(json.dumps(doc, indent=2))
    else:
        print(format_simulation(res, source, compute_s, ns.timeline), end="")
    return 0


def cmd_score(ns: argparse.Namespace) -> int:
    from serve_core import api, batch_scoring, cluster

    files = batch_scoring.input_files(ns.input)
    cluster.connect(ns.address)
    handle = (api.get_deployment_handle(ns.deployment, ns.app) if ns.deployment else api.get_app_handle(ns.app))
    handle = handle.options(method_name=ns.method)
    s = batch_scoring.score(batch_scoring.read_jsonl(files), handle, ns.out, batch_size=ns.batch_size,
                            concurrency=ns.concurrency, retries=ns.retries)
    print(f"scored {s.scored} item(s) in {s.seconds:.1f}s; {s.skipped} already done; {s.failed} failed; "
          f"{s.total} in the input; results in {ns.out}", flush=True)
    if s.failed:
        print(f"error: {s.failed} item(s) failed (see {ns.out}.errors.jsonl); run the same command again "
              "to score them", file=sys.stderr)
    return 0 if s.complete else 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="serve-core", description="A Ray Serve-compatible model server.")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--address", default=os.environ.get("RAY_ADDRESS"), help="Ray cluster address (default: RAY_ADDRESS or a new local cluster)")

    r = sub.add_parser("run", help="deploy module:app and serve it")
    r.add_argument("import_path")
    r.add_argument("--name", default="default")
    r.add_argument("--route-prefix", default="/")
    r.add_argument("--host", default="127.0.0.1")
    r.add_argument("--port", type=int, default=8000)
    r.add_argument("--non-blocking", action="store_true", help="return once running instead of waiting for Ctrl-C")
    common(r)
    d = sub.add_parser("deploy", help="deploy the applications of a YAML config")
    d.add_argument("config")
    common(d)
    s = sub.add_parser("status", help="applications, deployments, replicas and proxies")
    s.add_argument("--json", action="store_true")
    common(s)
    sh = sub.add_parser("shutdown", help="delete every application and stop serve_core")
    common(sh)
    sim = sub.add_parser(
        "simulate", help="predict replicas, queue and latency of an autoscaling config on a load trace (no cluster)",
        description="Run the autoscaling policy against a trace file or a synthetic load shape, with a model of "
                    "replica start time and service time. Settings: a YAML of serve_core.simulator.SimulationSettings "
                    "(--settings) and/or --set KEY=VALUE, e.g. --set autoscaling_config.max_replicas=6 "
                    "--set service_time=0.1 --set replica_start_time=2.",
    )
    src = sim.add_mutually_exclusive_group()
    src.add_argument("--trace", help="one timestamp per line, a CSV with a 'timestamp' column, or loadgen's records.jsonl")
    src.add_argument("--shape", choices=["constant", "step", "spike"], help="a synthetic load shape")
    sim.add_argument("--speedup", type=float, default=1.0, help="replay the trace this many times faster (default 1)")
    sim.add_argument("--rate", type=float, help="requests/s (--shape)")
    sim.add_argument("--duration", type=float, help="seconds of load (--shape)")
    sim.add_argument("--to-rate", type=float, help="requests/s after --at (--shape step)")
    sim.add_argument("--at", type=float, help="seconds until the step or spike (default: half of --duration)")
    sim.add_argument("--spike-rate", type=float, help="requests/s during the spike (--shape spike)")
    sim.add_argument("--spike-s", type=float, default=10.0, help="seconds the spike lasts (default 10)")
    sim.add_argument("--poisson", action="store_true", help="Poisson arrivals instead of evenly spaced ones (--shape)")
    sim.add_argument("--settings", help="YAML of simulation settings (autoscaling_config, service_time, ...)")
    sim.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override one setting (dotted key, YAML value); repeatable")
    sim.add_argument("--json", action="store_true", help="print the summary, decisions and timeline as JSON")
    sim.add_argument("--timeline", action="store_true", help="also print the per-second timeline")
    sc = sub.add_parser("score", help="score a dataset through a running deployment in mini-batches (resumable)",
                        description="Each line of the .jsonl input (a file or a directory of them) is an item; the "
                                    "method gets a list of items and returns a list of results. Results go to --out "
                                    "as each batch finishes; run again after a failure to score only what is left.")
    sc.add_argument("input", help="a .jsonl file, or a directory of .jsonl files")
    sc.add_argument("--app", default="default", help="application name (default: default)")
    sc.add_argument("--deployment", help="a deployment of the app (default: its ingress)")
    sc.add_argument("--method", default="__call__", help="the method taking a list of items (default: __call__)")
    sc.add_argument("--out", required=True, help="results, one JSON line per item (appended, resumed)")
    sc.add_argument("--batch-size", type=int, default=32)
    sc.add_argument("--concurrency", type=int, default=4, help="batches in flight (default 4)")
    sc.add_argument("--retries", type=int, default=2, help="retries of a failed batch (default 2)")
    common(sc)
    add_cluster_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    ns = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if ns.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    handlers = {"run": cmd_run, "deploy": cmd_deploy, "status": cmd_status, "shutdown": cmd_shutdown,
                "simulate": cmd_simulate, "score": cmd_score}
    try:
        return (getattr(ns, "handler", None) or handlers[ns.command])(ns)
    except ServeCoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
