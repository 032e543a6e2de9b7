"""A raw UDP socket on loopback for tests that hand-craft datagrams."""

from __future__ import annotations

import asyncio
from typing import Any

from hyperswarm_hugin.protocol.dht import messages as m
from hyperswarm_hugin.protocol.encoding import Address


class UdpProbe(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: Any = None
        self.inbox: asyncio.Queue[tuple[bytes, Address]] = asyncio.Queue()

    @classmethod
    async def open(cls, host: str = "127.0.0.1") -> UdpProbe:
        probe = cls()
        await asyncio.get_running_loop().create_datagram_endpoint(lambda: probe, local_addr=(host, 0))
        return probe

    @property
    def address(self) -> Address:
        host, port = self.transport.get_extra_info("sockname")[:2]
        return (host, port)

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[Any, int]) -> None:
        self.inbox.put_nowait((data, (addr[0], addr[1])))

    def send(self, data: bytes, to: Address) -> None:
        self.transport.sendto(data, to)

    async def ping(self, to: Address, tid: int, attempts: int = 4, timeout: float = 1.0) -> m.Response:
        """Send a PING (resent like dht-rpc does) and return its response, skipping other datagrams."""
        request = m.Request(tid=tid, to=to, command=m.PING, internal=True).encode()
        for _ in range(attempts):
            self.send(request, to)
            try:
                async with asyncio.timeout(timeout):
                    while True:
                        data, _ = await self.inbox.get()
                        try:
                            msg = m.decode_message(data)
                        except ValueError:
                            continue
                        if isinstance(msg, m.Response) and msg.tid == tid:
                            return msg
            except TimeoutError:
                continue
        raise TimeoutError(f"no answer to ping from {to} after {attempts} attempts")

    def close(self) -> None:
        self.transport.close()
