"""What user code may ask about where it runs: the replica and the current request."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any


@dataclass
class ReplicaContext:
    app_name: str
    deployment: str
    replica_id: str
    servable_object: Any


@dataclass(frozen=True)
class RequestContext:
    request_id: str = ""
    multiplexed_model_id: str = ""
    route: str = ""


_replica: ReplicaContext | None = None
request_context: contextvars.ContextVar[RequestContext] = contextvars.ContextVar(
    "serve_core_request", default=RequestContext()  # noqa: B039 - frozen, immutable
)


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
