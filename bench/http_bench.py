"""HTTP benchmark: Ray Serve (``ray.serve``) vs ``serve_core``, same run, same Ray cluster.

For each backend, one after another (both listen on port 8000, so never at once):
start -> deploy a no-op deployment -> warm up -> wrk at 16 connections (req/s)
-> wrk at 1 connection (p50/p90/p99 latency) -> shutdown -> wait for port 8000 to be free.

``serve_core_tls`` is serve_core with TLS everywhere: HTTPS at the proxy and mutual TLS on
the direct connections (certificates made by scripts/make_tls_certs.sh), so that the
cost of TLS is measured against plain serve_core in the same run.

Usage (from the repo root):
    python -m bench.http_bench                       # both backends, 10 s per measurement
    python -m bench.http_bench --backends ray_serve --duration 5
    python -m bench.http_bench --smoke               # 2 s, writes reports/bench/smoke/

Writes reports/bench/http.json and reports/bench/http.md (or reports/bench/smoke/...).
Exit status is non-zero if any backend failed or if wrk saw errors (non-2xx/3xx or
socket errors) for any backend.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BACKEND_MODULES = {"ray_serve": "ray.serve", "serve_core": "serve_core", "serve_core_tls": "serve_core"}
HOST, PORT = "127.0.0.1", 8000
URL = f"http://{HOST}:{PORT}/"
TLS_DIR = Path(tempfile.gettempdir()) / "serve_core_bench_tls"
RAY_NUM_CPUS = 8  # logical CPUs given to ray.init, whatever the machine has
WRK_THREADS_16, WRK_CONNS_16 = 2, 16
GOAL_RPS_RATIO, PROJECT_GOAL_RPS_RATIO, GOAL_P50_MS = 5.0, 20.0, 0.5
GOAL_LINE = ("goal: serve_core >= 5x Ray Serve requests/s (project goal 20x); "
             "p50 at 1 connection < 0.5 ms")


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def machine_info() -> dict:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count()
    return {"cores": os.cpu_count(), "usable_cores": usable,
            "platform": platform.platform(), "python": platform.python_version()}


# --------------------------------------------------------------------------- app
def build_app(serve, max_ongoing: int):
    """The same no-op app for every backend.

    The class is defined inside this function on purpose: cloudpickle then ships
    it by value, so workers never need to import bench.http_bench (or __main__).
    """

    @serve.deployment(num_replicas=1, max_ongoing_requests=max_ongoing)
    class NoOp:
        async def __call__(self, request):
            return "ok"

    return NoOp.bind()


# --------------------------------------------------------------------------- wrk
_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _to_ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if not m:
        raise ValueError(f"cannot parse wrk time {text!r}")
    return float(m.group(1)) * _UNITS_MS[m.group(2)]


def parse_wrk(out: str) -> dict:
    """Parse wrk 4.x output run with --latency."""
    res: dict = {}
    m = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    if not m:
        raise ValueError("no 'Requests/sec:' line in wrk output:\n" + out)
    res["rps"] = float(m.group(1))
    m = re.search(r"^\s*(\d+) requests in ([\d.]+\w+)", out, re.M)
    if m:
        res["requests"] = int(m.group(1))
        res["elapsed_s"] = _to_ms(m.group(2)) / 1e3
    lat = {}
    block = out.split("Latency Distribution", 1)
    if len(block) == 2:
        for pct, val in re.findall(r"^\s*(\d+(?:\.\d+)?)%\s+(\S+)\s*$", block[1], re.M):
            lat[f"p{int(float(pct))}"] = _to_ms(val)
    for k in ("p50", "p90", "p99"):
        if k not in lat:
            raise ValueError(f"no {k} in wrk latency distribution:\n" + out)
    res["latency_ms"] = lat
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    sock = dict(zip(("connect", "read", "write", "timeout"),
                    map(int, m.groups()) if m else (0, 0, 0, 0), strict=True))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    res["errors"] = {"non_2xx_3xx": int(m.group(1)) if m else 0, "socket": sock,
                     "total": (int(m.group(1)) if m else 0) + sum(sock.values())}
    return res


def wrk_version() -> str:
    p = subprocess.run(["wrk", "-v"], capture_output=True, text=True)  # exits 1 on purpose
    first = (p.stdout or p.stderr).strip().splitlines()
    return first[0].split(" Copyright")[0].strip() if first else "unknown"


def _cpu_times():
    """First line of /proc/stat (Linux), or None elsewhere."""
    try:
        with open("/proc/stat") as f:
            return [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None


def cpu_usage(before, after):
    """Machine-wide busy % and hypervisor steal % between two _cpu_times() samples."""
    if not before or not after:
        return None
    d = [b - a for a, b in zip(before, after, strict=True)]
    total = sum(d) or 1
    idle, iowait, steal = d[3], d[4], d[7]
    return {"busy_pct": round(100 * (total - idle - iowait - steal) / total, 1),
            "steal_pct": round(100 * steal / total, 1)}


def run_wrk(threads: int, conns: int, duration: int, url: str | None = None) -> dict:
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--latency", url or URL]
    cpu0, ray0 = _cpu_times(), other_ray_clusters()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    cpu = cpu_usage(cpu0, _cpu_times())
    if cpu is not None:  # our own cluster has one gcs_server; more means someone else's runs
        cpu["other_ray_clusters"] = max(ray0, other_ray_clusters()) - 1
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.strip() or p.stdout.strip()}")
    res = parse_wrk(p.stdout)
    res["cmd"] = " ".join(cmd)
    res["cpu"] = cpu  # steal_pct > a few % means the VM was starved: figures are noisy
    res["raw"] = p.stdout
    return res


# --------------------------------------------------------------------------- helpers
def other_ray_clusters() -> int:
    """How many Ray clusters (gcs_server processes) already run on this machine (Linux)."""
    n = 0
    for d in Path("/proc").glob("[0-9]*"):
        try:
            if (d / "comm").read_text().strip() == "gcs_server":
                n += 1
        except OSError:
            pass
    return n


def baseline_cpu(seconds: float = 2.0):
    """Machine-wide CPU use before anything is started: high means someone else is busy."""
    before = _cpu_times()
    time.sleep(seconds)
    return cpu_usage(before, _cpu_times())


def listeners() -> set:
    """Inodes of the sockets LISTENing on PORT (Linux /proc/net/tcp{,6}; empty set elsewhere).

    Ray Serve's proxy binds with SO_REUSEPORT (SERVE_SOCKET_REUSE_PORT_ENABLED=1 by default),
    so a second Serve instance on the same machine (another Ray cluster, another user)
    can silently listen on the same port and take a share of wrk's connections.
    A connect() check cannot see that; a new listening socket can.
    """
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    col = line.split()
                    if col[3] == "0A" and int(col[1].rsplit(":", 1)[1], 16) == PORT:
                        found.add(col[9])
        except (OSError, StopIteration, IndexError, ValueError):
            pass
    return found


def port_in_use() -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, PORT)) == 0


def wait_port_free(timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while port_in_use():
        if time.monotonic() > deadline:
            raise RuntimeError(f"port {PORT} still in use {timeout:.0f}s after shutdown")
        time.sleep(0.2)


def wait_ready(timeout: float, url: str | None = None) -> None:
    """Poll until GET / answers 200 with body 'ok' (routes may take a moment to appear)."""
    url = url or URL
    ctx = ssl.create_default_context(cafile=str(TLS_DIR / "ca.crt")) if url.startswith("https") else None
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2, context=ctx) as r:
                body = r.read().decode(errors="replace")
                if r.status == 200 and body.strip().strip('"') == "ok":
                    return
                last = f"HTTP {r.status} body {body[:80]!r}"
        except Exception as e:  # noqa: BLE001 - anything means "not ready yet"
            last = repr(e)
        time.sleep(0.3)
    raise TimeoutError(f"{url} not ready after {timeout:.0f}s (last: {last})")


class PhaseTimeout(Exception):
    pass


@contextmanager
def time_limit(seconds: int, what: str):
    """Raise PhaseTimeout in the main thread if a blocking phase (start/deploy/shutdown) hangs."""
    def handler(signum, frame):
        raise PhaseTimeout(f"{what} took longer than {seconds}s")
    old = signal.signal(signal.SIGALRM, handler)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# --------------------------------------------------------------------------- one backend
def bench_backend(name: str, args, common: dict) -> dict:
    res = dict(common)
    res.update(backend=name, module=BACKEND_MODULES[name], timestamp=utc_now(), status="failed")
    serve, started = None, False
    try:
        if port_in_use() or listeners():
            raise RuntimeError(f"port {PORT} already in use before starting {name}: "
                               "something else would be benchmarked")
        log(f"{name}: importing {BACKEND_MODULES[name]}...")
        serve = importlib.import_module(BACKEND_MODULES[name])
        res["backend_version"] = getattr(serve, "__version__", None) or getattr(
            sys.modules.get(BACKEND_MODULES[name].split(".")[0]), "__version__", None)
        options, url = http_options(name)
        res["url"] = url
        log(f"{name}: starting on {url}...")
        with time_limit(args.deploy_timeout, f"{name} start+deploy"):
            started = True
            serve.start(http_options=options)
            log(f"{name}: deploying no-op app (max_ongoing_requests={args.max_ongoing})...")
            serve.run(build_app(serve, args.max_ongoing), name="bench", route_prefix="/")
            wait_ready(args.deploy_timeout, url)
        ours = listeners()

        def check_port(phase):
            intruders = listeners() - ours
            if intruders:
                raise RuntimeError(
                    f"another server started listening on port {PORT} during {phase} "
                    f"(SO_REUSEPORT: the kernel splits connections between servers); "
                    f"figures discarded. Use an idle machine or --port")
        log(f"{name}: warm-up ({args.warmup}s, {WRK_CONNS_16} connections)...")
        warm = run_wrk(WRK_THREADS_16, WRK_CONNS_16, args.warmup, url)
        res["warmup"] = {"rps": warm["rps"], "errors": warm["errors"]}
        check_port("warm-up")
        log(f"{name}: measuring requests/s at {WRK_CONNS_16} connections ({args.duration}s)...")
        r16 = run_wrk(WRK_THREADS_16, WRK_CONNS_16, args.duration, url)
        check_port("the 16-connection run")
        log(f"{name}:   {r16['rps']:.1f} req/s, p50 {r16['latency_ms']['p50']:.3f} ms, "
            f"errors {r16['errors']['total']}, cpu {r16['cpu']}")
        log(f"{name}: measuring latency at 1 connection ({args.duration}s)...")
        r1 = run_wrk(1, 1, args.duration, url)
        check_port("the 1-connection run")
        log(f"{name}:   p50 {r1['latency_ms']['p50']:.3f} ms, p90 {r1['latency_ms']['p90']:.3f} ms, "
            f"p99 {r1['latency_ms']['p99']:.3f} ms, errors {r1['errors']['total']}, cpu {r1['cpu']}")
        res.update(
            rps_16=r16["rps"],
            p50_ms_1=r1["latency_ms"]["p50"],
            p90_ms_1=r1["latency_ms"]["p90"],
            p99_ms_1=r1["latency_ms"]["p99"],
            errors={"c16": r16["errors"], "c1": r1["errors"],
                    "total": r16["errors"]["total"] + r1["errors"]["total"]},
            cpu={"c16": r16["cpu"], "c1": r1["cpu"]},
            runs={"c16": r16, "c1": r1},
        )
        res["status"] = "ok" if res["errors"]["total"] == 0 else "errors"
    except BaseException as e:  # noqa: BLE001 - record, then go on with the next backend
        record_failure(res, name, e)
    finally:
        if started:
            shut_down(res, name, serve, args.deploy_timeout)
    return res


def http_options(name: str) -> tuple[dict, str]:
    """A backend's http_options and the URL wrk measures."""
    if name != "serve_core_tls":
        return {"host": HOST, "port": PORT}, URL
    subprocess.run(["bash", str(REPO_ROOT / "scripts" / "make_tls_certs.sh"), str(TLS_DIR)],
                   check=True, capture_output=True)
    cert, key, ca = (str(TLS_DIR / f) for f in ("node.crt", "node.key", "ca.crt"))
    options = {"host": HOST, "port": PORT, "ssl_certfile": cert, "ssl_keyfile": key,
               "data_path": {"tls_certfile": cert, "tls_keyfile": key, "tls_ca_certs": ca}}
    return options, f"https://{HOST}:{PORT}/"


def record_failure(res: dict, name: str, e: BaseException) -> None:
    """Note a backend's failure in its result; re-raise Ctrl-C (called in an except block)."""
    if isinstance(e, KeyboardInterrupt):
        res["error"] = "interrupted"
        raise e
    res["error"] = f"{type(e).__name__}: {e}"
    res["traceback"] = traceback.format_exc()
    log(f"{name}: FAILED: {res['error']}")


def shut_down(res: dict, name: str, serve, timeout_s: float) -> None:
    """Shut a backend down and wait for its port; a failure marks the result failed."""
    log(f"{name}: shutdown...")
    try:
        with time_limit(timeout_s, f"{name} shutdown"):
            serve.shutdown()
        wait_port_free(30)
    except Exception as e:  # noqa: BLE001
        res["shutdown_error"] = f"{type(e).__name__}: {e}"
        res["status"] = "failed"
        log(f"{name}: shutdown FAILED: {res['shutdown_error']}")


# --------------------------------------------------------------------------- report
def compare(results: dict) -> dict:
    a, b = results.get("ray_serve", {}), results.get("serve_core", {})
    ok = lambda r: r.get("status") in ("ok", "errors") and "rps_16" in r  # noqa: E731
    cmp: dict = {"rps_ratio": None, "p50_ratio": None, "goals": {}}
    if ok(a) and ok(b) and a["rps_16"] > 0 and a["p50_ms_1"] > 0:
        cmp["rps_ratio"] = b["rps_16"] / a["rps_16"]
        cmp["p50_ratio"] = b["p50_ms_1"] / a["p50_ms_1"]
    g = cmp["goals"]
    r = cmp["rps_ratio"]
    for key, target in (("rps_5x", GOAL_RPS_RATIO), ("rps_20x_project", PROJECT_GOAL_RPS_RATIO)):
        if r is None:
            g[key] = {"target": target, "met": None,
                      "text": f">= {target:g}x req/s: n/a (needs both backends measured in this run)"}
        elif r >= target:
            g[key] = {"target": target, "actual": r, "met": True,
                      "text": f">= {target:g}x req/s: MET ({r:.2f}x)"}
        else:
            g[key] = {"target": target, "actual": r, "met": False, "factor_missing": target / r,
                      "text": f">= {target:g}x req/s: NOT met ({r:.2f}x; needs {target / r:.2f}x more, "
                              f"i.e. {target * a['rps_16']:.0f} req/s vs {b['rps_16']:.0f})"}
    if not ok(b):
        g["p50_lt_0.5ms"] = {"target_ms": GOAL_P50_MS, "met": None,
                             "text": f"p50 @1 conn < {GOAL_P50_MS} ms: n/a (serve_core not measured)"}
    else:
        p = b["p50_ms_1"]
        met = p < GOAL_P50_MS
        g["p50_lt_0.5ms"] = {
            "target_ms": GOAL_P50_MS, "actual_ms": p, "met": met,
            "text": (f"p50 @1 conn < {GOAL_P50_MS} ms: MET ({p:.3f} ms)" if met else
                     f"p50 @1 conn < {GOAL_P50_MS} ms: NOT met ({p:.3f} ms; "
                     f"{p - GOAL_P50_MS:.3f} ms / {p / GOAL_P50_MS:.2f}x too slow)")}
    t = results.get("serve_core_tls", {})
    cmp["tls"] = None
    if ok(b) and ok(t) and b["rps_16"] > 0:
        cmp["tls"] = {"rps_ratio": t["rps_16"] / b["rps_16"], "p50_added_ms": t["p50_ms_1"] - b["p50_ms_1"],
                      "vs_ray_serve": t["rps_16"] / a["rps_16"] if ok(a) and a["rps_16"] > 0 else None}
    return cmp


def fmt(v, spec):
    return "n/a" if v is None else format(v, spec)


def cpu_cell(r: dict, run: str) -> str:
    c = (r.get("cpu") or {}).get(run)
    return f"{c['busy_pct']:.0f} / {c['steal_pct']:.0f}" if c else "n/a"


def render_md(doc: dict) -> str:
    res, cmp = doc["backends"], doc["comparison"]
    lines = [
        "# HTTP benchmark: serve_core vs Ray Serve" + (" (SMOKE run, not real figures)" if doc["smoke"] else ""),
        "",
        f"- timestamp: {doc['timestamp']}",
        f"- machine: {doc['machine']['cores']} cores ({doc['machine']['usable_cores']} usable), "
        f"{doc['machine']['platform']}, Python {doc['machine']['python']}; before start: CPU "
        f"{doc['machine']['baseline_cpu']}, other Ray clusters: {doc['machine']['other_ray_clusters']}",
        f"- Ray {doc['ray_version']}, `ray.init(num_cpus={RAY_NUM_CPUS})` once, backends run one after another",
        f"- wrk: {doc['wrk_version']}; warm-up {doc['warmup_s']} s; each measurement {doc['duration_s']} s",
        f"- req/s: `wrk -t{WRK_THREADS_16} -c{WRK_CONNS_16} -d{doc['duration_s']}s --latency {URL}`; "
        f"latency: `wrk -t1 -c1 -d{doc['duration_s']}s --latency {URL}`"
        + ("; serve_core_tls: the same at `https://`" if "serve_core_tls" in doc["backends"] else ""),
        f"- deployment (identical for both): `@serve.deployment(num_replicas=1, "
        f"max_ongoing_requests={doc['options']['max_ongoing_requests']})` class, "
        "`async def __call__(self, request): return \"ok\"`, default logging",
        "",
        "| backend | status | req/s @16 conn | p50 ms @1 | p90 ms @1 | p99 ms @1 | non-2xx/3xx | socket errors "
        "| CPU busy/steal % @16 | CPU busy/steal % @1 |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in res.items():
        e = r.get("errors") or {}
        non2 = sock = None
        if e:
            non2 = e["c16"]["non_2xx_3xx"] + e["c1"]["non_2xx_3xx"]
            sock = sum(e["c16"]["socket"].values()) + sum(e["c1"]["socket"].values())
        lines.append(f"| {name} | {r['status']} | {fmt(r.get('rps_16'), '.1f')} | "
                     f"{fmt(r.get('p50_ms_1'), '.3f')} | {fmt(r.get('p90_ms_1'), '.3f')} | "
                     f"{fmt(r.get('p99_ms_1'), '.3f')} | {fmt(non2, 'd')} | {fmt(sock, 'd')} | "
                     f"{cpu_cell(r, 'c16')} | {cpu_cell(r, 'c1')} |")
    lines += ["", "## serve_core / ray_serve", "",
              f"- requests/s ratio (higher is better): {fmt(cmp['rps_ratio'], '.2f')}"
              + ("x" if cmp["rps_ratio"] is not None else ""),
              f"- p50 @1 connection ratio (lower is better): {fmt(cmp['p50_ratio'], '.2f')}"
              + ("x" if cmp["p50_ratio"] is not None else ""),
              ]
    tls = cmp.get("tls")
    if tls:
        vs = tls["vs_ray_serve"]
        lines += ["", "## The cost of TLS (serve_core_tls / serve_core)", "",
                  "HTTPS at the proxy and mutual TLS on the proxy's connection to the replica; every "
                  "direct connection is authenticated with the cluster secret in both rows.", "",
                  f"- requests/s: {tls['rps_ratio']:.2f}x of plain serve_core"
                  + (f" ({vs:.2f}x Ray Serve)" if vs is not None else ""),
                  f"- p50 @1 connection: {tls['p50_added_ms']:+.3f} ms"]
    lines += ["", "## Goals", "", GOAL_LINE, ""]
    lines += [f"- {g['text']}" for g in cmp["goals"].values()]
    cpus = [c for r in res.values() for c in (r.get("cpu") or {}).values() if c]
    if any(c["steal_pct"] > 5 for c in cpus):
        lines += ["", "Note: CPU steal > 5% during a measurement: the VM was starved by its host, "
                      "so the figures are noisy; rerun, or use a longer --duration."]
    if doc["machine"]["other_ray_clusters"] or any(c.get("other_ray_clusters", 0) > 0 for c in cpus):
        lines += ["", "Note: another Ray cluster was running on this machine during the run: "
                      "the figures are skewed by CPU contention; rerun on an idle machine."]
    failed = {n: r for n, r in res.items() if r["status"] != "ok"}
    if failed:
        lines += ["", "## Problems", ""]
        for n, r in failed.items():
            if r.get("error"):
                lines.append(f"- {n}: failed: `{r['error']}`")
            if r.get("shutdown_error"):
                lines.append(f"- {n}: shutdown failed: `{r['shutdown_error']}`")
            if r["status"] == "errors":
                lines.append(f"- {n}: wrk reported {r['errors']['total']} errors; its figures are not valid")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main
def main(argv=None) -> int:
    global PORT, URL
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backends", default="ray_serve,serve_core,serve_core_tls",
                    help="comma-separated, run in this order (default: ray_serve,serve_core,serve_core_tls)")
    ap.add_argument("--duration", type=int, default=None,
                    help="seconds per wrk measurement (default 10; 2 with --smoke)")
    ap.add_argument("--warmup", type=int, default=None, help="warm-up seconds (default 3; 1 with --smoke)")
    ap.add_argument("--max-ongoing", type=int, default=100,
                    help="max_ongoing_requests of the deployment, same for both (default 100, "
                         "so 16 connections are never throttled)")
    ap.add_argument("--smoke", action="store_true",
                    help="short run for CI; writes to reports/bench/smoke/ instead of reports/bench/")
    ap.add_argument("--deploy-timeout", type=int, default=180,
                    help="seconds allowed for start+deploy+ready, and for shutdown (default 180)")
    ap.add_argument("--out-dir", type=Path, default=None, help="override the output directory")
    ap.add_argument("--port", type=int, default=PORT,
                    help=f"HTTP port for both backends (default {PORT}); change it only if the "
                         "machine is shared with something else using that port")
    args = ap.parse_args(argv)
    PORT, URL = args.port, f"http://{HOST}:{args.port}/"
    args.duration = args.duration or (2 if args.smoke else 10)
    args.warmup = args.warmup or (1 if args.smoke else 3)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in BACKEND_MODULES]
    if unknown or not backends:
        ap.error(f"unknown backend(s) {unknown}; choose from {','.join(BACKEND_MODULES)}")
    if shutil.which("wrk") is None:
        log("wrk not found on PATH (apt-get install wrk)")
        return 2
    out_dir = args.out_dir or (REPO_ROOT / "reports" / "bench" / ("smoke" if args.smoke else ""))

    import ray

    machine = machine_info()
    machine["baseline_cpu"] = baseline_cpu()
    machine["other_ray_clusters"] = other_ray_clusters()
    if machine["other_ray_clusters"] or (machine["baseline_cpu"] or {}).get("busy_pct", 0) > 20:
        log(f"WARNING: machine not idle before start (CPU {machine['baseline_cpu']}, "
            f"{machine['other_ray_clusters']} other Ray cluster(s)): figures will be skewed")
    options = {"num_replicas": 1, "max_ongoing_requests": args.max_ongoing, "logging": "default",
               "route_prefix": "/", "http": f"{HOST}:{PORT}", "ray_num_cpus": RAY_NUM_CPUS,
               "warmup_s": args.warmup,
               "wrk_16": f"-t{WRK_THREADS_16} -c{WRK_CONNS_16} --latency", "wrk_1": "-t1 -c1 --latency"}
    common = {"wrk_version": wrk_version(), "duration_s": args.duration, "options": options,
              "machine_cores": machine["cores"]}
    doc = {"schema": 1, "timestamp": utc_now(), "smoke": args.smoke, "machine": machine,
           "ray_version": ray.__version__, "wrk_version": common["wrk_version"],
           "duration_s": args.duration, "warmup_s": args.warmup, "options": options,
           "goal": GOAL_LINE, "backends": {}}

    log(f"ray.init(num_cpus={RAY_NUM_CPUS}) on a {machine['cores']}-core machine; "
        f"backends: {', '.join(backends)}; {args.duration}s per measurement")
    # Workers' logs are not streamed to this process (keeps stderr readable and the
    # driver off the CPU); the deployments' own logging config stays the default.
    # address="local": always a fresh cluster, never one left on the machine by `ray start`
    ray.init(address="local", num_cpus=RAY_NUM_CPUS, include_dashboard=False, log_to_driver=False)
    try:
        for name in backends:
            doc["backends"][name] = bench_backend(name, args, common)
    finally:
        ray.shutdown()

    doc["comparison"] = compare(doc["backends"])
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "http.json").write_text(json.dumps(doc, indent=2) + "\n")
    md = render_md(doc)
    (out_dir / "http.md").write_text(md)
    log(f"wrote {out_dir / 'http.json'} and {out_dir / 'http.md'}")
    print(md)
    bad = [n for n, r in doc["backends"].items() if r["status"] != "ok"]
    if bad:
        summary = ", ".join(f"{n} ({doc['backends'][n]['status']})" for n in bad)
        log(f"not ok: {summary}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
