"""The swarm's dial queue: peers waiting for a client connection, by priority.

As hyperswarm's queue: the highest priority is served first and, within a priority, a peer is
taken at random (so one slow peer does not hold the others' turn in a fixed order).
"""

from __future__ import annotations

import random


class DialQueue:
    def __init__(self) -> None:
        self._buckets: dict[int, list[bytes]] = {}

    def __len__(self) -> int:
        return sum(len(bucket) for bucket in self._buckets.values())

    def push(self, public_key: bytes, priority: int) -> None:
        self._buckets.setdefault(priority, []).append(public_key)

    def pop(self, rng: random.Random) -> bytes | None:
        """A peer of the highest priority waiting, taken at random; None when empty."""
        for priority in sorted(self._buckets, reverse=True):
            bucket = self._buckets[priority]
            if bucket:
                index = rng.randrange(len(bucket))
                bucket[index], bucket[-1] = bucket[-1], bucket[index]
                return bucket.pop()
        return None

    def clear(self) -> list[bytes]:
        """Empty the queue: the peers that were waiting."""
        waiting = [key for bucket in self._buckets.values() for key in bucket]
        self._buckets.clear()
        return waiting
