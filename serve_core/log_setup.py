"""The log level and access log a ``logging_config`` asks for, applied in each process.

The controller, every proxy and every replica call ``apply`` with the ``logging_config`` that
came with the HTTP options (``serve.start(logging_config=)`` or a config file's top-level
``logging_config``). Without one nothing changes: serve_core's loggers stay at Python's
default (warnings and errors only) and proxies keep no access log.
"""

from __future__ import annotations

import logging
from typing import Any

ACCESS = logging.getLogger("serve_core.access")  # one line per proxied request, at INFO
_OURS = "_serve_core_handler"


def apply(logging_config: dict[str, Any] | None) -> bool:
    """Set serve_core's log level in this process; True when the access log is on."""
    if not logging_config:
        return False
    root = logging.getLogger("serve_core")
    root.setLevel(str(logging_config.get("log_level", "INFO")))
    if not any(getattr(h, _OURS, False) for h in root.handlers):
        handler = logging.StreamHandler()  # Ray writes a worker's stderr to its log file
        setattr(handler, _OURS, True)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.propagate = False  # once, not again through whatever the root logger has
    return bool(logging_config.get("enable_access_log", True))
