"""Deployments and applications as the driver declares them (``ray.serve.deployment``'s
``Deployment`` and ``Application``), with ``@deployment``, ``@ingress`` and ``build``, which
turns an application graph into the records the controller deploys.

Classes and functions are serialized with cloudpickle; bound deployments inside constructor
arguments become DeploymentHandles. Nothing here talks to the cluster (``api`` does).
(Not named ``deployment.py``: importing a submodule sets it as an attribute of the
package, and ``serve_core.deployment`` must stay the decorator.)
"""

from __future__ import annotations

import hashlib
import inspect
import logging
from collections.abc import Callable
from typing import Any

import cloudpickle

from serve_core.config import DeploymentOptions, parse
from serve_core.data.handle import DeploymentHandle
from serve_core.errors import ConfigError

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
