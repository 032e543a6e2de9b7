"""What a persistent hyperdht node stores for others, with hyperdht's TTLs and caps.

Every map is bounded (the oldest entry goes first) and entries expire; time is
passed in, never read.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

from hyperswarm_hugin.protocol.encoding import Address

V = TypeVar("V")

RECORD_TTL = 20 * 60.0
RECORD_CAP = 65_536
VALUE_TTL = 48 * 3600.0
VALUE_CAP = 32_768
LOOKUP_LIMIT = 20


class ExpiringMap(Generic[V]):
    """A bounded map whose entries expire ``ttl`` seconds after they were (re)set."""

    def __init__(self, ttl: float, cap: int) -> None:
        self.ttl = ttl
        self.cap = cap
        self._items: OrderedDict[bytes, tuple[V, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def set(self, key: bytes, value: V, now: float) -> None:
        self._items.pop(key, None)
        self._items[key] = (value, now + self.ttl)
        while len(self._items) > self.cap:
            self._items.popitem(last=False)

    def get(self, key: bytes, now: float) -> V | None:
        found = self._items.get(key)
        if found is None:
            return None
        if found[1] <= now:
            del self._items[key]
            return None
        return found[0]

    def delete(self, key: bytes) -> None:
        self._items.pop(key, None)


@dataclass(slots=True)
class RouterEntry:
    """A server that announced itself here: where to relay its handshakes, and its record."""

    relay: Address
    record: bytes


class TopicRecords:
    """Peer records per topic, keyed by public key, at most ``cap`` in all."""

    def __init__(self, ttl: float = RECORD_TTL, cap: int = RECORD_CAP, rng: random.Random | None = None) -> None:
        self.ttl = ttl
        self.cap = cap
        self.rng = rng or random.Random()
        self._topics: dict[bytes, OrderedDict[bytes, tuple[bytes, float]]] = {}
        self._order: OrderedDict[tuple[bytes, bytes], None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._order)

    def add(self, topic: bytes, public_key: bytes, record: bytes, now: float) -> None:
        peers = self._topics.setdefault(topic, OrderedDict())
        peers.pop(public_key, None)
        peers[public_key] = (record, now + self.ttl)
        self._order.pop((topic, public_key), None)
        self._order[(topic, public_key)] = None
        while len(self._order) > self.cap:
            (old_topic, old_key), _ = self._order.popitem(last=False)
            self._drop(old_topic, old_key)

    def remove(self, topic: bytes, public_key: bytes) -> None:
        self._order.pop((topic, public_key), None)
        self._drop(topic, public_key)

    def _drop(self, topic: bytes, public_key: bytes) -> None:
        peers = self._topics.get(topic)
        if peers is not None:
            peers.pop(public_key, None)
            if not peers:
                del self._topics[topic]

    def get(self, topic: bytes, now: float, limit: int = LOOKUP_LIMIT) -> list[bytes]:
        peers = self._topics.get(topic)
        if not peers:
            return []
        expired = [k for k, (_, until) in peers.items() if until <= now]
        for key in expired:
            self.remove(topic, key)
        if topic not in self._topics:
            return []
        records = [record for record, _ in peers.values()]
        # A random sample, as hyperdht's record-cache gives: with more than ``limit`` peers on a
        # topic, successive lookups see different ones instead of always the newest.
        return records if len(records) <= limit else self.rng.sample(records, limit)


class Storage:
    """Everything a persistent node keeps for the network."""

    def __init__(self) -> None:
        self.records = TopicRecords()
        self.router: ExpiringMap[RouterEntry] = ExpiringMap(RECORD_TTL, RECORD_CAP)
        self.bumps: ExpiringMap[int] = ExpiringMap(RECORD_TTL, RECORD_CAP)
        self.refreshes: ExpiringMap[tuple[bytes, bytes, bool]] = ExpiringMap(RECORD_TTL, RECORD_CAP)
        self.mutables: ExpiringMap[bytes] = ExpiringMap(VALUE_TTL, VALUE_CAP)
        self.immutables: ExpiringMap[bytes] = ExpiringMap(VALUE_TTL, VALUE_CAP)
