"""The public API, a compatible subset of Ray Serve's: start, run, delete, shutdown,
status and handles, against the controller (through ``ray_seam``'s ControllerClient).

Deployments and applications are declared in ``serve_core.application`` (re-exported here);
``run`` builds them in the driver and hands the records to the controller.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from serve_core import ray_seam
from serve_core.application import Application, Deployment, build, code_hash, deployment, ingress
from serve_core.config import HTTPOptions, LoggingConfig, ProxyLocation, parse, validate_route_prefix
from serve_core.data import caller
from serve_core.data.handle import DeploymentHandle
from serve_core.errors import ConfigError, DeploymentFailedError, NotFoundError
from serve_core.ids import DEPLOYED_CONFIG_KEY, ApplicationStatus, DeploymentStatus
from serve_core.schema import ApplicationStatusOverview, DeploymentStatusOverview, ServeStatus

__all__ = [  # with the declarations of serve_core.application, re-exported: serve_core.api is the whole API
    "Application", "Deployment", "RunTarget", "build", "code_hash", "delete", "deployment", "get_app_handle",
    "get_deployment_handle", "get_trace_context", "ingress", "run", "run_many", "shutdown", "shutdown_async",
    "start", "status", "status_from_raw", "wait_running",
]
log = logging.getLogger("serve_core")


# -- cluster operations -----------------------------------------------------------------


def _controller(create: bool = True, http_options: dict[str, Any] | None = None) -> ray_seam.ControllerClient | None:
    ray_seam.connect()
    client = ray_seam.get_controller()
    if client is None:
        if not create:
            return None
        from serve_core.control.controller import Controller

        client = ray_seam.start_controller(Controller, http_options or HTTPOptions().model_dump())
    return client


def _ignored(where: str, **given: Any) -> None:
    """Ray Serve options serve_core accepts and does not act on (the README says which)."""
    for name, value in given.items():
        if value is not None and value is not False:
            log.warning("%s(%s=...) is accepted for Ray Serve compatibility and ignored by serve_core", where, name)


def start(
    proxy_location: str | None = None,
    http_options: dict[str, Any] | HTTPOptions | None = None,
    grpc_options: Any = None,
    logging_config: Any = None,
    **kwargs: Any,
) -> None:
    """Start the controller and proxies with ``http_options`` (idempotent).

    ``logging_config`` (a LoggingConfig or its fields as a dict) sets the log level of the
    controller, proxies and replicas and turns the proxies' access log on or off.
    """
    if grpc_options is not None:
        raise ConfigError("grpc_options", grpc_options, "serve_core serves HTTP only; drop grpc_options")
    _ignored("serve.start", **kwargs)
    if isinstance(proxy_location, ProxyLocation):
        proxy_location = proxy_location.value
    if isinstance(http_options, HTTPOptions):
        opts = http_options
    else:
        opts = parse(HTTPOptions, dict(http_options or {}), "http_options")
    if proxy_location is not None:
        opts = opts.model_copy(update={"location": proxy_location})
    if logging_config is not None:
        fields = logging_config.model_dump() if hasattr(logging_config, "model_dump") else logging_config
        opts = opts.model_copy(update={"logging_config": parse(LoggingConfig, fields, "logging_config")})
    existing = _controller(create=False)
    if existing is not None:
        current = existing.get_http_options()
        if current != opts.model_dump():
            log.warning("serve_core is already running with http_options %s; ignoring new ones", current)
        return
    _controller(http_options=opts.model_dump())


def run(
    target: Application,
    blocking: bool = False,
    name: str = "default",
    route_prefix: str | None = "/",
    logging_config: Any = None,
    *,
    timeout_s: float | None = None,
    **kwargs: Any,
) -> DeploymentHandle:
    """Deploy ``target`` as application ``name`` and wait until it is running."""
    kwargs.pop("_local_testing_mode", None)
    _ignored("serve.run", logging_config=logging_config, **kwargs)
    if isinstance(target, Deployment):
        raise ConfigError("serve.run target", target.name, "pass an application: call .bind() on the deployment")
    if not isinstance(target, Application):
        raise ConfigError("serve.run target", target, "pass the result of Deployment.bind(...)")
    try:
        route_prefix = validate_route_prefix(route_prefix)
    except ValueError as e:
        raise ConfigError("route_prefix", route_prefix, str(e)) from None
    records = build(target, name)
    controller = _controller()
    assert controller is not None  # created when missing
    controller.deploy_app(name, route_prefix, target.ingress_name, records)
    wait_running(controller, name, timeout_s)
    handle = DeploymentHandle(target.ingress_name, name)
    if blocking:
        while True:  # pragma: no cover - interactive
            time.sleep(3600)
    return handle


@dataclass
class RunTarget:
    """One application of ``serve.run_many``."""

    target: Application
    name: str = "default"
    route_prefix: str | None = "/"
    logging_config: Any = None
    external_scaler_enabled: bool = False


def run_many(
    targets: Sequence[RunTarget],
    blocking: bool = False,
    wait_for_ingress_deployment_creation: bool = True,
    wait_for_applications_running: bool = True,
    **kwargs: Any,
) -> list[DeploymentHandle]:
    """Deploy several applications, each as ``serve.run`` would; one handle each."""
    handles = [run(t.target, name=t.name, route_prefix=t.route_prefix, logging_config=t.logging_config) for t in targets]
    if blocking:
        while True:  # pragma: no cover - interactive
            time.sleep(3600)
    return handles


async def shutdown_async() -> None:
    """``serve.shutdown()`` for async code: runs it off the event loop."""
    import asyncio

    await asyncio.to_thread(shutdown)


def get_trace_context() -> dict[str, str] | None:
    """Ray Serve's tracing hook; serve_core has no tracing, so there is no context."""
    return None


def wait_running(controller: ray_seam.ControllerClient, name: str, timeout_s: float | None = None) -> None:
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    last = ""
    while True:
        st = controller.status()
        app = st["applications"].get(name)
        if app is not None:
            if app["status"] == "RUNNING" and _proxies_current(st):
                return
            if app["status"] == "DEPLOY_FAILED":
                raise DeploymentFailedError(name, app["message"])
            failed = [p["message"] for p in st["proxies"].values() if p["state"] == "FAILED"]
            if failed and app["status"] == "RUNNING":
                raise DeploymentFailedError(name, f"the application runs but a proxy cannot start: {failed[0]}")
            summary = ", ".join(f"{d}: {v['status']} {v['replica_states']}" for d, v in app["deployments"].items())
            if summary != last:
                log.info("application %s: %s", name, summary)
                last = summary
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"application {name!r} not running after {timeout_s}s: {last}")
        time.sleep(0.05)


def _proxies_current(status: dict[str, Any]) -> bool:
    """Every proxy has seen the latest routes (so HTTP works as soon as run returns)."""
    return all(p["state"] == "HEALTHY" and p.get("current", True) for p in status["proxies"].values())


def delete(name: str, _blocking: bool = True) -> None:
    controller = _controller(create=False)
    if controller is None:
        return
    controller.delete_app(name)
    while _blocking and name in controller.status()["applications"]:
        time.sleep(0.05)


def shutdown() -> None:
    """Delete every application and stop the controller and proxies."""
    controller = _controller(create=False)
    if controller is None:
        return
    caller.reset()
    try:
        controller.graceful_shutdown(timeout=60)
        ray_seam.kv_del(DEPLOYED_CONFIG_KEY)  # `serve-core config` has nothing deployed to show
    finally:
        ray_seam.kill(controller)
        # ray.kill returns before the actor is gone; until then its name still finds it, and
        # a serve.start right after would reuse the dying controller with its old options.
        deadline = time.monotonic() + 15
        while ray_seam.get_controller() is not None and time.monotonic() < deadline:
            time.sleep(0.05)


def status() -> ServeStatus:
    controller = _controller(create=False)
    if controller is None:
        return ServeStatus()
    return status_from_raw(controller.status())


def status_from_raw(raw: dict[str, Any]) -> ServeStatus:
    """The controller's status answer as ``serve.status()`` gives it."""
    apps = {
        n: ApplicationStatusOverview(
            status=ApplicationStatus(a["status"]), message=a["message"],
            last_deployed_time_s=a["last_deployed_time_s"], route_prefix=a["route_prefix"],
            deployments={
                d: DeploymentStatusOverview(
                    status=DeploymentStatus(v["status"]), message=v["message"], replica_states=v["replica_states"],
                    replicas=v["replicas"], target_replicas=v["target_replicas"],
                )
                for d, v in a["deployments"].items()
            },
        )
        for n, a in raw["applications"].items()
    }
    return ServeStatus(proxies=raw["proxies"], applications=apps)


def get_app_handle(name: str) -> DeploymentHandle:
    controller = _controller(create=False)
    apps = controller.app_names() if controller is not None else {}
    if name not in apps:
        raise NotFoundError("application", name, list(apps))
    return DeploymentHandle(apps[name], name)


def get_deployment_handle(deployment_name: str, app_name: str | None = None) -> DeploymentHandle:
    if app_name is None:
        from serve_core.context import _replica

        app_name = _replica.app_name if _replica is not None else "default"
    controller = _controller(create=False)
    known = controller.status()["applications"] if controller is not None else {}
    if app_name not in known:
        raise NotFoundError("application", app_name, list(known))
    if deployment_name not in known[app_name]["deployments"]:
        raise NotFoundError(f"deployment in application {app_name!r}", deployment_name, list(known[app_name]["deployments"]))
    return DeploymentHandle(deployment_name, app_name)
