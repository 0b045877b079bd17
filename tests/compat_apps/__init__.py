"""Apps written exactly in Ray Serve style, used to check serve_core compatibility.

Each module's first line is ``from ray import serve``; the harness swaps that one
line for ``import serve_core as serve``. Every module defines:

* ``app``: an Application (from ``.bind()``).
* ``ROUTE_PREFIX``: optional, defaults to ``"/"``; pass to ``serve.run``.
* ``PROBES``: a list of dicts, executed in order against the running app (order
  matters: e.g. ``batching`` reports the batch sizes seen so far):

  - ``{"kind": "http", "method": "GET" | "POST", "path": "/...",
    "json": <body or None>, "params": <query dict or None>}``. The URL is
    ``ROUTE_PREFIX.rstrip("/") + path`` (so ``path=""`` hits the bare prefix).
    Optional: ``"expect_status"`` (default 200) and ``"data"`` (a raw str body,
    sent instead of ``json``).
  - ``{"kind": "handle", "method_name": "...", "args": [...]}`` on the handle
    returned by ``serve.run``: ``getattr(handle, method_name).remote(*args)``.
    Optional ``"stream": True``: call
    ``handle.options(stream=True).<method_name>.remote(*args)`` and collect the
    yielded items into a list.

  - ``{"kind": "burst", "method": ..., "path": ..., "params": ..., "n": 4}``: ``n`` HTTP
    requests at once; the answer is their sorted status codes and the Retry-After values
    of the refused ones (load shedding). With ``"gate_after": k`` the requests carry a
    ``gate`` query parameter (a file path) and the app holds them until it exists; the
    harness creates it once ``k`` answers are back.
  - ``{"kind": "call", "function": "name"}``: call the module's function ``name()`` in the
    driver (with the app running) and compare what it returns (e.g. ``serve.status()``'s types).

  HTTP probes may send ``"headers"`` and ``"capture"`` response headers:
  ``{"x-request-id": "value" | "present"}``. Handle probes may set ``"multiplexed_model_id"``.

  Besides the first line, the harness renames ``ray.serve`` to ``serve_core`` in the module
  (``from ray.serve.handle import DeploymentHandle`` -> ``from serve_core.handle import ...``):
  the mechanical rename a user would do.

  Optional ``"compare"`` says how to compare with Ray Serve's answer: ``"exact"``
  (default), ``"status"`` (status code only), ``"keys"`` (status code and the
  top-level JSON keys), for answers holding PIDs or large documents, or ``"shed"``
  for a burst (the statuses seen, Retry-After, and between 1 and ``max_ok`` accepted).

``torch_user_config`` also defines ``NEW_USER_CONFIG``, ``DEPLOYMENT_NAME``,
``UPDATED_APP`` and ``UPDATED_PROBES`` (see that module).

Ray Serve's answers are not kept in a file: tests/integration/test_compat.py asks the
installed Ray Serve in the same run as serve_core.
"""
