"""Helpers for the tests of a relayed connection moving to a direct path (hyperdht 6.34): a gate
that holds a node's holepunch probes back, so the relay deterministically carries the stream
first, and a transfer that keeps bytes flowing both ways across the switch."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable

from hyperswarm_hugin import DHT
from hyperswarm_hugin.connection import Connection
from hyperswarm_hugin.protocol.encoding import Address

CHUNK = 16 * 1024
WINDOW = 512 * 1024  # bytes written ahead of the echo


class ProbeGate:
    """Drops the holepunch probes a node sends (``sending=True``) or receives on its puncher
    sockets while closed, as a NAT that has not opened yet; ``is_open = True`` lets them by."""

    def __init__(self, dht: DHT, *, sending: bool) -> None:
        runtime = dht.runtime
        self.dropped = 0
        self.is_open = False
        if sending:
            send: Callable[[int, Address, int], None] = runtime.send_probe

            def gated_send(number: int, address: Address, ttl: int) -> None:
                if self._passes():
                    send(number, address, ttl)

            runtime.send_probe = gated_send  # type: ignore[method-assign]
        else:
            open_socket: Callable[[Callable[[int, Address], None]], int] = runtime.open_socket

            def gated_open(on_probe: Callable[[int, Address], None]) -> int:
                def gated_probe(number: int, source: Address) -> None:
                    if self._passes():
                        on_probe(number, source)

                return open_socket(gated_probe)

            runtime.open_socket = gated_open  # type: ignore[method-assign]

    def _passes(self) -> bool:
        if not self.is_open:
            self.dropped += 1
        return self.is_open


class Transfer:
    """Random chunks written to an echoing peer, at most WINDOW ahead of the echo, until
    ``stopping``; both sides' bytes hashed."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.sent = hashlib.sha256()
        self.back = hashlib.sha256()
        self.written = 0
        self.echoed = 0
        self.stopping = False
        self._progress = asyncio.Event()

    async def echoed_at_least(self, nbytes: int) -> None:
        while self.echoed < nbytes:
            self._progress.clear()
            await self._progress.wait()

    async def write(self) -> None:
        while not self.stopping:
            if self.written - self.echoed > WINDOW:
                await self.echoed_at_least(self.written - WINDOW)
                continue
            chunk = os.urandom(CHUNK)
            self.sent.update(chunk)
            self.written += len(chunk)
            self.conn.write(chunk)
            await self.conn.drain()
        self.conn.end()

    async def read(self) -> None:
        async for message in self.conn:
            self.back.update(message)
            self.echoed += len(message)
            self._progress.set()
        self._progress.set()

    @property
    def intact(self) -> bool:
        return self.echoed == self.written and self.back.digest() == self.sent.digest()
