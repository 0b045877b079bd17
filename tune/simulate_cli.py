"""`serve-core simulate`: the autoscaling policy against a load trace or a synthetic shape,
with no cluster (``tune.simulator``).

The testbed registers this command with serve_core's CLI through the ``serve_core.cli``
entry point group (pyproject.toml), so serve_core never imports the testbed. ``main`` runs
it without serve_core's CLI (``python -m tune.simulate_cli simulate ...``, and the tests).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from loadgen.trace import parse_timestamp
from serve_core.errors import ConfigError

if TYPE_CHECKING:
    from tune import simulator


def read_arrivals(path: str, speedup: float = 1.0) -> list[float]:
    """Request times of a trace file, sorted, shifted to start at 0 and divided by ``speedup``.

    One timestamp per line (seconds or ISO 8601, ``#`` comments, an optional ``timestamp``
    header), a CSV with a ``timestamp`` column, or loadgen's ``records.jsonl`` (each record's
    ``intended`` start). Timestamps are parsed as loadgen parses its traces.
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
            value = parse_timestamp(cells[column]) if column < len(cells) else None
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
    from tune import simulator
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
    from tune import simulator
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


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    sim = sub.add_parser(
        "simulate", help="predict replicas, queue and latency of an autoscaling config on a load trace (no cluster)",
        description="Run the autoscaling policy against a trace file or a synthetic load shape, with a model of "
                    "replica start time and service time. Settings: a YAML of tune.simulator.SimulationSettings "
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
    sim.set_defaults(handler=cmd_simulate)


def main(argv: list[str] | None = None) -> int:
    """``simulate ...`` as `serve-core simulate ...` runs it: 0 on success, 2 on a bad input."""
    from serve_core.cli import standalone

    return standalone("python -m tune.simulate_cli", add_commands, argv)


if __name__ == "__main__":
    sys.exit(main())
