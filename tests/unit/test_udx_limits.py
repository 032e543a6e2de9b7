"""UDX receive limits: a stream holds at most its advertised window; a node at most its total."""

from __future__ import annotations

import asyncio
from typing import Any

from hyperswarm_hugin.actors.udx_io import StreamMux
from hyperswarm_hugin.protocol.udx.events import DataReceived, MessageReceived
from hyperswarm_hugin.protocol.udx.packet import DATA, DEFAULT_RWND, MESSAGE, pack_header
from hyperswarm_hugin.protocol.udx.stream import MAX_AHEAD, MAX_MESSAGES_HELD, RECEIVE_LIMIT, UdxStream


def packet(stream_id: int, seq: int, payload: bytes, kind: int = DATA) -> bytes:
    return pack_header(0xFF, 1, kind, 0, stream_id, DEFAULT_RWND, seq, 0) + payload


def test_far_ahead_and_over_window_packets_are_dropped() -> None:
    stream = UdxStream(1)
    stream.connect(2)
    stream.receive_datagram(packet(1, MAX_AHEAD + 5, b"x" * 100), 0.0)
    assert stream.held_bytes == 0 and stream.stats_dropped == 1
    for seq in range(1, 10_000):  # a hole at 0: all held out of order, up to the limit
        stream.receive_datagram(packet(1, seq, b"y" * 1000), 0.0)
    assert 0 < stream.held_bytes <= RECEIVE_LIMIT
    assert stream.next_event() is None  # nothing in order yet


def test_in_order_data_stops_at_the_window_until_the_reader_catches_up() -> None:
    stream = UdxStream(1)
    stream.connect(2)
    seq = 0
    while stream.stats_dropped == 0:
        stream.receive_datagram(packet(1, seq, b"z" * 1000), 0.0)
        seq += 1
    assert stream.held_bytes <= RECEIVE_LIMIT
    taken = stream.next_event()
    assert isinstance(taken, DataReceived) and stream.next_event() is None
    stream.set_backlog(len(taken.data))  # the reader holds it now: still counted
    stream.receive_datagram(packet(1, stream._ack, b"z" * 1000), 0.0)
    assert stream.stats_dropped == 2
    stream.set_backlog(0)  # ... and read it
    stream.receive_datagram(packet(1, stream._ack, b"z" * 1000), 0.0)
    assert stream.inbox_bytes == 1000


def test_unread_udx_messages_are_capped() -> None:
    stream = UdxStream(1)
    stream.connect(2)
    for _ in range(MAX_MESSAGES_HELD + 10):
        stream.receive_datagram(packet(1, 0, b"m", MESSAGE), 0.0)
    assert stream.messages_held == MAX_MESSAGES_HELD
    events = list(iter(stream.next_event, None))
    assert events == [MessageReceived(b"m")] * MAX_MESSAGES_HELD and stream.messages_held == 0


class _Endpoint:
    pooled = False

    def send(self, data: bytes, address: Any) -> None:
        pass

    def send_batch(self, datagrams: list[bytes], address: Any) -> None:
        pass


def test_the_node_total_drops_data_for_every_stream_past_it() -> None:
    async def main() -> None:
        mux = StreamMux(asyncio.get_running_loop())
        mux.receive_limit = 50_000
        endpoint = _Endpoint()
        a, b = mux.create(endpoint), mux.create(endpoint)  # type: ignore[arg-type]
        for t in (a, b):
            t.connect(9, ("127.0.0.1", 9))
        source = ("127.0.0.1", 9)
        mux.dispatch([(packet(a.id, seq, b"a" * 1000), source) for seq in range(60)], 0.0, endpoint)  # type: ignore[arg-type]
        assert a.stream.held_bytes == 60_000  # one batch is let through whole
        mux.dispatch([(packet(b.id, 0, b"b" * 1000), source)], 0.0, endpoint)  # type: ignore[arg-type]
        assert b.stream.held_bytes == 0 and mux.dropped_over_limit == 1
        for t in (a, b):
            t.destroy()

    asyncio.run(main())
