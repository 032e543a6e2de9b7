"""Node ids: BLAKE2b-256 of a node's public ``host:port`` (dht-rpc §3)."""

from __future__ import annotations

import hashlib

from hyperswarm_hugin.protocol.encoding import Address, encode_ipv4_address

ID_SIZE = 32


def node_id(addr: Address) -> bytes:
    """The id a persistent node at ``addr`` has, and the only one a receiver accepts from it."""
    return hashlib.blake2b(encode_ipv4_address(addr), digest_size=ID_SIZE).digest()


def xor_distance(a: bytes, b: bytes) -> int:
    """XOR distance of two ids as an integer (smaller is closer)."""
    return int.from_bytes(a, "big") ^ int.from_bytes(b, "big")


def shared_prefix_bits(a: bytes, b: bytes) -> int:
    """How many leading bits ``a`` and ``b`` share (256 when equal)."""
    x = int.from_bytes(a, "big") ^ int.from_bytes(b, "big")
    return ID_SIZE * 8 - x.bit_length()
