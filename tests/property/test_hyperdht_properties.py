"""hyperdht payload codecs round-trip and never raise anything but DecodeError; a node serving
hyperdht commands survives arbitrary values for every command."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from hyperswarm_hugin.protocol.dht import messages as m
from hyperswarm_hugin.protocol.dht.node import SERVER
from hyperswarm_hugin.protocol.errors import DecodeError
from hyperswarm_hugin.protocol.hyperdht import messages as h
from hyperswarm_hugin.protocol.hyperdht.handler import HyperDHTHandler
from tests.simnet import sim_testnet

ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
addresses = st.tuples(ipv4, st.integers(0, 65535))
b32 = st.binary(min_size=32, max_size=32)
uints = st.integers(0, 2**40)
records = st.builds(h.PeerRecord, b32, st.lists(addresses, max_size=3))

values = st.one_of(
    st.builds(h.Handshake, uints, st.binary(max_size=200), st.none() | addresses, st.none() | addresses),
    st.builds(h.Holepunch, uints, uints, st.binary(max_size=100), st.none() | addresses),
    records,
    st.builds(h.LookupReply, st.lists(records, max_size=5), uints),
    st.builds(h.Announce, st.none() | records, st.none() | b32, st.none() | st.binary(min_size=64, max_size=64),
              uints),
    st.builds(h.MutablePut, b32, uints, st.binary(max_size=100), st.binary(min_size=64, max_size=64)),
    st.builds(h.MutableRecord, uints, st.binary(max_size=100), st.binary(min_size=64, max_size=64)),
)


@given(values)
def test_payloads_round_trip(value: object) -> None:
    assert type(value).decode(value.encode()) == value  # type: ignore[attr-defined]


@settings(max_examples=300)
@given(st.binary(max_size=150))
def test_arbitrary_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    for codec in (h.Handshake, h.Holepunch, h.PeerRecord, h.LookupReply, h.Announce, h.MutablePut,
                  h.MutableRecord):
        with contextlib.suppress(DecodeError):
            codec.decode(data)


NET = sim_testnet(4)
NODE = NET.nodes[2]
HANDLER = HyperDHTHandler(NODE)
NODE.app = HANDLER


@settings(max_examples=400)
@given(st.integers(0, 12), st.none() | b32, st.none() | st.binary(max_size=300), st.booleans())
def test_a_node_survives_any_value_for_any_command(command: int, target: bytes | None, value: bytes | None,
                                                   with_token: bool) -> None:
    source = ("127.0.0.1", 41000)
    token = NODE.tokens.issue(source[0]) if with_token else None
    req = m.Request(tid=7, to=(NET.address(NODE)), command=command, target=target, value=value, token=token)
    NODE.receive_datagram(req.encode(), source, SERVER, NET.now)
    for data, _, _ in NODE.datagrams_to_send():
        m.decode_message(data)  # whatever it answers is a well-formed datagram
