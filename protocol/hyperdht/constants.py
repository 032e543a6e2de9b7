"""hyperdht's named wire values (lib/constants.js): firewall classes and payload error codes.

Both are IntEnums, so they encode as the plain integers Node sends.
"""

from __future__ import annotations

from enum import IntEnum


class Firewall(IntEnum):
    """How reachable a peer's socket is (hyperdht.md §2.3, holepunch.md §1)."""

    UNKNOWN = 0
    OPEN = 1
    CONSISTENT = 2
    RANDOM = 3


class PayloadError(IntEnum):
    """The ``error`` field of a Noise or holepunch payload."""

    NONE = 0
    ABORTED = 1
    VERSION_MISMATCH = 2
    TRY_LATER = 3


def coerce_firewall(firewall: int) -> Firewall:
    """OPEN is punched as CONSISTENT (holepuncher.js ``coerceFirewall``); unknown ints stay UNKNOWN."""
    try:
        value = Firewall(firewall)
    except ValueError:
        return Firewall.UNKNOWN
    return Firewall.CONSISTENT if value is Firewall.OPEN else value
