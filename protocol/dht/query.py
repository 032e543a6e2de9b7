"""The iterative lookup (dht-rpc §8): walk towards a target, k closest repliers.

Pure bookkeeping: the DHT node asks :meth:`Query.next_visit` for addresses to
send to and reports replies and timeouts back.  It holds no clock and sends
nothing itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from hyperswarm_hugin.protocol.dht.ids import node_id
from hyperswarm_hugin.protocol.encoding import Address

K = 20


class Visit(Enum):
    PENDING = 1
    DONE = 2
    DOWN = 3


@dataclass(slots=True)
class QueryReply:
    """One successful reply collected by a query."""

    id: bytes | None
    address: Address
    token: bytes | None
    value: bytes | None
    to: Address
    distance: int = 0


@dataclass(slots=True)
class _Seen:
    state: Visit
    referrers: list[Address] = field(default_factory=list)


class Query:
    """State of one iterative lookup for ``target``."""

    def __init__(
        self,
        target: bytes,
        *,
        own_id: bytes | None,
        k: int = K,
        concurrency: int = 10,
        from_table: bool = True,
    ) -> None:
        if len(target) != 32:
            raise ValueError("a query target is 32 bytes")
        self.target = target
        self._t = int.from_bytes(target, "big")
        self.own_id = own_id
        self.k = k
        self.concurrency = concurrency
        self.from_table = from_table
        self.closest: list[QueryReply] = []
        self.values: list[QueryReply] = []
        """Every successful reply that carried a value, in arrival order (hyperdht streams these)."""
        self._pending: list[tuple[Address, bytes]] = []
        self._seen: dict[Address, _Seen] = {}
        self.inflight = 0
        self.slow = 0
        self.successes = 0
        self.errors = 0
        self.reseeded = False

    def _distance(self, some_id: bytes) -> int:
        return int.from_bytes(some_id, "big") ^ self._t

    def is_closer(self, some_id: bytes) -> bool:
        """True while fewer than k replies are in, or ``some_id`` beats the k-th best."""
        if len(self.closest) < self.k:
            return True
        return self._distance(some_id) < self.closest[-1].distance

    def add_candidate(self, addr: Address, referrer: Address | None = None) -> bool:
        """Consider ``addr``; False when it is not worth visiting (the caller stops there)."""
        seen = self._seen.get(addr)
        if seen is not None:
            if referrer is not None and seen.state is not Visit.DOWN:
                seen.referrers.append(referrer)
            return True
        cid = node_id(addr)
        if cid == self.own_id:
            return True
        if not self.is_closer(cid):
            return False
        self._seen[addr] = _Seen(Visit.PENDING, [referrer] if referrer else [])
        self._pending.append((addr, cid))
        return True

    def is_down(self, addr: Address) -> bool:
        seen = self._seen.get(addr)
        return seen is not None and seen.state is Visit.DOWN

    def _effective_concurrency(self) -> int:
        if not self.from_table and self.successes + self.errors < self.concurrency:
            return min(3, self.concurrency) + self.slow
        return self.concurrency + self.slow

    def next_visit(self) -> Address | None:
        """The next address to send to now, or None when the window is full or none is left."""
        while self.inflight < self._effective_concurrency() and self._pending:
            addr, cid = self._pending.pop()
            if not self.is_closer(cid):
                continue
            self.inflight += 1
            return addr
        return None

    def on_slow(self) -> None:
        """A request has timed out once: it no longer holds a concurrency slot."""
        self.slow += 1

    def on_reply(
        self,
        addr: Address,
        *,
        replier_id: bytes | None,
        error: int,
        closer_nodes: list[Address],
        token: bytes | None,
        value: bytes | None,
        to: Address,
        was_slow: bool,
    ) -> list[Address]:
        """Record a reply; returns the listed addresses already known to be down."""
        self._finish_visit(addr, was_slow, Visit.DONE)
        if error:
            self.errors += 1
        else:
            self.successes += 1
            reply = QueryReply(replier_id, addr, token, value, to,
                               self._distance(replier_id) if replier_id is not None else 0)
            if value is not None:
                self.values.append(reply)
            if replier_id is not None and self.is_closer(replier_id):
                self._insert(reply)
        down: list[Address] = []
        for listed in closer_nodes:
            if self.is_down(listed):
                down.append(listed)
                continue
            if not self.add_candidate(listed, addr):
                break
        return down

    def on_timeout(self, addr: Address, was_slow: bool) -> list[Address]:
        """A visited node never answered; returns the nodes that listed it (to hint)."""
        self.errors += 1
        seen = self._finish_visit(addr, was_slow, Visit.DOWN)
        return seen.referrers if seen else []

    def _finish_visit(self, addr: Address, was_slow: bool, state: Visit) -> _Seen | None:
        self.inflight -= 1
        if was_slow:
            self.slow -= 1
        seen = self._seen.get(addr)
        if seen is not None:
            seen.state = state
        return seen

    def _insert(self, reply: QueryReply) -> None:
        for existing in self.closest:
            if existing.id == reply.id:
                return
        self.closest.append(reply)
        self.closest.sort(key=lambda r: r.distance)
        del self.closest[self.k :]

    @property
    def exhausted(self) -> bool:
        """No candidate is left and nothing that still counts is in flight."""
        if self._pending:
            return False
        return self.inflight == 0 or (self.inflight == self.slow and len(self.closest) >= self.k)

    def wants_reseed(self) -> bool:
        """Exhausted from outside seeds with too few successes: try the routing table once."""
        return not self.from_table and not self.reseeded and self.successes < self.k // 4
