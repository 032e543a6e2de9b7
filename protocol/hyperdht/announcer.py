"""A server's announcer policy (hyperdht-hugin's ``Announcer``), with no I/O and no clock.

An announce walks to the nodes closest to ``hash(public_key)`` and sends ANNOUNCE to the best
three; a node is a relay only once it answered that ANNOUNCE with error 0.  Between announces the
relays are pinged every :data:`PING_INTERVAL` seconds; when fewer than ``min(relays, 3)`` answer,
the server announces again at once, else after :data:`PING_ROUNDS` rounds (~5 minutes).  Relays
that a new announce dropped are unannounced.  Time comes in as an argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

from hyperswarm_hugin.protocol.dht.query import QueryReply
from hyperswarm_hugin.protocol.encoding import Address

MIN_ACTIVE = 3
"""Fewer relays than this (or than we have) answering a ping round: announce again."""
MAX_RELAYS = 3
PING_INTERVAL = 3.0
PING_ROUNDS = 100
"""Ping rounds between two announces when every relay answers (~5 minutes)."""
RETRY_MAX = 30.0
"""An announce that no node stored is retried after 1, 2, 4 .. at most this many seconds."""


class Step(Enum):
    """What the announcer does next."""

    ANNOUNCE = "announce"
    PING = "ping"


def pick_best(closest: Sequence[QueryReply]) -> list[QueryReply]:
    """The closest replies we can announce at (they gave an id and a token), at most MAX_RELAYS."""
    return [r for r in closest if r.id is not None and r.token is not None][:MAX_RELAYS]


def too_few_answered(answered: int, asked: int) -> bool:
    """Did a ping round lose too many relays (hyperdht-hugin: fewer than min(asked, 3) answered)?"""
    return answered < min(asked, MIN_ACTIVE)


class RelayGenerations:
    """The relays that stored our record in the last three announces (hyperdht's ``_serverRelays``)."""

    def __init__(self) -> None:
        self._gens: list[dict[Address, None]] = [{}, {}, {}]

    def cycle(self) -> None:
        """A new announce starts: the current relays become the previous ones."""
        oldest = self._gens.pop(0)
        oldest.clear()
        self._gens.append(oldest)

    def stored(self, relay: Address) -> None:
        """``relay`` answered our ANNOUNCE with error 0."""
        self._gens[2][relay] = None

    def current(self) -> list[Address]:
        return list(self._gens[2])

    def dropped(self) -> list[Address]:
        """Relays of the previous announce that the current one did not keep (to unannounce)."""
        return [a for a in self._gens[1] if a not in self._gens[2]]

    def is_relay(self, address: Address) -> bool:
        return any(address in gen for gen in self._gens)


class AnnounceSchedule:
    """When the next ping round or announce is due."""

    def __init__(self) -> None:
        self.rounds = 0
        self.failures = 0

    def after_announce(self, relays: int, now: float) -> tuple[Step, float]:
        """An announce ended with ``relays`` nodes storing our record."""
        self.rounds = 0
        if relays:
            self.failures = 0
            return Step.PING, now + PING_INTERVAL
        # Stored nowhere (no node answered yet): retry soon rather than in ~5 minutes.
        self.failures += 1
        return Step.ANNOUNCE, now + min(RETRY_MAX, 2.0 ** min(self.failures - 1, 5))

    def after_pings(self, answered: int, asked: int, now: float) -> tuple[Step, float]:
        """A ping round of ``asked`` relays ended with ``answered`` replies."""
        if too_few_answered(answered, asked):
            return Step.ANNOUNCE, now
        self.rounds += 1
        if self.rounds >= PING_ROUNDS:
            return Step.ANNOUNCE, now
        return Step.PING, now + PING_INTERVAL
