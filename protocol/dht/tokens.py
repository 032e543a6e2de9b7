"""Write tokens: keyed BLAKE2b-256 of the requester's host, two rotating secrets (dht-rpc §4).

A node hands a token out with most hyperdht replies; the current secret's tokens are kept per
host until the next rotation (at most ``MAX_ISSUED`` hosts: a token is a function of the secret
and the host alone, so a sender can only make the node compute, never change, what it keeps).
"""

from __future__ import annotations

import hashlib
import hmac
import os

TOKEN_SIZE = 32
MAX_ISSUED = 4096


class TokenSecrets:
    """Issues and checks tokens; :meth:`rotate` is called every 10 drain ticks (7.5 s)."""

    def __init__(self, secret0: bytes | None = None, secret1: bytes | None = None) -> None:
        self._secrets = [secret0 or os.urandom(32), secret1 or os.urandom(32)]
        self._issued: dict[str, bytes] = {}  # host -> its token under the current secret

    @staticmethod
    def _token(host: str, secret: bytes) -> bytes:
        return hashlib.blake2b(host.encode("utf-8"), digest_size=TOKEN_SIZE, key=secret).digest()

    def issue(self, host: str) -> bytes:
        """The token a requester at ``host`` gets now."""
        token = self._issued.get(host)
        if token is None:
            token = self._token(host, self._secrets[1])
            if len(self._issued) >= MAX_ISSUED:
                self._issued.clear()
            self._issued[host] = token
        return token

    def verify(self, token: bytes, host: str) -> bool:
        """True when ``token`` was issued to ``host`` by either live secret."""
        return hmac.compare_digest(token, self.issue(host)) or \
            hmac.compare_digest(token, self._token(host, self._secrets[0]))

    def rotate(self) -> None:
        """Swap the secrets and derive a new current one from the retired one."""
        old0, old1 = self._secrets
        self._secrets = [old1, hashlib.blake2b(old0, digest_size=32).digest()]
        self._issued.clear()
