"""What user code may ask about where it runs: the replica and the current request."""

from __future__ import annotations

import contextvars
import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass
class ReplicaContext:
    """``serve.get_replica_context()``: this replica's application, deployment and id
    (a string here; Ray Serve has a ReplicaID object) and the user's instance."""

    app_name: str
    deployment: str
    replica_id: str
    servable_object: Any

    @property
    def replica_tag(self) -> str:
        return self.replica_id


@dataclass(frozen=True)
class RequestContext:
    """The request being handled: its id (the caller's ``X-Request-ID`` header over HTTP,
    or a fresh one), the multiplexed model it asks for, its route and application."""

    request_id: str = ""
    multiplexed_model_id: str = ""
    route: str = ""
    app_name: str = ""


_replica: ReplicaContext | None = None
request_context: contextvars.ContextVar[RequestContext] = contextvars.ContextVar(
    "serve_core_request", default=RequestContext()  # noqa: B039 - frozen, immutable
)
_serve_request_context = request_context  # Ray Serve's name, which its docs show for request ids


def set_replica_context(ctx: ReplicaContext) -> None:
    global _replica
    _replica = ctx


def get_replica_context() -> ReplicaContext:
    if _replica is None:
        raise RuntimeError(
            "get_replica_context() was called outside a replica; call it from a deployment's "
            "constructor or methods"
        )
    return _replica


def get_multiplexed_model_id() -> str:
    return request_context.get().multiplexed_model_id


def _get_serve_request_context() -> RequestContext:
    """The current request's context, as Ray Serve's function of that name gives it
    (``serve.context._get_serve_request_context().request_id`` in Ray Serve's guides)."""
    ctx = request_context.get()
    if not ctx.app_name and _replica is not None:
        ctx = dataclasses.replace(ctx, app_name=_replica.app_name)
    return ctx
