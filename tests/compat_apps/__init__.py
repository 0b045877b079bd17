"""Apps written exactly in Ray Serve style, used to check serve_core compatibility.

Each module's first line is ``from ray import serve``; the harness swaps that one
line for ``import serve_core as serve``. Every module defines:

* ``app``: an Application (from ``.bind()``).
* ``ROUTE_PREFIX``: optional, defaults to ``"/"``; pass to ``serve.run``.
* ``PROBES``: a list of dicts, executed in order against the running app:

  - ``{"kind": "http", "method": "GET" | "POST", "path": "/...",
    "json": <body or None>, "params": <query dict or None>}``.
    ``path`` is relative to ``ROUTE_PREFIX``. Optional ``"expect_status"``
    (default 200) and ``"data"`` (raw body bytes/str, sent instead of json).
  - ``{"kind": "handle", "method_name": "...", "args": [...]}`` on the handle
    returned by ``serve.run``; ``method_name`` ``"__call__"`` means
    ``handle.remote(*args)``. Optional ``"stream": True`` means
    ``handle.options(stream=True).<method>.remote(*args)`` and collecting the
    yielded items into a list.

  Optional ``"compare"`` says how to compare with Ray Serve's answer:
  ``"exact"`` (default), ``"status"`` (status code only) or ``"keys"`` (status
  code + the top-level JSON keys), for answers such as PIDs or OpenAPI documents.

Ray Serve's answers are recorded in ``ray_serve_answers.json``.
"""
