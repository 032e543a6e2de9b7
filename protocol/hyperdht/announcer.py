"""A server's announcer policy (hyperdht-hugin's ``Announcer``), with no I/O and no clock.

An announce walks to the nodes closest to ``hash(public_key)`` and sends ANNOUNCE to the best
three; a node is a relay only once it answered that ANNOUNCE with error 0.  Between announces the
relays are pinged every :data:`PING_INTERVAL` seconds; when fewer than ``min(relays, 3)`` answer,
the server announces again at once, else after :data:`PING_ROUNDS` rounds (~5 minutes).  Relays
that a new announce dropped are unannounced.  Time comes in as an argument.

Four differences from hyperdht on purpose, so that a dead relay is replaced in seconds: a relay
ping is sent twice (:data:`RELAY_PING_RETRIES`), not four times, before the relay counts as
silent; the walk that replaces it starts at the first miss, while the relay gets its second
try, so the ANNOUNCEs can go out as soon as that try fails; the silent relays stop being offered
to clients at once, before the new announce ends; and the new announce neither starts its walk
at them nor unannounces there (see :func:`lost`), nor does any walk of ours visit them for the
next ten minutes (:func:`still_avoided`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from enum import Enum

from hyperswarm_hugin.protocol.dht.query import QueryReply
from hyperswarm_hugin.protocol.encoding import Address

MIN_ACTIVE = 3
"""Fewer relays than this (or than we have) answering a ping round: announce again."""
MAX_RELAYS = 3
PING_INTERVAL = 3.0
PING_ROUNDS = 100
"""Ping rounds between two announces when every relay answers (~5 minutes)."""
RELAY_PING_RETRIES = 1
"""A relay ping is sent this many more times (each try waits 1 s) before the relay counts as
silent.  hyperdht's ping has dht-rpc's default of 3 (silent after 4 s); a relay wrongly taken for
silent costs one announce, which keeps it as a relay when it answers that announce.  The
replacement walk starts after the first try missed (:func:`walk_early`)."""
SILENT_AVOIDED_FOR = 600.0
"""Seconds a relay that went silent is left out of our walks (the closest nodes' tables still
list it for minutes, and each walk toward our target would wait out its first timeout)."""
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


def lost(relays: Sequence[Address], answered: Sequence[bool]) -> list[Address]:
    """The relays of a ping round that did not answer (``answered[i]`` is relay i's answer).

    The adapter stops offering them to clients at once, has the next announce's walk leave them
    out (not seeded, never visited) and does not unannounce at them: each of those would wait out
    a dead node's retries.
    """
    return [a for a, ok in zip(relays, answered, strict=True) if not ok]


def walk_early(missed: Collection[Address], relays: Sequence[Address]) -> bool:
    """Start the replacement walk now, while ``missed`` (the relays that missed a try of this
    round) get their next try?  Yes when their all being silent would mean announcing again:
    the walk (~1 s, leaving them out) then overlaps the retry instead of following it."""
    return bool(missed) and too_few_answered(len(relays) - len(missed), len(relays))


def still_avoided(silent_since: dict[Address, float], now: float) -> list[Address]:
    """The relays that went silent in the last :data:`SILENT_AVOIDED_FOR` seconds
    (``silent_since[a]``: when ``a`` missed a round); older ones are forgotten."""
    for address in [a for a, t in silent_since.items() if now - t >= SILENT_AVOIDED_FOR]:
        del silent_since[address]
    return sorted(silent_since)


def walk_seeds(closest: Sequence[Address] | None, silent: Collection[Address]) -> list[Address] | None:
    """Where the next announce's walk starts: the previous closest nodes but the silent relays
    (None: from the routing table)."""
    if closest is None:
        return None
    return [a for a in closest if a not in silent] or None


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
