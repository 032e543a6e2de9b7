"""The UDX state machine on a simulated network with a fake clock: whatever the path does,
the receiver gets exactly the bytes written, in order, and both ends close cleanly."""

from __future__ import annotations

import contextlib
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from hyperswarm_hugin.protocol.errors import DecodeError
from hyperswarm_hugin.protocol.udx.events import (
    DataReceived,
    MessageReceived,
    StreamClosed,
    StreamEnded,
    StreamError,
    UdxEvent,
)
from hyperswarm_hugin.protocol.udx.packet import DATA, DESTROY, END, HEARTBEAT, MESSAGE, SACK, Packet, decode_packet
from hyperswarm_hugin.protocol.udx.stream import UdxStream
from tests.udxsim import EventLog, Pair


def events(stream: UdxStream) -> list[UdxEvent]:
    """Every pending event."""
    return list(iter(stream.next_event, None))


def taken(stream: UdxStream) -> bytes:
    """The bytes pending: one DataReceived or none, and no other event."""
    pending = events(stream)
    if not pending:
        return b""
    [event] = pending
    assert isinstance(event, DataReceived) and event.data
    return event.data

writes = st.lists(st.integers(0, 20_000), min_size=1, max_size=30)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**32),
    loss=st.floats(0, 0.3),
    duplicate=st.floats(0, 0.2),
    jitter=st.floats(0, 0.02),
    sizes_a=writes,
    sizes_b=writes,
)
def test_bytes_arrive_exactly_once_and_in_order(seed: int, loss: float, duplicate: float, jitter: float,
                                                 sizes_a: list[int], sizes_b: list[int]) -> None:
    rng = random.Random(seed)
    pair = Pair(rng, loss=loss, duplicate=duplicate, jitter=jitter, delay=0.002)
    sent_a = b"".join(rng.randbytes(n) for n in sizes_a)
    sent_b = b"".join(rng.randbytes(n) for n in sizes_b)
    # Writes interleaved with the network running, as an application would.
    offset_a = offset_b = 0
    for size_a, size_b in zip(sizes_a, sizes_b, strict=False):
        pair.a.write(sent_a[offset_a:offset_a + size_a])
        pair.b.write(sent_b[offset_b:offset_b + size_b])
        offset_a += size_a
        offset_b += size_b
        for _ in range(rng.randrange(5)):
            pair.step()
    pair.a.write(sent_a[offset_a:])
    pair.b.write(sent_b[offset_b:])
    pair.a.end()
    pair.b.end()
    pair.run(until=3600)
    assert bytes(pair.received_b) == sent_a
    assert bytes(pair.received_a) == sent_b
    assert pair.a.closed and pair.b.closed
    assert pair.events_a == [StreamEnded(), StreamClosed(pair.a.error)]
    assert pair.events_b == [StreamEnded(), StreamClosed(pair.b.error)]
    errors = {pair.a.error, pair.b.error}
    # Like libudx (udx.md §9): if every ACK of a side's END is lost (seven in a row), that side
    # times out even though all its data arrived. At most one side can end that way.
    assert errors in ({None}, {None, "ETIMEDOUT"})


def test_a_silent_peer_times_out_like_libudx() -> None:
    stream = UdxStream(1)
    stream.connect(2)
    stream.write(b"x")
    sent_at = []
    now = 0.0
    for _ in range(20):
        if stream.datagrams_to_send(now):
            sent_at.append(now)
        timer = stream.get_timer()
        if timer is None:
            break
        now = timer
        stream.handle_timer(now)
    assert sent_at == [0.0, 1.0, 3.0, 5.0, 7.0, 9.0, 11.0]
    assert stream.closed and stream.error == "ETIMEDOUT" and now == 13.0
    assert events(stream) == [StreamClosed(StreamError.ETIMEDOUT)]


def test_an_unacknowledged_last_end_after_the_peers_end_is_a_clean_close() -> None:
    """The peer ended, we end last, the peer's acknowledgement of our END is lost and the peer,
    finished, never answers again: nothing of ours is missing, so the stream ends without error."""
    stream = UdxStream(1)
    stream.connect(2)
    stream.receive_datagram(Packet(END, 1, 4_194_304, 0, 0).encode(), 0.0)
    assert stream.remote_ended and not stream.closed
    assert events(stream) == [StreamEnded()]
    stream.end()
    now = 0.0
    for _ in range(20):
        stream.datagrams_to_send(now)
        timer = stream.get_timer()
        if timer is None or stream.closed:
            break
        now = timer
        stream.handle_timer(now)
    assert stream.closed and stream.error is None
    assert events(stream) == [StreamClosed(None)]


def test_destroy_with_a_stale_seq_is_ignored_and_a_current_one_resets() -> None:
    stream = UdxStream(1)
    stream.connect(2)
    data = Packet(DATA, 1, 4_194_304, 0, 0, b"abc").encode()
    stream.receive_datagram(data, 0.0)
    stale = Packet(0x10, 1, 4_194_304, 0, 0).encode()  # seq 0 is before our ack (1)
    stream.receive_datagram(stale, 0.1)
    assert not stream.closed
    stream.receive_datagram(Packet(0x10, 1, 4_194_304, 1, 0).encode(), 0.2)
    assert stream.closed and stream.error == "ECONNRESET"
    assert events(stream) == [DataReceived(b"abc"), StreamClosed(StreamError.ECONNRESET)]


def test_every_data_packet_is_acknowledged_with_sack_for_holes() -> None:
    stream = UdxStream(1)
    stream.connect(2)
    stream.receive_datagram(Packet(DATA, 1, 4_194_304, 1, 0, b"later").encode(), 0.0)
    [sack] = stream.datagrams_to_send(0.0)
    decoded = decode_packet(sack)
    assert decoded.type == SACK and decoded.ack == 0 and decoded.sacks == ((1, 2),)
    stream.receive_datagram(Packet(DATA, 1, 4_194_304, 0, 0, b"first").encode(), 0.0)
    [ack] = stream.datagrams_to_send(0.0)
    assert decode_packet(ack).type == 0 and decode_packet(ack).ack == 2
    assert taken(stream) == b"firstlater"
    # A duplicate is acknowledged again and not delivered twice.
    stream.receive_datagram(Packet(DATA, 1, 4_194_304, 0, 0, b"first").encode(), 0.0)
    assert decode_packet(stream.datagrams_to_send(0.0)[0]).ack == 2
    assert taken(stream) == b""


def test_padding_is_skipped_and_a_bad_offset_dropped() -> None:
    stream = UdxStream(1)
    stream.connect(2)
    stream.receive_datagram(Packet(DATA, 1, 4_194_304, 0, 0, b"probe", doff=32).encode(), 0.0)
    assert taken(stream) == b"probe"
    broken = bytearray(Packet(DATA, 1, 4_194_304, 1, 0, b"xx").encode())
    broken[3] = 200
    stream.receive_datagram(bytes(broken), 0.0)
    assert taken(stream) == b""


def test_end_closes_after_both_sides_end() -> None:
    stream = UdxStream(1)
    stream.connect(2)
    stream.end()
    [end] = stream.datagrams_to_send(0.0)
    assert decode_packet(end).type == END
    stream.receive_datagram(Packet(END, 1, 4_194_304, 0, 1).encode(), 0.01)
    assert stream.remote_ended and stream.local_ended and stream.closed and stream.error is None
    assert events(stream) == [StreamEnded(), StreamClosed(None)]


@settings(max_examples=500)
@given(st.binary(max_size=120))
def test_arbitrary_bytes_never_break_the_stream(data: bytes) -> None:
    stream = UdxStream(1)
    stream.connect(2)
    stream.write(b"payload")
    stream.datagrams_to_send(0.0)
    stream.receive_datagram(b"\xff\x01" + data, 0.0)
    stream.datagrams_to_send(0.0)
    with contextlib.suppress(DecodeError):
        decode_packet(b"\xff\x01" + data)


def data_packet(seq: int, payload: bytes, kind: int = DATA) -> bytes:
    return Packet(kind, 1, 4_194_304, seq, 0, payload).encode()


def test_bytes_in_order_come_as_one_event_per_drain() -> None:
    stream = UdxStream(1)
    stream.connect(2)
    stream.receive_datagram(data_packet(2, b"c"), 0.0)
    assert events(stream) == []  # held out of order
    stream.receive_datagram(data_packet(0, b"a"), 0.0)
    stream.receive_datagram(data_packet(1, b"b"), 0.0)
    assert stream.inbox_bytes == 3
    assert events(stream) == [DataReceived(b"abc")]
    assert stream.inbox_bytes == 0
    stream.receive_datagram(data_packet(3, b"d"), 0.0)
    assert events(stream) == [DataReceived(b"d")]


def test_messages_come_in_arrival_order_and_bytes_first() -> None:
    stream = UdxStream(1)
    stream.connect(2)
    stream.receive_datagram(data_packet(0, b"one", MESSAGE), 0.0)
    stream.receive_datagram(data_packet(0, b"data"), 0.0)
    stream.receive_datagram(data_packet(1, b"", END), 0.0)
    stream.receive_datagram(data_packet(2, b"two", MESSAGE), 0.0)
    assert stream.messages_held == 2
    assert events(stream) == [DataReceived(b"data"), MessageReceived(b"one"), StreamEnded(), MessageReceived(b"two")]
    assert stream.messages_held == 0


def test_a_local_destroy_still_gives_what_arrived_then_the_close() -> None:
    stream = UdxStream(1)
    stream.connect(2)
    stream.receive_datagram(data_packet(0, b"early"), 0.0)
    stream.destroy()
    [destroy] = stream.datagrams_to_send(0.0)
    assert decode_packet(destroy).type == DESTROY
    assert events(stream) == [DataReceived(b"early"), StreamClosed(None)]
    stream.destroy()  # once closed, nothing more
    stream.receive_datagram(data_packet(1, b"late"), 0.1)
    assert events(stream) == [] and stream.done  # a destroyed stream does not linger


def block(seq: int) -> bytes:
    """The payload every DATA packet with ``seq`` carries in the test below."""
    return bytes([seq]) * 3


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([DATA, DATA, DATA, END, DATA | END, MESSAGE, DESTROY, HEARTBEAT, 0]),
                          st.integers(0, 40), st.booleans()), max_size=120))
def test_any_packet_order_gives_each_block_once_in_seq_order(steps: list[tuple[int, int, bool]]) -> None:
    """Packets of a small seq space in any order, duplicated, with ENDs and DESTROYs anywhere,
    events taken at any point: each delivered block comes once, in seq order, only up to the ack,
    and the events keep their order."""
    stream = UdxStream(1)
    stream.connect(2)
    log = EventLog()
    for i, (kind, seq, take) in enumerate(steps):
        stream.receive_datagram(data_packet(seq, block(seq) if kind & (DATA | MESSAGE) else b"", kind), i * 0.001)
        stream.datagrams_to_send(i * 0.001)
        if take:
            log.drain(stream)
    log.drain(stream)
    data = bytes(log.data)
    assert len(data) % 3 == 0
    seqs = [data[i] for i in range(0, len(data), 3)]
    assert seqs == sorted(set(seqs)) and all(data[i:i + 3] == block(data[i]) for i in range(0, len(data), 3))
    assert all(seq < stream._ack for seq in seqs)
    messages = [e for e in log.events if isinstance(e, MessageReceived)]
    assert all(len(e.data) == 3 and e.data == block(e.data[0]) for e in messages)


def test_a_second_end_held_out_of_order_is_not_a_second_stream_ended() -> None:
    stream = UdxStream(1)
    stream.connect(2)
    stream.receive_datagram(data_packet(1, b"", END), 0.0)
    stream.receive_datagram(data_packet(2, b"", END), 0.0)  # a peer that ends twice
    stream.receive_datagram(data_packet(0, b"a"), 0.0)
    assert events(stream) == [DataReceived(b"a"), StreamEnded()]
