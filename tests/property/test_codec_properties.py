"""Property tests for compact-encoding and the dht-rpc envelope."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hyperswarm_hugin.protocol.dht.messages import Request, Response, _decode_with_reader, decode_message
from hyperswarm_hugin.protocol.encoding import (
    MAX_SAFE_INTEGER,
    Reader,
    write_array,
    write_buffer,
    write_fixed,
    write_ipv4_address,
    write_string,
    write_uint,
    write_uint16,
    write_uint32,
)
from hyperswarm_hugin.protocol.errors import DecodeError

ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
addresses = st.tuples(ipv4, st.integers(0, 65535))
b32 = st.binary(min_size=32, max_size=32)


def roundtrip(write: Callable[[bytearray, Any], None], read: Callable[[Reader], Any], value: Any) -> None:
    out = bytearray()
    write(out, value)
    reader = Reader(bytes(out))
    assert read(reader) == value
    assert reader.remaining == 0


@given(st.integers(0, MAX_SAFE_INTEGER))
def test_uint_round_trips_and_is_minimal(n: int) -> None:
    roundtrip(write_uint, Reader.uint, n)
    out = bytearray()
    write_uint(out, n)
    assert len(out) == (1 if n <= 0xFC else 3 if n <= 0xFFFF else 5 if n <= 0xFFFFFFFF else 9)


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF))
def test_fixed_width_round_trips(a: int, b: int) -> None:
    roundtrip(write_uint16, Reader.uint16, a)
    roundtrip(write_uint32, Reader.uint32, b)


@given(st.binary(max_size=600), st.text(max_size=100), b32, addresses)
def test_bytes_text_and_addresses_round_trip(data: bytes, text: str, fixed: bytes, addr: tuple[str, int]) -> None:
    roundtrip(write_buffer, Reader.buffer, data)
    roundtrip(write_string, Reader.string, text)
    roundtrip(lambda o, v: write_fixed(o, v, 32), lambda r: r.fixed(32), fixed)
    roundtrip(write_ipv4_address, Reader.ipv4_address, addr)


@given(st.lists(st.integers(0, MAX_SAFE_INTEGER), max_size=50), st.lists(addresses, max_size=30))
def test_arrays_round_trip(numbers: list[int], addrs: list[tuple[str, int]]) -> None:
    roundtrip(lambda o, v: write_array(o, v, write_uint), lambda r: r.array(Reader.uint), numbers)
    roundtrip(lambda o, v: write_array(o, v, write_ipv4_address), lambda r: r.array(Reader.ipv4_address), addrs)


requests = st.builds(
    Request, tid=st.integers(0, 0xFFFF), to=addresses, command=st.integers(0, 2**20), internal=st.booleans(),
    id=st.none() | b32, token=st.none() | b32, target=st.none() | b32, value=st.none() | st.binary(max_size=300),
)
responses = st.builds(
    Response, tid=st.integers(0, 0xFFFF), to=addresses, id=st.none() | b32, token=st.none() | b32,
    closer_nodes=st.lists(addresses, max_size=20), error=st.integers(0, 2**20),
    value=st.none() | st.binary(max_size=300),
)


@given(requests | responses)
def test_messages_round_trip(message: Request | Response) -> None:
    assert decode_message(message.encode()) == message


@given(requests | responses, st.data())
def test_cut_messages_raise_decode_error_or_lose_fields(message: Request | Response, data: st.DataObject) -> None:
    encoded = message.encode()
    cut = data.draw(st.integers(0, len(encoded) - 1))
    try:
        decoded = decode_message(encoded[:cut])
    except DecodeError:
        return
    # Only a message whose last field is a variable-length value can be cut and still parse
    # (as a shorter value), and then it is not the original message.
    assert decoded != message


def decoded_or_error(decode: Callable[[bytes], Request | Response], data: bytes) -> Request | Response | str:
    try:
        return decode(data)
    except DecodeError:
        return "DecodeError"


@settings(max_examples=500)
@given(requests | responses, st.data())
def test_the_indexing_decoder_agrees_with_the_reader(message: Request | Response, data: st.DataObject) -> None:
    """decode_message reads the usual shapes by indexing: on whole, cut and altered datagrams it
    gives what the Reader gives, or DecodeError where the Reader raises."""
    encoded = bytearray(message.encode())
    if data.draw(st.booleans()):
        del encoded[data.draw(st.integers(0, len(encoded) - 1)):]
    for _ in range(data.draw(st.integers(0, 3))):
        if encoded:
            encoded[data.draw(st.integers(0, len(encoded) - 1))] = data.draw(st.integers(0, 255))
    datagram = bytes(encoded)
    assert decoded_or_error(decode_message, datagram) == decoded_or_error(_decode_with_reader, datagram)


READERS: list[Callable[[Reader], Any]] = [
    Reader.uint, Reader.uint16, Reader.uint32, Reader.uint64, Reader.bool, Reader.buffer,
    Reader.optional_buffer, Reader.string, Reader.ipv4, Reader.ipv4_address, Reader.ipv6_address,
    lambda r: r.fixed(32), lambda r: r.array(Reader.uint), lambda r: r.array(Reader.ipv4_address),
]


@settings(max_examples=300)
@given(st.binary(max_size=120))
def test_arbitrary_bytes_give_a_value_or_decode_error(data: bytes) -> None:
    for read in READERS:
        with contextlib.suppress(DecodeError):
            read(Reader(data))


@settings(max_examples=1000)
@given(st.sampled_from([0x03, 0x13]), st.binary(max_size=200))
def test_arbitrary_datagrams_give_a_message_or_decode_error(first: int, rest: bytes) -> None:
    datagram = bytes([first]) + rest
    assert decoded_or_error(decode_message, datagram) == decoded_or_error(_decode_with_reader, datagram)
    try:
        message = decode_message(datagram)
    except DecodeError:
        return
    assert isinstance(message, Request if first == 0x03 else Response)


@given(st.binary(max_size=60))
def test_other_first_bytes_are_refused(data: bytes) -> None:
    assume(not data or data[0] not in (0x03, 0x13))
    with pytest.raises(DecodeError):
        decode_message(data)


@pytest.mark.parametrize(
    ("write", "value", "message"),
    [
        (write_uint, -1, "negative"),
        (write_uint, MAX_SAFE_INTEGER + 1, "2\\^53"),
        (lambda o, v: write_fixed(o, v, 32), b"short", "expected 32 bytes"),
        (write_ipv4_address, ("example.org", 1), "not an IPv4 address"),
        (write_ipv4_address, ("1.2.3", 1), "not an IPv4 address"),
        (write_ipv4_address, ("127.0.0.1", 70000), "port out of range"),
        (write_ipv4_address, ("300.0.0.1", 1), "not an IPv4 address"),
    ],
)
def test_encoder_misuse_raises_value_error(write: Callable[[bytearray, Any], None], value: Any,
                                           message: str) -> None:
    with pytest.raises(ValueError, match=message):
        write(bytearray(), value)
