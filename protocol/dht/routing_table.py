"""The Kademlia routing table: 256 rows of at most k nodes (dht-rpc §7).

A node goes into row ``i`` when its id shares exactly ``i`` leading bits with
ours.  ``closest`` returns the k nodes nearest a target by XOR distance; it is
exact, not the row-walking approximation of the JavaScript table.

``closest`` runs once per FIND_NODE answered, so the table keeps the groups it sorts
(:class:`_Members`: the nodes, their encoded addresses, their ids as integers ready to sort),
rebuilt when a member comes or goes.  Distances are compared on the ids' top 60 bits (small
integers, cheap to XOR and sort) while no two members share those bits: two distances to any
target then differ in their top 60 bits exactly when the ids do.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import xor
from typing import TypeVar

from hyperswarm_hugin.protocol.dht.ids import ID_SIZE, shared_prefix_bits, xor_distance
from hyperswarm_hugin.protocol.encoding import Address, encode_ipv4_address

K = 20
ROWS = ID_SIZE * 8
PREFIX_SHIFT = ROWS - 60
"""An id's top 60 bits (``key >> PREFIX_SHIFT``): two CPython digits, cheaper than 256 bits."""

V = TypeVar("V")


@dataclass(slots=True)
class TableNode:
    """A routing-table member and the ticks at which we last dealt with it."""

    id: bytes
    host: str
    port: int
    added: int = 0
    seen: int = 0
    pinged: int = 0
    down_hints: int = 0
    sampled: int = 0
    heard: int = 0
    """How many times it answered or asked us with its verified id (a check compares before/after)."""
    key: int = field(init=False, repr=False, compare=False)
    """``id`` as a big-endian integer, for XOR distances."""

    def __post_init__(self) -> None:
        self.key = int.from_bytes(self.id, "big")

    @property
    def address(self) -> Address:
        return (self.host, self.port)


class _Members:
    """Some table members as parallel lists, and their ids ready for sorting by distance.

    An id is kept shifted left by ``width`` bits with the member's position in the low bits:
    XOR with a target shifted the same way keeps the position, so one sort of plain integers
    orders the positions by distance (distinct ids give distinct distances)."""

    __slots__ = ("by_key", "by_prefix", "nodes", "packed", "width")

    def __init__(self, nodes: list[TableNode]) -> None:
        self.nodes = nodes
        self.packed = [encode_ipv4_address((n.host, n.port)) for n in nodes]
        width = self.width = len(nodes).bit_length()
        self.by_prefix = [((n.key >> PREFIX_SHIFT) << width) | i for i, n in enumerate(nodes)]
        self.by_key = [(n.key << width) | i for i, n in enumerate(nodes)]

    def nearest(self, target: int, want: int, by_prefix: bool, values: Sequence[V]) -> list[V]:
        """``values`` (one per member) of the ``want`` members nearest ``target``, nearest
        first; ``by_prefix`` when no two members of the table share their top 60 bits."""
        width = self.width
        mask = (1 << width) - 1
        if by_prefix:
            order = sorted(map(xor, self.by_prefix, repeat((target >> PREFIX_SHIFT) << width)))
        else:
            order = sorted(map(xor, self.by_key, repeat(target << width)))
        return [values[i & mask] for i in order[:want]]


def _nodes(members: _Members) -> list[TableNode]:
    return members.nodes


def _packed(members: _Members) -> list[bytes]:
    return members.packed


class RoutingTable:
    """k-buckets around ``self.id``."""

    def __init__(self, own_id: bytes, k: int = K) -> None:
        if len(own_id) != ID_SIZE:
            raise ValueError("a table id is 32 bytes")
        self.id = own_id
        self.k = k
        self.rows: list[dict[bytes, TableNode]] = [{} for _ in range(ROWS)]
        self._filled: set[int] = set()  # indexes of non-empty rows
        self._size = 0
        self._row_members: dict[int, _Members] = {}  # per row, built on demand
        self._groups: dict[int, list[_Members]] = {}  # what closest() sorts, by how near a target is
        self._prefix_uses: dict[int, int] = {}  # top 60 bits of the members' ids -> how many
        self._shared_prefixes = 0  # prefixes used by more than one member
        self.unchecked_rows: frozenset[int] = frozenset()
        """Rows whose newcomers cost no check ping when full (see :meth:`copy_to`)."""

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[TableNode]:
        for row in self.rows:
            yield from row.values()

    def copy_to(self, own_id: bytes) -> RoutingTable:
        """A table around ``own_id`` holding our nodes (a node that became persistent).

        As dht-rpc 6.27: it copies the nodes into a new table before listening for new rows, so
        the rows that got a member in the copy never check a full row's oldest node for a
        newcomer (:attr:`unchecked_rows`); rows created later do.
        """
        table = RoutingTable(own_id, self.k)
        for node in self:
            table.add(node)
        table.unchecked_rows = frozenset(table._filled)
        return table

    def row_of(self, node_id: bytes) -> int:
        return min(shared_prefix_bits(self.id, node_id), ROWS - 1)

    def get(self, node_id: bytes) -> TableNode | None:
        return self.rows[self.row_of(node_id)].get(node_id)

    def has(self, node_id: bytes) -> bool:
        return self.get(node_id) is not None

    def add(self, node: TableNode) -> bool:
        """Insert or refresh ``node``; False when its row is full (the caller may evict)."""
        if node.id == self.id:
            return False
        index = self.row_of(node.id)
        row = self.rows[index]
        if node.id in row:
            row[node.id] = node
            self._changed(index)
            return True
        if len(row) >= self.k:
            return False
        row[node.id] = node
        self._filled.add(index)
        self._size += 1
        self._count_prefix(node.key >> PREFIX_SHIFT, 1)
        self._changed(index)
        return True

    def remove(self, node_id: bytes) -> TableNode | None:
        index = self.row_of(node_id)
        node = self.rows[index].pop(node_id, None)
        if node is not None:
            self._size -= 1
            if not self.rows[index]:
                self._filled.discard(index)
            self._count_prefix(node.key >> PREFIX_SHIFT, -1)
            self._changed(index)
        return node

    def _changed(self, index: int) -> None:
        self._row_members.pop(index, None)
        self._groups.clear()

    def _count_prefix(self, prefix: int, delta: int) -> None:
        uses = self._prefix_uses.get(prefix, 0)
        if uses + delta > 1 >= uses:
            self._shared_prefixes += 1
        elif uses > 1 >= uses + delta:
            self._shared_prefixes -= 1
        if uses + delta:
            self._prefix_uses[prefix] = uses + delta
        else:
            del self._prefix_uses[prefix]

    def _row(self, index: int) -> _Members:
        members = self._row_members.get(index)
        if members is None:
            members = self._row_members[index] = _Members(list(self.rows[index].values()))
        return members

    def row_for(self, node_id: bytes) -> list[TableNode]:
        """The members of the row ``node_id`` falls in."""
        return list(self.rows[self.row_of(node_id)].values())

    def closest(self, target: bytes, k: int | None = None) -> list[TableNode]:
        """The ``k`` members nearest ``target`` by XOR distance, nearest first."""
        return self._nearest(target, self.k if k is None else k, _nodes)

    def closest_addresses(self, target: bytes, k: int | None = None) -> list[bytes]:
        """The encoded addresses (6 bytes each) of :meth:`closest`, in its order."""
        return self._nearest(target, self.k if k is None else k, _packed)

    def _nearest(self, target: bytes, want: int, column: Callable[[_Members], Sequence[V]]) -> list[V]:
        t = int.from_bytes(target, "big")
        by_prefix = not self._shared_prefixes
        # A small table is sorted in one go (one group, cached as -1); otherwise by rows.
        d = -1 if self._size <= 2 * want else shared_prefix_bits(self.id, target)
        groups = self._groups.get(d)
        if groups is None:
            groups = self._groups[d] = self._groups_for(d)
        if len(groups) == 1:
            return groups[0].nearest(t, want, by_prefix, column(groups[0]))
        found: list[V] = []
        for group in groups:
            found += group.nearest(t, want - len(found), by_prefix, column(group))
            if len(found) >= want:
                break
        return found

    def _groups_for(self, d: int) -> list[_Members]:
        """The members in groups of growing distance from a target sharing ``d`` leading bits
        with our id: row d; every row above d (they all differ from the target first at bit
        d); then rows d-1, d-2, ... 0.  d = -1: everyone in one group."""
        filled = sorted(self._filled)
        if d < 0:
            return [_Members([n for i in filled for n in self.rows[i].values()])]
        groups: list[_Members] = []
        if d in self._filled:
            groups.append(self._row(d))
        above = [n for i in filled if i > d for n in self.rows[i].values()]
        if above:
            groups.append(_Members(above))
        groups.extend(self._row(i) for i in reversed(filled) if i < d)
        return groups

    def random(self, rng: random.Random) -> TableNode | None:
        if not self._size:
            return None
        pick = rng.randrange(self._size)
        for node in self:
            if pick == 0:
                return node
            pick -= 1
        return None  # pragma: no cover - sizes always agree


def sort_by_distance(target: bytes, ids: list[bytes]) -> list[bytes]:
    """Ids sorted nearest-first to ``target`` (the brute-force reference)."""
    return sorted(ids, key=lambda i: xor_distance(i, target))
