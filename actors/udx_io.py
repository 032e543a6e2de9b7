"""UDX streams on the node's UDP sockets: the demultiplexer and the asyncio stream transport.

This is the byte path: UdpEndpoint → StreamMux → StreamTransport → (secret stream) →
Connection, plain objects on the loop, no actor messages per packet.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

from hyperswarm_hugin.actors.udp import UdpEndpoint, path_mtu
from hyperswarm_hugin.protocol.encoding import Address
from hyperswarm_hugin.protocol.udx.events import DataReceived, MessageReceived, StreamClosed, StreamEnded, StreamError
from hyperswarm_hugin.protocol.udx.packet import (
    DATA,
    DESTROY,
    HEADER_SIZE,
    MAGIC,
    MESSAGE,
    VERSION,
)
from hyperswarm_hugin.protocol.udx.stream import DEFAULT_PAYLOAD, UdxStream

log = logging.getLogger(__name__)

NODE_RECEIVE_LIMIT = 64 * 1024 * 1024
"""Received bytes all of a node's streams hold together; past it, DATA packets are dropped
(each stream holds at most its advertised window, see protocol.udx.stream.RECEIVE_LIMIT)."""


class StreamTransport:
    """One UDX stream bound to a UDP endpoint; the callbacks receive what arrives."""

    def __init__(self, mux: StreamMux, stream: UdxStream, endpoint: UdpEndpoint) -> None:
        self.mux = mux
        self.stream = stream
        self.endpoint = endpoint
        self.remote_address: Address | None = None
        # Until a consumer attaches, what arrives stays buffered in the stream.
        self.attached = False
        self.on_data: Callable[[bytes], None] = lambda data: None
        self.on_end: Callable[[], None] = lambda: None
        self.on_close: Callable[[StreamError | None], None] = lambda error: None
        self.on_message: Callable[[bytes], None] = lambda data: None
        self.on_drain: Callable[[], None] = lambda: None
        self.on_routed: Callable[[], None] = lambda: None  # the first packet chose our path
        # libudx's firewall hook for a connected stream: a packet came in on another socket.
        self.on_foreign: Callable[[UdpEndpoint, Address], None] | None = None
        # Once, for the next DATA or MESSAGE packet from the socket and address we send to.
        self.on_direct_data: Callable[[], None] | None = None
        self._change_seq: int | None = None  # change_remote: packets below it went the old way
        self._on_changed: Callable[[], None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._flush_scheduled = False
        self.started = False  # a packet from the peer has arrived
        self._on_start: Callable[[], None] | None = None
        self._on_start_timeout: Callable[[], None] = lambda: None
        self._start_timer: asyncio.TimerHandle | None = None

    def attach(self, on_data: Callable[[bytes], None], on_end: Callable[[], None],
               on_close: Callable[[StreamError | None], None], on_drain: Callable[[], None]) -> None:
        """Start delivering to these callbacks, beginning with anything that arrived before."""
        self.on_data, self.on_end, self.on_close, self.on_drain = on_data, on_end, on_close, on_drain
        self.attached = True
        self.process_events()

    def expect_start(self, timeout: float, on_start: Callable[[], None], on_timeout: Callable[[], None]) -> None:
        """Call ``on_start()`` (soon, from the loop) when the peer's first packet arrives, or
        ``on_timeout()`` if none arrived within ``timeout`` seconds (hyperdht drops such an
        unstarted server stream after 10 s, its HANDSHAKE_INITIAL_TIMEOUT)."""
        if self.started:
            self.mux.loop.call_soon(on_start)
            return
        self._on_start = on_start
        self._on_start_timeout = on_timeout
        self.start_timeout(timeout)

    def stop_start_timeout(self) -> None:
        """No ``on_timeout()`` for now (``on_start()`` still comes with the first packet)."""
        self._cancel_start_timer()

    def start_timeout(self, timeout: float) -> None:
        """(Re)start the wait of :meth:`expect_start`: ``on_timeout()`` if the peer's first packet
        has not arrived ``timeout`` seconds from now."""
        if self._on_start is None:
            return
        self._cancel_start_timer()

        def timed_out() -> None:
            self._start_timer = None
            if self._on_start is not None:
                self._on_start = None
                self._on_start_timeout()

        self._start_timer = self.mux.loop.call_later(timeout, timed_out)

    @property
    def id(self) -> int:
        return self.stream.local_id

    def connect(self, remote_id: int, address: Address | None = None) -> None:
        """Address the peer's stream ``remote_id``; without ``address`` the first packet's source
        (and the socket it came in on) is used, as libudx's firewall hook does."""
        self.stream.connect(remote_id)
        if address is not None:
            self.set_remote_address(address)
        self.schedule_flush()

    def route(self, endpoint: UdpEndpoint, address: Address) -> None:
        """Send from ``endpoint`` to ``address`` from now on (a punched path)."""
        self._use(endpoint)
        self.set_remote_address(address)
        self.schedule_flush()

    def change_remote(self, endpoint: UdpEndpoint, remote_id: int, address: Address,
                      on_changed: Callable[[], None]) -> None:
        """Move a connected stream to another path (libudx's ``udx_stream_change_remote``): from
        now on every packet, retransmissions included, goes from ``endpoint`` to ``address``,
        addressed to the peer's stream ``remote_id``; sequence numbers and everything in flight
        carry on.  ``on_changed()`` runs (from the loop) once the peer acknowledged every packet
        sent before the change, at once when none is in flight."""
        self.stream.connect(remote_id)
        self._use(endpoint)
        self.set_remote_address(address)
        self._change_seq = self.stream.next_seq
        self._on_changed = on_changed
        self._check_changed()
        self.schedule_flush()

    def set_remote_address(self, address: Address | None) -> None:
        """Send to ``address``; a new one starts the stream's path MTU search over, bounded by
        what the OS knows of the path (as libudx does on connect and on a change of remote)."""
        if address != self.remote_address:
            self.remote_address = address
            if address is not None:
                self.stream.set_mtu_limit(path_mtu(address))

    def _check_changed(self) -> None:
        if self._change_seq is None or self.stream.remote_acked < self._change_seq:
            return
        callback, self._on_changed, self._change_seq = self._on_changed, None, None
        if callback is not None:
            self.mux.loop.call_soon(callback)

    def _use(self, endpoint: UdpEndpoint) -> None:
        if endpoint is self.endpoint:
            return
        endpoint.hold()
        previous, self.endpoint = self.endpoint, endpoint
        if previous.pooled:
            previous.release()

    def release_endpoint(self) -> None:
        """The stream is gone: a pooled socket it held may close."""
        if self.endpoint.pooled:
            self.endpoint.release()

    def write(self, data: bytes) -> None:
        self.stream.write(data)
        self.schedule_flush()

    def end(self) -> None:
        self.stream.end()
        self.schedule_flush()

    def send_message(self, data: bytes) -> None:
        self.stream.send_message(data)
        self.schedule_flush()

    def destroy(self) -> None:
        if self.stream.closed:
            return
        self.stream.destroy()
        self.flush()
        self.process_events()

    @property
    def buffered(self) -> int:
        return self.stream.queued_bytes

    def schedule_flush(self) -> None:
        """Send at the end of this loop turn, so writes issued together share packets."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.mux.loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        address = self.remote_address
        if address is None:
            return
        before = self.stream.queued_bytes
        datagrams = self.stream.datagrams_to_send(self.mux.loop.time())
        if len(datagrams) == 1:
            self.endpoint.send(datagrams[0], address)
        elif datagrams:
            self.endpoint.send_batch(datagrams, address)
        if before and self.stream.queued_bytes < before:
            self.on_drain()
        self._arm()

    def received(self, data: bytes, source: Address, now: float, endpoint: UdpEndpoint) -> None:
        if self.remote_address is None and self.stream.connected:
            # hyperdht's firewall hook: connect to the first packet's source and socket
            self._use(endpoint)
            self.set_remote_address(source)
            self.on_routed()
        elif endpoint is not self.endpoint and self.on_foreign is not None:
            self.on_foreign(endpoint, source)
        elif self.on_direct_data is not None and data[2] & (DATA | MESSAGE) and endpoint is self.endpoint \
                and source == self.remote_address:
            callback, self.on_direct_data = self.on_direct_data, None
            self.mux.loop.call_soon(callback)
        if not self.started:
            self.started = True
            if self._on_start is not None:
                # From the loop, not from inside the demultiplexer: the callee may close us.
                self.mux.loop.call_soon(self._on_start)
                self._on_start = None
                self._cancel_start_timer()
        self.stream.receive_datagram(data, now)

    def process_events(self) -> None:
        """Hand the stream's events to the callbacks (once a consumer is attached; until then
        they wait in the stream), forget the stream once it is done, and re-arm its timer.  A
        callback may destroy the stream: the events that causes are taken by the same loop."""
        stream = self.stream
        if self._change_seq is not None:
            self._check_changed()
        if self.attached:
            while (event := stream.next_event()) is not None:
                if type(event) is DataReceived:
                    self.on_data(event.data)
                elif type(event) is MessageReceived:
                    self.on_message(event.data)
                elif type(event) is StreamEnded:
                    self.on_end()
                elif type(event) is StreamClosed:  # always the last
                    self.on_close(event.error)
        if stream.closed and stream.linger_until is None:  # stream.done, spelled out (hot path)
            self.mux.forget(self)
        self._arm()

    def _arm(self) -> None:
        """Make sure the loop wakes us by the stream's deadline.  One timer, re-armed only when
        the deadline moves earlier (as libudx does): the RTO moves later with every ACK, and a
        ``call_at`` plus a cancel per packet cost more than a timer that wakes early once in a
        while and finds nothing due.  With no deadline the armed timer is left to run out."""
        at = self.stream.get_timer()
        if at is None:
            return
        timer_at = self._timer_at
        if timer_at is not None and timer_at <= at:
            return  # wakes in time; _on_timer re-arms for the later deadline
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = self.mux.loop.call_at(at, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        now = self.mux.loop.time()
        at = self.stream.get_timer()
        if at is None or now < at:
            self._arm()  # the deadline moved later (or went) since the timer was armed
            return
        self.stream.handle_timer(now)
        self.flush()
        self.process_events()

    def cancel_timers(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = None
        self._on_start = None
        self._cancel_start_timer()

    def _cancel_start_timer(self) -> None:
        if self._start_timer is not None:
            self._start_timer.cancel()
            self._start_timer = None


class StreamMux:
    """All UDX streams of one node, by local id (shared by its sockets, as in libudx)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, rng: random.Random | None = None) -> None:
        self.loop = loop
        self.rng = rng or random.Random()
        self.streams: dict[int, StreamTransport] = {}
        self.packets_in = 0
        self.receive_limit = NODE_RECEIVE_LIMIT
        self.dropped_over_limit = 0
        self.relay_links: dict[int, RelayLink] = {}
        self.relayed_packets = 0

    def _free_id(self) -> int:
        local_id = self.rng.getrandbits(32)
        while local_id in self.streams or local_id in self.relay_links:
            local_id = self.rng.getrandbits(32)
        return local_id

    def relay_pair(self, initiator_id: int, responder_id: int) -> tuple[RelayLink, RelayLink]:
        """Two relay streams joined to each other (a blind relay's pairing): each is bound to its
        peer by the first packet that arrives for it, and every packet is passed on to the
        other's peer with only the stream id rewritten (libudx's ``relayTo``)."""
        a = RelayLink(self._free_id(), initiator_id)
        self.relay_links[a.id] = a
        b = RelayLink(self._free_id(), responder_id)
        self.relay_links[b.id] = b
        a.other, b.other = b, a
        return a, b

    def unlink(self, link: RelayLink) -> None:
        """Drop a relay pairing (both of its streams)."""
        for side in (link, link.other):
            if side is not None and self.relay_links.get(side.id) is side:
                del self.relay_links[side.id]
                side.release()

    def _relay(self, link: RelayLink, data: bytes, source: Address, endpoint: UdpEndpoint) -> None:
        if link.address is None:
            link.bind(endpoint, source)  # the firewall hook of a relay stream
        other = link.other
        if other is None or other.address is None or other.endpoint is None:
            return  # the other peer has not spoken yet: its packets will come again
        self.relayed_packets += 1
        other.endpoint.send(data[:4] + other.remote_id.to_bytes(4, "little") + data[8:], other.address)
        if data[2] & DESTROY:
            self.unlink(link)

    def create(self, endpoint: UdpEndpoint, *, local_id: int | None = None,
               max_payload: int = DEFAULT_PAYLOAD) -> StreamTransport:
        """A new stream, not yet connected, with ``local_id`` or a fresh random id."""
        if local_id is None:
            local_id = self.rng.getrandbits(32)
            while local_id in self.streams:
                local_id = self.rng.getrandbits(32)
        elif local_id in self.streams:
            raise ValueError(f"stream id {local_id} is in use")
        transport = StreamTransport(self, UdxStream(local_id, max_payload=max_payload), endpoint)
        self.streams[local_id] = transport
        return transport

    def held_bytes(self) -> int:
        """Received bytes held by all streams (see :attr:`UdxStream.held_bytes`)."""
        total = 0
        for transport in self.streams.values():  # a loop, not sum() over a generator: per batch
            total += transport.stream.held_bytes
        return total

    def forget(self, transport: StreamTransport) -> None:
        transport.cancel_timers()
        if self.streams.get(transport.id) is transport:
            del self.streams[transport.id]
            transport.release_endpoint()

    def dispatch(self, datagrams: list[tuple[bytes, Address]], now: float,
                 endpoint: UdpEndpoint) -> list[tuple[bytes, Address]]:
        """Hand UDX packets for live streams to them; return every other datagram (for the DHT).
        ``endpoint`` is the socket they arrived on."""
        streams = self.streams
        relay_links = self.relay_links
        if not streams and not relay_links:
            return datagrams
        if len(datagrams) == 1 and not relay_links:
            # One datagram (messages one at a time, a round trip): the loop below without its
            # bookkeeping for batches.
            data, source = datagrams[0]
            if len(data) >= HEADER_SIZE and data[0] == MAGIC and data[1] == VERSION:
                transport = streams.get(int.from_bytes(data[4:8], "little"))
                if transport is not None and (not transport.stream.closed or transport.stream.linger_until):
                    if data[2] & DATA and self.held_bytes() > self.receive_limit:
                        self.dropped_over_limit += 1
                        return []
                    self.packets_in += 1
                    transport.received(data, source, now, endpoint)
                    transport.process_events()
                    transport.schedule_flush()
                    return []
            return datagrams
        rest: list[tuple[bytes, Address]] = []
        touched: dict[int, StreamTransport] = {}
        pending_ack: dict[int, tuple[bytes, Address]] = {}
        over_limit = self.held_bytes() > self.receive_limit
        for data, source in datagrams:
            if len(data) >= HEADER_SIZE and data[0] == MAGIC and data[1] == VERSION:  # udx_stream_id
                sid = int.from_bytes(data[4:8], "little")
                if relay_links and (link := relay_links.get(sid)) is not None:
                    self._relay(link, data, source, endpoint)
                    continue
                transport = streams.get(sid)
                # (not ``stream.done``: spelled out, as this runs per packet)
                if transport is not None and (not transport.stream.closed or transport.stream.linger_until):
                    if over_limit and data[2] & DATA:
                        self.dropped_over_limit += 1  # resent by an honest sender once we read
                        continue
                    self.packets_in += 1
                    touched[sid] = transport
                    # A plain ACK is superseded by the next plain ACK of the same stream in this
                    # batch (cumulative ack, newest window): hold it back until we know.
                    if data[2] == 0 and len(data) == HEADER_SIZE:
                        pending_ack[sid] = (data, source)
                        continue
                    held = pending_ack.pop(sid, None)
                    if held is not None:
                        transport.received(held[0], held[1], now, endpoint)
                    transport.received(data, source, now, endpoint)
                    continue
            rest.append((data, source))
        for sid, (data, source) in pending_ack.items():
            touched[sid].received(data, source, now, endpoint)
        for transport in touched.values():
            # Deliver first and send at the end of this loop turn: a reply the application writes
            # on what it just read then carries the acknowledgement (one datagram, not two).
            transport.process_events()
            transport.schedule_flush()
        return rest


class RelayLink:
    """One half of a relay pairing: our relay stream ``id`` facing a peer whose stream is
    ``remote_id``, at the socket and address its first packet came from."""

    __slots__ = ("address", "endpoint", "id", "other", "remote_id")

    def __init__(self, local_id: int, remote_id: int) -> None:
        self.id = local_id
        self.remote_id = remote_id
        self.endpoint: UdpEndpoint | None = None
        self.address: Address | None = None
        self.other: RelayLink | None = None

    def bind(self, endpoint: UdpEndpoint, address: Address) -> None:
        endpoint.hold()
        self.endpoint, self.address = endpoint, address

    def release(self) -> None:
        if self.endpoint is not None and self.endpoint.pooled:
            self.endpoint.release()
        self.endpoint = None
