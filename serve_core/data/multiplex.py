"""``@serve.multiplexed``: one replica serves many models, loading each on first use and
keeping at most ``max_num_models_per_replica``, the least recently used evicted first.

The decorated method (``async def get_model(self, model_id)``, or a plain function) is the
loader; calling it returns the cached model. A replica reports the ids it holds whenever they
change, and callers prefer replicas that already hold a request's model
(``serve_multiplexed_model_id`` header, or ``handle.options(multiplexed_model_id=...)``).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from serve_core.errors import ConfigError

_report: Callable[[list[str]], None] | None = None  # set by the replica: ids -> controller
_caches: list[ModelCache] = []  # every cache of this process, for the report
_current: list[str] = []  # the ids last reported (read from other threads: replaced, never mutated)


def set_reporter(fn: Callable[[list[str]], None] | None) -> None:
    global _report
    _report = fn


def loaded_model_ids() -> list[str]:
    """Every model id this process holds, over all its multiplexed loaders."""
    return list(_current)


def _changed() -> None:
    global _current
    _current = sorted({m for c in _caches for m in c.models})
    if _report is not None:
        _report(list(_current))


class ModelCache:
    """Loaded models of one loader (and one instance), most recently used last."""

    def __init__(self, load: Callable[[str], Any], max_models: int) -> None:
        self.load = load
        self.max_models = max_models
        self.models: OrderedDict[str, Any] = OrderedDict()
        self._loading: dict[str, asyncio.Future[Any]] = {}
        _caches.append(self)

    async def get(self, model_id: str) -> Any:
        if not isinstance(model_id, str) or not model_id:
            raise ValueError(f"a multiplexed model id is a non-empty string, got {model_id!r}: send the "
                             "serve_multiplexed_model_id header or use handle.options(multiplexed_model_id=...)")
        if model_id in self.models:
            self.models.move_to_end(model_id)
            return self.models[model_id]
        if model_id in self._loading:  # another request is loading it: share that load
            return await asyncio.shield(self._loading[model_id])
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._loading[model_id] = fut
        try:
            model = self.load(model_id)
            if inspect.isawaitable(model):
                model = await model
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # retrieved: no "never retrieved" warning when nobody else waits
            raise
        finally:
            del self._loading[model_id]
        fut.set_result(model)
        self.models[model_id] = model
        while len(self.models) > self.max_models:
            _, old = self.models.popitem(last=False)
            await _unload(old)
        _changed()
        return model


async def _unload(model: Any) -> None:
    """An async ``__del__`` is awaited (Ray Serve's contract); a plain one runs when the
    last reference goes."""
    fn = getattr(model, "__del__", None)
    if fn is not None and inspect.iscoroutinefunction(fn):
        await fn()


def multiplexed(func: Callable[..., Any] | None = None, max_num_models_per_replica: int = 3) -> Any:
    """Decorate a model loader: ``@serve.multiplexed(max_num_models_per_replica=3)``."""
    if not isinstance(max_num_models_per_replica, int) or isinstance(max_num_models_per_replica, bool) \
            or (max_num_models_per_replica < 1 and max_num_models_per_replica != -1):
        raise ConfigError("max_num_models_per_replica", max_num_models_per_replica,
                          "give a whole number of models >= 1, or -1 for no limit")
    limit = max_num_models_per_replica if max_num_models_per_replica > 0 else 2**62

    def wrap(fn: Callable[..., Any]) -> Any:
        params = list(inspect.signature(fn).parameters)
        attr = f"__serve_core_models_{fn.__name__}"
        if len(params) >= 2:  # a method: one cache per instance
            @functools.wraps(fn)
            async def method(self: Any, model_id: str) -> Any:
                cache = self.__dict__.get(attr)
                if cache is None:
                    cache = self.__dict__[attr] = ModelCache(functools.partial(fn, self), limit)
                return await cache.get(model_id)

            return method
        if len(params) != 1:
            raise ConfigError("@serve.multiplexed", fn.__name__, "decorate a loader taking the model id: "
                              "def get_model(self, model_id) or def get_model(model_id)")
        cache: list[ModelCache] = []

        @functools.wraps(fn)
        async def function(model_id: str) -> Any:
            if not cache:
                cache.append(ModelCache(fn, limit))
            return await cache[0].get(model_id)

        return function

    return wrap(func) if func is not None else wrap
