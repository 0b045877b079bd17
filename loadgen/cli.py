"""``python -m loadgen``: run open-loop load, preview a schedule, list example payloads.

Exit codes: 0 the run ended (whatever the requests did), 1 the run failed, 2 it could not start
(bad profile or options, no reachable target, Locust missing).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from loadgen.errors import LoadgenError, LoadRunFailed, SpecError
from loadgen.payloads import EXAMPLES, example
from loadgen.profile import Constant, LoadProfile, load_profile
from loadgen.schedule import build_schedule
from loadgen.summary import LatencyStats, Summary
from serve_core.cli.terminal import is_terminal


def _profile_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", type=Path, help="Load profile YAML (kind: constant|step|spike|ramp|diurnal|trace).")
    p.add_argument("--rate", type=float, help="Constant requests/s (instead of --profile).")
    p.add_argument("--duration", type=float, help="Seconds, with --rate.")


def parser(prog: str = "python -m loadgen") -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="Run open-loop load with Locust and print the summary.")
    _profile_args(run)
    run.add_argument("--target", action="append", required=True, metavar="URL",
                     help="Base URL, e.g. http://127.0.0.1:8000 (repeat for several proxies; round-robin).")
    run.add_argument("--route", help="Path (and query) to request (default: /, or the example's).")
    run.add_argument("--method", help="HTTP method (default: GET, or the example's).")
    body = run.add_mutually_exclusive_group()
    body.add_argument("--payload", type=Path, help="JSON body file; a .jsonl file gives one body per line, "
                      "used in turn.")
    body.add_argument("--payload-from", metavar="example:NAME",
                      help=f"A built-in payload for an examples/ app: {', '.join(EXAMPLES)}.")
    run.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'", help="Extra header.")
    run.add_argument("--workers", type=int, default=1, help="Locust worker processes (default 1).")
    run.add_argument("--timeout-s", type=float, default=5.0, help="Failure after this long from the intended "
                     "start (default 5).")
    run.add_argument("--max-in-flight", type=int, default=1000, help="Unanswered requests per worker before "
                     "starts are missed (default 1000).")
    run.add_argument("--late-tolerance-s", type=float, default=0.05, help="Starts later than this are counted "
                     "late (default 0.05).")
    run.add_argument("--metrics-port", type=int, default=0, help="Prometheus port of worker 0 (worker i: +i); "
                     "0 picks free ports, listed in OUT/prometheus_targets.json.")
    run.add_argument("--metrics-host", default="127.0.0.1", help="Address of the metrics endpoints "
                     "(0.0.0.0: every interface, advertised at this machine's address).")
    run.add_argument("--prometheus-sd", default=None, metavar="FILE",
                     help="Also write the metrics endpoints to this Prometheus file_sd file (compose: the "
                     "shared targets volume, so Prometheus scrapes the load generator).")
    run.add_argument("--linger-s", type=float, default=2.0, help="Keep /metrics up this long after the last "
                     "answer (default 2).")
    run.add_argument("--out", type=Path, help="Output folder (default reports/load/run-DATE-TIME).")
    run.add_argument("--progress", type=float, nargs="?", const=5.0, default=None, metavar="SECONDS",
                     help="Print a progress line every SECONDS (default 5 when given). On a terminal a progress "
                          "bar with the time left shows without it.")
    run.add_argument("--retry-reset", action="store_true", help="Send an idempotent request once more, to the next "
                     "target, when its connection ends before any answer (as a load balancer does); counted apart.")
    run.add_argument("--no-check-targets", action="store_true", help="Start even if no target accepts a "
                     "connection now.")
    run.add_argument("--json", action="store_true", help="Print the summary as JSON.")

    sched = sub.add_parser("schedule", help="Preview a profile's schedule (no requests sent).")
    _profile_args(sched)
    sched.add_argument("--workers", type=int, default=1, help="Show each worker's share.")

    sub.add_parser("examples", help="List the built-in example payloads.")
    return top


def _profile(args: argparse.Namespace) -> LoadProfile:
    if args.profile is not None:
        if args.rate is not None or args.duration is not None:
            raise SpecError(["give either --profile or --rate with --duration, not both"])
        return load_profile(args.profile)
    if args.rate is None or args.duration is None:
        raise SpecError(["give --profile FILE, or --rate R with --duration S"])
    if args.rate <= 0 or args.duration <= 0:
        raise SpecError([f"--rate ({args.rate}) and --duration ({args.duration}) must both be positive"])
    return Constant(rate=args.rate, duration_s=args.duration)


def _payload(args: argparse.Namespace) -> tuple[list[Any], str, str]:
    route, method = args.route or "/", args.method or "GET"
    if args.payload_from:
        ex = example(args.payload_from)
        return ex.bodies(), args.route or ex.route, args.method or ex.method
    if args.payload is None:
        return [], route, method
    try:
        text = args.payload.read_text()
        if args.payload.suffix == ".jsonl":
            return [json.loads(line) for line in text.splitlines() if line.strip()], route, method
        return [json.loads(text)], route, method
    except OSError as exc:
        raise SpecError([f"--payload {args.payload}: cannot read ({exc.strerror})"]) from None
    except json.JSONDecodeError as exc:
        raise SpecError([f"--payload {args.payload}: not JSON ({exc}); a .jsonl file holds one body per line"]) \
            from None


def _headers(items: list[str]) -> dict[str, str]:
    headers = {}
    for item in items:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise SpecError([f"--header {item!r} must look like 'Name: value'"])
        headers[name.strip()] = value.strip()
    return headers


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def _latency(stats: LatencyStats) -> str:
    return f"p50 {_ms(stats.p50)}  p90 {_ms(stats.p90)}  p99 {_ms(stats.p99)}  max {_ms(stats.max)}"


def format_summary(s: Summary, metrics: list[str] | None = None) -> str:
    causes = ", ".join(f"{k} {v}" for k, v in s.failed_by_cause.items())
    rate = f"{s.achieved_rate_per_s:.1f}/s" if s.achieved_rate_per_s is not None else "-"
    intended = f"{s.intended_rate_per_s:.1f}/s" if s.intended_rate_per_s is not None else "-"
    lines = [
        f"requests   {s.scheduled} scheduled, {s.sent} sent, {s.ok} ok, {s.failed} failed"
        + (f" ({causes})" if causes else "") + (f", {s.cancelled} cancelled by the stop" if s.cancelled else ""),
        f"starts     {s.late_starts} late, {s.missed_starts} missed, {s.not_started} not started, "
        f"{s.retried} retried on another target"
        + (f" ({s.retried_after_reset} after a reset before any answer)" if s.retried_after_reset else ""),
        f"latency    {_latency(s.latency_s)}   (from intended start, every sent request)",
        f"rate       intended {intended}, achieved {rate}",
        f"records    {s.records_path}",
    ]
    if metrics:
        lines.append(f"metrics    {', '.join(metrics)}")
    if not s.complete:
        lines.append("INCOMPLETE: the run was stopped or a worker did not finish")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    from loadgen.runner import LoadRun

    bodies, route, method = _payload(args)
    out = args.out or Path("reports/load") / time.strftime("run-%Y%m%d-%H%M%S")
    run = LoadRun(
        _profile(args), args.target, route=route, method=method, payloads=bodies, headers=_headers(args.header),
        out_dir=out, workers=args.workers, timeout_s=args.timeout_s, max_in_flight=args.max_in_flight,
        late_tolerance_s=args.late_tolerance_s, metrics_port=args.metrics_port, metrics_host=args.metrics_host,
        linger_s=args.linger_s, retry_reset=args.retry_reset, progress_every_s=args.progress or (1.0 if is_terminal(sys.stderr) else None), check_targets=not args.no_check_targets,
        prometheus_sd=args.prometheus_sd,
    )
    run.start()
    try:
        summary = run.wait()
    except KeyboardInterrupt:
        print("interrupted: stopping the run", file=sys.stderr)
        summary = run.stop()
    print(summary.model_dump_json(indent=1) if args.json else format_summary(summary, run.metrics_endpoints))
    return 0


def _schedule(args: argparse.Namespace) -> int:
    schedule = build_schedule(_profile(args))
    offsets = schedule.offsets
    print(f"{len(offsets)} requests over {schedule.duration_s:g} s; first starts: "
          + ", ".join(f"{o:.4f}" for o in offsets[:5]) + (f" ... last {offsets[-1]:.4f}" if len(offsets) > 5 else ""))
    if args.workers > 1:
        for i in range(args.workers):
            print(f"  worker {i}: {len(schedule.shard(i, args.workers))} requests")
    return 0


def _examples() -> int:
    for ex in EXAMPLES.values():
        print(f"example:{ex.name:15} {ex.method:5} {ex.route:12} {ex.app}: {ex.description}")
    return 0


def main(argv: list[str] | None = None, prog: str = "python -m loadgen") -> int:
    args = parser(prog).parse_args(argv)
    if not logging.getLogger().handlers:  # quiet: only the run's warnings, as they happen
        logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "schedule":
            return _schedule(args)
        return _examples()
    except LoadRunFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except LoadgenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
