"""The control plane: where decisions are made. One controller actor on the head node.

In decision order:

- ``controller``: the reconcile loop; target state in, actors started and stopped,
  replica sets pushed to proxies and handles;
- ``deployment_state``: per deployment, which replicas to start, stop or replace (pure);
- ``autoscaler``: metrics snapshot in, replica count out (pure);
- ``proxy_fleet``: one proxy per alive node;
- ``warm_spares``: idle Ray workers kept ready, so a replica starts in a fraction of a second.

It reaches Ray only through ``serve_core.ray_seam`` and the data path's actors only through
their Ray handles.
"""
