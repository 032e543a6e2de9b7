"""Protomux frames and blind-relay messages against Node's bytes (tests/vectors/blind_relay.json),
the channel pairing rules, and the relay's pairing of requests by token."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyperswarm_hugin.protocol.blind_relay import PAIR, PROTOCOL, Pair, Pairings, Unpair
from hyperswarm_hugin.protocol.errors import DecodeError
from hyperswarm_hugin.protocol.protomux import ChannelClosed, ChannelMessage, ChannelOpened, Mux

V = json.loads((Path(__file__).parent.parent / "vectors" / "blind_relay.json").read_text())
ID = bytes([1]) * 32


@pytest.mark.parametrize("name", ["pair_initiator", "pair_responder"])
def test_pair_messages_match_node(name: str) -> None:
    case = V[name]
    pair = Pair(case["isInitiator"], bytes.fromhex(case["token"]), case["id"], case["seq"])
    assert pair.encode().hex() == case["bytes"]
    assert Pair.decode(bytes.fromhex(case["bytes"])) == pair


def test_unpair_matches_node() -> None:
    unpair = Unpair(bytes.fromhex(V["unpair"]["token"]))
    assert unpair.encode().hex() == V["unpair"]["bytes"]
    assert Unpair.decode(bytes.fromhex(V["unpair"]["bytes"])) == unpair


def test_protomux_frames_match_node() -> None:
    mux = Mux()
    channel, frame = mux.open(PROTOCOL, ID)
    assert frame.hex() == V["protomux"]["open_channel_1"]
    pair = Pair(True, bytes([7]) * 32, 42).encode()
    assert mux.message(channel, PAIR, pair).hex() == V["protomux"]["pair_on_channel_1"]
    assert mux.close(channel).hex() == V["protomux"]["close_channel_1"]


def test_a_nodes_open_and_pair_pair_with_our_channel_and_deliver_the_message() -> None:
    mux = Mux()
    ours, _ = mux.open(PROTOCOL, ID)
    events, replies = mux.receive(bytes.fromhex(V["protomux"]["open_channel_1"]))
    assert events == [ChannelOpened(ours, b"")] and replies == []
    events, _ = mux.receive(bytes.fromhex(V["protomux"]["pair_on_channel_1"]))
    assert events == [ChannelMessage(ours, PAIR, Pair(True, bytes([7]) * 32, 42).encode())]
    events, _ = mux.receive(bytes.fromhex(V["protomux"]["close_channel_1"]))
    assert events == [ChannelClosed(ours)]
    assert not mux.is_open(ours)


def test_a_corked_batch_opens_and_delivers_as_separate_frames_do() -> None:
    mux = Mux(accepts=lambda protocol, channel_id: protocol == PROTOCOL)
    events, replies = mux.receive(bytes.fromhex(V["protomux"]["corked_open_and_pair_batch"]))
    opened, message = events
    assert isinstance(opened, ChannelOpened) and isinstance(message, ChannelMessage)
    assert Pair.decode(message.payload) == Pair(False, bytes([9]) * 32, 5)
    assert len(replies) == 1 and replies[0].startswith(b"\x00\x01")  # we opened ours in reply


def test_an_unwanted_protocol_is_rejected_and_its_messages_ignored() -> None:
    mux = Mux()
    events, replies = mux.receive(bytes.fromhex(V["protomux"]["open_channel_1"]))
    assert events == [] and replies == [b"\x00\x02\x01"]
    assert mux.receive(bytes.fromhex(V["protomux"]["pair_on_channel_1"])) == ([], [])


def test_the_relay_pairs_an_initiator_and_a_responder_with_one_token_once() -> None:
    pairings = Pairings()
    a, b, c = object(), object(), object()
    token = bytes(32)
    assert pairings.request(a, Pair(True, token, 1)) is None
    assert pairings.request(c, Pair(True, token, 9)) is None  # the initiator side is taken
    matched = pairings.request(b, Pair(False, token, 2))
    assert matched is not None
    initiator, responder = matched
    assert (initiator.session, initiator.remote_id, responder.session, responder.remote_id) == (a, 1, b, 2)
    assert pairings.pending == {}


def test_the_relay_forgets_what_a_closed_session_asked_and_stays_bounded() -> None:
    pairings = Pairings(max_pending=2)
    a = object()
    assert pairings.request(a, Pair(True, b"\x01" * 32, 1)) is None
    assert pairings.request(a, Pair(True, b"\x02" * 32, 1)) is None
    assert pairings.request(a, Pair(True, b"\x03" * 32, 1)) is None
    assert len(pairings.pending) == 2
    assert pairings.drop_session(a) == 2 and pairings.pending == {}


@given(st.binary(max_size=1500))
def test_arbitrary_frames_raise_only_decode_error(data: bytes) -> None:
    mux = Mux(accepts=lambda protocol, channel_id: True)
    mux.open(PROTOCOL, ID)
    with contextlib.suppress(DecodeError):
        mux.receive(data)
    for codec in (Pair.decode, Unpair.decode):
        with contextlib.suppress(DecodeError):
            codec(data)
