"""A UDP relay on loopback that drops, duplicates and reorders datagrams, from a seeded RNG.

Side ``a`` faces one peer and side ``b`` the other: what arrives on ``a`` leaves from ``b``
towards the b-peer (learned from the first datagram ``b`` receives, or given), and back.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

Address = tuple[str, int]


@dataclass
class RelayStats:
    forwarded: int = 0
    dropped: int = 0
    duplicated: int = 0
    reordered: int = 0


class _Side(asyncio.DatagramProtocol):
    def __init__(self, relay: LossyRelay, name: str) -> None:
        self.relay = relay
        self.name = name
        self.transport: Any = None
        self.peer: Address | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[Any, int]) -> None:
        if self.peer is None:
            self.peer = (addr[0], addr[1])
        self.relay.forward(self.name, data)


class LossyRelay:
    def __init__(self, seed: int, loss: float = 0.03, duplicate: float = 0.01, reorder: float = 0.02,
                 window: int = 8, corrupt_nth: int | None = None) -> None:
        self.rng = random.Random(seed)
        self.loss = loss
        self.duplicate = duplicate
        self.reorder = reorder
        self.window = window
        self.stats = RelayStats()
        self.sides: dict[str, _Side] = {}
        self._held: dict[str, list[tuple[int, bytes]]] = {"a": [], "b": []}
        self.corrupt_nth = corrupt_nth  # flip one payload bit in the n-th large datagram a -> b
        self._large_seen = 0

    async def start(self) -> LossyRelay:
        loop = asyncio.get_running_loop()
        for name in ("a", "b"):
            side = _Side(self, name)
            await loop.create_datagram_endpoint(lambda s=side: s, local_addr=("127.0.0.1", 0))
            self.sides[name] = side
        return self

    def address(self, side: str) -> Address:
        host, port = self.sides[side].transport.get_extra_info("sockname")[:2]
        return (host, port)

    def set_peer(self, side: str, address: Address) -> None:
        self.sides[side].peer = address

    def forward(self, arrived_on: str, data: bytes) -> None:
        out = self.sides["b" if arrived_on == "a" else "a"]
        if out.peer is None:
            self.stats.dropped += 1
            return
        held = self._held[out.name]
        for item in held:  # release packets held back for reordering
            item_ticks, item_data = item
            if item_ticks <= 0:
                out.transport.sendto(item_data, out.peer)
        held[:] = [(t - 1, d) for t, d in held if t > 0]
        if self.corrupt_nth is not None and arrived_on == "a" and len(data) > 100:
            self._large_seen += 1
            if self._large_seen == self.corrupt_nth:
                flipped = bytearray(data)
                flipped[60] ^= 0x04
                data = bytes(flipped)
        roll = self.rng.random()
        if roll < self.loss:
            self.stats.dropped += 1
            return
        if roll < self.loss + self.reorder:
            self.stats.reordered += 1
            held.append((self.rng.randint(1, self.window), data))
            return
        out.transport.sendto(data, out.peer)
        self.stats.forwarded += 1
        if self.rng.random() < self.duplicate:
            self.stats.duplicated += 1
            out.transport.sendto(data, out.peer)

    def close(self) -> None:
        for side in self.sides.values():
            side.transport.close()
