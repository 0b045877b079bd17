"""An embedded multi-node cluster on one machine: `serve-core cluster up|status|exec|down`.

One Ray head and N Ray worker nodes, each its own `ray start --block` process, plus
Redis (GCS fault tolerance), a real Prometheus server and a target refresher that keeps
Prometheus's file-based service discovery current. As root each node runs in its own
network namespace behind a Linux bridge (so a node can be cut off); otherwise every node
shares loopback with its own ports.

Modules, in the order `up` uses them: ``layout`` (addresses and ports, pure), ``state``
(the state file), ``processes`` (start and stop by pid), ``netns`` (bridge, namespaces,
veth pairs, the iptables rule), ``redis``, ``ray_nodes``, ``prometheus``, ``targets``
(the refresher process), ``probe`` (the Ray driver that `status` runs) and ``commands``
(the CLI handlers).
"""
