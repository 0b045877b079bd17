"""The live view's web server: ``python -m chaos ui`` or ``serve-core ui``.

    serve-core ui --target embedded:default            # then open http://127.0.0.1:8265/

Routes: ``/`` the page; ``/api/state`` what the page shows, as JSON (``?run=ID`` for another
run than the newest); ``/api/events`` the same as server-sent events, sent when it changes;
``/runs/ID/report.html`` (and the report's other files) a finished run's report.

Read-only. It binds 127.0.0.1; another address needs a token (``SERVE_CORE_UI_TOKEN`` or
``--token-file``), which the browser sends once as ``?token=`` (kept in a cookie) and scripts
as ``Authorization: Bearer``.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import ipaddress
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from sse_starlette.sse import EventSourceResponse

from chaos.live import view
from chaos.live.sources import Runs, StatusWatcher, read_series

PAGE = Path(__file__).with_name("page.html")
POLL_S = 0.5  # how often the journal is looked at: a fault shows within a second of its journal entry
SERIES_EVERY_S = 2.0  # Prometheus scrapes every second; the page redraws its lines this often
RUNS_LISTED = 30
REPORT_FILES = {"report.html", "report.md", "summary.json", "journal.json"}
COOKIE = "serve_core_ui"


class Live:
    """What the page shows, built from the runs on disk, the target's status and Prometheus."""

    def __init__(self, runs: Runs, watcher: StatusWatcher | None, prometheus_url: str | None) -> None:
        self.runs, self.watcher, self.prometheus_url = runs, watcher, prometheus_url
        self._series: dict[str, tuple[float, dict[str, Any]]] = {}  # run id -> (read at, timeline)
        self._reading: set[str] = set()  # runs whose series a thread is reading now
        self._lock = threading.Lock()

    def state(self, run_id: str | None = None, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        ids = self.runs.ids()
        listed = []
        for rid in ids[:RUNS_LISTED]:
            j = self.runs.journal(rid)
            if j is not None:
                listed.append(view.run_summary(rid, j, self.runs.alive(rid, j), self.runs.has_report(rid)))
        chosen = run_id or (ids[0] if ids else None)
        journal = self.runs.journal(chosen) if chosen else None
        run = None
        if chosen and journal is not None:
            alive = self.runs.alive(chosen, journal)
            run = view.run_view(chosen, journal, alive, now)
            run["timeline"] = self._timeline(chosen, journal, alive, run, now)
        w = self.watcher
        if w is not None:
            w.wanted()
        cluster = view.cluster_view(w.doc if w else None, (w.error if w else "no target given") or None)
        cluster["read_at"] = w.at if w else None
        return {"now": now, "cluster": cluster, "runs": listed, "run": run}

    def _timeline(self, run_id: str, journal: dict[str, Any], alive: bool, run: dict[str, Any], now: float) -> Any:
        """The run's lines: a finished run's from its journal (what its report drew); a running
        one's from Prometheus, refreshed in a thread so that a slow query never holds back a
        fault or the verdict on the page."""
        load_start = journal.get("load_start")
        if load_start is None:
            return None
        saved = journal.get("series") or {}
        if not alive and saved.get("plots"):
            return view.timeline(saved["plots"], load_start, run["objective"], float(saved.get("step_s") or 1.0))
        with self._lock:
            cached = self._series.get(run_id)
            stale = cached is None or (alive and now - cached[0] >= SERIES_EVERY_S)
            if stale and self.prometheus_url and run_id not in self._reading:
                self._reading.add(run_id)
                threading.Thread(target=self._read, args=(run_id, journal, run["objective"], now),
                                 name="live-series", daemon=True).start()
            return cached[1] if cached else None

    def _read(self, run_id: str, journal: dict[str, Any], objective: float | None, now: float) -> None:
        try:
            start = float(journal["load_start"])
            end = max(min(now, journal.get("end") or now), start + 1)
            series, step = read_series(str(self.prometheus_url), journal.get("backend") or "serve_core", start, end)
            line = view.timeline(series, start, objective, step)
            with self._lock:
                self._series[run_id] = (now, line)
        finally:
            with self._lock:
                self._reading.discard(run_id)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def app(live: Live, token: str | None = None) -> FastAPI:
    api = FastAPI(title="serve-core live view", docs_url=None, redoc_url=None, openapi_url=None)

    @api.middleware("http")
    async def authorize(request: Request, call_next: Any) -> Response:
        if token is None:
            return await call_next(request)  # type: ignore[no-any-return]
        given = request.query_params.get("token")
        if given is not None and hmac.compare_digest(given, token):
            response = RedirectResponse(request.url.remove_query_params("token"), status_code=303)
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
            return response
        offered = request.cookies.get(COOKIE) or request.headers.get("authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(offered, token):
            return JSONResponse({"error": "Unauthorized", "message": "open the page once with ?token=TOKEN (the "
                                 "value of SERVE_CORE_UI_TOKEN or --token-file), or send Authorization: Bearer TOKEN"},
                                status_code=401)
        return await call_next(request)  # type: ignore[no-any-return]

    @api.get("/")
    def page() -> HTMLResponse:
        return HTMLResponse(PAGE.read_text(), headers={"Cache-Control": "no-store"})

    @api.get("/api/state")
    async def state(run: str | None = None) -> JSONResponse:
        return JSONResponse(await asyncio.to_thread(live.state, run))

    @api.get("/api/events")
    async def events(request: Request, run: str | None = None) -> EventSourceResponse:
        async def changes() -> Any:
            last = None
            while not await request.is_disconnected():
                text = json.dumps(await asyncio.to_thread(live.state, run), default=str)
                if text != last:
                    yield {"event": "state", "data": text}
                    last = text
                await asyncio.sleep(POLL_S)

        return EventSourceResponse(changes(), ping=15)

    @api.get("/runs/{run_id}/{name}")
    def report_file(run_id: str, name: str) -> FileResponse:
        if name not in REPORT_FILES and not (name.startswith("resources-") and name.endswith(".svg")):
            raise HTTPException(404, f"{name!r} is not a report file")
        if live.runs.journal(run_id) is None:
            raise HTTPException(404, f"no run {run_id!r} under {live.runs.root}")
        path = os.path.join(live.runs.root, run_id, name)
        if not os.path.isfile(path):
            raise HTTPException(404, f"run {run_id!r} has no {name} (yet)")
        return FileResponse(path)

    return api


def _target(text: str | None, runs: Runs) -> tuple[Any, str | None]:
    """The target to watch: --target, else the newest run's, else none (runs only)."""
    from chaos.spec.experiment import ComposeTarget, EmbeddedTarget
    from chaos.spec.loading import parse_target
    from chaos.targets import make_target

    spec: dict[str, Any] | None = parse_target(text) if text else None
    backend = "serve_core"
    if spec is None:
        newest = next((runs.journal(r) for r in runs.ids()), None)
        spec = (newest or {}).get("target")
        backend = (newest or {}).get("backend") or backend
    if not spec:
        return None, None
    model = (EmbeddedTarget if spec.get("kind") == "embedded" else ComposeTarget).model_validate(spec)
    target = make_target(model, backend)
    try:
        url = target.prometheus_url()
    except Exception as e:
        print(f"warning: no Prometheus for the timeline's lines: {e}", file=sys.stderr)
        url = None
    return target, url


def main(argv: list[str] | None = None, prog: str = "python -m chaos.live.server") -> int:
    p = argparse.ArgumentParser(prog=prog, description="The live view: the cluster, the experiment running on it "
                                                       "(requests, errors, latency, replicas, faults, error budget, "
                                                       "verdict) and past runs, in a browser.")
    p.add_argument("--target", help="the cluster to show: embedded:NAME or compose:PROJECT (default: the newest run's)")
    p.add_argument("--runs", default="reports/chaos", help="where run directories are (default reports/chaos)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; another needs a token)")
    p.add_argument("--port", type=int, default=8265, help="port (default 8265)")
    p.add_argument("--token-file", help="file holding the token a non-loopback --host requires "
                                        "(or set SERVE_CORE_UI_TOKEN; never pass a token on the command line)")
    ns = p.parse_args(argv)
    token = os.environ.get("SERVE_CORE_UI_TOKEN") or None
    if ns.token_file:
        token = Path(ns.token_file).read_text().strip() or None
    if not is_loopback(ns.host) and not token:
        p.error(f"--host {ns.host} exposes the view beyond this machine: set SERVE_CORE_UI_TOKEN or --token-file "
                "(or keep the default 127.0.0.1)")
    import uvicorn

    runs = Runs(ns.runs)
    target, prometheus_url = _target(ns.target, runs)
    watcher = StatusWatcher(target.status).start() if target is not None else None
    live = Live(runs, watcher, prometheus_url)
    print(f"live view at http://{ns.host}:{ns.port}/ (runs under {ns.runs}; Ctrl-C stops it)", flush=True)
    uvicorn.run(app(live, token), host=ns.host, port=ns.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
