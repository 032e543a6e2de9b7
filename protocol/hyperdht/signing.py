"""Signatures hyperdht stores and checks (hyperdht.md §6)."""

from __future__ import annotations

import hashlib

from hyperswarm_hugin.protocol.hugin import KeyPair, verify
from hyperswarm_hugin.protocol.hyperdht.messages import encode_mutable_signable
from hyperswarm_hugin.protocol.namespaces import NS_ANNOUNCE, NS_MUTABLE_PUT, NS_UNANNOUNCE


def blake2b_256(*parts: bytes) -> bytes:
    h = hashlib.blake2b(digest_size=32)
    for part in parts:
        h.update(part)
    return h.digest()


def announce_signable(target: bytes, node_id: bytes, token: bytes, encoded_peer: bytes,
                      refresh: bytes | None, *, unannounce: bool = False) -> bytes:
    """What an (un)announcer signs for one storing node (its id and token are bound in)."""
    ns = NS_UNANNOUNCE if unannounce else NS_ANNOUNCE
    return ns + blake2b_256(target, node_id, token, encoded_peer, refresh or b"")


def sign_announce(key_pair: KeyPair, target: bytes, node_id: bytes, token: bytes, encoded_peer: bytes,
                  refresh: bytes | None = None, *, unannounce: bool = False) -> bytes:
    return key_pair.sign(announce_signable(target, node_id, token, encoded_peer, refresh, unannounce=unannounce))


def verify_announce(public_key: bytes, signature: bytes, target: bytes, node_id: bytes, token: bytes,
                    encoded_peer: bytes, refresh: bytes | None, *, unannounce: bool = False) -> bool:
    signable = announce_signable(target, node_id, token, encoded_peer, refresh, unannounce=unannounce)
    return verify(public_key, signable, signature)


def mutable_signable(seq: int, value: bytes) -> bytes:
    return NS_MUTABLE_PUT + blake2b_256(encode_mutable_signable(seq, value))


def sign_mutable(key_pair: KeyPair, seq: int, value: bytes) -> bytes:
    return key_pair.sign(mutable_signable(seq, value))


def verify_mutable(public_key: bytes, signature: bytes, seq: int, value: bytes) -> bool:
    return verify(public_key, mutable_signable(seq, value), signature)
