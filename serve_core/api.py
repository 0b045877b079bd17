"""The public API, a compatible subset of Ray Serve's.

Deployments and applications are built in the driver, serialized with cloudpickle,
and handed to the controller; bound deployments inside constructor arguments become
DeploymentHandles.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import cloudpickle

from serve_core import ray_seam
from serve_core.config import DeploymentOptions, HTTPOptions, ProxyLocation, parse, validate_route_prefix
from serve_core.data import caller
from serve_core.data.handle import DeploymentHandle
from serve_core.errors import ConfigError, DeploymentFailedError, NotFoundError
from serve_core.ids import ApplicationStatus, DeploymentStatus
from serve_core.schema import ApplicationStatusOverview, DeploymentStatusOverview, ServeStatus

log = logging.getLogger("serve_core")


def _pickle_starlette_state() -> None:
    """Starlette's State recurses forever when unpickled; ship it as a plain dict."""
    import copyreg

    from starlette.datastructures import State

    copyreg.pickle(State, lambda s: (State, (dict(s._state),)))


_pickle_starlette_state()


class Deployment:
    """A class or function with serving options; ``.bind()`` makes an Application."""

    def __init__(self, func_or_class: Callable[..., Any], options: DeploymentOptions) -> None:
        self.func_or_class = func_or_class
        self._options = options

    @property
    def name(self) -> str:
        return self._options.name or self.func_or_class.__name__

    @property
    def num_replicas(self) -> Any:
        return self._options.num_replicas

    @property
    def user_config(self) -> Any:
        return self._options.user_config

    @property
    def max_ongoing_requests(self) -> int:
        return self._options.max_ongoing_requests

    @property
    def ray_actor_options(self) -> dict[str, Any]:
        return self._options.ray_actor_options

    @property
    def max_queued_requests(self) -> int:
        return self._options.max_queued_requests

    @property
    def backpressure_config(self) -> Any:
        return self._options.backpressure_config

    @property
    def autoscaling_config(self) -> Any:
        return self._options.autoscaling_config

    @property
    def version(self) -> str | None:
        return None  # serve_core versions code by its source (see code_hash)

    def options(self, func_or_class: Callable[..., Any] | None = None, **kwargs: Any) -> Deployment:
        kwargs = _ray_option_names(kwargs)
        merged = {**self._options.model_dump(exclude_unset=True), **kwargs}
        if func_or_class is not None:
            return Deployment(func_or_class, parse(DeploymentOptions, merged, f"{self.name}.options"))
        return Deployment(self.func_or_class, parse(DeploymentOptions, merged, f"{self.name}.options"))

    def bind(self, *args: Any, **kwargs: Any) -> Application:
        return Application(self, args, kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"deployment {self.name!r} cannot be called directly; use .bind() and serve.run()")

    def __repr__(self) -> str:
        return f"Deployment(name={self.name!r})"


class Application:
    """A bound deployment and, through its arguments, the graph below it."""

    def __init__(self, deployment: Deployment, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.deployment, self.args, self.kwargs = deployment, args, kwargs

    @property
    def ingress_name(self) -> str:
        return self.deployment.name


def deployment(_func_or_class: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
    """``@serve.deployment`` or ``@serve.deployment(name=..., num_replicas=..., ...)``."""
    kwargs = _ray_option_names(kwargs)

    def wrap(target: Callable[..., Any]) -> Deployment:
        if not (inspect.isclass(target) or inspect.isfunction(target)):
            raise ConfigError("@serve.deployment", target, "decorate a class or a function")
        opts = parse(DeploymentOptions, kwargs, f"@serve.deployment({getattr(target, '__name__', target)})")
        return Deployment(target, opts)

    return wrap(_func_or_class) if _func_or_class is not None else wrap


def _ray_option_names(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Ray Serve's option spellings that map onto serve_core's."""
    kwargs = dict(kwargs)
    kwargs.pop("version", None)  # accepted by Ray Serve; serve_core versions code by its source
    if "logging_config" in kwargs and kwargs.pop("logging_config") is not None:
        log.info("logging_config is accepted and ignored: replicas log through Python logging")
    if "max_surge_percent" in kwargs:
        pct = kwargs.pop("max_surge_percent")
        if not isinstance(pct, (int, float)) or not 0 < pct <= 100:
            raise ConfigError("max_surge_percent", pct, "must be a number in (0, 100]")
        kwargs["max_surge_fraction"] = pct / 100
    return kwargs


def _options_signature(first: inspect.Parameter) -> inspect.Signature:
    """The options ``@serve.deployment`` and ``Deployment.options`` accept, for
    ``help()`` and the API conformance test (they validate them as DeploymentOptions)."""
    names = [*DeploymentOptions.model_fields, "version", "logging_config", "max_surge_percent"]
    kw = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=None) for n in names]
    return inspect.Signature([first, *kw])


def ingress(app: Any = None) -> Callable[..., type]:
    """``@serve.ingress(app)``: an ASGI app answers the deployment's HTTP.

    ``app`` is a FastAPI app (its routes may be methods of the class), any other ASGI app,
    a function that builds one in each replica, or nothing when the class defines
    ``__serve_build_asgi_app__(self)``. ``serve.ingress(app)()`` without a class makes a
    deployment class of its own (``serve.deployment(serve.ingress(app)())``).
    """
    from serve_core.data.asgi import IngressApp

    def wrap(cls: type | None = None) -> type:
        if cls is None:

            class ASGIIngressDeployment:
                def __init__(self, *args: Any, **kwargs: Any) -> None:
                    self.args, self.kwargs = args, kwargs

            cls = ASGIIngressDeployment
        if not inspect.isclass(cls):
            raise ConfigError("@serve.ingress", cls, "decorate a class (below @serve.deployment)")
        if app is None and not hasattr(cls, "__serve_build_asgi_app__"):
            raise ConfigError(
                "@serve.ingress()", cls.__name__,
                "pass the ASGI app (or a function building it), or define __serve_build_asgi_app__(self)",
            )
        cls.__serve_core_ingress__ = IngressApp(app)  # type: ignore[attr-defined]
        return cls

    return wrap


deployment.__signature__ = _options_signature(  # type: ignore[attr-defined]
    inspect.Parameter("_func_or_class", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None))
Deployment.options.__signature__ = _options_signature(  # type: ignore[attr-defined]
    inspect.Parameter("func_or_class", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)).replace(
    parameters=[
        inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        *_options_signature(inspect.Parameter("func_or_class", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None))
        .parameters.values(),
    ])


# -- building an application ------------------------------------------------------------


def code_hash(func_or_class: Any) -> str:
    """What decides whether a redeploy restarts replicas: the defining file's source and
    where in it the object is defined. Pickled bytes cannot decide it: cloudpickle gives a
    class pickled by value a fresh id in every process, so each new driver would restart
    every replica."""
    h = hashlib.sha256(f"{func_or_class.__module__}:{func_or_class.__qualname__}:{_first_line(func_or_class)}".encode())
    try:
        path = inspect.getsourcefile(func_or_class)
        with open(path or "", "rb") as f:
            h.update(f.read())
    except (OSError, TypeError):
        h.update(cloudpickle.dumps(func_or_class))  # no source (e.g. a REPL): every deploy is new code
    return h.hexdigest()[:16]


def _first_line(obj: Any) -> int:
    """Tells apart two definitions with one name in one file (e.g. two versions in a test)."""
    code = getattr(obj, "__code__", None)
    if code is not None:
        return int(code.co_firstlineno)
    lines = [f.__code__.co_firstlineno for f in vars(obj).values() if hasattr(f, "__code__")]
    return min(lines, default=0)


def build(app: Application, app_name: str) -> list[dict[str, Any]]:
    """Flatten the graph into deployment records the controller understands."""
    seen: dict[str, tuple[Deployment, dict[str, Any]]] = {}

    def visit(node: Application) -> DeploymentHandle:
        d = node.deployment
        args = replace(node.args)
        kwargs = replace(node.kwargs)
        init_bytes = cloudpickle.dumps((args, kwargs))
        if d.name in seen and seen[d.name][0] is not d and seen[d.name][1]["init_bytes"] != init_bytes:
            raise ConfigError(
                "deployment name", d.name,
                "two different deployments in one application share this name; give one "
                ".options(name=...)",
            )
        opts = d._options
        if not isinstance(d.func_or_class, type) and opts.user_config is not None:
            raise ConfigError(f"{d.name}.user_config", opts.user_config, "function deployments cannot take user_config")
        seen[d.name] = (d, {
            "name": d.name,
            "def_bytes": cloudpickle.dumps(d.func_or_class),
            "code_hash": code_hash(d.func_or_class),
            "init_bytes": init_bytes,
            "options": opts.model_dump(mode="json"),
            "target_replicas": opts.target_replicas(),
        })
        return DeploymentHandle(d.name, app_name)

    def replace(value: Any) -> Any:
        if isinstance(value, Application):
            return visit(value)
        if isinstance(value, Deployment):
            raise ConfigError(value.name, value, "pass a bound deployment: use .bind() on it")
        if isinstance(value, (list, tuple)):
            return type(value)(replace(v) for v in value)
        if isinstance(value, dict):
            return {k: replace(v) for k, v in value.items()}
        return value

    visit(app)
    return [rec for _, rec in seen.values()]


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
    """Start the controller and proxies with ``http_options`` (idempotent)."""
    if grpc_options is not None:
        raise ConfigError("grpc_options", grpc_options, "serve_core serves HTTP only; drop grpc_options")
    _ignored("serve.start", logging_config=logging_config, **kwargs)
    if isinstance(proxy_location, ProxyLocation):
        proxy_location = proxy_location.value
    if isinstance(http_options, HTTPOptions):
        opts = http_options
    else:
        opts = parse(HTTPOptions, dict(http_options or {}), "http_options")
    if proxy_location is not None:
        opts = opts.model_copy(update={"location": proxy_location})
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
