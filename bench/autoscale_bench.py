"""Autoscaling benchmark: Ray Serve (``ray.serve``) vs ``serve_core``, same run, same Ray cluster.

For each backend, one after another (both listen on port 8000, so never at once):

1. cold start from zero: a no-op deployment that autoscales between 0 and 4 replicas.
   One unmeasured warm-up request (the proxy sets up its route and handle), then N times:
   wait until the deployment has no replica, send ONE HTTP GET, time its response, and
   time how long the deployment takes to get back to zero running replicas.
2. load step: a deployment that sleeps 0.1 s per request, idle at 1 replica
   (min_replicas=1), then open-loop load at a constant rate (40 req/s: about 4 requests
   ongoing, so 4 replicas at target_ongoing_requests=1). Time from the step until the
   backend reports 2, 3 and 4 running replicas; the requests' p50/p99 and failures.

Then shutdown, and wait for port 8000 to be free before the next backend.

Usage (from the repo root):
    python -m bench.autoscale_bench                    # both backends, 5 cold starts, 20 s step
    python -m bench.autoscale_bench --backends serve_core --reps 3
    python -m bench.autoscale_bench --smoke            # 1 cold start, 8 s step, writes reports/bench/smoke/

Writes reports/bench/autoscale.json and reports/bench/autoscale.md (or reports/bench/smoke/...).
Exit status is non-zero if any backend failed (did not serve a cold-start request with 200,
raised, did not shut down) or had errors (failed requests in the step, or never reached
4 replicas within --step-timeout).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import importlib
import json
import math
import os
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path

from bench import http_bench as hb
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

BACKEND_MODULES = hb.BACKEND_MODULES
HOST = hb.HOST
COLD_APP, COLD_DEPLOYMENT = "autoscale_cold", "ColdNoOp"
STEP_APP, STEP_DEPLOYMENT = "autoscale_step", "StepSleep"
MAX_REPLICAS = 4
REPLICA_CPUS = 0.1
PRELOAD_MODULES = "serve_core.data.replica,ray.serve._private.replica"
MAX_ONGOING = 5  # Ray Serve's default, stated explicitly so both backends get the same
# The same autoscaling_config for both backends. Every field exists in Ray Serve 2.60's
# AutoscalingConfig (ray/serve/config.py) and in serve_core's. In Ray Serve 2.60,
# metrics_interval_s (deprecated, still read) is how often a handle (the proxy's) pushes
# its queued+ongoing counts to the controller, and look_back_period_s * 0.2 how often it
# records them; their defaults (10 s, 30 s) would make Ray Serve react in tens of seconds.
# serve_core accepts metrics_interval_s and ignores it (callers report twice a second).
COLD_AUTOSCALING = {
    "min_replicas": 0, "max_replicas": MAX_REPLICAS, "initial_replicas": 0,
    "target_ongoing_requests": 1, "upscale_delay_s": 0, "downscale_delay_s": 1,
    "downscale_to_zero_delay_s": 1, "look_back_period_s": 2, "metrics_interval_s": 0.5,
}
STEP_AUTOSCALING = dict(COLD_AUTOSCALING, min_replicas=1, initial_replicas=1)
GOAL_COLD_P50_S, GOAL_COLD_SPEEDUP = 1.0, 10.0
GOAL_LINE = (f"goal: serve_core's first response from zero replicas p50 < {GOAL_COLD_P50_S:g} s "
             f"and at least {GOAL_COLD_SPEEDUP:g}x faster than Ray Serve's (same run)")


def log(msg: str) -> None:
    print(f"[autoscale] {msg}", file=sys.stderr, flush=True)


def url(path: str = "/") -> str:
    return f"http://{HOST}:{hb.PORT}{path}"


# --------------------------------------------------------------------------- apps
def build_cold_app(serve):
    """No-op deployment that scales between 0 and MAX_REPLICAS.

    Classes are defined inside functions so cloudpickle ships them by value: workers
    never import bench.autoscale_bench.
    """

    @serve.deployment(name=COLD_DEPLOYMENT, max_ongoing_requests=MAX_ONGOING,
                      autoscaling_config=dict(COLD_AUTOSCALING), ray_actor_options={"num_cpus": REPLICA_CPUS})
    class ColdNoOp:
        async def __call__(self, request):
            return "ok"

    return ColdNoOp.bind()


def build_step_app(serve, work_s: float):
    @serve.deployment(name=STEP_DEPLOYMENT, max_ongoing_requests=MAX_ONGOING,
                      autoscaling_config=dict(STEP_AUTOSCALING), ray_actor_options={"num_cpus": REPLICA_CPUS})
    class StepSleep:
        async def __call__(self, request):
            await asyncio.sleep(work_s)
            return "ok"

    return StepSleep.bind()


# --------------------------------------------------------------------------- status
def replica_states(serve, app: str, deployment: str) -> dict:
    """{state: count} from the backend's own status API ({} if the deployment is unknown)."""
    st = serve.status()
    a = st.applications.get(app)
    d = a.deployments.get(deployment) if a is not None else None
    if d is None:
        return {}
    return {getattr(k, "value", str(k)): int(v) for k, v in (d.replica_states or {}).items() if v}


def running(states: dict) -> int:
    return states.get("RUNNING", 0)


def wait_replicas(serve, app: str, deployment: str, pred, what: str, timeout: float, hint: str) -> float:
    """Poll the status API until pred(states) holds; return when (monotonic). Clear error on timeout."""
    deadline, states = time.monotonic() + timeout, {}
    while True:
        states = replica_states(serve, app, deployment)
        if pred(states):
            return time.monotonic()
        if time.monotonic() > deadline:
            raise TimeoutError(f"deployment {app}/{deployment} still has replicas {states or '{}'} "
                               f"{timeout:.0f}s later; waited for {what}. {hint}")
        time.sleep(0.1)


def wait_routes(app: str, timeout: float) -> None:
    """Poll GET /-/routes (both backends have it) until "/" routes to ``app``.

    Unlike a GET /, this does not send a request to the deployment, so it does not
    wake a deployment that sits at zero replicas.
    """
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url("/-/routes"), timeout=2) as r:
                routes = json.loads(r.read() or b"{}")
            if routes.get("/") == app:
                return
            last = f"routes {routes}"
        except Exception as e:  # noqa: BLE001 - anything means "not ready yet"
            last = repr(e)
        time.sleep(0.2)
    raise TimeoutError(f"{url('/-/routes')} did not route '/' to {app!r} within {timeout:.0f}s (last: {last})")


def timed_get(timeout: float) -> dict:
    """One GET / on a new connection; seconds until the whole (small) response is read."""
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection(HOST, hb.PORT, timeout=timeout)
    try:
        conn.request("GET", "/")
        r = conn.getresponse()
        body = r.read()
        t1 = time.perf_counter()
        return {"status": r.status, "seconds": t1 - t0, "body": body[:200].decode(errors="replace"),
                "done_at": time.monotonic()}
    except Exception as e:  # noqa: BLE001 - a failed cold start is a result, not a crash
        return {"status": None, "seconds": time.perf_counter() - t0, "error": f"{type(e).__name__}: {e}",
                "done_at": time.monotonic()}
    finally:
        conn.close()


def percentile(values: list, pct: float):
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    s = sorted(values)
    return s[max(0, math.ceil(pct / 100 * len(s)) - 1)]


# --------------------------------------------------------------------------- phase 1
def cold_start_phase(serve, name: str, args) -> dict:
    zero_hint = (f"With min_replicas=0 and downscale_to_zero_delay_s={COLD_AUTOSCALING['downscale_to_zero_delay_s']} "
                 "it should reach zero within seconds; raise --zero-timeout if this machine is slow")

    def back_to_zero(since: float) -> dict:
        t_run = wait_replicas(serve, COLD_APP, COLD_DEPLOYMENT, lambda s: running(s) == 0,
                              "0 RUNNING replicas", args.zero_timeout, zero_hint)
        t_none = wait_replicas(serve, COLD_APP, COLD_DEPLOYMENT, lambda s: sum(s.values()) == 0,
                               "no replica in any state (STOPPING ones gone)", args.zero_timeout, zero_hint)
        return {"time_to_zero_s": t_run - since, "time_to_no_replica_s": t_none - since}

    out: dict = {"autoscaling_config": dict(COLD_AUTOSCALING), "reps": []}
    wait_replicas(serve, COLD_APP, COLD_DEPLOYMENT, lambda s: sum(s.values()) == 0,
                  "no replica (initial_replicas=0)", args.zero_timeout, zero_hint)
    log(f"{name}: warm-up cold start (not counted: the proxy sets up its route and handle)...")
    warm = timed_get(args.request_timeout)
    log(f"{name}:   warm-up: HTTP {warm['status']} in {warm['seconds']:.3f} s; waiting for zero replicas...")
    warm.update(back_to_zero(warm["done_at"]))
    out["warmup"] = warm
    for i in range(args.reps):
        time.sleep(args.settle)  # let every caller see the scale-down before the next request
        if sum(replica_states(serve, COLD_APP, COLD_DEPLOYMENT).values()):
            back_to_zero(time.monotonic())
        r = timed_get(args.request_timeout)
        log(f"{name}:   cold start {i + 1}/{args.reps}: HTTP {r['status']} in {r['seconds']:.3f} s"
            + (f" ({r['error']})" if r.get("error") else "") + "; waiting for zero replicas...")
        r.update(back_to_zero(r["done_at"]))
        log(f"{name}:     back to 0 running replicas {r['time_to_zero_s']:.1f} s after the response "
            f"(no replica at all after {r['time_to_no_replica_s']:.1f} s)")
        out["reps"].append(r)
    secs = [r["seconds"] for r in out["reps"] if r["status"] == 200]
    zeros = [r["time_to_zero_s"] for r in out["reps"]]
    out.update(
        n=len(out["reps"]),
        all_200=all(r["status"] == 200 for r in out["reps"]) and bool(out["reps"]),
        statuses=[r["status"] for r in out["reps"]],
        first_response_p50_s=statistics.median(secs) if secs else None,
        first_response_min_s=min(secs) if secs else None,
        first_response_max_s=max(secs) if secs else None,
        time_to_zero_p50_s=statistics.median(zeros) if zeros else None,
        time_to_zero_after_last_s=zeros[-1] if zeros else None,
    )
    for r in [warm, *out["reps"]]:
        r.pop("done_at", None)
    return out


# --------------------------------------------------------------------------- phase 2
class OpenLoop:
    """Constant-arrival-rate HTTP GETs from an asyncio loop in its own thread.

    Request i is sent at t0 + i/rate whatever happened to earlier requests (open loop),
    and its latency is measured from that scheduled time, so a client that falls behind
    (busy machine) shows up in the latencies instead of hiding as a lower rate.
    """

    def __init__(self, target_url: str, rate: float, timeout: float):
        self.url, self.rate, self.timeout = target_url, rate, timeout
        self.results: list = []  # (scheduled offset s, latency s, HTTP status or error name)
        self.max_lag = 0.0
        self.t0 = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="open-loop", daemon=True)
        self.error: str | None = None

    def start(self) -> float:
        self.t0 = time.monotonic()
        self._thread.start()
        return self.t0

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self.timeout + 30)

    async def _one(self, session, scheduled: float) -> None:
        import aiohttp

        status: int | str
        try:
            async with session.get(self.url, timeout=aiohttp.ClientTimeout(total=self.timeout)) as r:
                await r.read()
                status = r.status
        except Exception as e:  # noqa: BLE001 - counted as a failure
            status = type(e).__name__
        self.results.append((scheduled - self.t0, time.monotonic() - scheduled, status))

    async def _main(self) -> None:
        import aiohttp

        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
                tasks, i = [], 0
                while not self._stop.is_set():
                    scheduled = self.t0 + i / self.rate
                    delay = scheduled - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    self.max_lag = max(self.max_lag, time.monotonic() - scheduled)
                    tasks.append(asyncio.create_task(self._one(session, scheduled)))
                    i += 1
                await asyncio.gather(*tasks)
        except Exception as e:  # noqa: BLE001 - reported by step_phase
            self.error = f"{type(e).__name__}: {e}"


def step_phase(serve, name: str, args) -> dict:
    hint = "raise --deploy-timeout if this machine is slow"
    wait_replicas(serve, STEP_APP, STEP_DEPLOYMENT, lambda s: running(s) == 1 and sum(s.values()) == 1,
                  "exactly 1 RUNNING replica (min_replicas=1)", args.deploy_timeout, hint)
    for _ in range(3):  # the proxy's handle to the deployment exists before the step
        r = timed_get(args.request_timeout)
        if r["status"] != 200:
            raise RuntimeError(f"warm-up request before the step answered {r['status']}: {r.get('error') or r['body']}")
    idle = COLD_AUTOSCALING["look_back_period_s"] + 1
    log(f"{name}: idle {idle:g} s at 1 replica, then open-loop {args.rate:g} req/s of {args.work_s:g} s work "
        f"(~{args.rate * args.work_s:g} ongoing -> {MAX_REPLICAS} replicas at target_ongoing_requests=1)...")
    time.sleep(idle)
    load = OpenLoop(url("/"), args.rate, args.request_timeout)
    cpu0 = _cpu_times()
    t0 = load.start()
    timeline, reached, last, decided = [], {}, None, None
    while True:
        now = time.monotonic() - t0
        states = replica_states(serve, STEP_APP, STEP_DEPLOYMENT)
        n = running(states)
        if decided is None and sum(states.values()) > 1:
            decided = now  # a second replica exists (STARTING): the autoscaler has decided
        if states != last:
            timeline.append({"t_s": round(now, 3), "states": states})
            last = states
        for k in range(2, MAX_REPLICAS + 1):
            if n >= k and k not in reached:
                reached[k] = now
                log(f"{name}:   {k} running replicas {now:.2f} s after the step")
        if now >= args.step_duration and (MAX_REPLICAS in reached or now >= args.step_timeout):
            break
        if load.error:
            break
        time.sleep(0.1)
    load.stop()
    duration = time.monotonic() - t0
    cpu = cpu_usage(cpu0, _cpu_times())
    res = load.results
    ok_lat = [lat * 1e3 for _, lat, st in res if st == 200]
    failures: dict = {}
    for _, _, st in res:
        if st != 200:
            failures[str(st)] = failures.get(str(st), 0) + 1
    sent_window = max((off for off, _, _ in res), default=0.0)
    out = {
        "autoscaling_config": dict(STEP_AUTOSCALING), "rate_rps": args.rate, "work_s": args.work_s,
        "target_replicas": MAX_REPLICAS, "load_s": duration,
        "time_to_replicas_s": {str(k): reached.get(k) for k in range(2, MAX_REPLICAS + 1)},
        "time_to_target_s": reached.get(MAX_REPLICAS), "time_to_first_new_replica_s": decided,
        "sent": len(res), "ok": len(ok_lat), "failed": sum(failures.values()), "failures": failures,
        "p50_ms": percentile(ok_lat, 50), "p99_ms": percentile(ok_lat, 99),
        "max_ms": max(ok_lat) if ok_lat else None,
        "sent_rps": (len(res) - 1) / sent_window if sent_window else None,
        "client_max_lag_ms": load.max_lag * 1e3, "client_error": load.error,
        "cpu": cpu, "timeline": timeline,
    }
    return out


# --------------------------------------------------------------------------- one backend
def bench_backend(name: str, args) -> dict:
    res: dict = {"backend": name, "module": BACKEND_MODULES[name], "timestamp": utc_now(), "status": "failed"}
    serve, started = None, False
    try:
        if port_in_use() or listeners():
            raise RuntimeError(f"port {hb.PORT} already in use before starting {name}: "
                               "something else would be benchmarked")
        log(f"{name}: importing {BACKEND_MODULES[name]}...")
        serve = importlib.import_module(BACKEND_MODULES[name])
        res["backend_version"] = getattr(serve, "__version__", None) or getattr(
            sys.modules.get(BACKEND_MODULES[name].split(".")[0]), "__version__", None)
        log(f"{name}: starting on {HOST}:{hb.PORT}, deploying {COLD_DEPLOYMENT} (0..{MAX_REPLICAS} replicas)...")
        with time_limit(args.deploy_timeout, f"{name} start+deploy"):
            started = True
            serve.start(http_options={"host": HOST, "port": hb.PORT})
            serve.run(build_cold_app(serve), name=COLD_APP, route_prefix="/")
            wait_routes(COLD_APP, args.deploy_timeout)
        ours = listeners()

        def check_port(phase):
            if listeners() - ours:
                raise RuntimeError(f"another server started listening on port {hb.PORT} during {phase} "
                                   "(SO_REUSEPORT: the kernel splits connections between servers); "
                                   "figures discarded. Use an idle machine or --port")

        res["cold_start"] = cold = cold_start_phase(serve, name, args)
        check_port("the cold starts")
        log(f"{name}: cold start p50 {fmt(cold['first_response_p50_s'], '.3f')} s "
            f"(min {fmt(cold['first_response_min_s'], '.3f')}, max {fmt(cold['first_response_max_s'], '.3f')}), "
            f"statuses {cold['statuses']}")
        log(f"{name}: replacing {COLD_APP} with {STEP_APP} ({STEP_DEPLOYMENT}, 1..{MAX_REPLICAS} replicas)...")
        with time_limit(args.deploy_timeout, f"{name} redeploy"):
            serve.delete(COLD_APP)
            serve.run(build_step_app(serve, args.work_s), name=STEP_APP, route_prefix="/")
            wait_routes(STEP_APP, args.deploy_timeout)
        res["step"] = step = step_phase(serve, name, args)
        check_port("the load step")
        log(f"{name}: step: {MAX_REPLICAS} replicas after {fmt(step['time_to_target_s'], '.2f')} s; "
            f"{step['sent']} requests, {step['failed']} failed {step['failures'] or ''}, "
            f"p50 {fmt(step['p50_ms'], '.1f')} ms, p99 {fmt(step['p99_ms'], '.1f')} ms, cpu {step['cpu']}")
        problems = []
        if not cold["all_200"]:
            problems.append(f"cold-start responses were {cold['statuses']}, not all 200")
        if step["ok"] == 0:
            problems.append(f"no request of the load step succeeded ({step['failures']})")
        if problems:
            raise RuntimeError("failed to serve: " + "; ".join(problems))
        res["status"] = "ok"
        if step["failed"] or step["time_to_target_s"] is None or step["client_error"]:
            res["status"] = "errors"
            res["problems"] = [p for p in (
                step["failed"] and f"{step['failed']} of {step['sent']} step requests failed: {step['failures']}",
                step["time_to_target_s"] is None and f"never reached {MAX_REPLICAS} running replicas "
                                                     f"within {step['load_s']:.0f} s of load",
                step["client_error"] and f"load client crashed: {step['client_error']}",
            ) if p]
    except BaseException as e:  # noqa: BLE001 - record, then go on with the next backend
        hb.record_failure(res, name, e)
    finally:
        if started:
            hb.shut_down(res, name, serve, args.deploy_timeout)
    return res


# --------------------------------------------------------------------------- report
def _get(r: dict, phase: str, key: str):
    return (r.get(phase) or {}).get(key)


def compare(results: dict) -> dict:
    a, b = results.get("ray_serve", {}), results.get("serve_core", {})

    def ratio(phase, key):  # serve_core / ray_serve: below 1 is better for times
        x, y = _get(b, phase, key), _get(a, phase, key)
        return x / y if x is not None and y else None

    cmp: dict = {
        "cold_p50_ratio": ratio("cold_start", "first_response_p50_s"),
        "cold_min_ratio": ratio("cold_start", "first_response_min_s"),
        "cold_max_ratio": ratio("cold_start", "first_response_max_s"),
        "time_to_zero_ratio": ratio("cold_start", "time_to_zero_after_last_s"),
        "step_time_to_target_ratio": ratio("step", "time_to_target_s"),
        "step_p50_ratio": ratio("step", "p50_ms"),
        "step_p99_ratio": ratio("step", "p99_ms"),
        "goals": {},
    }
    p50_b, p50_a = _get(b, "cold_start", "first_response_p50_s"), _get(a, "cold_start", "first_response_p50_s")
    g = cmp["goals"]
    if p50_b is None:
        g["cold_p50_lt_1s"] = {"target_s": GOAL_COLD_P50_S, "met": None,
                               "text": f"cold start p50 < {GOAL_COLD_P50_S:g} s: n/a (serve_core not measured)"}
    else:
        met = p50_b < GOAL_COLD_P50_S
        g["cold_p50_lt_1s"] = {
            "target_s": GOAL_COLD_P50_S, "actual_s": p50_b, "met": met,
            "text": (f"cold start p50 < {GOAL_COLD_P50_S:g} s: MET ({p50_b:.3f} s, "
                     f"{GOAL_COLD_P50_S - p50_b:.3f} s to spare)" if met else
                     f"cold start p50 < {GOAL_COLD_P50_S:g} s: NOT met ({p50_b:.3f} s; "
                     f"{p50_b - GOAL_COLD_P50_S:.3f} s / {p50_b / GOAL_COLD_P50_S:.2f}x too slow)")}
    if p50_b is None or p50_a is None:
        g["cold_10x_ray_serve"] = {"target": GOAL_COLD_SPEEDUP, "met": None,
                                   "text": f">= {GOAL_COLD_SPEEDUP:g}x faster cold start than Ray Serve: n/a "
                                           "(needs both backends measured in this run)"}
    else:
        speedup = p50_a / p50_b
        met = speedup >= GOAL_COLD_SPEEDUP
        need = p50_a / GOAL_COLD_SPEEDUP
        g["cold_10x_ray_serve"] = {
            "target": GOAL_COLD_SPEEDUP, "actual": speedup, "met": met,
            "text": (f">= {GOAL_COLD_SPEEDUP:g}x faster cold start than Ray Serve: MET ({speedup:.1f}x)" if met else
                     f">= {GOAL_COLD_SPEEDUP:g}x faster cold start than Ray Serve: NOT met ({speedup:.1f}x; "
                     f"needs {GOAL_COLD_SPEEDUP / speedup:.2f}x more, i.e. p50 <= {need:.3f} s vs {p50_b:.3f} s)")}
    return cmp


def render_md(doc: dict) -> str:
    res, cmp, m = doc["backends"], doc["comparison"], doc["machine"]

    def cfg(d):
        return ", ".join(f"{k}={v}" for k, v in d.items())

    lines = [
        "# Autoscaling benchmark: serve_core vs Ray Serve" + (" (SMOKE run, not real figures)" if doc["smoke"] else ""),
        "",
        f"- timestamp: {doc['timestamp']}",
        f"- machine: {m['cores']} cores ({m['usable_cores']} usable), {m['platform']}, Python {m['python']}; "
        f"before start: CPU {m['baseline_cpu']}, other Ray clusters: {m['other_ray_clusters']}",
        f"- Ray {doc['ray_version']}, serve_core {doc['serve_core_version']}; `ray.init(address=\"local\", "
        f"num_cpus={RAY_NUM_CPUS})` once, backends run one after another on {doc['options']['http']}; "
        f"`RAY_preload_python_modules={doc['options'].get('preload', '')}` (both backends' replica modules)",
        f"- deployments (identical for both): `max_ongoing_requests={MAX_ONGOING}`, "
        f"`ray_actor_options={{\"num_cpus\": {REPLICA_CPUS}}}`",
        f"- cold start: no-op `{COLD_DEPLOYMENT}`, `autoscaling_config`: {cfg(COLD_AUTOSCALING)}. "
        f"One unmeasured warm-up, then {doc['options']['reps']} times: wait until the status API shows no replica, "
        f"{doc['options']['settle_s']:g} s more, one GET / on a new connection, time to the whole response",
        f"- load step: `{STEP_DEPLOYMENT}` (`await asyncio.sleep({doc['options']['work_s']:g})`), "
        f"`autoscaling_config`: {cfg(STEP_AUTOSCALING)}. Idle at 1 replica, then open-loop "
        f"{doc['options']['rate_rps']:g} req/s (aiohttp, constant arrival rate, latency from the scheduled send time) "
        f"for {doc['options']['step_duration_s']:g} s (longer, up to {doc['options']['step_timeout_s']:g} s, "
        f"until {MAX_REPLICAS} replicas run). Replica counts are polled from the status API every 0.1 s: "
        "\"N replicas\" counts RUNNING ones, \"first new replica\" is when a second replica first shows "
        "in any state (the autoscaler's decision, before the replica has started)",
        "",
        "## Cold start from zero replicas",
        "",
        "| backend | status | reps | first response p50 s | min s | max s | HTTP statuses "
        "| to 0 running replicas after the last request s | p50 s |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for name, r in res.items():
        c = r.get("cold_start") or {}
        lines.append(f"| {name} | {r['status']} | {c.get('n', 'n/a')} | {fmt(c.get('first_response_p50_s'), '.3f')} | "
                     f"{fmt(c.get('first_response_min_s'), '.3f')} | {fmt(c.get('first_response_max_s'), '.3f')} | "
                     f"{c.get('statuses', 'n/a')} | {fmt(c.get('time_to_zero_after_last_s'), '.1f')} | "
                     f"{fmt(c.get('time_to_zero_p50_s'), '.1f')} |")
    lines += [
        "",
        f"## Load step: 1 replica, then {doc['options']['rate_rps']:g} req/s of {doc['options']['work_s']:g} s work",
        "",
        "| backend | first new replica (any state) s | 2 replicas s | 3 replicas s | 4 replicas s | requests | failed | p50 ms | p99 ms | max ms "
        "| sent req/s | client max lag ms | CPU busy/steal % |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in res.items():
        s = r.get("step") or {}
        t = s.get("time_to_replicas_s") or {}
        cpu = s.get("cpu")
        cpu_cell = f"{cpu['busy_pct']:.0f} / {cpu['steal_pct']:.0f}" if cpu else "n/a"
        lines.append(f"| {name} | {fmt(s.get('time_to_first_new_replica_s'), '.2f')} | {fmt(t.get('2'), '.2f')} | {fmt(t.get('3'), '.2f')} | {fmt(t.get('4'), '.2f')} | "
                     f"{s.get('sent', 'n/a')} | {s.get('failed', 'n/a')} | {fmt(s.get('p50_ms'), '.1f')} | "
                     f"{fmt(s.get('p99_ms'), '.1f')} | {fmt(s.get('max_ms'), '.1f')} | {fmt(s.get('sent_rps'), '.1f')} | "
                     f"{fmt(s.get('client_max_lag_ms'), '.1f')} | "
                     f"{cpu_cell} |")

    def rx(key):
        v = cmp[key]
        if v is None:
            return "n/a"
        if v <= 0:
            return f"{v:.3f}"
        return f"{v:.3f} ({1 / v:.2f}x faster)" if v < 1 else f"{v:.3f} ({v:.2f}x slower)"

    lines += ["", "## serve_core / ray_serve (lower is better)", "",
              f"- cold start first response p50: {rx('cold_p50_ratio')}; min: {rx('cold_min_ratio')}; "
              f"max: {rx('cold_max_ratio')}",
              f"- time back to zero replicas after the last request: {rx('time_to_zero_ratio')}",
              f"- load step, time to {MAX_REPLICAS} running replicas: {rx('step_time_to_target_ratio')}",
              f"- load step latency p50: {rx('step_p50_ratio')}; p99: {rx('step_p99_ratio')}",
              "", "## Goals", "", GOAL_LINE, ""]
    lines += [f"- {g['text']}" for g in cmp["goals"].values()]
    cpu = [(r.get("step") or {}).get("cpu") for r in res.values()]
    if any(c and c["steal_pct"] > 5 for c in cpu):
        lines += ["", "Note: CPU steal > 5% during a load step: the VM was starved by its host; figures are noisy."]
    if m["other_ray_clusters"] or (m["baseline_cpu"] or {}).get("busy_pct", 0) > 20:
        lines += ["", "Note: the machine was not idle at the start (another Ray cluster or CPU load): "
                      "the figures are skewed by CPU contention; rerun on an idle machine."]
    bad = {n: r for n, r in res.items() if r["status"] != "ok"}
    if bad:
        lines += ["", "## Problems", ""]
        for n, r in bad.items():
            if r.get("error"):
                lines.append(f"- {n}: failed: `{r['error']}`")
            if r.get("shutdown_error"):
                lines.append(f"- {n}: shutdown failed: `{r['shutdown_error']}`")
            for p in r.get("problems", []):
                lines.append(f"- {n}: {p}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backends", default="ray_serve,serve_core",
                    help="comma-separated, run in this order (default: ray_serve,serve_core)")
    ap.add_argument("--reps", type=int, default=None, help="measured cold starts per backend (default 5; 1 with --smoke)")
    ap.add_argument("--rate", type=float, default=40.0, help="load step arrival rate, req/s (default 40)")
    ap.add_argument("--work-s", type=float, default=0.1, help="seconds each step request sleeps (default 0.1)")
    ap.add_argument("--step-duration", type=float, default=None,
                    help="seconds of load in the step (default 20; 8 with --smoke); longer if 4 replicas are "
                         "not reached by then")
    ap.add_argument("--step-timeout", type=float, default=60.0,
                    help="longest load step while waiting for 4 replicas (default 60)")
    ap.add_argument("--settle", type=float, default=1.0,
                    help="seconds to wait after zero replicas before each cold start (default 1)")
    ap.add_argument("--zero-timeout", type=float, default=120.0,
                    help="seconds allowed to get back to zero replicas (default 120)")
    ap.add_argument("--request-timeout", type=float, default=60.0, help="client timeout per request (default 60)")
    ap.add_argument("--smoke", action="store_true",
                    help="short run for CI; writes to reports/bench/smoke/ instead of reports/bench/")
    ap.add_argument("--deploy-timeout", type=int, default=180,
                    help="seconds allowed for start+deploy, redeploy and shutdown (default 180)")
    ap.add_argument("--out-dir", type=Path, default=None, help="override the output directory")
    ap.add_argument("--port", type=int, default=hb.PORT,
                    help=f"HTTP port for both backends (default {hb.PORT})")
    args = ap.parse_args(argv)
    # http_bench's port helpers (listeners, port_in_use, wait_port_free) read its PORT.
    hb.PORT, hb.URL = args.port, f"http://{HOST}:{args.port}/"
    args.reps = args.reps if args.reps is not None else (1 if args.smoke else 5)
    args.step_duration = args.step_duration or (8.0 if args.smoke else 20.0)
    if args.reps < 1 or args.rate <= 0 or args.work_s < 0:
        ap.error("--reps must be >= 1, --rate > 0, --work-s >= 0")
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in BACKEND_MODULES]
    if unknown or not backends:
        ap.error(f"unknown backend(s) {unknown}; choose from {','.join(BACKEND_MODULES)}")
    out_dir = args.out_dir or (REPO_ROOT / "reports" / "bench" / ("smoke" if args.smoke else ""))

    import ray

    import serve_core

    machine = machine_info()
    machine["baseline_cpu"] = baseline_cpu()
    machine["other_ray_clusters"] = other_ray_clusters()
    if machine["other_ray_clusters"] or (machine["baseline_cpu"] or {}).get("busy_pct", 0) > 20:
        log(f"WARNING: machine not idle before start (CPU {machine['baseline_cpu']}, "
            f"{machine['other_ray_clusters']} other Ray cluster(s)): figures will be skewed")
    options = {"http": f"{HOST}:{hb.PORT}", "ray_num_cpus": RAY_NUM_CPUS, "preload": PRELOAD_MODULES, "reps": args.reps,
               "settle_s": args.settle, "rate_rps": args.rate, "work_s": args.work_s,
               "step_duration_s": args.step_duration, "step_timeout_s": args.step_timeout,
               "max_ongoing_requests": MAX_ONGOING, "replica_num_cpus": REPLICA_CPUS,
               "cold_autoscaling_config": COLD_AUTOSCALING, "step_autoscaling_config": STEP_AUTOSCALING}
    doc = {"schema": 1, "timestamp": utc_now(), "smoke": args.smoke, "machine": machine,
           "ray_version": ray.__version__, "serve_core_version": getattr(serve_core, "__version__", None),
           "options": options, "goal": GOAL_LINE, "backends": {}}
    log(f"ray.init(address='local', num_cpus={RAY_NUM_CPUS}); backends: {', '.join(backends)}; "
        f"{args.reps} cold start(s), {args.step_duration:g} s step at {args.rate:g} req/s")
    started = time.monotonic()
    # Both backends' replica modules preloaded in every worker Ray starts (ahead of need, as
    # the embedded cluster does for serve_core): a cold start pays for the replica, not imports.
    os.environ.setdefault("RAY_preload_python_modules", PRELOAD_MODULES)
    ray.init(address="local", num_cpus=RAY_NUM_CPUS, include_dashboard=False, log_to_driver=False)
    try:
        for name in backends:
            doc["backends"][name] = bench_backend(name, args)
    finally:
        ray.shutdown()
    doc["run_time_s"] = round(time.monotonic() - started, 1)
    doc["comparison"] = compare(doc["backends"])
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "autoscale.json").write_text(json.dumps(doc, indent=2) + "\n")
    md = render_md(doc)
    (out_dir / "autoscale.md").write_text(md)
    log(f"wrote {out_dir / 'autoscale.json'} and {out_dir / 'autoscale.md'} ({doc['run_time_s']} s)")
    print(md)
    bad = [n for n, r in doc["backends"].items() if r["status"] != "ok"]
    if bad:
        log("not ok: " + ", ".join(f"{n} ({doc['backends'][n]['status']})" for n in bad))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
