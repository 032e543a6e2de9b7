"""Deciding whom to let in: per-source handshake rate limits and failure throttling.

Pure bookkeeping with time passed in.  Every table is bounded (least recently
touched entries are forgotten first), so a flood of sources cannot grow memory.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per key: ``burst`` at once, then ``rate`` per second."""

    def __init__(self, rate: float, burst: int, max_keys: int = 4096) -> None:
        if rate <= 0 or burst < 1 or max_keys < 1:
            raise ValueError("rate and max_keys must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[Hashable, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def allow(self, key: Hashable, now: float) -> bool:
        """Take one token for ``key``; False when its bucket is empty."""
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(float(self.burst), now)
        else:
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        self._buckets[key] = bucket
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return True
        return False


@dataclass(slots=True)
class _Failures:
    count: int
    first: float
    blocked_until: float = 0.0


class FailureThrottle:
    """Block a key for ``block_for`` seconds after ``limit`` failures within ``window`` seconds."""

    def __init__(self, limit: int = 3, window: float = 60.0, block_for: float = 60.0,
                 max_keys: int = 4096) -> None:
        self.limit = limit
        self.window = window
        self.block_for = block_for
        self.max_keys = max_keys
        self._keys: OrderedDict[Hashable, _Failures] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def blocked(self, key: Hashable, now: float) -> bool:
        entry = self._keys.get(key)
        return entry is not None and now < entry.blocked_until

    def failed(self, key: Hashable, now: float) -> bool:
        """Record a failure; True when this one puts ``key`` in the blocked state."""
        entry = self._keys.pop(key, None)
        if entry is None or now - entry.first > self.window:
            entry = _Failures(0, now, entry.blocked_until if entry else 0.0)
        entry.count += 1
        newly_blocked = False
        if entry.count >= self.limit and now >= entry.blocked_until:
            entry.blocked_until = now + self.block_for
            entry.count = 0
            entry.first = now
            newly_blocked = True
        self._keys[key] = entry
        if len(self._keys) > self.max_keys:
            self._keys.popitem(last=False)
        return newly_blocked


Address = tuple[str, int]

RELAY_RATE_FACTOR = 10
"""A relay's host may pass on this many times a client host's rate (it serves many clients)."""


@dataclass(frozen=True, slots=True)
class AdmissionLimits:
    """The numbers of :class:`HandshakeAdmission` (docs/security.md lists them).

    Rates are handshakes per second with a burst; failures are group-check failures.
    """

    rate: float = 5.0  # per client host (direct), or per client host behind one relay host
    burst: int = 20
    relay_rate: float = rate * RELAY_RATE_FACTOR  # per relay host, all the clients it relays
    relay_burst: int = burst * RELAY_RATE_FACTOR
    global_rate: float = 200.0  # all handshakes together: bounds the CPU a flood can take
    global_burst: int = 400
    reserve_rate: float = 200.0  # past the global rate, a reserve ...
    reserve_burst: int = 400
    reserve_host_rate: float = 2.0  # ... of which each sending host (or relay) gets this much
    reserve_host_burst: int = 5
    failures: int = 3  # per client (host, port): blocked after this many failures ...
    host_failures: int = 20  # ... and its whole host after this many, within window
    window: float = 60.0
    block_for: float = 60.0
    max_keys: int = 4096  # per table; least recently used entries are forgotten


class HandshakeAdmission:
    """Rate limits and failure throttling for incoming handshakes, keyed on what the sender
    cannot forge.

    ``source`` is the datagram's source address as the socket saw it; ``relayed_for`` is the
    client address a relay wrote into a relayed handshake (``None`` for a direct one).  That
    field is only as honest as the relay: limits that use it are always keyed together with the
    relay's host, so a forged one costs the forger's own budget and nobody else's.  A direct
    client is limited by host, so changing ports does not reset its budget.
    """

    def __init__(self, limits: AdmissionLimits | None = None) -> None:
        self.limits = lim = limits or AdmissionLimits()
        self.clients = RateLimiter(lim.rate, lim.burst, lim.max_keys)
        self.relays = RateLimiter(lim.relay_rate, lim.relay_burst, lim.max_keys)
        self.everyone = RateLimiter(lim.global_rate, lim.global_burst, 1)
        self.reserve = RateLimiter(lim.reserve_rate, lim.reserve_burst, 1)
        self.reserve_hosts = RateLimiter(lim.reserve_host_rate, lim.reserve_host_burst, lim.max_keys)
        self.client_failures = FailureThrottle(lim.failures, lim.window, lim.block_for, lim.max_keys)
        self.host_failures = FailureThrottle(lim.host_failures, lim.window, lim.block_for, lim.max_keys)

    @staticmethod
    def _keys(source: Address, relayed_for: Address | None) -> tuple[Hashable, Hashable]:
        """(the client host's key, the client's (host, port) key)."""
        if relayed_for is None:
            return source[0], source
        return (source[0], relayed_for[0]), (source[0], relayed_for)

    def admit(self, source: Address, relayed_for: Address | None, now: float) -> str | None:
        """None to go on with the handshake, else why not: ``throttled``, ``rate-limited`` (this
        client or relay), or ``busy`` (the global budget is spent)."""
        host_key, client_key = self._keys(source, relayed_for)
        if self.client_failures.blocked(client_key, now) or self.host_failures.blocked(host_key, now):
            return "throttled"
        if not self.clients.allow(host_key, now):
            return "rate-limited"
        if relayed_for is not None and not self.relays.allow(source[0], now):
            return "rate-limited"
        if self.everyone.allow(None, now):
            return None
        # A flood took the global budget.  What is left is a reserve shared out by sending host
        # (each gets a trickle of it): a member arriving through its own relay, or directly, still
        # gets in, as long as the flood comes from fewer hosts than the reserve has trickles.
        if self.reserve_hosts.allow(source[0], now) and self.reserve.allow(None, now):
            return None
        return "busy"

    def failed(self, source: Address, relayed_for: Address | None, now: float) -> bool:
        """Record a failed group check; True when it blocks the client (or its host) from now."""
        host_key, client_key = self._keys(source, relayed_for)
        client_blocked = self.client_failures.failed(client_key, now)
        host_blocked = self.host_failures.failed(host_key, now)
        return client_blocked or host_blocked

    def table_sizes(self) -> dict[str, int]:
        return {"clients": len(self.clients), "relays": len(self.relays), "reserve_hosts": len(self.reserve_hosts),
                "client_failures": len(self.client_failures), "host_failures": len(self.host_failures)}
