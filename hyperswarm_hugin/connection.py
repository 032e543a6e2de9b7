"""Connection: an encrypted, message-preserving asyncio duplex over a UDX stream.

What hyperswarm hands to a ``connection`` listener.  Every ``write()`` arrives
as exactly one message at the other end (secret-stream keeps boundaries, and
Hugin apps rely on that).  ``read()`` returns the next message, ``b""`` at the
end of the peer's stream; ``async for message in conn`` does the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable

from hyperswarm_hugin.actors.udp import UdpEndpoint
from hyperswarm_hugin.actors.udx_io import StreamTransport
from hyperswarm_hugin.protocol.noise import HandshakeResult
from hyperswarm_hugin.protocol.secret_stream import MAX_MESSAGE, SecretStream, SecretStreamError
from hyperswarm_hugin.protocol.udx.events import StreamError

log = logging.getLogger(__name__)

KEEP_ALIVE = 5.0
HIGH_WATER = 4 * 1024 * 1024
LOW_WATER = 1024 * 1024


class ConnectionClosed(ConnectionError):
    """The connection was closed (or ended for writing) before this operation."""


class Connection:
    """One end of an encrypted hyperswarm connection."""

    def __init__(self, transport: StreamTransport, handshake: HandshakeResult, *,
                 keep_alive: float | None = KEEP_ALIVE, header: bytes | None = None) -> None:
        self._transport = transport
        self._loop = transport.mux.loop
        self.public_key = handshake.public_key
        self.remote_public_key = handshake.remote_public_key
        self.is_initiator = handshake.is_initiator
        self.handshake_hash = handshake.hash
        self._secret = SecretStream(is_initiator=handshake.is_initiator, tx=handshake.tx, rx=handshake.rx,
                                    handshake_hash=handshake.hash, header=header)
        self._messages: deque[bytes] = deque()
        self._queued = 0
        # Readers and drainers wait on plain futures of their own (no task or asyncio.wait per
        # message); whoever makes progress possible wakes them all.
        self._read_waiters: list[asyncio.Future[None]] = []
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._blocked = False  # writes are past the high-water mark
        self._closed = self._loop.create_future()
        self._remote_ended = False
        self._local_ended = False
        self.error: BaseException | None = None
        self.raw_bytes_read = 0
        self.raw_bytes_written = 0
        # A client's connect: time.perf_counter() at its call, and the seconds from there to the open
        self.connect_started: float | None = None
        self.connect_seconds: float | None = None
        self.relayed = False  # the stream goes through a blind relay
        self._direct = self._loop.create_future()  # a relayed stream moved to a direct path
        self._keep_alive = keep_alive
        self._keep_alive_timer: asyncio.TimerHandle | None = None
        self._wrote = False  # a write since the keep-alive timer was armed
        self._send(self._secret.header_frame())
        self._arm_keep_alive()
        transport.attach(self._on_data, self._on_end, self._on_close, self._on_drain)

    @property
    def holepunched(self) -> bool:
        """Whether the stream runs over a puncher socket (a path made by NAT holepunching)."""
        return self._transport.endpoint.pooled

    def went_direct(self) -> None:
        """A relayed stream now runs over a direct (holepunched) path and its relay is let go."""
        self.relayed = False
        if not self._direct.done():
            self._direct.set_result(None)

    async def wait_direct(self) -> None:
        """Return once this relayed connection has moved to a direct path (hyperdht 6.34 keeps
        punching after pairing through a relay); :class:`ConnectionClosed` if it closes first."""
        await asyncio.wait({self._direct, self._closed}, return_when=asyncio.FIRST_COMPLETED)
        if not self._direct.done():
            raise ConnectionClosed("the connection closed while relayed")

    @property
    def route(self) -> tuple[UdpEndpoint, tuple[str, int]]:
        """The socket and address the stream's packets go to (where a relay is reached)."""
        address = self._transport.remote_address
        if address is None:
            raise ConnectionError("the stream has no remote address yet")
        return self._transport.endpoint, address

    @property
    def remote_address(self) -> tuple[str, int] | None:
        """Where the stream's packets go."""
        return self._transport.remote_address

    # ------------------------------------------------------------------ writing

    def write(self, data: bytes) -> None:
        """Send ``data`` as one message; see :meth:`drain` for backpressure."""
        if self._local_ended or self._closed.done():
            raise ConnectionClosed("write after end() or close()")
        if len(data) > MAX_MESSAGE:
            raise ValueError(f"a message is at most {MAX_MESSAGE} bytes")
        frame = self._secret.encrypt(data)  # (a copy of data first if it is not bytes)
        self.raw_bytes_written += len(frame)
        transport = self._transport
        transport.write(frame)
        self._wrote = True
        if transport.stream.queued_bytes > HIGH_WATER:  # transport.buffered, spelled out
            self._blocked = True

    def _send(self, frame: bytes) -> None:
        self.raw_bytes_written += len(frame)
        self._transport.write(frame)

    @property
    def write_blocked(self) -> bool:
        """True while the send buffer is past its high-water mark (:meth:`drain` waits)."""
        return self._blocked

    async def drain(self) -> None:
        """Wait until the send buffer is below its low-water mark."""
        while self._blocked:
            if self._closed.done():
                raise ConnectionClosed("connection closed while draining") from self.error
            await self._wait(self._drain_waiters)
        if self._closed.done() and self.error is not None:
            raise ConnectionClosed("connection failed") from self.error

    def end(self) -> None:
        """Half-close: no more writes; the peer reads to the end of what was sent."""
        if self._local_ended or self._closed.done():
            return
        self._local_ended = True
        self._stop_keep_alive()
        self._transport.end()

    # ------------------------------------------------------------------ reading

    async def read(self) -> bytes:
        """The next message, or ``b""`` once the peer ended its side."""
        messages = self._messages
        while not messages:
            if self._remote_ended or self._closed.done():
                if self.error is not None:
                    raise ConnectionClosed("connection failed") from self.error
                return b""
            # _wait, inlined: this is every message's path when the reader keeps up.
            waiter = self._loop.create_future()
            self._read_waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                self._drop(waiter, self._read_waiters)
                raise
        message = messages.popleft()
        self._queued -= len(message)
        if self._transport.stream.set_backlog(self._queued):
            self._transport.schedule_flush()  # the window reopened: tell the sender
        return message

    async def _wait(self, waiters: list[asyncio.Future[None]]) -> None:
        waiter = self._loop.create_future()
        waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            self._drop(waiter, waiters)
            raise
        # A waiter that completed was woken by _wake, which emptied the list.

    @staticmethod
    def _drop(waiter: asyncio.Future[None], waiters: list[asyncio.Future[None]]) -> None:
        """The waiting task was cancelled (or closed): forget its waiter."""
        waiter.cancel()
        with contextlib.suppress(ValueError):
            waiters.remove(waiter)

    @staticmethod
    def _wake(waiters: list[asyncio.Future[None]]) -> None:
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        waiters.clear()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while message := await self.read():
            yield message

    # ------------------------------------------------------------------ lifecycle

    @property
    def closed(self) -> bool:
        return self._closed.done()

    def add_close_callback(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once the connection is closed (at once if it already is)."""
        self._closed.add_done_callback(lambda _: callback())

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)

    def destroy(self, error: BaseException | None = None) -> None:
        """Abort at once (the peer sees a DESTROY)."""
        if self._closed.done():
            return
        self.error = error
        self._transport.destroy()
        self._finish()

    async def close(self) -> None:
        """End our side and destroy the stream; returns when closed."""
        self.destroy()
        await self.wait_closed()

    def _finish(self) -> None:
        self._stop_keep_alive()
        self._blocked = False
        self._wake(self._read_waiters)
        self._wake(self._drain_waiters)
        if not self._closed.done():
            self._closed.set_result(None)

    def _on_data(self, data: bytes) -> None:
        self.raw_bytes_read += len(data)
        try:
            messages = self._secret.receive(data)
        except SecretStreamError as exc:
            log.info("closing a connection: %s", exc)
            self.destroy(exc)
            return
        for message in messages:
            self._messages.append(message)
            self._queued += len(message)
        if messages:
            self._transport.stream.set_backlog(self._queued)
            if self._read_waiters:
                self._wake(self._read_waiters)

    def _on_end(self) -> None:
        try:
            self._secret.finish()
        except SecretStreamError as exc:
            log.info("closing a connection: %s", exc)
            self.destroy(exc)
            return
        self._remote_ended = True
        self._wake(self._read_waiters)

    def _on_close(self, error: StreamError | None) -> None:
        if error is not None and self.error is None:
            self.error = ConnectionResetError(error) if error == StreamError.ECONNRESET else TimeoutError(error)
        self._finish()

    def _on_drain(self) -> None:
        if self._blocked and self._transport.buffered <= LOW_WATER:
            self._blocked = False
            self._wake(self._drain_waiters)

    def _arm_keep_alive(self) -> None:
        """One timer per period, not one per write (secret-stream's timeout-refresh does the
        same): a period with a write only re-arms; a silent one sends the keep-alive."""
        if self._keep_alive is None or self._local_ended:
            return
        self._wrote = False
        self._keep_alive_timer = self._loop.call_later(self._keep_alive, self._keep_alive_due)

    def _keep_alive_due(self) -> None:
        self._keep_alive_timer = None
        if self._local_ended or self._closed.done():
            return
        if not self._wrote:
            self._send(self._secret.encrypt(b""))
        self._arm_keep_alive()

    def _stop_keep_alive(self) -> None:
        if self._keep_alive_timer is not None:
            self._keep_alive_timer.cancel()
            self._keep_alive_timer = None
