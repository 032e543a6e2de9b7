"""hypercore-crypto namespaces: ``BLAKE2b-256(BLAKE2b-256(name) || byte(index))``."""

from __future__ import annotations

import hashlib


def namespace(name: str, index: int) -> bytes:
    """The 32-byte namespace ``index`` of ``name``."""
    if not 0 <= index < 256:
        raise ValueError("a namespace index is one byte")
    base = hashlib.blake2b(name.encode("utf-8"), digest_size=32).digest()
    return hashlib.blake2b(base + bytes((index,)), digest_size=32).digest()


def keyed_hash(message: bytes, key: bytes) -> bytes:
    """BLAKE2b-256 of ``message`` keyed with ``key`` (libsodium ``crypto_generichash``)."""
    return hashlib.blake2b(message, digest_size=32, key=key).digest()


# hyperdht commands (hyperdht.md §1, §2.1).
NS_PEER_HANDSHAKE = namespace("hyperswarm/dht", 0)
NS_PEER_HOLEPUNCH = namespace("hyperswarm/dht", 1)
NS_ANNOUNCE = namespace("hyperswarm/dht", 4)
NS_UNANNOUNCE = namespace("hyperswarm/dht", 5)
NS_MUTABLE_PUT = namespace("hyperswarm/dht", 6)

# secret-stream (hyperdht.md §7.3).
NS_SS_INITIATOR = namespace("hyperswarm/secret-stream", 0)
NS_SS_RESPONDER = namespace("hyperswarm/secret-stream", 1)
NS_SS_SEND = namespace("hyperswarm/secret-stream", 2)
