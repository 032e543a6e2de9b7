"""The DHT node's timers: one heap of deadlines, each with a kind and what it is about."""

from __future__ import annotations

import heapq
import itertools
from enum import Enum, auto

from hyperswarm_hugin.protocol.dht.outgoing import Outgoing
from hyperswarm_hugin.protocol.encoding import Address


class TimerKind(Enum):
    """What a timer is for."""

    RETRY = auto()
    """A request's deadline (ref: the Outgoing; stale once it is done or re-sent)."""
    DRAIN = auto()
    """The congestion window's next slot."""
    TICK = auto()
    """The 5-second tick."""
    SEND = auto()
    """A DELAYED_PING reply due (ref: the datagram)."""


TimerRef = Outgoing | tuple[bytes, Address, int] | None
"""RETRY: the request; SEND: ``(data, address, socket)``; DRAIN and TICK: None."""


class Timers:
    """A heap of ``(when, seq, kind, ref)``; equal times fire in the order they were scheduled."""

    __slots__ = ("_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, TimerKind, TimerRef]] = []
        self._seq = itertools.count()

    def schedule(self, when: float, kind: TimerKind, ref: TimerRef = None) -> None:
        """Fire ``kind`` (about ``ref``) at ``when``."""
        heapq.heappush(self._heap, (when, next(self._seq), kind, ref))

    def next_deadline(self) -> float | None:
        """The earliest live deadline (stale retries are dropped on the way), or None."""
        heap = self._heap
        while heap and _stale(heap[0]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def pop_due(self, now: float) -> tuple[TimerKind, TimerRef] | None:
        """The next timer due at ``now`` (stale or not), or None."""
        heap = self._heap
        if not heap or heap[0][0] > now:
            return None
        _, _, kind, ref = heapq.heappop(heap)
        return kind, ref

    def clear(self) -> None:
        """Drop every timer."""
        self._heap.clear()


def _stale(entry: tuple[float, int, TimerKind, TimerRef]) -> bool:
    ref = entry[3]
    return entry[2] is TimerKind.RETRY and isinstance(ref, Outgoing) and (ref.done or ref.deadline != entry[0])
