"""Our public address as other nodes report it (dht-rpc §11.2).

Each reply names the address the replier saw us at.  The sampler keeps the
last 16 reports and says which ``host:port`` (or ``host`` with a NAT-randomised
port, reported as port 0) enough of them agree on.
"""

from __future__ import annotations

from collections import Counter, deque

from hyperswarm_hugin.protocol.encoding import Address

WINDOW = 16


def _threshold(size: int) -> int:
    if size < 4:
        return size
    if size < 8:
        return size - 1
    if size < 12:
        return size - 2
    return size - 3


class NatSampler:
    """Majority vote over the last :data:`WINDOW` reported addresses."""

    def __init__(self) -> None:
        self._samples: deque[Address] = deque(maxlen=WINDOW)
        self.host: str | None = None
        self.port = 0

    def __len__(self) -> int:
        return len(self._samples)

    def add(self, addr: Address) -> None:
        self._samples.append(addr)
        self._update()

    def _update(self) -> None:
        size = len(self._samples)
        need = _threshold(size)
        (best_addr, hits), = Counter(self._samples).most_common(1)
        if hits >= need:
            self.host, self.port = best_addr
            return
        (best_host, host_hits), = Counter(h for h, _ in self._samples).most_common(1)
        if host_hits >= need:
            self.host, self.port = best_host, 0
            return
        self.host, self.port = None, 0

    @property
    def address(self) -> Address | None:
        """The agreed ``(host, port)``; port 0 means the port is not stable."""
        return None if self.host is None else (self.host, self.port)
