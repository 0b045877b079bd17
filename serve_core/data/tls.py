"""TLS contexts for the direct connections, from ``http_options.data_path``.

Mutual TLS: each end presents a certificate signed by the cluster's CA and checks the
other's against it. Host names are not checked (replicas are reached by address, and a
node's address may change when it restarts): membership is proved by the CA signature
and, inside the tunnel, by the handshake over the cluster secret.
"""

from __future__ import annotations

import ssl
from typing import Any

from serve_core.errors import ConfigError


def _context(purpose: ssl.Purpose, opts: dict[str, Any]) -> ssl.SSLContext | None:
    cert, key, ca = opts.get("tls_certfile"), opts.get("tls_keyfile"), opts.get("tls_ca_certs")
    if not cert:
        return None
    ctx = ssl.create_default_context(purpose, cafile=ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError("http_options.data_path.tls_certfile", cert,
                          f"cannot load the certificate and key ({e}); the files must exist on every node") from e
    return ctx


def server_context(opts: dict[str, Any]) -> ssl.SSLContext | None:
    """For a replica's listener; None when TLS is off."""
    return _context(ssl.Purpose.CLIENT_AUTH, opts)


def client_context(opts: dict[str, Any]) -> ssl.SSLContext | None:
    """For a caller's connections; None when TLS is off."""
    return _context(ssl.Purpose.SERVER_AUTH, opts)
