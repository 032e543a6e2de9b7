"""dht-rpc's congestion window: at most 80 requests per drain slot and 160 over the last four.

Requests over the limit wait in order; every drain (0.75 s) opens a fresh slot and lets the
waiting ones go.  A reply frees one unit in the newest slot that has any.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, Protocol, TypeVar

MAX_WINDOW = 80
MAX_TOTAL_WINDOW = 160
SLOTS = 4


class _Cancellable(Protocol):
    @property
    def done(self) -> bool: ...


T = TypeVar("T", bound=_Cancellable)


class CongestionWindow(Generic[T]):
    """Counts requests sent per drain slot and holds those that must wait (skipped once ``done``)."""

    __slots__ = ("_slot", "_window", "deferred")

    def __init__(self) -> None:
        self._window = [0] * SLOTS
        self._slot = 0
        self.deferred: deque[T] = deque()

    def admit(self, item: T) -> bool:
        """Count ``item`` as sent now (True), or queue it until a drain has room (False)."""
        window = self._window
        if window[self._slot] >= MAX_WINDOW or sum(window) >= MAX_TOTAL_WINDOW:
            self.deferred.append(item)
            return False
        window[self._slot] += 1
        return True

    def drain(self) -> list[T]:
        """Open the next slot; the waiting items that fit now, oldest first (already counted)."""
        self._slot = (self._slot + 1) % SLOTS
        window = self._window
        window[self._slot] = 0
        ready: list[T] = []
        deferred = self.deferred
        while deferred and window[self._slot] < MAX_WINDOW and sum(window) < MAX_TOTAL_WINDOW:
            item = deferred.popleft()
            if item.done:
                continue
            window[self._slot] += 1
            ready.append(item)
        return ready

    def replied(self) -> None:
        """A reply came: free one unit, newest slot first."""
        for i in range(SLOTS):
            slot = (self._slot - i) % SLOTS
            if self._window[slot]:
                self._window[slot] -= 1
                return
