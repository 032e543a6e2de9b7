"""protocol/swarm/flush.py: a flush waits for the peers queued before it, and only for those."""

from __future__ import annotations

from hyperswarm_hugin.protocol.swarm.flush import FlushTracker

A, B, C = b"a" * 32, b"b" * 32, b"c" * 32


def test_a_flush_is_done_when_the_peers_queued_before_it_were_tried() -> None:
    flushes = FlushTracker()
    flushes.queued(A)
    flushes.queued(B)
    flushes.wait(1, missing=2)
    flushes.queued(C)  # after the flush: it does not count for it
    assert flushes.peer_tried(C) == []
    assert flushes.peer_tried(A) == []
    assert flushes.peer_tried(B) == [1]
    assert flushes.take_all() == []


def test_a_later_flush_waits_for_its_own_peers_and_stop_takes_the_rest_newest_first() -> None:
    flushes = FlushTracker()
    flushes.queued(A)
    flushes.wait(1, missing=1)
    flushes.queued(B)
    flushes.wait(2, missing=2)
    assert flushes.peer_tried(A) == [1]  # A counts for both; flush 2 still waits for B
    flushes.wait(3, missing=5)
    assert flushes.take_all() == [3, 2]


def test_a_forgotten_peer_counts_as_queued_at_the_start() -> None:
    flushes = FlushTracker()
    flushes.wait(1, missing=1)
    flushes.queued(A)
    flushes.forget(A)
    assert flushes.peer_tried(A) == [1]
