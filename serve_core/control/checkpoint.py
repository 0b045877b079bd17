"""The controller's checkpoint: target state in the GCS key-value store, written on every
change and read back by a restarted controller.

Writes happen off the event loop, one at a time, coalesced (``mark`` only flags the state
stale); ``durable`` waits until the current state is stored (deploy and delete return only
then). A failed write (GCS down) is retried while serving goes on. ``delete`` runs only
between writes, and no write follows it: a checkpoint left behind by a shut-down
controller would make the next one restore an earlier run's options.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from serve_core.control import deployment_state as ds
from serve_core.control.state import App, ControlState, target_from_doc
from serve_core.ids import CHECKPOINT_KEY, DeploymentID, ReplicaState

log = logging.getLogger("serve_core.control.controller")
POLL_S = 0.02  # how often the writer looks for a stale checkpoint
RETRY_S = 0.5  # after a failed write


def document(state: ControlState, proxies: dict[str, str]) -> dict[str, Any]:
    """What a restarted controller needs: target state and the names of live actors."""
    return {
        "http_options": state.http_options,
        "apps": {n: (a.route_prefix, a.ingress, a.deleting) for n, a in state.apps.items()},
        "targets": {d.key(): (asdict(t) if t else None) for d, t in state.targets.items()},
        "replicas": {d.key(): [r.to_checkpoint() for r in rs.values() if r.state != ReplicaState.STOPPING]
                     for d, rs in state.replicas.items()},
        "proxies": proxies,
        "previous": {d.key(): asdict(t) for d, t in state.previous.items()},
        "rolled_back": {d.key(): why for d, why in state.rolled_back.items()},
    }


def restore(state: ControlState, doc: dict[str, Any], deployed_at: float) -> list[tuple[DeploymentID, ds.ReplicaRecord]]:
    """Load ``doc`` into ``state``; return the replica records it names, still to be found
    and adopted (the caller looks them up by actor name)."""
    state.http_options = doc["http_options"]
    for name, (prefix, ingress, deleting) in doc["apps"].items():
        state.apps[name] = App(name, prefix, ingress, deployed_at)
        state.apps[name].deleting = deleting
    for key, t in doc["targets"].items():
        dep = DeploymentID.from_key(key)
        state.targets[dep] = target_from_doc(t) if t is not None else None
        state.replicas.setdefault(dep, {})
    state.previous = {DeploymentID.from_key(k): target_from_doc(t) for k, t in doc.get("previous", {}).items()}
    state.rolled_back = {DeploymentID.from_key(k): why for k, why in doc.get("rolled_back", {}).items()}
    return [(DeploymentID.from_key(key), ds.ReplicaRecord(**r)) for key, recs in doc["replicas"].items() for r in recs]


def load(kv_get: Callable[[bytes], bytes | None]) -> dict[str, Any] | None:
    raw = kv_get(CHECKPOINT_KEY)
    return pickle.loads(raw) if raw else None


class CheckpointWriter:
    def __init__(self, doc: Callable[[], dict[str, Any]], kv_put: Callable[[bytes, bytes], None],
                 kv_del: Callable[[bytes], None]) -> None:
        self.doc, self.kv_put, self.kv_del = doc, kv_put, kv_del
        self.put = self._put_off_loop  # how a write is made (a test holds one in flight with its own)
        self._dirty = False
        self._written = asyncio.Event()
        self._lock = asyncio.Lock()  # a delete happens only between writes
        self._deleted = False

    def mark(self) -> None:
        """The state changed: the writer stores it soon, off the event loop."""
        self._dirty = True
        self._written.clear()

    async def durable(self, timeout_s: float = 30.0) -> None:
        """Return once the current state is in the GCS."""
        self.mark()
        await asyncio.wait_for(self._written.wait(), timeout_s)

    async def _put_off_loop(self, data: bytes) -> None:
        await asyncio.get_event_loop().run_in_executor(None, self.kv_put, CHECKPOINT_KEY, data)

    async def run(self) -> None:
        while True:
            if not self._dirty:
                await asyncio.sleep(POLL_S)
                continue
            async with self._lock:
                if self._deleted:  # a write now would bring back what shutdown deleted
                    return
                self._dirty = False
                data = pickle.dumps(self.doc())
                try:
                    await self.put(data)
                    if not self._dirty:
                        self._written.set()
                    continue
                except Exception as e:  # GCS down: keep serving, write again shortly
                    self._dirty = True
                    log.warning("checkpoint write failed, will retry: %s", e)
            await asyncio.sleep(RETRY_S)

    async def delete(self) -> None:
        """Remove the checkpoint for good (shutdown): after any write in flight, before none."""
        async with self._lock:
            self._deleted = True
            try:
                self.kv_del(CHECKPOINT_KEY)
            except Exception as e:
                log.warning("could not delete checkpoint: %s", e)
