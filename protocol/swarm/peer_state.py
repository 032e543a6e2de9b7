"""What the swarm remembers about one remote public key, and how events change it.

The transitions follow hyperswarm 4.x's ``PeerInfo``: a peer's priority comes from how
many times in a row connecting to it failed; a connection that lasted at least
:data:`MIN_CONNECTION_TIME` resets that count (fast retry); banned peers are never queued.
Every transition returns a new frozen :class:`PeerState`, so the last one reported is always
a complete snapshot the supervisor can restart a peer from.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hyperswarm_hugin.protocol.encoding import Address

MIN_CONNECTION_TIME = 15.0

VERY_LOW_PRIORITY = 0
LOW_PRIORITY = 1
NORMAL_PRIORITY = 2
HIGH_PRIORITY = 3
VERY_HIGH_PRIORITY = 4

EXPLICIT_MAX_ATTEMPTS = 5
"""An explicitly joined peer is retried outside the queue until this many attempts failed."""


@dataclass(frozen=True, slots=True)
class PeerState:
    public_key: bytes
    relay_addresses: tuple[Address, ...] = ()
    topics: tuple[bytes, ...] = ()
    attempts: int = 0
    priority: int = NORMAL_PRIORITY
    proven: bool = False
    banned: bool = False
    explicit: bool = False
    reconnecting: bool = True
    queued: bool = False
    waiting: bool = False
    client: bool = False
    connected_at: float | None = None
    disconnected_at: float | None = None

    @property
    def prioritized(self) -> bool:
        return self.priority >= NORMAL_PRIORITY

    @property
    def collectable(self) -> bool:
        """Nothing keeps this entry alive once it has no connection (hyperswarm's shouldGC)."""
        return not (self.banned or self.queued or self.explicit or self.waiting)

    def _computed_priority(self) -> int:
        if self.attempts > 3:
            return VERY_LOW_PRIORITY
        return {0: NORMAL_PRIORITY, 1: VERY_HIGH_PRIORITY, 2: HIGH_PRIORITY, 3: LOW_PRIORITY}[self.attempts]

    def with_priority(self) -> tuple[PeerState, bool]:
        """Recompute the priority; False when the peer must not be queued now."""
        state = self
        if state.explicit and state.attempts > 3:
            state = replace(state, attempts=3)  # explicit peers come back at low priority
        if state.banned or state.queued or state.attempts > 3:
            return state, False
        return replace(state, priority=state._computed_priority()), True

    def found(self, topic: bytes, relay_addresses: tuple[Address, ...], connected: bool) -> PeerState:
        """Seen in a lookup of ``topic``: newest relay addresses win; a peer we are not connected
        to that is deprioritized, or that last came to us as a server connection, starts afresh."""
        topics = self.topics if topic in self.topics else (*self.topics, topic)
        state = replace(self, relay_addresses=relay_addresses, topics=topics)
        if not connected and (not state.prioritized or not state.client):
            state = replace(state, client=False, proven=False, attempts=0)
        return state

    def connected(self, now: float, client: bool) -> PeerState:
        return replace(self, proven=True, connected_at=now, client=client)

    def disconnected(self, now: float) -> PeerState:
        attempts = self.attempts
        if self.connected_at is not None and now - self.connected_at >= MIN_CONNECTION_TIME:
            attempts = 0
        return replace(self, disconnected_at=now, connected_at=None, attempts=attempts + 1)

    def explicit_retry_allowed(self, now: float) -> bool:
        """hyperswarm's rule for explicit peers: fewer than 5 attempts, ``attempts`` seconds apart."""
        if self.attempts >= EXPLICIT_MAX_ATTEMPTS:
            return False
        return self.disconnected_at is None or now - self.disconnected_at >= self.attempts * 1.0
