"""hyperswarm's retry timer: four bulk timers (short, medium, long, very long), time as an argument.

A peer whose connection closed waits on one of them, chosen from its attempts and whether it
ever connected (``select_backoff``).  A bulk timer ticks every ``0.66 × period``; what was added
before one tick fires at the next, so a peer waits between 0.66 and 1.32 periods, and peers that
fail together come back together.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Sequence

from hyperswarm_hugin.protocol.swarm.peer_state import PeerState

BACKOFF_JITTER = 0.5
BACKOFFS = (1.0, 5.0, 15.0, 600.0)
JITTER_SCALE = (1, 2, 4, 240)
"""The default backoffs carry their own random part, scaled like hyperswarm's."""

SHORT, MEDIUM, LONG, VERY_LONG = range(4)


def select_backoff(state: PeerState) -> int | None:
    """Which timer a disconnected peer waits on, or None when it is not retried."""
    if state.banned or not state.reconnecting:
        return None
    if state.attempts > 3:
        return VERY_LONG if state.explicit else None
    if state.attempts == 0:
        return SHORT
    if state.proven:
        return (SHORT, MEDIUM, LONG)[state.attempts - 1]
    return (MEDIUM, LONG, LONG)[state.attempts - 1]


class BulkTimer:
    """Fires, at each tick, the keys added before the previous tick."""

    def __init__(self, period: float) -> None:
        if period <= 0:
            raise ValueError("a timer period must be positive")
        self.interval = period * 0.66
        self.next_tick: float | None = None
        self._next: list[Hashable] = []
        self._pending: list[Hashable] = []

    def add(self, key: Hashable, now: float) -> None:
        if self.next_tick is None:
            self.next_tick = now + self.interval
        self._pending.append(key)

    def due(self, now: float) -> list[Hashable]:
        fired: list[Hashable] = []
        while self.next_tick is not None and self.next_tick <= now:
            fired.extend(self._next)
            self._next, self._pending = self._pending, []
            self.next_tick = self.next_tick + self.interval if self._next else None
        return fired


class RetryTimers:
    """The four timers of one swarm."""

    def __init__(self, rng: random.Random, backoffs: Sequence[float] | None = None,
                 jitter: float = BACKOFF_JITTER) -> None:
        if backoffs is None:
            backoffs = [b + BACKOFF_JITTER * s * rng.random() for b, s in zip(BACKOFFS, JITTER_SCALE, strict=True)]
        if len(backoffs) != 4:
            raise ValueError("backoffs are four durations in seconds (short, medium, long, very long)")
        if jitter < 0:
            raise ValueError("jitter must not be negative")
        self.periods = tuple(b + jitter * rng.random() for b in backoffs)
        self.timers = [BulkTimer(p) for p in self.periods]

    def add(self, key: Hashable, backoff: int, now: float) -> None:
        self.timers[backoff].add(key, now)

    def due(self, now: float) -> list[Hashable]:
        fired: list[Hashable] = []
        for timer in self.timers:
            fired.extend(timer.due(now))
        return fired

    def next_wake(self) -> float | None:
        ticks = [t.next_tick for t in self.timers if t.next_tick is not None]
        return min(ticks) if ticks else None
