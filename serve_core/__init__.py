"""serve_core: a Ray Serve-compatible model server with a direct data path.

``import serve_core as serve`` in place of ``from ray import serve``.

The package by plane: ``data/`` (where a request goes), ``control/`` (where decisions are
made), ``ray_seam`` (the only module that imports ray), ``patterns/`` (canary, bandit,
splits, batch scoring on the public API) and ``cli/``. The modules at this level are the
public ones, where Ray Serve keeps them (``handle``, ``schema``, ``config``, ...), and the
shared vocabulary (``errors``, ``ids``). README.md, "Architecture", has the map.

Names are imported on first use, so a replica or proxy process, which needs only
the data path, does not pay for the API and config modules (pydantic, FastAPI) when
it starts: that is part of a cold start from zero.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# As ``from ray import serve`` does: apps annotate handlers with ``starlette.requests.Request``
# after a bare ``import starlette``. Replicas and proxies load it anyway (the data path uses it).
import starlette.requests  # noqa: F401

_EXPORTS = {
    "Application": "serve_core.application", "Deployment": "serve_core.application", "delete": "serve_core.api",
    "deployment": "serve_core.application", "get_app_handle": "serve_core.api",
    "get_deployment_handle": "serve_core.api", "ingress": "serve_core.application", "run": "serve_core.api",
    "shutdown": "serve_core.api", "start": "serve_core.api", "status": "serve_core.api",
    "shutdown_async": "serve_core.api", "run_many": "serve_core.api", "RunTarget": "serve_core.api",
    "get_trace_context": "serve_core.api",
    "batch": "serve_core.batching",
    "AutoscalingConfig": "serve_core.config", "HTTPOptions": "serve_core.config",
    "get_multiplexed_model_id": "serve_core.context", "get_replica_context": "serve_core.context",
    "DeploymentHandle": "serve_core.handle", "DeploymentResponse": "serve_core.handle",
    "DeploymentResponseGenerator": "serve_core.handle", "multiplexed": "serve_core.multiplex",
}
__all__ = [
    "Application", "AutoscalingConfig", "Deployment", "DeploymentHandle", "DeploymentResponse",
    "DeploymentResponseGenerator", "HTTPOptions", "batch", "delete", "deployment", "get_app_handle",
    "get_deployment_handle", "get_multiplexed_model_id", "get_replica_context", "ingress", "multiplexed",
    "run", "shutdown", "start", "status", "shutdown_async", "run_many", "RunTarget", "get_trace_context",
]
assert sorted(__all__) == sorted(_EXPORTS)
__version__ = "0.1.0"

if TYPE_CHECKING:
    from serve_core.api import (
        RunTarget,
        delete,
        get_app_handle,
        get_deployment_handle,
        get_trace_context,
        run,
        run_many,
        shutdown,
        shutdown_async,
        start,
        status,
    )
    from serve_core.application import Application, Deployment, deployment, ingress
    from serve_core.batching import batch
    from serve_core.config import AutoscalingConfig, HTTPOptions
    from serve_core.context import get_multiplexed_model_id, get_replica_context
    from serve_core.handle import DeploymentHandle, DeploymentResponse, DeploymentResponseGenerator
    from serve_core.multiplex import multiplexed


# Submodules reachable as attributes, as ``serve.context`` is after ``from ray import serve``.
_SUBMODULES = {"handle", "schema", "config", "exceptions", "context", "batching", "multiplex"}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"serve_core.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'serve_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
