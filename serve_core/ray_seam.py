"""The one seam to Ray: the only module of serve_core that imports ``ray``. It creates,
names, finds and kills actors, waits on their results, and reads the GCS key-value store
and the node table.

It imports none of serve_core's actor classes: the caller passes the class to start
(``start_controller(Controller, ...)``), so the seam sits below both planes and no import
circle runs through it. What it gives back are typed clients (``ControllerClient``,
``ReplicaClient``, ``ProxyClient``): methods named after the actor's, wrapping Ray's
``.remote()`` calling style, so that everything else (and its unit-test fake,
tests/unit/fake_cluster.py) speaks the project's interface, not Ray's.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import socket
from collections.abc import Callable
from typing import Any

import ray

from serve_core.errors import ClusterUnavailableError
from serve_core.ids import CONTROLLER_NAME, NAMESPACE

log = logging.getLogger("serve_core.ray_seam")


def connect(address: str | None = None) -> None:
    """Join the cluster at ``address`` (or start a local one) if not joined yet."""
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    _check_reachable(address)
    try:
        ray.init(address=address, namespace=NAMESPACE, log_to_driver=False, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError) as e:
        raise ClusterUnavailableError(address or "local", str(e)) from e


def _check_reachable(address: str | None) -> None:
    """Fail in seconds, not minutes, when a host:port address has nothing listening."""
    if not address or address == "auto" or "://" in address or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise ClusterUnavailableError(address, f"nothing answers there ({e.strerror or e})") from None


def get_actor(name: str) -> Any | None:
    try:
        return ray.get_actor(name, namespace=NAMESPACE)
    except ValueError:
        return None


def actor_names(prefix: str) -> list[str]:
    """Names of the live named actors in serve_core's namespace that start with ``prefix``."""
    return [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
            if a["namespace"] == NAMESPACE and a["name"].startswith(prefix)]


def get_controller() -> ControllerClient | None:
    handle = get_actor(CONTROLLER_NAME)
    return None if handle is None else ControllerClient(handle)


def get_replica(name: str) -> ReplicaClient | None:
    handle = get_actor(name)
    return None if handle is None else ReplicaClient(handle)


def get_proxy(name: str) -> ProxyClient | None:
    handle = get_actor(name)
    return None if handle is None else ProxyClient(handle)


def get(ref: Any, timeout: float | None = None) -> Any:
    """The result of an actor call, waiting at most ``timeout`` seconds (from sync code)."""
    return ray.get(ref, timeout=timeout)


def start_controller(actor_cls: type, http_options: dict[str, Any]) -> ControllerClient:
    """The controller (``actor_cls``): detached, named, restarted forever, pinned to the head node."""
    cls: Any = ray.remote(actor_cls).options(
        name=CONTROLLER_NAME,
        namespace=NAMESPACE,
        lifetime="detached",
        max_restarts=-1,
        max_task_retries=-1,
        max_concurrency=1000,
        num_cpus=0,
        resources={"node:__internal_head__": 0.001},
        get_if_exists=True,
    )
    return ControllerClient(cls.remote(http_options))


def start_replica(actor_cls: type, name: str, spec: dict[str, Any], actor_options: dict[str, Any],
                  node_id: str | None = None) -> ReplicaClient:
    """A replica (``actor_cls``), named ``name``; the controller replaces it when it dies.

    On ``node_id`` if given (a soft affinity: Ray waits for the node while it is busy and
    places the replica elsewhere if it is gone; control/placement.py chooses it), else
    SPREAD as Ray Serve does.
    """
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    strategy = NodeAffinitySchedulingStrategy(node_id, soft=True) if node_id else "SPREAD"
    options = {"scheduling_strategy": strategy, **actor_options}
    cls: Any = ray.remote(actor_cls).options(
        name=name,
        namespace=NAMESPACE,
        lifetime="detached",
        max_restarts=0,  # the controller replaces dead replicas
        max_concurrency=8,
        **options,
    )
    return ReplicaClient(cls.remote(spec))


def start_proxy(actor_cls: type, name: str, node_id: str, http_options: dict[str, Any]) -> ProxyClient:
    """The proxy (``actor_cls``) of node ``node_id``, pinned to it."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    cls: Any = ray.remote(actor_cls).options(
        name=name,
        namespace=NAMESPACE,
        lifetime="detached",
        max_restarts=0,
        max_concurrency=8,
        num_cpus=0,
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
    )
    return ProxyClient(cls.remote(node_id, http_options))


def kill(actor: Any) -> None:
    """Kill an actor (a typed client or a raw handle) for good."""
    try:
        ray.kill(getattr(actor, "handle", actor), no_restart=True)
    except Exception as e:  # already dead is fine
        log.debug("kill: %s", e)


PROXY_PORT_LABEL = "serve-core/proxy-port"
PROXY_HOST_LABEL = "serve-core/proxy-host"


def alive_nodes() -> list[dict[str, Any]]:
    """Alive nodes as {node_id, ip, is_head, labels}.

    Nodes sharing one address (several on one machine) set the node labels
    ``serve-core/proxy-port`` (and optionally ``serve-core/proxy-host``) to give their
    proxy its own port: ``ray start --labels='{"serve-core/proxy-port": "8001"}'``.
    """
    out = []
    for n in ray.nodes():
        if n.get("Alive") or n.get("alive"):
            out.append({
                "node_id": n["NodeID"],
                "ip": n["NodeManagerAddress"],
                "is_head": "node:__internal_head__" in n.get("Resources", {}),
                "labels": dict(n.get("Labels") or {}),
                "cpus": float(n.get("Resources", {}).get("CPU", 0.0)),
                "raylet_port": int(n.get("NodeManagerPort", 0)),
            })
    return out


def prestart_workers(node: dict[str, Any], count: int, keep_alive_s: int) -> None:
    """Ask ``node``'s raylet to start ``count`` idle worker processes (default runtime
    env), kept alive ``keep_alive_s`` unless an actor takes one first.

    They belong to no job: the controller's job is usually the driver that created it,
    long gone, and Ray kills an idle worker of a finished job at once. Ray 2.60 has the
    raylet call (NodeManagerService.PrestartWorkers) but no Python API for it, so this
    speaks its gRPC through Ray's own channel (token auth included).
    """
    from ray._private.grpc_utils import init_grpc_channel
    from ray.core.generated import common_pb2, node_manager_pb2, node_manager_pb2_grpc, runtime_environment_pb2

    channel = init_grpc_channel(f"{node['ip']}:{node['raylet_port']}")
    try:
        node_manager_pb2_grpc.NodeManagerServiceStub(channel).PrestartWorkers(
            node_manager_pb2.PrestartWorkersRequest(  # type: ignore[attr-defined]  # generated
                language=common_pb2.PYTHON,  # type: ignore[attr-defined]
                runtime_env_info=runtime_environment_pb2.RuntimeEnvInfo(serialized_runtime_env="{}"),  # type: ignore[attr-defined]
                keep_alive_duration_secs=keep_alive_s,
                num_workers=count,
            ),
            timeout=5,
        )
    finally:
        channel.close()


def node_id() -> str:
    return str(ray.get_runtime_context().get_node_id())


def node_ip() -> str:
    return str(ray.util.get_node_ip_address())


def kv_put(key: bytes, value: bytes) -> None:
    from ray.experimental.internal_kv import _internal_kv_put

    _internal_kv_put(key, value, overwrite=True, namespace=NAMESPACE)


def kv_get(key: bytes) -> bytes | None:
    from ray.experimental.internal_kv import _internal_kv_get

    return _internal_kv_get(key, namespace=NAMESPACE)  # type: ignore[no-any-return]


def kv_del(key: bytes) -> None:
    from ray.experimental.internal_kv import _internal_kv_del

    _internal_kv_del(key, namespace=NAMESPACE)


DATA_PATH_SECRET_KEY = b"data_path_secret"
_secret: bytes | None = None


def data_path_secret() -> bytes:
    """The key every direct connection is authenticated with (see handshake.py).

    Derived from Ray's auth token where token auth is on, so that it is exactly as secret
    as the token and survives a GCS restart without Redis; otherwise made on first use
    and kept in the GCS key-value store, readable by whoever may use the cluster anyway.
    """
    global _secret
    if _secret is None:
        token = _ray_auth_token()
        if token:
            _secret = hashlib.sha256(b"serve_core data path v1\0" + token.encode()).digest()
        else:
            from ray.experimental.internal_kv import _internal_kv_put

            _internal_kv_put(DATA_PATH_SECRET_KEY, secrets.token_bytes(32), overwrite=False, namespace=NAMESPACE)
            stored = kv_get(DATA_PATH_SECRET_KEY)
            if not stored:
                raise ClusterUnavailableError("GCS", "the data path secret could not be stored in the GCS key-value store")
            _secret = stored
    return _secret


def _ray_auth_token() -> str:
    try:
        from ray._private.authentication.authentication_utils import is_token_auth_enabled
        from ray._raylet import AuthenticationTokenLoader  # type: ignore[attr-defined]
    except ImportError:  # a Ray without token auth
        return ""
    if not is_token_auth_enabled():
        return ""
    return str(AuthenticationTokenLoader.instance().get_raw_token() or "")


def is_actor_death(e: BaseException) -> bool:
    return isinstance(e, (ray.exceptions.RayActorError, ray.exceptions.ActorDiedError))


def is_user_error(e: BaseException) -> bool:
    return isinstance(e, ray.exceptions.RayTaskError)


# -- typed clients ----------------------------------------------------------------------------
# One method per actor method the project calls. Async methods are for event loops (the
# controller, callers, replicas); the controller's sync methods are for drivers (serve.run,
# the CLI), waiting at most ``timeout`` seconds. ``handle`` is the Ray actor handle.


class ControllerClient:
    def __init__(self, handle: Any) -> None:
        self.handle = handle

    async def listen(self, version: int, timeout_s: float) -> tuple[int, dict[str, Any]]:
        """The next replica-set snapshot after ``version`` (long poll). Not retried by Ray:
        callers retry themselves and know when to stop."""
        return await self.handle.listen.options(max_task_retries=0).remote(version, timeout_s)  # type: ignore[no-any-return]

    async def report_demand(self, caller_id: str, demand: dict[str, int]) -> None:
        await self.handle.report_demand.options(max_task_retries=0).remote(caller_id, demand)

    def record_models(self, key: str, replica_id: str, model_ids: list[str], seq: int) -> None:
        """Fire and forget: a lost report only costs a model load elsewhere."""
        self.handle.record_models.remote(key, replica_id, model_ids, seq)

    def deploy_app(self, name: str, route_prefix: str | None, ingress: str, deployments: list[dict[str, Any]],
                   timeout: float | None = None) -> None:
        get(self.handle.deploy_app.remote(name, route_prefix, ingress, deployments), timeout)

    def delete_app(self, name: str, timeout: float | None = None) -> None:
        get(self.handle.delete_app.remote(name), timeout)

    def status(self, timeout: float | None = None) -> dict[str, Any]:
        return get(self.handle.status.remote(), timeout)  # type: ignore[no-any-return]

    def app_names(self, timeout: float | None = None) -> dict[str, str]:
        return get(self.handle.app_names.remote(), timeout)  # type: ignore[no-any-return]

    def get_http_options(self, timeout: float | None = None) -> dict[str, Any]:
        return get(self.handle.get_http_options.remote(), timeout)  # type: ignore[no-any-return]

    def metric_targets(self, timeout: float | None = None) -> list[str]:
        return get(self.handle.metric_targets.remote(), timeout)  # type: ignore[no-any-return]

    def graceful_shutdown(self, timeout: float | None = None) -> None:
        get(self.handle.graceful_shutdown.remote(), timeout)

    def pid(self, timeout: float | None = None) -> int:
        return int(get(self.handle.pid.remote(), timeout))


WATCH_POLL_S = 30.0  # a watcher's call returns this often while the actor lives


class _Watched:
    handle: Any

    async def until_dead(self, watching: Callable[[], bool] = lambda: True) -> None:
        """Return once ``watching()`` turns false; raise when the actor dies.

        The actor's ``wait_until_dead(timeout_s)`` holds one of its threads until the timeout, and
        this calls it again: a controller that is killed leaves its calls running (Ray does not
        cancel an actor task when its caller dies), and calls that never returned used up a proxy's
        eight threads after eight controller restarts, its ``ready`` then never ran."""
        while watching():
            await self.handle.wait_until_dead.remote(WATCH_POLL_S)


class ReplicaClient(_Watched):
    def __init__(self, handle: Any) -> None:
        self.handle = handle

    async def initialize(self, host: str | None = None) -> dict[str, Any]:
        return await self.handle.initialize.remote(host)  # type: ignore[no-any-return]

    async def info(self) -> dict[str, Any]:
        return await self.handle.info.remote()  # type: ignore[no-any-return]

    async def check_health(self) -> None:
        await self.handle.check_health.remote()

    async def drain(self, wait_loop_s: float, timeout_s: float) -> int:
        return int(await self.handle.drain.remote(wait_loop_s, timeout_s))

    async def reconfigure(self, user_config: Any) -> None:
        await self.handle.reconfigure.remote(user_config)



class ProxyClient(_Watched):
    def __init__(self, handle: Any) -> None:
        self.handle = handle

    async def ready(self) -> dict[str, Any]:
        return await self.handle.ready.remote()  # type: ignore[no-any-return]

    async def version(self) -> int:
        return int(await self.handle.version.remote())

