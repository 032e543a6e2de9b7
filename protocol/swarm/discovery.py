"""When a joined topic is announced and looked up: hyperswarm's PeerDiscovery schedule, plus ours.

hyperswarm refreshes a topic every 10 minutes (plus up to 2 minutes of jitter).  Peers that join
at the same moment therefore miss each other until that refresh: each looked up before the
others' announces had landed.  We add *settle* lookups after the first query completes, at
``settle_delay × (1..2)`` and ``4 × settle_delay`` later: for two peers A and B, A's settle
lookup starts after A's announce landed, and B's after B's, so one of the two lookups runs after
both announces and finds the other.  Two extra lookups per join, then hyperswarm's schedule.

A query that failed (no DHT node answered, or the announce was accepted nowhere) is tried again
after ``RETRY_FIRST`` seconds, doubling up to ``RETRY_MAX``, instead of at the 10-minute refresh:
a peer that started before its DHT nodes did still joins as soon as they are up.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from enum import StrEnum

REFRESH_INTERVAL = 600.0
REFRESH_JITTER = 120.0
SETTLE_FACTORS = (1.0, 4.0)
RETRY_FIRST = 1.0
RETRY_MAX = 30.0



class QueryKind(StrEnum):
    """What one query of a topic does (hyperdht's announce, lookup, lookupAndUnannounce)."""

    ANNOUNCE = "announce"
    """Announce us (a server) and find the peers on the way."""
    LOOKUP = "lookup"
    LOOKUP_UNANNOUNCE = "lookup-unannounce"
    """Look up and take back a record we announced before (we stopped being a server)."""


@dataclass(frozen=True, slots=True)
class TopicState:
    topic: bytes
    is_server: bool = False
    is_client: bool = False
    clock: int = 0
    running: QueryKind | None = None
    needs_unannounce: bool = False
    settles_left: int = len(SETTLE_FACTORS)
    settle_at: float | None = None
    refresh_at: float | None = None
    failures: int = 0
    suspended: bool = False
    left: bool = False

    @property
    def wake_at(self) -> float | None:
        times = [t for t in (self.settle_at, self.refresh_at) if t is not None]
        return min(times) if times else None


@dataclass(frozen=True, slots=True)
class Step:
    """A transition's result: the new state, a query to start (kind) and whether to unannounce."""

    state: TopicState
    query: QueryKind | None = None
    unannounce: bool = False


def _start(state: TopicState, kind: QueryKind | None = None) -> Step:
    if kind is None:
        kind = (QueryKind.ANNOUNCE if state.is_server else QueryKind.LOOKUP_UNANNOUNCE if state.needs_unannounce
                else QueryKind.LOOKUP)
    state = replace(state, clock=state.clock + 1, running=kind, refresh_at=None,
                    needs_unannounce=state.needs_unannounce or kind is QueryKind.ANNOUNCE)
    return Step(state, kind)


def refresh(state: TopicState, server: bool, client: bool) -> Step:
    """New roles (or the same): start a query unless one for these roles is already running."""
    if state.left:
        return Step(state)
    changed = (server, client) != (state.is_server, state.is_client)
    state = replace(state, is_server=server, is_client=client)
    if state.suspended or (not changed and state.running is not None):
        return Step(state)
    return _start(state)


def query_done(state: TopicState, clock: int, ok: bool, now: float, rng: random.Random,
               settle_delay: float) -> Step:
    if clock != state.clock or state.running is None:
        return Step(state)
    kind = state.running
    if not ok:
        failures = state.failures + 1
        retry = min(RETRY_MAX, RETRY_FIRST * 2 ** min(failures - 1, 8))
        return Step(replace(state, running=None, failures=failures, refresh_at=now + retry))
    state = replace(state, running=None, failures=0,
                    refresh_at=now + REFRESH_INTERVAL + REFRESH_JITTER * rng.random())
    if kind is QueryKind.LOOKUP_UNANNOUNCE:
        state = replace(state, needs_unannounce=False)
    if state.settles_left and state.settle_at is None and state.is_client:
        done = len(SETTLE_FACTORS) - state.settles_left
        factor = SETTLE_FACTORS[done] * (1.0 + rng.random() if done == 0 else 1.0)
        state = replace(state, settle_at=now + settle_delay * factor)
    return Step(state)


def tick(state: TopicState, now: float) -> Step:
    if state.left or state.suspended:
        return Step(state)
    if state.settle_at is not None and state.settle_at <= now:
        state = replace(state, settle_at=None, settles_left=state.settles_left - 1)
        if state.running is None:
            return _start(state, QueryKind.LOOKUP)
    if state.refresh_at is not None and state.refresh_at <= now and state.running is None:
        return _start(state)
    return Step(state)


def _stop(state: TopicState) -> Step:
    unannounce = state.needs_unannounce
    state = replace(state, clock=state.clock + 1, running=None, settle_at=None, refresh_at=None,
                    needs_unannounce=False)
    return Step(state, unannounce=unannounce)


def suspend(state: TopicState) -> Step:
    return Step(state) if state.suspended else _stop(replace(state, suspended=True))


def resume(state: TopicState) -> Step:
    if not state.suspended or state.left:
        return Step(state)
    return _start(replace(state, suspended=False))


def leave(state: TopicState) -> Step:
    return Step(state) if state.left else _stop(replace(state, left=True))
