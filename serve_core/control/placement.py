"""Which node a new replica goes to: spread a deployment's replicas over the nodes.

Ray's ``SPREAD`` strategy is round-robin over the cluster, blind to where a deployment's
other replicas are: a replica started after a kill can land next to its sibling, and then
losing that one node takes every replica of the deployment with it (the campaign's
worker-node-loss run saw exactly that). So the controller picks the node itself: among the
alive nodes with room for the replica's CPUs, the one with the fewest replicas of this
deployment, then the fewest replicas in all, and asks Ray for it with a *soft* node
affinity (Ray waits for a busy node, and places the replica elsewhere if the node is gone).

``max_replicas_per_node`` (Ray Serve's option) caps a deployment's replicas on one node; a
replica that fits on no node under the cap is not started until one has room, and the
deployment's status says why.

Pure: ``choose_node`` sees the nodes and the replicas' nodes, nothing else.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

NO_NODE = "every node that fits holds max_replicas_per_node={cap} replicas of this deployment"


def choose_node(nodes: Sequence[Mapping[str, Any]], siblings: Iterable[str], everyone: Iterable[str],
                num_cpus: float, cap: int | None) -> str | None:
    """The node for one more replica of a deployment, or None.

    ``siblings``: the nodes of the deployment's replicas (one entry each, starting ones
    included); ``everyone``: the nodes of every replica of every deployment. None means
    no choice: with ``cap`` unset, leave it to Ray (no node known, or none big enough:
    Ray's resource view is the better judge); with a cap, no node has room under it.
    """
    fits = [n for n in nodes if float(n.get("cpus", 0.0)) >= num_cpus]
    here, load = Counter(siblings), Counter(everyone)
    if cap is not None:
        fits = [n for n in fits if here[n["node_id"]] < cap]
    if not fits:
        return None
    best = min(fits, key=lambda n: (here[n["node_id"]], load[n["node_id"]], n["node_id"]))
    return str(best["node_id"])
