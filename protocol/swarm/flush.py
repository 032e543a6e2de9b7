"""When a ``flush()`` is done: every peer queued before it has been tried.

hyperswarm's flush waits until the peers that were queued when it was asked have each had their
dial (or were dropped from the queue), or until the swarm cannot connect to more peers anyway.  A
flush asked at tick *t* waits for the peers queued at ticks <= *t*; each such peer's turn counts
down the flushes it belongs to.  Pure bookkeeping: the caller says what happened and sends the
``FlushDone`` answers for the request ids it gets back.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class PendingFlush:
    request_id: int
    missing: int
    tick: int


class FlushTracker:
    def __init__(self) -> None:
        self._queued_at: dict[bytes, int] = {}
        self._tick = 0
        self._pending: list[PendingFlush] = []

    def queued(self, public_key: bytes) -> None:
        """The peer joined the dial queue now."""
        self._queued_at[public_key] = self._tick

    def forget(self, public_key: bytes) -> None:
        self._queued_at.pop(public_key, None)

    def wait(self, request_id: int, missing: int) -> None:
        """A flush that is done once ``missing`` queued peers have had their turn."""
        self._pending.append(PendingFlush(request_id, missing, self._tick))
        self._tick += 1

    def peer_tried(self, public_key: bytes) -> list[int]:
        """A queued peer had its turn: the flushes that are done now."""
        tick = self._queued_at.get(public_key, 0)
        done = []
        for flush in list(self._pending):
            if tick > flush.tick:
                continue
            flush.missing -= 1
            if flush.missing <= 0:
                self._pending.remove(flush)
                done.append(flush.request_id)
        return done

    def take_all(self) -> list[int]:
        """Every flush still waiting (done because nothing more can connect, or failed on stop)."""
        done = [flush.request_id for flush in reversed(self._pending)]
        self._pending.clear()
        return done
