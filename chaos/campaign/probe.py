"""Is the cluster still deployable? A probe application is deployed with the serving backend's
public API, called through every proxy the backend reports, and deleted again, by a small
driver run on the cluster (``serve-core cluster exec`` on the embedded cluster, ``docker
exec`` in the head container of a compose project). It prints one JSON line; chaos.campaign.health
turns it into findings.

    python -m chaos.campaign.probe --backend serve_core --timeout 90

The probe has an application name, route and deployment name of its own (``campaign-probe``,
``/campaign-probe``, ``CampaignProbe``), takes no CPU, and is gone again before the next
experiment starts, so no fault of an experiment can hit it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from typing import Any

PROBE_APP, PROBE_ROUTE, PROBE_DEPLOYMENT = "campaign-probe", "/campaign-probe", "CampaignProbe"
PROBE_ANSWER = "campaign-probe-ok"
RAY_SERVE_PORT = 8000
HTTP_TIMEOUT_S = 5.0


class Probe:
    """The probe's one deployment: answers every request with PROBE_ANSWER."""

    async def __call__(self, request: Any) -> str:
        return PROBE_ANSWER


def _bind(serve: Any) -> Any:
    return serve.deployment(Probe, name=PROBE_DEPLOYMENT, num_replicas=1, ray_actor_options={"num_cpus": 0}).bind()


def __getattr__(name: str) -> Any:
    """``probe_app`` (serve_core) and ``ray_serve_probe_app``, built on first use so that
    importing this module imports neither backend."""
    if name == "probe_app":
        import serve_core

        return _bind(serve_core)
    if name == "ray_serve_probe_app":
        from ray import serve

        return _bind(serve)
    raise AttributeError(name)


def get_status(url: str, timeout_s: float = HTTP_TIMEOUT_S) -> tuple[int | None, str]:
    """(HTTP status, body head) of a GET; (None, why) without an answer."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="GET"), timeout=timeout_s) as r:
            return int(r.status), r.read(200).decode(errors="replace")
    except urllib.error.HTTPError as e:
        return int(e.code), e.read(200).decode(errors="replace")
    except (OSError, ValueError) as e:
        return None, f"{type(e).__name__}: {e}"


def proxy_urls(proxies: dict[str, dict[str, Any]], node_addresses: dict[str, str]) -> dict[str, str]:
    """node id -> proxy URL, from a serve_core status's proxies (a proxy listening on every
    interface is reached at its node's address). Pure."""
    out = {}
    for node_id, p in proxies.items():
        host, port = str(p.get("host") or ""), int(p.get("port") or 0)
        if host in ("", "0.0.0.0", "::"):
            host = node_addresses.get(node_id, "")
        if host and port:
            out[node_id] = f"http://{host}:{port}"
    return out


def run_probe(backend: str, timeout_s: float, say: Any = None) -> dict[str, Any]:
    """Deploy the probe, call it through every proxy, delete it; what happened, as a dict."""
    from chaos.targets.deploy_app import shut_down_the_other

    started = time.monotonic()
    doc: dict[str, Any] = {"backend": backend, "deployed": False, "deploy_s": None, "error": None, "proxies": {},
                           "deleted": False, "delete_error": None}
    if backend == "serve_core":
        import serve_core as serve
    else:
        from ray import serve  # type: ignore[no-redef]
    try:
        shut_down_the_other(backend)  # both listen on port 8000 of every node
        if backend == "serve_core":
            serve.start(http_options={"host": "127.0.0.1", "port": 8000})  # as chaos.targets.embedded' deploy driver
            serve.run(__getattr__("probe_app"), name=PROBE_APP, route_prefix=PROBE_ROUTE, timeout_s=timeout_s)
        else:
            host = os.environ.get("SERVE_CORE_RAY_SERVE_HOST") or "0.0.0.0"
            serve.start(http_options={"host": host, "port": RAY_SERVE_PORT, "location": "EveryNode"})
            serve.run(__getattr__("ray_serve_probe_app"), name=PROBE_APP, route_prefix=PROBE_ROUTE)
        doc["deployed"], doc["deploy_s"] = True, round(time.monotonic() - started, 3)
        doc["proxies"] = _call_every_proxy(serve, backend)
    except Exception as e:  # reported as a finding, with the backend's own words
        doc["error"] = f"{type(e).__name__}: {_last_line(str(e))}"
    finally:
        try:
            serve.delete(PROBE_APP)
            doc["deleted"] = True
        except Exception as e:
            doc["delete_error"] = f"{type(e).__name__}: {_last_line(str(e))}"
    doc["took_s"] = round(time.monotonic() - started, 3)
    return doc


def _call_every_proxy(serve: Any, backend: str) -> dict[str, dict[str, Any]]:
    import ray

    addresses = {n["NodeID"]: n.get("NodeManagerAddress", "") for n in ray.nodes() if n.get("Alive")}
    if backend == "serve_core":
        urls = proxy_urls(dict(serve.status().proxies), addresses)
    else:  # Ray Serve lists its proxies by node; each listens on port 8000 of its node
        urls = {n: f"http://{a}:{RAY_SERVE_PORT}" for n, a in addresses.items()
                if n in (serve.status().proxies or {})}
    out = {}
    for node_id, url in urls.items():
        code, body = get_status(url + PROBE_ROUTE)
        out[node_id] = {"url": url, "status": code, "ok": code == 200 and PROBE_ANSWER in body,
                        **({} if code == 200 else {"detail": body[:200]})}
    return out


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:500] if lines else ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m chaos.campaign.probe",
                                description="Deploy a probe application, call it through every proxy, delete it; "
                                            "print what happened as one JSON line (run on the cluster).")
    p.add_argument("--backend", choices=["serve_core", "ray_serve"], default="serve_core")
    p.add_argument("--timeout", type=float, default=90.0, help="seconds the deploy may take")
    ns = p.parse_args(argv)
    doc = run_probe(ns.backend, ns.timeout)
    print(json.dumps(doc), flush=True)
    return 0 if doc["deployed"] and doc["deleted"] and all(x["ok"] for x in doc["proxies"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
