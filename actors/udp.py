"""A non-blocking UDP socket on the asyncio loop that reads datagrams in batches.

asyncio's datagram transport hands over one datagram per loop iteration; under
load that costs a full loop turn (and, here, an actor message) per packet.  This
endpoint drains up to ``batch`` datagrams each time the socket is readable and
passes them on together.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections import deque
from collections.abc import Callable

from protocol.encoding import Address

log = logging.getLogger(__name__)

RECEIVE_BUFFER = 4 * 1024 * 1024
MAX_DATAGRAM = 65535
DEFAULT_TTL = 64


class UdpEndpoint:
    """One bound IPv4 UDP socket; ``on_batch(list of (data, address))`` gets what arrives."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_batch: Callable[[list[tuple[bytes, Address]]], None],
        batch: int = 256,
    ) -> None:
        self.loop = loop
        self.on_batch = on_batch
        self.batch = batch
        self.sock: socket.socket | None = None
        self._pending: deque[tuple[bytes, Address]] = deque()
        self.errors = 0
        self.dropped_sends = 0
        # A pooled (puncher) socket closes when its last user releases it.
        self.pooled = False
        self.refs = 0
        self.on_closed: Callable[[UdpEndpoint], None] = lambda endpoint: None

    def bind(self, host: str, port: int) -> Address:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            except OSError:
                log.debug("could not enlarge the UDP receive buffer")
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        self.sock = sock
        self.loop.add_reader(sock.fileno(), self._readable)
        bound_host, bound_port = sock.getsockname()[:2]
        return (bound_host, bound_port)

    @property
    def address(self) -> Address:
        assert self.sock is not None
        host, port = self.sock.getsockname()[:2]
        return (host, port)

    def _readable(self) -> None:
        sock = self.sock
        if sock is None:
            return
        received: list[tuple[bytes, Address]] = []
        recv = sock.recvfrom
        for _ in range(self.batch):
            try:
                data, addr = recv(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # e.g. ICMP port unreachable reported on the next read
                self.errors += 1
                log.debug("udp receive error: %s", exc)
                continue
            received.append((data, (addr[0], addr[1])))
        if received:
            self.on_batch(received)

    def send(self, data: bytes, address: Address) -> None:
        """Send now, or queue behind earlier datagrams while the kernel buffer is full."""
        sock = self.sock
        if sock is None:
            return
        if self._pending:
            self._pending.append((data, address))
            return
        try:
            sock.sendto(data, address)
        except (BlockingIOError, InterruptedError):
            self._pending.append((data, address))
            self.loop.add_writer(sock.fileno(), self._writable)
        except OSError as exc:
            self.dropped_sends += 1
            log.debug("udp send to %s failed: %s", address, exc)

    def send_with_ttl(self, data: bytes, address: Address, ttl: int) -> None:
        """Send one datagram with IP TTL ``ttl`` (a holepunch probe); dropped if the buffer is full."""
        sock = self.sock
        if sock is None:
            return
        try:
            if ttl != DEFAULT_TTL:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
            try:
                sock.sendto(data, address)
            finally:
                if ttl != DEFAULT_TTL:
                    sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, DEFAULT_TTL)
        except OSError as exc:
            self.dropped_sends += 1
            log.debug("udp probe to %s failed: %s", address, exc)

    def hold(self) -> None:
        self.refs += 1

    def release(self) -> None:
        """One user less; a pooled socket with none left is closed."""
        self.refs -= 1
        if self.pooled and self.refs <= 0:
            self.close()

    def _writable(self) -> None:
        sock = self.sock
        if sock is None:
            return
        while self._pending:
            data, address = self._pending[0]
            try:
                sock.sendto(data, address)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno != errno.EAGAIN:
                    self.dropped_sends += 1
            self._pending.popleft()
        self.loop.remove_writer(sock.fileno())

    def close(self) -> None:
        sock = self.sock
        if sock is None:
            return
        self.sock = None
        self.loop.remove_reader(sock.fileno())
        if self._pending:
            self.loop.remove_writer(sock.fileno())
            self._pending.clear()
        sock.close()
        self.on_closed(self)
