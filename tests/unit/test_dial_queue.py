"""protocol/swarm/dial_queue.py: the highest priority first, at random within a priority."""

from __future__ import annotations

import random

from hyperswarm_hugin.protocol.swarm.dial_queue import DialQueue


def test_the_highest_priority_is_served_first_and_every_peer_once() -> None:
    queue = DialQueue()
    low = [bytes([i]) * 32 for i in range(5)]
    high = [bytes([100 + i]) * 32 for i in range(3)]
    for key in low:
        queue.push(key, 1)
    for key in high:
        queue.push(key, 3)
    rng = random.Random(7)
    taken = [queue.pop(rng) for _ in range(8)]
    assert sorted(taken[:3]) == sorted(high) and sorted(taken[3:]) == sorted(low)
    assert queue.pop(rng) is None and len(queue) == 0


def test_within_a_priority_the_order_is_random() -> None:
    orders = set()
    for seed in range(20):
        queue = DialQueue()
        for i in range(6):
            queue.push(bytes([i]) * 32, 0)
        orders.add(tuple(queue.pop(random.Random(seed)) for _ in range(6)))
    assert len(orders) > 1


def test_clear_returns_who_was_waiting() -> None:
    queue = DialQueue()
    queue.push(b"a" * 32, 0)
    queue.push(b"b" * 32, 2)
    assert sorted(queue.clear()) == [b"a" * 32, b"b" * 32]
    assert len(queue) == 0
