"""The data path: where a request goes. Off Ray's task path, over direct connections.

In request order:

- ``http_protocol``: uvicorn's httptools protocol with bounds on what a client controls
  (head bytes, body time, connections);
- ``proxy``: one per node; an HTTP request becomes a call (``ProxyActor`` is its Ray actor);
- ``handle``: ``DeploymentHandle`` and its responses, the same call from Python code;
- ``caller``: what a proxy or handle shares per process: the replica sets the controller
  pushes, demand reports, the event loop (``loop_thread``);
- ``router``: power-of-two-choices on known queue lengths, retries, ``max_queued_requests``;
  ``connector``: how it reaches a replica (a seam, as httpx's transport);
- ``wire`` (length-prefixed frames), ``handshake`` (both ends prove the cluster secret),
  ``tls``: the connection to a replica;
- ``replica``: runs the user's code (``ReplicaActor``), with ``asgi`` (ingress apps and
  plain return values), ``batching`` and ``multiplex`` (the implementations behind the
  public ``serve_core.batching`` and ``serve_core.multiplex``).

Nothing here imports the control plane (``serve_core.control``): the data path keeps the
last replica set it saw and serves on while the controller or the GCS is down.
"""
