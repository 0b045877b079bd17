"""Metrics user code defines (``ray.serve.metrics``' Counter, Gauge and Histogram).

Each is a Prometheus metric in the process's default registry, so a replica exposes it on
its metrics port next to serve_core's own (``serve_core.metrics``). As in Ray Serve, a
metric created in a replica gets the tags ``deployment``, ``replica`` and ``application``
filled in, and a ``route`` tag key is filled from the request being handled. Creating a
metric twice with one name (two instances in one process) shares the Prometheus metric.
"""

from __future__ import annotations

import threading
from typing import Any

import prometheus_client

from serve_core import context

DEPLOYMENT_TAG, REPLICA_TAG, APPLICATION_TAG, ROUTE_TAG = "deployment", "replica", "application", "route"
_RESERVED = (DEPLOYMENT_TAG, REPLICA_TAG, APPLICATION_TAG)
_registered: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()


def _serve_tags() -> dict[str, str]:
    replica = context._replica
    if replica is None:
        return {}
    tags = {DEPLOYMENT_TAG: replica.deployment, REPLICA_TAG: replica.replica_id}
    if replica.app_name:
        tags[APPLICATION_TAG] = replica.app_name
    return tags


class _Metric:
    _kind: Any = None

    def __init__(self, name: str, description: str = "", tag_keys: tuple[str, ...] | None = None, **extra: Any) -> None:
        if not name:
            raise ValueError("a metric needs a non-empty name")
        if tag_keys is not None and not isinstance(tag_keys, tuple):
            raise TypeError(f"tag_keys should be a tuple type, got: {type(tag_keys)}")
        serve = _serve_tags()
        reserved = [k for k in tag_keys or () if k in _RESERVED and serve]
        if reserved:
            raise ValueError(f"tag keys {reserved} are reserved for serve_core's own tags; rename them")
        self._name, self._description = name, description
        self._tag_keys: tuple[str, ...] = tuple(serve) + tuple(tag_keys or ())
        self._default_tags: dict[str, str] = dict(serve)
        with _lock:
            key = (type(self).__name__, name)
            metric = _registered.get(key)
            if metric is None:
                metric = self._kind(name, description or name, labelnames=self._tag_keys, **extra)
                _registered[key] = metric
            elif tuple(metric._labelnames) != self._tag_keys:
                raise ValueError(
                    f"metric {name!r} exists with tag keys {metric._labelnames}, not {self._tag_keys}; "
                    "use one set of tag keys per name"
                )
        self._metric = metric

    @property
    def info(self) -> dict[str, Any]:
        return {"name": self._name, "description": self._description, "tag_keys": self._tag_keys,
                "default_tags": dict(self._default_tags)}

    def set_default_tags(self, default_tags: dict[str, str]) -> None:
        serve = _serve_tags()
        reserved = [k for k in default_tags if k in _RESERVED and serve]
        if reserved:
            raise ValueError(f"tags {reserved} are reserved for serve_core's own tags")
        unknown = [k for k in default_tags if k not in self._tag_keys]
        if unknown:
            raise ValueError(f"default tags {unknown} are not among the metric's tag keys {self._tag_keys}")
        self._default_tags = {**default_tags, **serve}

    def _child(self, tags: dict[str, str] | None) -> Any:
        values = {**self._default_tags, **(tags or {})}
        if ROUTE_TAG in self._tag_keys and ROUTE_TAG not in values:
            values[ROUTE_TAG] = context.request_context.get().route
        missing = [k for k in self._tag_keys if k not in values]
        if missing:
            raise ValueError(f"missing values for tag keys {missing} of metric {self._name!r}")
        unknown = [k for k in values if k not in self._tag_keys]
        if unknown:
            raise ValueError(f"tags {unknown} are not among the metric's tag keys {self._tag_keys}")
        return self._metric.labels(**values) if self._tag_keys else self._metric


class Counter(_Metric):
    """A monotonically increasing count (Prometheus exposes it as ``<name>_total``)."""

    _kind = prometheus_client.Counter

    def __init__(self, name: str, description: str = "", tag_keys: tuple[str, ...] | None = None) -> None:
        super().__init__(name, description, tag_keys)

    def inc(self, value: float = 1.0, tags: dict[str, str] | None = None) -> None:
        if value <= 0:
            raise ValueError(f"a counter only goes up: inc({value}) needs a value > 0")
        self._child(tags).inc(value)


class Gauge(_Metric):
    """A value that goes up and down."""

    _kind = prometheus_client.Gauge

    def __init__(self, name: str, description: str = "", tag_keys: tuple[str, ...] | None = None) -> None:
        super().__init__(name, description, tag_keys)

    def set(self, value: float, tags: dict[str, str] | None = None) -> None:
        self._child(tags).set(value)


class Histogram(_Metric):
    """A distribution over ``boundaries`` (Prometheus buckets)."""

    _kind = prometheus_client.Histogram

    def __init__(
        self, name: str, description: str = "", boundaries: list[float] | None = None,
        tag_keys: tuple[str, ...] | None = None,
    ) -> None:
        if boundaries is not None and (not boundaries or any(b <= 0 for b in boundaries)):
            raise ValueError(f"boundaries must be positive numbers, got {boundaries!r}")
        extra = {"buckets": sorted(boundaries)} if boundaries else {}
        super().__init__(name, description, tag_keys, **extra)

    def observe(self, value: float, tags: dict[str, str] | None = None) -> None:
        self._child(tags).observe(value)


__all__ = ["Counter", "Gauge", "Histogram"]
