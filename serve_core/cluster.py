"""The one seam to Ray: the only module that creates, names, finds and kills actors,
and reads the GCS key-value store and node table.

Everything else takes these functions (or a fake of them in unit tests).
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

log = logging.getLogger("serve_core.cluster")


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


def get_controller() -> Any | None:
    return get_actor(CONTROLLER_NAME)


def start_controller(http_options: dict[str, Any]) -> Any:
    """The controller: detached, named, restarted forever, pinned to the head node."""
    from serve_core.controller import Controller

    cls = ray.remote(Controller).options(
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
    return cls.remote(http_options)


def start_replica(name: str, spec: dict[str, Any], actor_options: dict[str, Any]) -> Any:
    from serve_core.replica import ReplicaActor

    # SPREAD (as Ray Serve does): replicas on different nodes, so losing a node
    # does not take every replica of a deployment with it.
    options = {"scheduling_strategy": "SPREAD", **actor_options}
    cls = ray.remote(ReplicaActor).options(
        name=name,
        namespace=NAMESPACE,
        lifetime="detached",
        max_restarts=0,  # the controller replaces dead replicas
        max_concurrency=8,
        **options,
    )
    return cls.remote(spec)


def start_proxy(name: str, node_id: str, http_options: dict[str, Any]) -> Any:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from serve_core.proxy import ProxyActor

    cls = ray.remote(ProxyActor).options(
        name=name,
        namespace=NAMESPACE,
        lifetime="detached",
        max_restarts=0,
        max_concurrency=8,
        num_cpus=0,
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
    )
    return cls.remote(node_id, http_options)


WATCH_POLL_S = 30.0  # a watcher's call returns this often while the actor lives


async def until_dead(handle: Any, watching: Callable[[], bool] = lambda: True) -> None:
    """Return once the actor behind ``handle`` stops being watched; raise when it dies.

    The actor's ``wait_until_dead(timeout_s)`` holds one of its threads until the timeout, and
    the watcher calls it again: a controller that is killed leaves its calls running (Ray does not
    cancel an actor task when its caller dies), and calls that never returned used up a proxy's
    eight threads after eight controller restarts, its ``ready`` then never ran."""
    while watching():
        await handle.wait_until_dead.remote(WATCH_POLL_S)


def kill(handle: Any) -> None:
    try:
        ray.kill(handle, no_restart=True)
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
