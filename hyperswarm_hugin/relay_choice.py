"""Which blind relay a connection uses (hyperdht's ``relayThrough``), apart from
:mod:`hyperswarm_hugin.blind_relay` so that a peer that never relays does not load the relay code."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

RelayThrough = bytes | Sequence[bytes] | Callable[[], "bytes | None"] | None
"""A relay's public key, a list to pick from at random, or a function that returns one (or
None for no relay), as hyperdht's ``relayThrough``."""


def select_relay(relay_through: RelayThrough, rng: random.Random | None = None) -> bytes | None:
    """The relay key to use for one connection (hyperdht's ``selectRelay``)."""
    choice = relay_through() if callable(relay_through) else relay_through
    if choice is None:
        return None
    if isinstance(choice, bytes | bytearray):
        key = bytes(choice)
    else:
        keys = list(choice)
        if not keys:
            return None
        key = bytes((rng or random).choice(keys))
    if len(key) != 32:
        raise ValueError("relay_through: a relay's public key is 32 bytes")
    return key


def check_relay_through(relay_through: RelayThrough) -> RelayThrough:
    """``relay_through`` if it is a key, a list of keys or a callable; ValueError otherwise."""
    if relay_through is None or callable(relay_through):
        return relay_through
    keys = [relay_through] if isinstance(relay_through, bytes | bytearray) else list(relay_through)
    for key in keys:
        if not isinstance(key, bytes | bytearray) or len(key) != 32:
            raise ValueError("relay_through: a relay's public key is 32 bytes (or a list of them, or a function)")
    return relay_through
