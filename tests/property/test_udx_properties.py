"""The UDX state machine on a simulated network with a fake clock: whatever the path does,
the receiver gets exactly the bytes written, in order, and both ends close cleanly."""

from __future__ import annotations

import contextlib
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from hyperswarm_hugin.protocol.errors import DecodeError
from hyperswarm_hugin.protocol.udx.packet import DATA, END, SACK, Packet, decode_packet
from hyperswarm_hugin.protocol.udx.stream import UdxStream
from tests.udxsim import Pair

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


def test_an_unacknowledged_last_end_after_the_peers_end_is_a_clean_close() -> None:
    """The peer ended, we end last, the peer's acknowledgement of our END is lost and the peer,
    finished, never answers again: nothing of ours is missing, so the stream ends without error."""
    stream = UdxStream(1)
    stream.connect(2)
    stream.receive(Packet(END, 1, 4_194_304, 0, 0).encode(), 0.0)
    assert stream.remote_ended and not stream.closed
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


def test_destroy_with_a_stale_seq_is_ignored_and_a_current_one_resets() -> None:
    stream = UdxStream(1)
    stream.connect(2)
    data = Packet(DATA, 1, 4_194_304, 0, 0, b"abc").encode()
    stream.receive(data, 0.0)
    stale = Packet(0x10, 1, 4_194_304, 0, 0).encode()  # seq 0 is before our ack (1)
    stream.receive(stale, 0.1)
    assert not stream.closed
    stream.receive(Packet(0x10, 1, 4_194_304, 1, 0).encode(), 0.2)
    assert stream.closed and stream.error == "ECONNRESET"


def test_every_data_packet_is_acknowledged_with_sack_for_holes() -> None:
    stream = UdxStream(1)
    stream.connect(2)
    stream.receive(Packet(DATA, 1, 4_194_304, 1, 0, b"later").encode(), 0.0)
    [sack] = stream.datagrams_to_send(0.0)
    decoded = decode_packet(sack)
    assert decoded.type == SACK and decoded.ack == 0 and decoded.sacks == ((1, 2),)
    stream.receive(Packet(DATA, 1, 4_194_304, 0, 0, b"first").encode(), 0.0)
    [ack] = stream.datagrams_to_send(0.0)
    assert decode_packet(ack).type == 0 and decode_packet(ack).ack == 2
    assert stream.take_inbox() == b"firstlater"
    # A duplicate is acknowledged again and not delivered twice.
    stream.receive(Packet(DATA, 1, 4_194_304, 0, 0, b"first").encode(), 0.0)
    assert decode_packet(stream.datagrams_to_send(0.0)[0]).ack == 2
    assert stream.take_inbox() == b""


def test_padding_is_skipped_and_a_bad_offset_dropped() -> None:
    stream = UdxStream(1)
    stream.connect(2)
    stream.receive(Packet(DATA, 1, 4_194_304, 0, 0, b"probe", doff=32).encode(), 0.0)
    assert stream.take_inbox() == b"probe"
    broken = bytearray(Packet(DATA, 1, 4_194_304, 1, 0, b"xx").encode())
    broken[3] = 200
    stream.receive(bytes(broken), 0.0)
    assert stream.take_inbox() == b""


def test_end_closes_after_both_sides_end() -> None:
    stream = UdxStream(1)
    stream.connect(2)
    stream.end()
    [end] = stream.datagrams_to_send(0.0)
    assert decode_packet(end).type == END
    stream.receive(Packet(END, 1, 4_194_304, 0, 1).encode(), 0.01)
    assert stream.remote_ended and stream.local_ended and stream.closed and stream.error is None


@settings(max_examples=500)
@given(st.binary(max_size=120))
def test_arbitrary_bytes_never_break_the_stream(data: bytes) -> None:
    stream = UdxStream(1)
    stream.connect(2)
    stream.write(b"payload")
    stream.datagrams_to_send(0.0)
    stream.receive(b"\xff\x01" + data, 0.0)
    stream.datagrams_to_send(0.0)
    with contextlib.suppress(DecodeError):
        decode_packet(b"\xff\x01" + data)
