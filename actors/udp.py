"""A non-blocking UDP socket on the asyncio loop that reads datagrams in batches.

asyncio's datagram transport hands over one datagram per loop iteration; under
load that costs a full loop turn (and, here, an actor message) per packet.  This
endpoint drains up to ``batch`` datagrams each time the socket is readable and
passes them on together.

On Linux, runs of equal-sized datagrams to one address leave in one ``sendmsg``
with UDP generic segmentation offload (``UDP_SEGMENT``): the kernel cuts the
buffer into the same datagrams, one syscall instead of dozens.  The socket also
asks for UDP GRO, so such runs from a peer arrive as one buffer that is cut
here.  Where the kernel refuses either, the endpoint falls back to one datagram
per syscall.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import sys
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from hyperswarm_hugin.protocol.encoding import Address

if TYPE_CHECKING:
    from hyperswarm_hugin.actors.recvmmsg import MultiReceiver

try:
    import fcntl
    import termios
except ImportError:  # not POSIX: drain until EAGAIN
    fcntl = termios = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

RECEIVE_BUFFER = 4 * 1024 * 1024
MAX_DATAGRAM = 65535
DEFAULT_TTL = 64
SOL_UDP = 17
UDP_SEGMENT = 103  # linux/udp.h: send a buffer as datagrams of this size
UDP_GRO = 104  # linux/udp.h: receive runs of datagrams as one buffer with their size
IP_MTU = 14  # linux/in.h: the path MTU of a connected socket
IP_MTU_DISCOVER = 10
IP_PMTUDISC_PROBE = 3  # set DF, ignore the path MTU the kernel cached (probes must go out as sized)
MULTI_AFTER = 4
"""Datagrams of a drain read one by one before the rest is read with recvmmsg."""
LONG_DRAINS_BEFORE_MULTI = 32
"""Long drains a socket reads one by one before it takes recvmmsg on: a sustained train (a
transfer's ACKs), not a DHT walk's burst of replies, is worth loading ctypes (~0.4 MB) for."""
GSO_SEGMENTS = 64  # the kernel's UDP_MAX_SEGMENTS on older kernels
GSO_BYTES = 65000  # a GSO buffer stays under the 64 KiB IP datagram limit
GRO_CMSG = socket.CMSG_SPACE(4) if hasattr(socket, "CMSG_SPACE") else 0
GSO_AVAILABLE = sys.platform == "linux" and GRO_CMSG > 0
_GSO_UNSUPPORTED = {errno.EIO, errno.ENOPROTOOPT, errno.EOPNOTSUPP}  # this socket cannot segment
_GSO_REFUSED = {errno.EINVAL, errno.EMSGSIZE}  # not this run (e.g. segments past the path MTU)


def path_mtu(address: Address) -> int | None:
    """The MTU the OS knows towards ``address`` (Linux; None where it cannot say)."""
    if sys.platform != "linux":
        return None
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(address)
            mtu: int = probe.getsockopt(socket.IPPROTO_IP, IP_MTU)
            return mtu
    except OSError:
        return None


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
        self.gso = False  # batches leave with UDP_SEGMENT
        self.gro = False  # the socket receives coalesced runs (UDP_GRO)
        # One receive buffer for every read: a datagram is copied out at its own size (recvfrom
        # would allocate 64 KiB per datagram and shrink it).
        self._buffer = bytearray(MAX_DATAGRAM)
        self._view = memoryview(self._buffer)
        self._queued = bytearray(4)  # FIONREAD's answer: the next datagram's size, 0 if none
        # recvmmsg for the rest of a long drain, once the socket has seen enough of them
        self.multi: MultiReceiver | None = None
        self.multi_read = sys.platform == "linux"
        self._long_drains = 0

    def bind(self, host: str, port: int) -> Address:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            except OSError:
                log.debug("could not enlarge the UDP receive buffer")
            if sys.platform == "linux":
                try:  # as libudx: datagrams leave with DF, so a stream's MTU probes find the path's
                    sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_PROBE)
                except OSError:
                    log.debug("could not set DF on the UDP socket")
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        if GSO_AVAILABLE:
            self.gso = True
            try:
                sock.setsockopt(SOL_UDP, UDP_GRO, 1)
                self.gro = True
            except OSError:
                log.debug("no UDP GRO on this kernel")
        self.sock = sock
        self.loop.add_reader(sock.fileno(), self._readable)
        bound_host, bound_port = sock.getsockname()[:2]
        return (bound_host, bound_port)

    @property
    def address(self) -> Address:
        assert self.sock is not None
        host, port = self.sock.getsockname()[:2]
        return (host, port)

    def _more_queued(self, sock: socket.socket) -> bool:
        """Whether another datagram waits, asked after the first of a drain: one ioctl where
        draining to EAGAIN would cost a failing recvmsg and an exception (one message at a time,
        as in a round trip, is always a drain of one).  A zero-length datagram reads as none
        waiting; the socket stays readable, so it is read on the next turn."""
        if fcntl is None:
            return True
        try:
            fcntl.ioctl(sock.fileno(), termios.FIONREAD, self._queued)
        except OSError:
            return True
        return self._queued != b"\0\0\0\0"

    def _readable(self) -> None:
        sock = self.sock
        if sock is None:
            return
        received: list[tuple[bytes, Address]] = []
        if self.gro:
            self._read_coalesced(sock, received)
        else:
            recv = sock.recvfrom_into
            buffer, view = self._buffer, self._view
            for _ in range(self.batch):
                if len(received) == 1 and not self._more_queued(sock):
                    break
                try:
                    size, addr = recv(buffer)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as exc:  # e.g. ICMP port unreachable reported on the next read
                    self.errors += 1
                    log.debug("udp receive error: %s", exc)
                    continue
                received.append((view[:size].tobytes(), addr))  # AF_INET: (host, port) already
        if received:
            self.on_batch(received)

    def _read_coalesced(self, sock: socket.socket, received: list[tuple[bytes, Address]]) -> None:
        """Drain up to ``batch`` datagrams with recvmsg, cutting GRO runs into their datagrams."""
        recv = sock.recvmsg_into
        append = received.append
        batch = self.batch
        buffers, view = [self._buffer], self._view
        asked = False
        while len(received) < batch:
            if received and not asked:
                asked = True
                if not self._more_queued(sock):
                    break
            if len(received) == MULTI_AFTER and self.multi_read:
                # A long drain (a train of a Node peer's per-packet ACKs, say): the rest in as few
                # system calls as the slots allow.  Not sooner: for the usual two or three (a
                # peer's ACK and its next message) one recvmsg each costs less.
                if self.multi is None and self._long_drains >= LONG_DRAINS_BEFORE_MULTI:
                    self.multi = _multi_receiver()
                    self.multi_read = self.multi is not None
                self._long_drains += 1
                if self.multi is not None:
                    self.errors += self.multi.read(sock.fileno(), received, batch - len(received))
                    return
            try:
                length, ancillary, _flags, addr = recv(buffers, GRO_CMSG)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self.errors += 1
                log.debug("udp receive error: %s", exc)
                continue
            source = addr  # AF_INET: (host, port) already
            if ancillary:
                level, kind, value = ancillary[0]
                if level == SOL_UDP and kind == UDP_GRO:
                    size = int.from_bytes(value[:4], sys.byteorder)
                    if 0 < size < length:
                        for offset in range(0, length, size):
                            append((view[offset:min(offset + size, length)].tobytes(), source))
                        continue
            append((view[:length].tobytes(), source))

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

    def send_batch(self, datagrams: list[bytes], address: Address) -> None:
        """Send datagrams in order to one address: runs of equal size (and a shorter last one)
        leave together with UDP_SEGMENT, the rest one by one."""
        count = len(datagrams)
        if not self.gso or count < 2 or self._pending:
            for data in datagrams:
                self.send(data, address)
            return
        i = 0
        while i < count:
            size = len(datagrams[i])
            limit = min(count, i + min(GSO_SEGMENTS, GSO_BYTES // size))
            j = i + 1
            while j < limit and len(datagrams[j]) == size:
                j += 1
            if j < limit and len(datagrams[j]) < size:
                j += 1  # a shorter datagram may end the run
            if j - i == 1 or not self.gso or self._pending:
                for data in datagrams[i:j]:
                    self.send(data, address)
            else:
                self._send_segmented(datagrams[i:j], size, address)
            i = j

    def _send_segmented(self, run: list[bytes], size: int, address: Address) -> None:
        sock = self.sock
        if sock is None:
            return
        try:
            sock.sendmsg(run, [(SOL_UDP, UDP_SEGMENT, size.to_bytes(2, sys.byteorder))], 0, address)
        except (BlockingIOError, InterruptedError):
            self._pending.extend((data, address) for data in run)
            self.loop.add_writer(sock.fileno(), self._writable)
        except OSError as exc:
            if exc.errno in _GSO_UNSUPPORTED or exc.errno in _GSO_REFUSED:
                if exc.errno in _GSO_UNSUPPORTED:
                    log.debug("no UDP segmentation here (%s): sending datagrams one by one", exc)
                    self.gso = False
                for data in run:
                    self.send(data, address)
            else:
                self.dropped_sends += len(run)
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


def _multi_receiver() -> MultiReceiver | None:
    """recvmmsg's reader, or None where ctypes cannot call it."""
    from hyperswarm_hugin.actors import recvmmsg

    return recvmmsg.MultiReceiver() if recvmmsg.available() else None
