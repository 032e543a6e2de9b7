"""Hostile input the size of a datagram, as whole messages and mutations of them.

The other property tests use short byte strings; these build complete dht-rpc datagrams of every
message type (hyperdht values inside), handshake payloads and UDX packets up to a datagram's size,
mutate them, and check that decoding raises nothing but DecodeError, that a serving node never
raises, and that a UDX stream holds no more than its window.
"""

from __future__ import annotations

import contextlib
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hyperswarm_hugin.protocol.dht import messages as m
from hyperswarm_hugin.protocol.dht.node import DHTNode, NodeOptions
from hyperswarm_hugin.protocol.errors import DecodeError
from hyperswarm_hugin.protocol.hyperdht import messages as h
from hyperswarm_hugin.protocol.hyperdht.handler import HyperDHTHandler
from hyperswarm_hugin.protocol.hyperdht.payloads import (
    HolepunchInfo,
    HolepunchPayload,
    NoisePayload,
    RelayInfo,
    RelayThroughInfo,
    UdxInfo,
)
from hyperswarm_hugin.protocol.udx.events import StreamClosed
from hyperswarm_hugin.protocol.udx.packet import DATA, DESTROY, END, HEARTBEAT, MESSAGE, SACK, pack_header
from hyperswarm_hugin.protocol.udx.stream import MAX_AHEAD, MAX_MESSAGES_HELD, RECEIVE_LIMIT, UdxStream
from tests.udxsim import EventLog

DATAGRAM = 2048  # what libudx reads; dht-rpc datagrams are smaller still
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                           HealthCheck.data_too_large])

ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
addresses = st.tuples(ipv4, st.integers(1, 65535))
b32 = st.binary(min_size=32, max_size=32)
b64 = st.binary(min_size=64, max_size=64)
uints = st.integers(0, 2**53 - 1)
big = st.binary(max_size=1200)
records = st.builds(h.PeerRecord, b32, st.lists(addresses, max_size=3))

hyperdht_values = st.one_of(
    st.builds(h.Handshake, st.integers(0, 8), big, st.none() | addresses, st.none() | addresses),
    st.builds(h.Holepunch, st.integers(0, 8), uints, big, st.none() | addresses),
    records,
    st.builds(h.LookupReply, st.lists(records, max_size=20), uints),
    st.builds(h.Announce, st.none() | records, st.none() | b32, st.none() | b64, uints),
    st.builds(h.MutablePut, b32, uints, st.binary(max_size=1000), b64),
    st.builds(h.MutableRecord, uints, st.binary(max_size=1000), b64),
).map(lambda value: value.encode())

requests = st.builds(
    m.Request, tid=st.integers(0, 65535), to=addresses,
    command=st.integers(0, 12), internal=st.booleans(),
    id=st.none() | b32, token=st.none() | b32, target=st.none() | b32,
    value=st.none() | hyperdht_values | big,
)
responses = st.builds(
    m.Response, tid=st.integers(0, 65535), to=addresses, id=st.none() | b32, token=st.none() | b32,
    closer_nodes=st.lists(addresses, max_size=100), error=st.integers(0, 2**20),
    value=st.none() | hyperdht_values | big,
)

noise_payloads = st.builds(
    NoisePayload,
    version=st.just(1), error=st.integers(0, 10), firewall=st.integers(0, 4),
    holepunch=st.none() | st.builds(HolepunchInfo, uints, st.lists(st.builds(RelayInfo, addresses, addresses),
                                                                   max_size=20)),
    addresses4=st.lists(addresses, max_size=50), addresses6=st.just([]),
    udx=st.none() | st.builds(UdxInfo, st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.booleans()),
    secret_stream_version=st.none() | st.just(1),  # the encoding carries version 1 only
    relay_through=st.none() | st.builds(RelayThroughInfo, b32, b32),
    relay_addresses=st.none() | st.lists(addresses, max_size=50),
    mid=st.none() | b64,
)


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    """``base`` as it is, or truncated, extended, or with bytes replaced / flipped."""
    data = bytearray(draw(base))
    for _ in range(draw(st.integers(0, 4))):
        how = draw(st.integers(0, 3))
        if how == 0 and data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        elif how == 1:
            del data[draw(st.integers(0, len(data))):]
        elif how == 2:
            data += draw(st.binary(max_size=64))
        elif data:
            data[draw(st.integers(0, len(data) - 1))] ^= 1 << draw(st.integers(0, 7))
    return bytes(data[:DATAGRAM])


def encoded(strategy: st.SearchStrategy[m.Request] | st.SearchStrategy[m.Response]) -> st.SearchStrategy[bytes]:
    return strategy.map(lambda msg: msg.encode())


datagrams = mutated(st.one_of(encoded(requests), encoded(responses)))


@SETTINGS
@given(st.one_of(requests, responses))
def test_whole_messages_round_trip(msg: m.Request | m.Response) -> None:
    assert m.decode_message(msg.encode()) == msg


@SETTINGS
@given(st.one_of(datagrams, st.binary(max_size=DATAGRAM)))
def test_mutated_datagrams_decode_or_raise_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        m.decode_message(data)


@SETTINGS
@given(st.one_of(mutated(hyperdht_values), mutated(noise_payloads.map(NoisePayload.encode)),
                 st.binary(max_size=DATAGRAM)))
def test_every_payload_codec_decodes_or_raises_decode_error(data: bytes) -> None:
    for codec in (h.Handshake, h.Holepunch, h.PeerRecord, h.LookupReply, h.Announce, h.MutablePut,
                  h.MutableRecord, NoisePayload, HolepunchPayload):
        with contextlib.suppress(DecodeError):
            codec.decode(data)


@SETTINGS
@given(mutated(st.builds(NoisePayload, udx=st.builds(UdxInfo, st.integers(0, 2**53 - 1), st.integers(0, 2**53 - 1)),
                         mid=b64).map(NoisePayload.encode)))
def test_a_decoded_handshake_payload_names_only_uint32_stream_ids(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        payload = NoisePayload.decode(data)
        if payload.udx is not None:
            assert payload.udx.id <= 2**32 - 1 and payload.udx.seq <= 2**32 - 1


@SETTINGS
@given(noise_payloads)
def test_noise_payloads_round_trip(payload: NoisePayload) -> None:
    assert NoisePayload.decode(payload.encode()) == payload


def serving_node() -> DHTNode:
    node = DHTNode(NodeOptions(ephemeral=False, firewalled=False, nat_seed=("127.0.0.1", 4000)),
                   server_port=4000, client_port=4001, now=0.0, rng=random.Random(2), wall=0.0)
    handler = HyperDHTHandler(node)
    handler.servers[b"\x01" * 32] = lambda *args: None
    node.app = handler
    return node


@SETTINGS
@given(st.lists(st.tuples(datagrams, addresses, st.integers(0, 1)), min_size=1, max_size=20))
def test_a_serving_node_never_raises_on_hostile_datagrams(inputs: list[tuple[bytes, tuple[str, int], int]]) -> None:
    node = serving_node()
    for i, (data, address, socket) in enumerate(inputs):
        node.receive_datagram(data, address, socket, float(i))
        while node.next_event() is not None:
            pass
        node.datagrams_to_send()
    node.handle_timer(100.0)


KINDS = [DATA, END, SACK, MESSAGE, DESTROY, HEARTBEAT, DATA | END, DATA | SACK, 0]


@st.composite
def udx_packets(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(KINDS) | st.integers(0, 255))
    seq = draw(st.integers(0, 20_000) | st.integers(0, 2**32 - 1))
    ack = draw(st.integers(0, 5) | st.integers(0, 2**32 - 1))
    doff = draw(st.integers(0, 3) | st.integers(0, 255))
    payload = draw(st.binary(max_size=DATAGRAM - 20))
    return pack_header(0xFF, 1, kind, doff, 1, draw(st.integers(0, 2**32 - 1)), seq, ack) + payload


@SETTINGS
@given(st.lists(udx_packets(), max_size=300))
def test_a_udx_stream_never_raises_and_holds_at_most_its_window(packets: list[bytes]) -> None:
    stream = UdxStream(1)
    stream.connect(2)
    for i, packet in enumerate(packets):
        stream.receive_datagram(packet, i * 0.01)
        stream.datagrams_to_send(i * 0.01)
        assert stream.held_bytes <= RECEIVE_LIMIT
        assert all(seq - stream._ack < MAX_AHEAD for seq in stream._ooo)
        assert stream.messages_held <= MAX_MESSAGES_HELD
    stream.handle_timer(100.0)


@SETTINGS
@given(st.lists(st.tuples(udx_packets(), st.booleans()), max_size=300))
def test_hostile_udx_packets_leave_a_well_formed_event_stream(steps: list[tuple[bytes, bool]]) -> None:
    """Whatever arrives, and whenever the application takes its events, ``next_event`` raises
    nothing and what it gives keeps the order of protocol.udx.events (EventLog checks it)."""
    stream = UdxStream(1)
    stream.connect(2)
    log = EventLog()
    for i, (packet, take) in enumerate(steps):
        stream.receive_datagram(packet, i * 0.01)
        stream.datagrams_to_send(i * 0.01)
        if take:
            log.drain(stream)
    stream.handle_timer(100.0)
    stream.destroy()
    log.drain(stream)
    assert log.closed and log.events[-1] == StreamClosed(stream.error)
