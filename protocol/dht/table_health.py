"""Keeping a DHT node's routing table alive, as dht-rpc does (docs/architecture.md, table health).

Three kinds of check PING decide whether a table node stays; it stays only if it answers *with
its id* (a node that went ephemeral answers without one):

- the sweep, every ``PING_SWEEP_TICKS``: the 5 nodes heard from longest ago (3 while more than 2
  requests are in flight, 2 when even the oldest was dealt with in the last ``RECENT_PING_TICKS``);
- a newcomer to a full row: the row's node pinged longest ago, unless it was dealt with recently
  and is old (at most ``MAX_EVICTION_PINGS`` in flight); the newcomer takes its place if it fails.
  Not in the rows the table had when the node became persistent, as in dht-rpc 6.27
  (``RoutingTable.unchecked_rows``; docs/architecture.md says why we follow it);
- a DOWN_HINT naming a table node (at most ``MAX_CHECKS`` in flight, once per tick per node).

A walk's visit that times out drops the node too (:meth:`TableHealth.drop`); an application
request that times out does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hyperswarm_hugin.protocol.dht import messages as m
from hyperswarm_hugin.protocol.dht.ids import node_id
from hyperswarm_hugin.protocol.dht.outgoing import Outgoing, RequestKind
from hyperswarm_hugin.protocol.dht.routing_table import TableNode
from hyperswarm_hugin.protocol.encoding import Reader
from hyperswarm_hugin.protocol.errors import DecodeError

if TYPE_CHECKING:
    from hyperswarm_hugin.protocol.dht.node import DHTNode

RECENT_PING_TICKS = 12
OLD_NODE_TICKS = 360
MAX_CHECKS = 10
MAX_EVICTION_PINGS = 3
CHECK_KINDS = frozenset({RequestKind.EVICT, RequestKind.CHECK, RequestKind.SWEEP})


class TableHealth:
    def __init__(self, node: DHTNode) -> None:
        self._node = node
        self._checks = 0
        self._evictions = 0

    def newcomer(self, newcomer: TableNode, now: float) -> None:
        """``newcomer`` found its row full: check the row's node pinged longest ago."""
        node = self._node
        if not node.bootstrapped or self._evictions >= MAX_EVICTION_PINGS:
            return
        if node.table.row_of(newcomer.id) in node.table.unchecked_rows:
            return  # a row the table had when the node became persistent (dht-rpc: no listener)
        tick = node.tick
        candidates = [n for n in node.table.row_for(newcomer.id) if n.pinged != tick]
        if not candidates:
            return
        oldest = min(candidates, key=lambda n: (n.pinged, n.added))
        if tick - oldest.pinged < RECENT_PING_TICKS and tick - oldest.added > OLD_NODE_TICKS:
            return
        self._evictions += 1
        out = self._check_ping(oldest, RequestKind.EVICT)
        out.evict = (oldest, newcomer)
        node._send_request(out, now)

    def down_hint(self, value: bytes, now: float) -> None:
        """A DOWN_HINT's value (an IPv4 address): check that node if it is in our table."""
        node = self._node
        try:
            addr = Reader(value).ipv4_address()
        except DecodeError:
            return
        member = node.table.get(node_id(addr))
        if member is None or member.address != addr or self._checks >= MAX_CHECKS:
            return
        if member.pinged == node.tick and member.down_hints > 0:
            return
        member.down_hints += 1
        self._checks += 1
        node._send_request(self._check_ping(member, RequestKind.CHECK), now)

    def sweep(self, now: float) -> None:
        node = self._node
        if not len(node.table):
            node._refresh(now)
            return
        oldest = sorted(node.table, key=lambda n: n.seen)
        count = 3 if node.requests_in_flight > 2 else 5
        if oldest and node.tick - oldest[0].pinged < RECENT_PING_TICKS:
            count = 2
        for member in [n for n in oldest if n.pinged != node.tick][:count]:
            node._send_request(self._check_ping(member, RequestKind.SWEEP), now)

    def check_done(self, out: Outgoing, res: m.Response | None) -> None:
        """A check PING (``out.kind`` in CHECK_KINDS) was answered (``res``) or timed out."""
        if out.kind is RequestKind.EVICT:
            self._evictions -= 1
            assert out.evict is not None
            old, newcomer = out.evict
            if not self._vouched(out, res) or self._node.table.get(old.id) is None:
                self.drop(old)
                self._node.table.add(newcomer)
            return
        if out.kind is RequestKind.CHECK:
            self._checks -= 1
        if not self._vouched(out, res):
            assert out.subject is not None
            self.drop(out.subject)

    def drop(self, member: TableNode) -> None:
        """Remove ``member`` if the table still holds it at that address."""
        node = self._node
        current = node.table.get(member.id)
        if current is not None and current.address == member.address:
            node.table.remove(member.id)
            node.stats.table_removals += 1

    def _check_ping(self, member: TableNode, kind: RequestKind) -> Outgoing:
        """A PING deciding whether ``member`` stays: it must answer *with its id* (dht-rpc keeps
        only nodes it heard from since)."""
        node = self._node
        member.pinged = node.tick
        stats = node.stats
        stats.check_pings += 1
        if kind is RequestKind.SWEEP:
            stats.sweep_pings += 1
        elif kind is RequestKind.EVICT:
            stats.full_row_pings += 1
        else:
            stats.down_hint_pings += 1
        out = node._new_request(member.address, m.PING, internal=True, retries=node.options.request_retries,
                                kind=kind)
        out.subject = member
        out.heard = member.heard
        return out

    @staticmethod
    def _vouched(out: Outgoing, res: m.Response | None) -> bool:
        """Did the node a check ping went to answer it with its verified id?"""
        return res is not None and out.subject is not None and out.subject.heard != out.heard
