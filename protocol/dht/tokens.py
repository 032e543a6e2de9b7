"""Write tokens: keyed BLAKE2b-256 of the requester's host, two rotating secrets (dht-rpc §4)."""

from __future__ import annotations

import hashlib
import hmac
import os

TOKEN_SIZE = 32


class TokenSecrets:
    """Issues and checks tokens; :meth:`rotate` is called every 10 drain ticks (7.5 s)."""

    def __init__(self, secret0: bytes | None = None, secret1: bytes | None = None) -> None:
        self._secrets = [secret0 or os.urandom(32), secret1 or os.urandom(32)]

    @staticmethod
    def _token(host: str, secret: bytes) -> bytes:
        return hashlib.blake2b(host.encode("utf-8"), digest_size=TOKEN_SIZE, key=secret).digest()

    def issue(self, host: str) -> bytes:
        """The token a requester at ``host`` gets now."""
        return self._token(host, self._secrets[1])

    def verify(self, token: bytes, host: str) -> bool:
        """True when ``token`` was issued to ``host`` by either live secret."""
        return any(hmac.compare_digest(token, self._token(host, s)) for s in self._secrets)

    def rotate(self) -> None:
        """Swap the secrets and derive a new current one from the retired one."""
        old0, old1 = self._secrets
        self._secrets = [old1, hashlib.blake2b(old0, digest_size=32).digest()]
