"""Simulator check: the same bursty trace run against a real local serve_core and through
``tune.simulator``; how far predicted and observed replica counts and latency differ.

1. ``ray.init(address="local")`` once; serve_core on 127.0.0.1:8000 (``--port``) with one
   deployment that sleeps ``--work-s`` per request, ``max_ongoing_requests=2``, autoscaling
   1..5 replicas at ``target_ongoing_requests=1``.
2. Service time: one request at a time, 5 a second, at 1 replica (no queue, no scaling). The
   time each held its replica slot (the replica says, in the answer) is a service-time sample;
   the median of the rest of the client's latency (client, proxy) is the simulator's overhead.
3. The trace (10 s at 10 req/s, 20 s at 40 req/s, 15 s at 5 req/s, then 20 s idle), open
   loop: latency from each request's intended start. ``serve.status()`` is polled every
   0.25 s for target and replica states; each new replica's start time (first seen STARTING
   to first seen RUNNING, each at the midpoint between two polls) is measured, and its
   discovery time (RUNNING to its first answer, less a service time and the overhead: the
   burst keeps requests waiting for it, so that is how long until the proxy routed to it).
4. The simulator runs the same arrival times with those service times, overhead, start and
   discovery times (and, for comparison, once with its defaults: constant ``--work-s``,
   2 s starts, no discovery time, no overhead).

Usage (from the repo root):
    python -m bench.simulator_check            # the 65 s trace, writes reports/bench/simulator.{json,md}
    python -m bench.simulator_check --smoke    # a 15 s trace, writes reports/bench/smoke/

Exit status is non-zero if the run failed (serve_core raised, did not shut down, or a request
of the trace failed). Missing a goal is reported, not an error.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import statistics
import sys
import time
from pathlib import Path

from bench import http_bench as hb
from bench.autoscale_bench import (
    REPLICA_CPUS,
    OpenLoop,
    percentile,
    running,
    timed_get,
    url,
    wait_replicas,
    wait_routes,
)
from bench.http_bench import (
    RAY_NUM_CPUS,
    REPO_ROOT,
    _cpu_times,
    baseline_cpu,
    cpu_usage,
    fmt,
    listeners,
    machine_info,
    other_ray_clusters,
    port_in_use,
    time_limit,
    utc_now,
)
from serve_core.config import AutoscalingConfig
from tune import simulator as sim

APP, DEPLOYMENT = "simcheck", "SimSleep"
MAX_ONGOING = 2  # small, so one replica cannot absorb the burst: the queue depends on start time
AUTOSCALING = {
    "min_replicas": 1, "initial_replicas": 1, "max_replicas": 5, "target_ongoing_requests": 1,
    "upscale_delay_s": 1, "downscale_delay_s": 3, "look_back_period_s": 2, "metrics_interval_s": 0.5,
}
PHASES = [(10.0, 10.0), (20.0, 40.0), (15.0, 5.0)]  # (seconds, req/s)
SMOKE_PHASES = [(3.0, 10.0), (6.0, 40.0), (4.0, 5.0)]
TAIL_S, SMOKE_TAIL_S = 20.0, 2.0  # long enough to see the scale-in after the panic window
POLL_S = 0.25
CALIBRATION_RATE = 5.0
GOAL_REPLICA_MAE, GOAL_P99_FACTOR = 1.0, 2.0
GOAL_LINE = (f"goal: predicted RUNNING replicas within {GOAL_REPLICA_MAE:g} of observed on average (MAE over the "
             f"status polls), and predicted p99 latency within {GOAL_P99_FACTOR:g}x of observed")


def log(msg: str) -> None:
    print(f"[simcheck] {msg}", file=sys.stderr, flush=True)


def build_app(serve, work_s: float):
    """Defined in a function so that cloudpickle ships the class by value (workers never import bench)."""

    @serve.deployment(name=DEPLOYMENT, max_ongoing_requests=MAX_ONGOING, autoscaling_config=dict(AUTOSCALING),
                      ray_actor_options={"num_cpus": REPLICA_CPUS})
    class SimSleep:
        async def __call__(self, request):
            started = time.perf_counter()
            await asyncio.sleep(work_s)
            # how long it held its slot, and where: for the service-time samples and the diagnostics
            return {"replica_s": time.perf_counter() - started, "replica": serve.get_replica_context().replica_id}

    return SimSleep.bind()


class TraceLoop(OpenLoop):
    """autoscale_bench's open-loop client, sending at given offsets instead of a constant rate,
    and keeping what each answer says: which replica served it, and for how long."""

    def __init__(self, target_url: str, offsets: list[float], timeout: float):
        super().__init__(target_url, 1.0, timeout)
        self.offsets = offsets
        self.served: list = []  # (answered at s, replica id, seconds it held the slot)

    async def _one(self, session, scheduled: float) -> None:
        import aiohttp

        status: int | str
        body = None
        try:
            async with session.get(self.url, timeout=aiohttp.ClientTimeout(total=self.timeout)) as r:
                raw = await r.read()
                status = r.status
                body = json.loads(raw) if status == 200 else None
        except Exception as e:  # noqa: BLE001 - counted as a failure
            status = type(e).__name__
        done = time.monotonic()
        self.results.append((scheduled - self.t0, done - scheduled, status))
        if isinstance(body, dict):
            self.served.append((done - self.t0, body.get("replica"), body.get("replica_s")))

    async def _main(self) -> None:
        import aiohttp

        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
                tasks = []
                for off in self.offsets:
                    if self._stop.is_set():
                        break
                    scheduled = self.t0 + off
                    delay = scheduled - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    self.max_lag = max(self.max_lag, time.monotonic() - scheduled)
                    tasks.append(asyncio.create_task(self._one(session, scheduled)))
                await asyncio.gather(*tasks)
        except Exception as e:  # noqa: BLE001 - reported with the results
            self.error = f"{type(e).__name__}: {e}"


def replicas_by_id(serve) -> tuple[int, dict]:
    """(target replicas, {replica_id: state}) from serve.status()."""
    d = serve.status().applications[APP].deployments[DEPLOYMENT]
    return d.target_replicas, {r["replica_id"]: r["state"] for r in d.replicas}


def play(serve, offsets: list[float], window_s: float, timeout: float, poll: bool) -> dict:
    """Send ``offsets`` open loop; poll the status API until ``window_s`` if ``poll``."""
    load = TraceLoop(url("/"), offsets, timeout)
    cpu0 = _cpu_times()
    t0 = load.start()
    polls: list[dict] = []
    seen: dict[str, dict] = {}  # replica_id -> {"first": t, "running": t} (midpoints between polls)
    prev = 0.0
    while poll:
        now = time.monotonic() - t0
        target, states = replicas_by_id(serve)
        counts: dict[str, int] = {}
        for rid, st in states.items():
            counts[st] = counts.get(st, 0) + 1
            rec = seen.setdefault(rid, {"first": (prev + now) / 2 if polls else None, "running": None})
            if st == "RUNNING" and rec["running"] is None:
                rec["running"] = (prev + now) / 2 if polls else None
        polls.append({"t_s": round(now, 3), "target": target, "states": counts})
        prev = now
        if now >= window_s or load.error:
            break
        time.sleep(max(0.0, POLL_S - (time.monotonic() - t0 - now)))
    while time.monotonic() - t0 < offsets[-1] and not load.error:
        time.sleep(0.05)  # stop() ends the sending: let the last one go first
    load.stop()
    res = load.results
    first_answer: dict[str, float] = {}
    for done, rid, _ in sorted(load.served, key=lambda x: x[0]):
        first_answer.setdefault(rid, done)
    return {
        "results": sorted(res), "served": sorted(load.served, key=lambda x: x[0]), "polls": polls,
        "cpu": cpu_usage(cpu0, _cpu_times()),
        # RUNNING in the status API until the first answer from it: the start as callers feel it
        "running_to_first_answer_s": {rid: round(first_answer[rid] - r["running"], 3) for rid, r in seen.items()
                                      if r["running"] is not None and r["first"] is not None and rid in first_answer},
        "client_max_lag_ms": load.max_lag * 1e3, "client_error": load.error,
        "start_times_s": [round(r["running"] - r["first"], 3) for r in seen.values()
                          if r["first"] is not None and r["running"] is not None],
    }


def observe(serve, args, offsets: list[float], window_s: float) -> dict:
    wait_replicas(serve, APP, DEPLOYMENT, lambda s: running(s) == 1 and sum(s.values()) == 1,
                  "exactly 1 RUNNING replica (min_replicas=1)", args.deploy_timeout, "raise --deploy-timeout")
    n = 10 if args.smoke else 30
    log(f"service time: {n} requests, one at a time at {CALIBRATION_RATE:g} req/s, at 1 replica...")
    service, overhead = [], []
    for i in range(n):
        t = time.monotonic()
        r = timed_get(args.request_timeout)
        if r["status"] != 200:
            raise RuntimeError(f"calibration request {i} answered {r['status']}: {r.get('error') or r['body']}")
        held = json.loads(r["body"])["replica_s"]
        service.append(held)
        overhead.append(max(0.0, r["seconds"] - held))
        time.sleep(max(0.0, 1 / CALIBRATION_RATE - (time.monotonic() - t)))
    log(f"  at the replica: median {statistics.median(service) * 1e3:.1f} ms, max {max(service) * 1e3:.1f} ms; "
        f"outside it (client, proxy): median {statistics.median(overhead) * 1e3:.1f} ms")
    idle = AUTOSCALING["look_back_period_s"] + 1
    time.sleep(idle)  # the calibration's demand leaves the look-back window
    log(f"trace: {len(offsets)} requests over {offsets[-1]:.1f} s, observed until {window_s:g} s...")
    run = play(serve, offsets, window_s, args.request_timeout, poll=True)
    run["service_s"], run["overhead_s"] = service, statistics.median(overhead)
    return run


def observed_figures(run: dict) -> dict:
    res = run["results"]
    ok = sorted(lat for _, lat, st in res if st == 200)
    failures: dict[str, int] = {}
    for _, _, st in res:
        if st != 200:
            failures[str(st)] = failures.get(str(st), 0) + 1
    polls = run["polls"]
    peak = max(p["states"].get("RUNNING", 0) for p in polls)
    return {
        "sent": len(res), "ok": len(ok), "failed": sum(failures.values()), "failures": failures,
        "p50_s": percentile(ok, 50), "p95_s": percentile(ok, 95), "p99_s": percentile(ok, 99), "max_s": ok[-1] if ok else None,
        "max_replicas": peak,
        "time_to_peak_s": next(p["t_s"] for p in polls if p["states"].get("RUNNING", 0) == peak),
        "replica_start_s": run["start_times_s"], "running_to_first_answer_s": run["running_to_first_answer_s"],
        "service_median_s": statistics.median(run["service_s"]), "overhead_s": run["overhead_s"],
    }


def settings_for(window_s: float, service, start, discovery, overhead_s: float, timeout: float,
                 seed: int) -> sim.SimulationSettings:
    return sim.SimulationSettings(
        autoscaling_config=AutoscalingConfig(**AUTOSCALING), max_ongoing_requests=MAX_ONGOING, service_time=service,
        replica_start_time=start, discovery_time=discovery, overhead_s=overhead_s, request_timeout_s=timeout,
        duration_s=window_s, seed=seed)


def discovery_samples(obs: dict) -> list[float]:
    """RUNNING to first answer, less one service time and the overhead: how long until the
    caller routed to a new replica (the burst keeps a queue waiting for it)."""
    return [round(max(0.0, lag - obs["service_median_s"] - obs["overhead_s"]), 3)
            for lag in obs["running_to_first_answer_s"].values()]


def compare(obs: dict, run: dict, res: sim.SimulationResult) -> dict:
    polls = [p for p in run["polls"] if p["t_s"] <= res.end_s]
    errs = [res.counts_at(p["t_s"]).running - p["states"].get("RUNNING", 0) for p in polls]
    terrs = [res.counts_at(p["t_s"]).target - p["target"] for p in polls]
    s = res.summary
    sim_peak_t = next(c.t_s for c in res.replica_changes if c.running == s.max_replicas)

    def ratio(a, b):
        return a / b if a is not None and b else None

    cmp = {
        "replica_mae": statistics.fmean(abs(e) for e in errs), "replica_max_error": max(abs(e) for e in errs),
        "replica_bias": statistics.fmean(errs),  # > 0: the simulator predicts more replicas
        "target_mae": statistics.fmean(abs(e) for e in terrs), "target_max_error": max(abs(e) for e in terrs),
        "polls": len(polls),
        "max_replicas": {"predicted": s.max_replicas, "observed": obs["max_replicas"]},
        "time_to_peak_s": {"predicted": sim_peak_t, "observed": obs["time_to_peak_s"],
                           "difference": sim_peak_t - obs["time_to_peak_s"]},
        "time_to_replicas_s": {
            str(n): {"predicted": res.time_to_replicas(n),
                     "observed": next((p["t_s"] for p in polls if p["states"].get("RUNNING", 0) >= n), None)}
            for n in range(2, max(s.max_replicas, obs["max_replicas"]) + 1)
        },
        "p50_ratio": ratio(s.p50_s, obs["p50_s"]), "p95_ratio": ratio(s.p95_s, obs["p95_s"]),
        "p99_ratio": ratio(s.p99_s, obs["p99_s"]),
        "failed": {"predicted": s.requests - s.outcomes["ok"], "observed": obs["failed"]},
    }
    lo = AUTOSCALING["min_replicas"]
    obs_in = next((p["t_s"] for p in polls if p["t_s"] > obs["time_to_peak_s"] and p["states"].get("RUNNING", 0) <= lo), None)
    sim_in = next((c.t_s for c in res.replica_changes if c.t_s > sim_peak_t and c.running <= lo), None)
    cmp["time_back_to_min_s"] = {"predicted": sim_in, "observed": obs_in,
                                 "difference": None if sim_in is None or obs_in is None else sim_in - obs_in}
    p99 = cmp["p99_ratio"]
    cmp["goals"] = {
        "replica_mae": {"target": GOAL_REPLICA_MAE, "actual": cmp["replica_mae"], "met": cmp["replica_mae"] <= GOAL_REPLICA_MAE,
                        "text": f"replica MAE <= {GOAL_REPLICA_MAE:g}: {'MET' if cmp['replica_mae'] <= GOAL_REPLICA_MAE else 'NOT met'} "
                                f"({cmp['replica_mae']:.2f}; max error {cmp['replica_max_error']}, bias {cmp['replica_bias']:+.2f})"},
        "p99_within": {"target": GOAL_P99_FACTOR, "actual": p99,
                       "met": p99 is not None and 1 / GOAL_P99_FACTOR <= p99 <= GOAL_P99_FACTOR,
                       "text": "p99 within 2x: n/a" if p99 is None else
                       f"p99 within {GOAL_P99_FACTOR:g}x: {'MET' if 1 / GOAL_P99_FACTOR <= p99 <= GOAL_P99_FACTOR else 'NOT met'} "
                       f"(predicted/observed {p99:.2f}: {s.p99_s * 1e3:.0f} ms vs {obs['p99_s'] * 1e3:.0f} ms)"},
    }
    return cmp


def _p50_ms(values: list[float]) -> float | None:
    v = percentile(sorted(values), 50)
    return None if v is None else v * 1e3


SEEDS = 20


def seed_spread(obs: dict, run: dict, offsets: list[float], settings: sim.SimulationSettings) -> dict:
    """The same comparison over seeds 0..SEEDS-1: how much of the error is the luck of the draws
    (which start time each replica gets, which service times)."""
    runs = [compare(obs, run, sim.simulate(offsets, settings.model_copy(update={"seed": k}))) for k in range(SEEDS)]
    out = {}
    for key, get in (("replica_mae", lambda c: c["replica_mae"]), ("p99_ratio", lambda c: c["p99_ratio"]),
                     ("time_to_peak_difference_s", lambda c: c["time_to_peak_s"]["difference"])):
        values = sorted(v for v in map(get, runs) if v is not None)
        out[key] = {"min": values[0], "median": statistics.median(values), "max": values[-1]} if values else None
    return {"seeds": SEEDS, **out}


def seconds_table(run: dict, res: sim.SimulationResult, window_s: float) -> list[dict]:
    """Per second: observed (last poll in the second) and predicted counts, and p50 of ok latency by intended start."""
    rows = []
    for k in range(int(window_s)):
        ps = [p for p in run["polls"] if k <= p["t_s"] < k + 1]
        obs_lat = [lat for off, lat, st in run["results"] if st == 200 and k <= off < k + 1]
        sim_lat = [r.latency_s for r in res.requests if r.outcome == "ok" and r.latency_s is not None and k <= r.arrival_s < k + 1]
        c = res.counts_at(ps[-1]["t_s"] if ps else k)
        held = [h for done, _, h in run["served"] if k <= done < k + 1 and h is not None]
        rows.append({"t_s": k, "observed_target": ps[-1]["target"] if ps else None, "predicted_target": c.target,
                     "observed_running": ps[-1]["states"].get("RUNNING", 0) if ps else None, "predicted_running": c.running,
                     "observed_p50_ms": _p50_ms(obs_lat), "predicted_p50_ms": _p50_ms(sim_lat),
                     "observed_answers": sum(1 for done, _, _ in run["served"] if k <= done < k + 1),
                     "predicted_answers": res.timeline[k].completions if k < len(res.timeline) else None,
                     "observed_service_ms": _p50_ms(held)})
    return rows


def render_md(doc: dict) -> str:
    o, p, c, m = doc["observed"], doc["predicted"]["summary"], doc["comparison"], doc["machine"]
    a = doc["predicted_defaults"]["summary"]
    ms = lambda v: fmt(v and v * 1e3, ".0f")  # noqa: E731
    phases = ", ".join(f"{d:g} s at {r:g} req/s" for d, r in doc["options"]["phases"])
    lines = [
        "# Simulator check: predicted vs observed" + (" (SMOKE run, not real figures)" if doc["smoke"] else ""),
        "",
        f"- timestamp: {doc['timestamp']}; Ray {doc['ray_version']}; machine: {m['cores']} cores, before start: CPU "
        f"{m['baseline_cpu']}, other Ray clusters: {m['other_ray_clusters']}; CPU during the trace: {doc['run']['cpu']}",
        f"- deployment: `await asyncio.sleep({doc['options']['work_s']:g})`, `max_ongoing_requests={MAX_ONGOING}`, "
        f"`num_cpus={REPLICA_CPUS}`, `autoscaling_config`: {', '.join(f'{k}={v}' for k, v in AUTOSCALING.items())}",
        f"- trace: {phases}, then {doc['options']['tail_s']:g} s idle ({o['sent']} requests, open loop from one aiohttp "
        f"client, latency from the intended start); status polled every {POLL_S} s",
        f"- simulator inputs: {len(doc['inputs']['service_s'])} service-time samples (time at the replica, median "
        f"{o['service_median_s'] * 1e3:.1f} ms) and an overhead of {o['overhead_s'] * 1e3:.1f} ms (client latency minus "
        "that, median), from one-at-a-time requests at 1 replica; measured in this run: replica start times "
        f"{doc['inputs']['replica_start_s'] or 'none (default 2 s used)'} (STARTING to RUNNING in the status API) and "
        f"discovery times {doc['inputs']['discovery_s'] or 'none (0 used)'} (RUNNING to the first answer from the "
        f"replica, less a service time and the overhead); seed {doc['options']['seed']}; "
        f"simulated in {doc['predicted']['compute_s']:.3f} s of compute",
        "",
        "## Figures",
        "",
        "| | observed | predicted | predicted with defaults (2 s starts, no discovery time, constant service, no overhead) |",
        "| --- | ---: | ---: | ---: |",
        f"| max RUNNING replicas | {o['max_replicas']} | {p['max_replicas']} | {a['max_replicas']} |",
        f"| time to peak s | {o['time_to_peak_s']:.2f} | {c['time_to_peak_s']['predicted']:.2f} | "
        f"{doc['predicted_defaults']['time_to_peak_s']:.2f} |",
        f"| p50 ms | {ms(o['p50_s'])} | {ms(p['p50_s'])} | {ms(a['p50_s'])} |",
        f"| p95 ms | {ms(o['p95_s'])} | {ms(p['p95_s'])} | {ms(a['p95_s'])} |",
        f"| p99 ms | {ms(o['p99_s'])} | {ms(p['p99_s'])} | {ms(a['p99_s'])} |",
        f"| max ms | {ms(o['max_s'])} | {ms(p['max_s'])} | {ms(a['max_s'])} |",
        f"| failed requests | {o['failed']} | {c['failed']['predicted']} | {a['requests'] - a['outcomes']['ok']} |",
        f"| replica-seconds | n/a | {p['replica_seconds']:.1f} | {a['replica_seconds']:.1f} |",
        "",
        "## How far off",
        "",
        f"- RUNNING replicas over {c['polls']} polls: mean absolute error {c['replica_mae']:.2f}, max error "
        f"{c['replica_max_error']}, bias {c['replica_bias']:+.2f} (positive: the simulator predicts more)",
        f"- target replicas: mean absolute error {c['target_mae']:.2f}, max error {c['target_max_error']}",
        f"- time to peak: predicted - observed = {c['time_to_peak_s']['difference']:+.2f} s; back to "
        f"{AUTOSCALING['min_replicas']} replica after it: predicted {fmt(c['time_back_to_min_s']['predicted'], '.2f')} s, "
        f"observed {fmt(c['time_back_to_min_s']['observed'], '.2f')} s",
        "- from RUNNING in the status API to the first answer from that replica (s): "
        + (", ".join(f"{v:.2f}" for v in doc["observed"]["running_to_first_answer_s"].values()) or "n/a"),
        "- time to N RUNNING replicas (predicted / observed s): " + ", ".join(
            f"{n}: {fmt(v['predicted'], '.2f')} / {fmt(v['observed'], '.2f')}" for n, v in c["time_to_replicas_s"].items()),
        f"- latency predicted/observed: p50 {fmt(c['p50_ratio'], '.2f')}, p95 {fmt(c['p95_ratio'], '.2f')}, "
        f"p99 {fmt(c['p99_ratio'], '.2f')}",
        f"- over seeds 0..{doc['seeds']['seeds'] - 1} (median [min, max]): " + "; ".join(
            f"{label} {v['median']:.2f} [{v['min']:.2f}, {v['max']:.2f}]" for label, v in (
                ("replica MAE", doc["seeds"]["replica_mae"]), ("p99 ratio", doc["seeds"]["p99_ratio"]),
                ("time to peak difference s", doc["seeds"]["time_to_peak_difference_s"])) if v),
        "",
        "## Goals",
        "",
        GOAL_LINE,
        "",
    ]
    lines += [f"- {g['text']}" for g in c["goals"].values()]
    lines += ["", "## Per second", "",
              "Latency by intended start; answers by the second they arrived; service is the median time an "
              "answered request held its replica slot (the replica's own clock).", "",
              "| t s | target obs | target pred | running obs | running pred | p50 ms obs | p50 ms pred "
              "| answers obs | answers pred | service ms obs |",
              "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in doc["seconds"]:
        lines.append(f"| {r['t_s']} | {fmt(r['observed_target'], 'd')} | {r['predicted_target']} | "
                     f"{fmt(r['observed_running'], 'd')} | {r['predicted_running']} | "
                     f"{fmt(r['observed_p50_ms'], '.0f')} | {fmt(r['predicted_p50_ms'], '.0f')} | "
                     f"{r['observed_answers']} | {fmt(r['predicted_answers'], 'd')} | {fmt(r['observed_service_ms'], '.0f')} |")
    lines += ["", "## What the model leaves out", "",
              "- CPU contention: on 2 cores, replicas starting slow the proxy and the controller (fewer answers a "
              "second than the replicas running could give, in the per-second table); the simulator's service time "
              "does not depend on load.",
              "- One caller; replica start times drawn independently, even when several start at once.",
              "- The spread over seeds is the luck of the draws and of where demand reports fall. This trace sits on "
              "an edge: 10 req/s of 0.1 s is exactly target_ongoing_requests=1, and two requests "
              "overlapping for a moment at one replica are a panic (2x) that holds 2 replicas for 30 s, in the "
              "live system as in the simulator."]
    if m["other_ray_clusters"] or (m["baseline_cpu"] or {}).get("busy_pct", 0) > 20:
        lines += ["", "Note: the machine was not idle at the start (another Ray cluster or CPU load): replica starts "
                      "and latencies are stretched by CPU contention, which the simulator does not model."]
    if doc.get("error"):
        lines += ["", f"FAILED: `{doc['error']}`"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work-s", type=float, default=0.1, help="seconds each request sleeps (default 0.1)")
    ap.add_argument("--seed", type=int, default=0, help="the simulator's seed (default 0)")
    ap.add_argument("--request-timeout", type=float, default=30.0, help="client timeout per request (default 30)")
    ap.add_argument("--deploy-timeout", type=int, default=180, help="seconds allowed for start+deploy and shutdown")
    ap.add_argument("--smoke", action="store_true", help="a 15 s trace for CI; writes to reports/bench/smoke/")
    ap.add_argument("--out-dir", type=Path, default=None, help="override the output directory")
    ap.add_argument("--port", type=int, default=hb.PORT, help=f"HTTP port (default {hb.PORT})")
    args = ap.parse_args(argv)
    hb.PORT, hb.URL = args.port, f"http://{hb.HOST}:{args.port}/"  # read by the port helpers and url()
    out_dir = args.out_dir or (REPO_ROOT / "reports" / "bench" / ("smoke" if args.smoke else ""))
    phases, tail = (SMOKE_PHASES, SMOKE_TAIL_S) if args.smoke else (PHASES, TAIL_S)
    offsets = sim.arrivals_from_rates(phases)
    window_s = sum(d for d, _ in phases) + tail

    import ray

    machine = machine_info()
    machine["baseline_cpu"] = baseline_cpu()
    machine["other_ray_clusters"] = other_ray_clusters()
    doc: dict = {"schema": 1, "timestamp": utc_now(), "smoke": args.smoke, "machine": machine, "ray_version": ray.__version__,
                 "options": {"phases": phases, "tail_s": tail, "work_s": args.work_s, "seed": args.seed,
                             "max_ongoing_requests": MAX_ONGOING, "autoscaling_config": AUTOSCALING, "poll_s": POLL_S,
                             "request_timeout_s": args.request_timeout, "http": f"{hb.HOST}:{hb.PORT}"},
                 "goal": GOAL_LINE, "status": "failed"}
    serve, started, run = None, False, None
    ray.init(address="local", num_cpus=RAY_NUM_CPUS, include_dashboard=False, log_to_driver=False)
    try:
        if port_in_use() or listeners():
            raise RuntimeError(f"port {hb.PORT} already in use: something else would be measured; use --port")
        serve = importlib.import_module("serve_core")
        with time_limit(args.deploy_timeout, "serve_core start+deploy"):
            started = True
            serve.start(http_options={"host": hb.HOST, "port": hb.PORT})
            serve.run(build_app(serve, args.work_s), name=APP, route_prefix="/")
            wait_routes(APP, args.deploy_timeout)
        run = observe(serve, args, offsets, window_s)
        doc["status"] = "ok"
    except BaseException as e:  # noqa: BLE001 - recorded; the cluster still goes down below
        hb.record_failure(doc, "serve_core", e)
    finally:
        try:
            if started:
                hb.shut_down(doc, "serve_core", serve, args.deploy_timeout)
        finally:
            ray.shutdown()
    out_dir.mkdir(parents=True, exist_ok=True)
    if run is not None:
        obs = observed_figures(run)
        starts = run["start_times_s"]
        measured = sim.SampledTime(samples_s=starts) if starts else sim.ConstantTime(seconds=2.0)
        found = discovery_samples(obs)
        discovery = sim.SampledTime(samples_s=found) if found else sim.ConstantTime(seconds=0.0)
        settings = settings_for(window_s, sim.SampledTime(samples_s=run["service_s"]), measured, discovery,
                                run["overhead_s"], args.request_timeout, args.seed)
        t = time.perf_counter()
        res = sim.simulate(offsets, settings)
        compute_s = time.perf_counter() - t
        defaults = sim.simulate(offsets, settings_for(window_s, sim.ConstantTime(seconds=args.work_s), sim.ConstantTime(seconds=2.0),
                                                       sim.ConstantTime(seconds=0.0), 0.0, args.request_timeout, args.seed))
        doc.update(
            inputs={"service_s": run["service_s"], "overhead_s": run["overhead_s"], "replica_start_s": starts,
                    "discovery_s": found},
            observed=obs,
            predicted={**res.to_dict(timeline=False), "compute_s": compute_s},  # settings included: rerun it offline
            predicted_defaults={"summary": defaults.to_dict(timeline=False)["summary"],
                                "time_to_peak_s": next(c.t_s for c in defaults.replica_changes
                                                       if c.running == defaults.summary.max_replicas)},
            comparison=compare(obs, run, res),
            seeds=seed_spread(obs, run, offsets, settings),
            seconds=seconds_table(run, res, window_s),
            run={"cpu": run["cpu"], "client_max_lag_ms": run["client_max_lag_ms"], "client_error": run["client_error"],
                 "polls": run["polls"], "requests": run["results"], "served": run["served"]},
        )
        if doc["status"] == "ok" and (obs["failed"] or run["client_error"]):
            doc["status"] = "errors"
        (out_dir / "simulator.md").write_text(md := render_md(doc))
        print(md)
        c = doc["comparison"]
        log(f"replica MAE {c['replica_mae']:.2f} (max {c['replica_max_error']}), p50 ratio {fmt(c['p50_ratio'], '.2f')}, "
            f"p99 ratio {fmt(c['p99_ratio'], '.2f')}, {obs['failed']} failed")
    (out_dir / "simulator.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    log(f"wrote {out_dir / 'simulator.json'}" + (f" and {out_dir / 'simulator.md'}" if run is not None else ""))
    return 0 if doc["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
