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
