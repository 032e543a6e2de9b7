"""The routing table against a brute-force XOR sort."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperswarm_hugin.protocol.dht.routing_table import K, RoutingTable, TableNode, sort_by_distance
from hyperswarm_hugin.protocol.encoding import encode_ipv4_address

b32 = st.binary(min_size=32, max_size=32)


def node(node_id: bytes, port: int = 1) -> TableNode:
    return TableNode(node_id, "127.0.0.1", port)


def filled(own: bytes, ids: list[bytes]) -> RoutingTable:
    table = RoutingTable(own)
    for i in ids:
        table.add(node(i))
    return table


@settings(max_examples=200)
@given(b32, st.lists(b32, max_size=120, unique=True), b32, st.integers(1, 40))
def test_closest_is_the_brute_force_xor_order(own: bytes, ids: list[bytes], target: bytes, k: int) -> None:
    table = filled(own, ids)
    members = [n.id for n in table]
    for t in (target, own, *members[:3]):
        assert [n.id for n in table.closest(t, k)] == sort_by_distance(t, members)[:k]


def test_closest_on_a_table_with_crowded_rows() -> None:
    rng = random.Random(4)
    own = bytes(32)
    # Many ids that share long prefixes with ours: several rows fill up.
    ids = [bytes([0] * rng.randrange(1, 3)) + rng.randbytes(32)[: 32 - 1] for _ in range(600)]
    ids = [i[:32].ljust(32, b"\x00") for i in ids]
    table = filled(own, ids)
    for row in table.rows:
        assert len(row) <= K
    members = [n.id for n in table]
    for _ in range(50):
        target = rng.randbytes(32)
        assert [n.id for n in table.closest(target)] == sort_by_distance(target, members)[:K]


def test_a_full_row_refuses_newcomers_but_refreshes_members() -> None:
    own = bytes(32)
    # Ids starting with bit 1 all land in row 0.
    ids = [bytes([0x80 | i]) + bytes(31) for i in range(K + 1)]
    table = RoutingTable(own)
    assert all(table.add(node(i)) for i in ids[:K])
    assert not table.add(node(ids[K]))
    assert table.add(node(ids[0], port=99))
    got = table.get(ids[0])
    assert got is not None and got.port == 99
    assert len(table) == K and table.row_of(ids[0]) == 0


def test_add_get_remove_are_consistent() -> None:
    rng = random.Random(9)
    own = rng.randbytes(32)
    table = RoutingTable(own)
    ids = [hashlib.blake2b(bytes([i]), digest_size=32).digest() for i in range(100)]
    added = [i for i in ids if table.add(node(i))]
    assert len(table) == len(added) == len(list(table))
    for i in added[::2]:
        assert table.remove(i) is not None
        assert table.get(i) is None and not table.has(i)
    assert table.remove(added[0]) is None
    assert len(table) == len(added) - len(added[::2])
    assert not table.add(node(own))  # never ourselves
    target = rng.randbytes(32)
    assert [n.id for n in table.closest(target)] == sort_by_distance(target, [n.id for n in table])[:K]


def test_random_member_and_errors() -> None:
    table = RoutingTable(bytes(32))
    assert table.random(random.Random(1)) is None
    table.add(node(b"\x01" * 32))
    picked = table.random(random.Random(1))
    assert picked is not None and picked.id == b"\x01" * 32
    with pytest.raises(ValueError, match="32 bytes"):
        RoutingTable(b"short")


def test_ids_sharing_their_top_bits_are_still_ordered_exactly() -> None:
    """Distances are compared on the ids' top 60 bits only while no two members share them;
    members that do (ids equal but for their last bits) switch the table to whole ids."""
    rng = random.Random(11)
    own = rng.randbytes(32)
    base = [rng.randbytes(32) for _ in range(12)]
    twins = [b[:16] + rng.randbytes(16) for b in base[:4]]  # same top 128 bits as a member
    table = filled(own, base)
    table.add(node(twins[0]))
    members = [n.id for n in table]
    assert table._shared_prefixes == 1
    for _ in range(30):
        target = rng.choice([rng.randbytes(32), twins[0][:20] + rng.randbytes(12)])
        assert [n.id for n in table.closest(target, 5)] == sort_by_distance(target, members)[:5]
    table.remove(twins[0])
    assert table._shared_prefixes == 0
    for twin in twins[1:]:
        table.add(node(twin))
    assert table._shared_prefixes == 3
    members = [n.id for n in table]
    for _ in range(30):
        target = rng.randbytes(32)
        assert [n.id for n in table.closest(target)] == sort_by_distance(target, members)[:K]


@settings(max_examples=100)
@given(b32, st.lists(b32, max_size=80, unique=True), b32, st.integers(1, 30), st.data())
def test_closest_addresses_are_the_closest_nodes_encoded(own: bytes, ids: list[bytes], target: bytes, k: int,
                                                         data: st.DataObject) -> None:
    table = RoutingTable(own)
    for n, i in enumerate(ids):
        table.add(TableNode(i, f"10.0.{n // 256}.{n % 256}", 1000 + n))
    for i in data.draw(st.lists(st.sampled_from(ids), max_size=10)) if ids else []:
        table.remove(i)  # the lists closest() keeps follow removals
    want = [encode_ipv4_address(n.address) for n in table.closest(target, k)]
    assert table.closest_addresses(target, k) == want
    assert [n.id for n in table.closest(target, k)] == sort_by_distance(target, [n.id for n in table])[:k]


def test_a_copy_under_a_new_id_keeps_the_nodes_and_marks_the_rows_it_filled_unchecked() -> None:
    rng = random.Random(4)
    old = RoutingTable(rng.randbytes(32))
    for port in range(30):
        assert old.add(node(rng.randbytes(32), port + 1))
    new_id = rng.randbytes(32)
    table = old.copy_to(new_id)
    assert table.id == new_id
    assert {n.id for n in table} == {n.id for n in old}
    assert table.unchecked_rows == {table.row_of(n.id) for n in table}
    assert old.unchecked_rows == frozenset()
