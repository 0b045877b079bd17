"""Mutual authentication of a direct connection, before the first frame.

Both ends hold the cluster secret (``ray_seam.data_path_secret``). The replica speaks
first with a fresh nonce; the caller answers with its own nonce and an HMAC over both;
the replica checks it and answers with an HMAC over both in the other order::

    replica -> caller   MAGIC | server_nonce                      (36 bytes)
    caller  -> replica  client_nonce | HMAC(k, "caller" | sn | cn)  (64 bytes)
    replica -> caller   HMAC(k, "replica" | cn | sn)              (32 bytes)

Each side's proof covers the nonce the other side just chose, so a recorded handshake
proves nothing on a new connection, and the two labels keep one side's proof from being
reflected back as the other's. Messages have fixed sizes: nothing a peer sends before it
is authenticated is buffered beyond them, and nothing at all is unpickled.

The classes are pure state machines (bytes in, bytes out) so that they can be tested
without sockets; ``wire.FrameProtocol`` drives them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

MAGIC = b"SCD1"  # serve_core direct connection, handshake version 1
NONCE_BYTES = 32
MAC_BYTES = 32
HELLO_BYTES = len(MAGIC) + NONCE_BYTES
PROOF_BYTES = NONCE_BYTES + MAC_BYTES
ANSWER_BYTES = MAC_BYTES
TIMEOUT_S = 5.0  # an unauthenticated connection is closed after this


class HandshakeError(ConnectionError):
    """The peer does not hold the cluster secret (or does not speak this protocol).

    A ConnectionError, so that a caller treats a replica it cannot authenticate as one it
    cannot reach: the request goes to another replica."""


def _mac(secret: bytes, label: bytes, first: bytes, second: bytes) -> bytes:
    return hmac.new(secret, label + first + second, hashlib.sha256).digest()


class ServerHandshake:
    """The replica's side. ``hello()`` first; then ``feed`` until it returns the answer."""

    def __init__(self, secret: bytes, nonce: bytes | None = None) -> None:
        self._secret = secret
        self._nonce = nonce or secrets.token_bytes(NONCE_BYTES)
        self._buf = b""
        self.done = False

    def hello(self) -> bytes:
        return MAGIC + self._nonce

    def feed(self, data: bytes) -> tuple[bytes | None, bytes]:
        """Take bytes from the caller; return (answer to send once verified, leftover
        bytes after the proof). Raises HandshakeError on a wrong proof."""
        need = PROOF_BYTES - len(self._buf)
        self._buf += data[:need]
        rest = data[need:]
        if len(self._buf) < PROOF_BYTES:
            return None, b""
        client_nonce, proof = self._buf[:NONCE_BYTES], self._buf[NONCE_BYTES:]
        if not hmac.compare_digest(proof, _mac(self._secret, b"caller", self._nonce, client_nonce)):
            raise HandshakeError("the caller's proof does not match this cluster's secret")
        self.done = True
        return _mac(self._secret, b"replica", client_nonce, self._nonce), rest


class ClientHandshake:
    """The caller's side: ``feed`` the replica's bytes; it returns the proof to send after
    the hello, and marks ``done`` once the replica's answer checks out."""

    def __init__(self, secret: bytes, nonce: bytes | None = None) -> None:
        self._secret = secret
        self._nonce = nonce or secrets.token_bytes(NONCE_BYTES)
        self._server_nonce: bytes | None = None
        self._buf = b""
        self.done = False

    def feed(self, data: bytes) -> tuple[bytes | None, bytes]:
        """Return (bytes to send now, leftover bytes after the handshake)."""
        out = None
        if self._server_nonce is None:
            need = HELLO_BYTES - len(self._buf)
            self._buf += data[:need]
            data = data[need:]
            if len(self._buf) < HELLO_BYTES:
                return None, b""
            if not self._buf.startswith(MAGIC):
                raise HandshakeError(f"the peer did not start with serve_core's handshake ({self._buf[:4]!r})")
            self._server_nonce, self._buf = self._buf[len(MAGIC):], b""
            out = self._nonce + _mac(self._secret, b"caller", self._server_nonce, self._nonce)
        need = ANSWER_BYTES - len(self._buf)
        self._buf += data[:need]
        rest = data[need:]
        if len(self._buf) < ANSWER_BYTES:
            return out, b""
        if not hmac.compare_digest(self._buf, _mac(self._secret, b"replica", self._nonce, self._server_nonce)):
            raise HandshakeError("the replica's answer does not match this cluster's secret")
        self.done = True
        return out, rest
