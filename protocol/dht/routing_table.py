"""The Kademlia routing table: 256 rows of at most k nodes (dht-rpc §7).

A node goes into row ``i`` when its id shares exactly ``i`` leading bits with
ours.  ``closest`` returns the k nodes nearest a target by XOR distance; it is
exact, not the row-walking approximation of the JavaScript table.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from hyperswarm_hugin.protocol.dht.ids import ID_SIZE, shared_prefix_bits, xor_distance
from hyperswarm_hugin.protocol.encoding import Address

K = 20
ROWS = ID_SIZE * 8


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

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[TableNode]:
        for row in self.rows:
            yield from row.values()

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
        row = self.rows[self.row_of(node.id)]
        if node.id in row:
            row[node.id] = node
            return True
        if len(row) >= self.k:
            return False
        row[node.id] = node
        self._filled.add(self.row_of(node.id))
        self._size += 1
        return True

    def remove(self, node_id: bytes) -> TableNode | None:
        index = self.row_of(node_id)
        node = self.rows[index].pop(node_id, None)
        if node is not None:
            self._size -= 1
            if not self.rows[index]:
                self._filled.discard(index)
        return node

    def row_for(self, node_id: bytes) -> list[TableNode]:
        """The members of the row ``node_id`` falls in."""
        return list(self.rows[self.row_of(node_id)].values())

    def closest(self, target: bytes, k: int | None = None) -> list[TableNode]:
        """The ``k`` members nearest ``target`` by XOR distance, nearest first."""
        want = self.k if k is None else k
        t = int.from_bytes(target, "big")
        rows = self.rows
        if self._size <= 2 * want:  # a small table: one sort of everything is cheapest
            everyone = {n.key ^ t: n for i in self._filled for n in rows[i].values()}
            return [everyone[d] for d in sorted(everyone)[:want]]
        d = shared_prefix_bits(self.id, target)
        # Distances grow in this order of rows: row d; every row above d (they all
        # differ from the target first at bit d); then rows d-1, d-2, ... 0.
        filled = sorted(self._filled)
        groups: list[list[TableNode]] = []
        if d < ROWS:
            groups.append(list(self.rows[d].values()))
            above: list[TableNode] = []
            for i in filled:
                if i > d:
                    above.extend(self.rows[i].values())
            groups.append(above)
        for i in reversed(filled):
            if i < d:
                groups.append(list(self.rows[i].values()))
        found: list[TableNode] = []
        for group in groups:
            if not group:
                continue
            by_distance = {n.key ^ t: n for n in group}  # distinct ids: distinct distances
            found.extend(by_distance[d] for d in sorted(by_distance)[: want - len(found)])
            if len(found) >= want:
                break
        return found

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
