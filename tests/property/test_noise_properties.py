"""Property tests: handshakes for random keys, tampering always detected, payload codecs total."""

from __future__ import annotations

import contextlib
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from hyperswarm_hugin.protocol.errors import DecodeError
from hyperswarm_hugin.protocol.hugin import KeyPair
from hyperswarm_hugin.protocol.hyperdht.payloads import (
    HolepunchInfo,
    HolepunchPayload,
    NoisePayload,
    RelayInfo,
    RelayThroughInfo,
    UdxInfo,
)
from hyperswarm_hugin.protocol.noise import HandshakeError, NoiseHandshake

seeds = st.binary(min_size=32, max_size=32)
payloads = st.binary(max_size=300)
ports = st.integers(0, 65535)
ipv4 = st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)).map(
    lambda t: ".".join(map(str, t)))
addresses = st.tuples(ipv4, ports)
uints = st.integers(0, 2**32)
uint32s = st.integers(0, 2**32 - 1)  # udx stream ids and seqs (libudx)


@settings(max_examples=40, deadline=None)
@given(seeds, seeds, payloads, payloads)
def test_ik_completes_for_random_keys(a: bytes, b: bytes, p1: bytes, p2: bytes) -> None:
    client, server = KeyPair.from_seed(a), KeyPair.from_seed(b)
    ini = NoiseHandshake(client, initiator=True, remote_public_key=server.public_key)
    res = NoiseHandshake(server, initiator=False)
    assert res.recv(ini.send(p1)) == p1
    assert ini.recv(res.send(p2)) == p2
    assert ini.result is not None and res.result is not None
    assert (ini.result.tx, ini.result.rx, ini.result.hash) == (res.result.rx, res.result.tx, res.result.hash)
    assert res.result.remote_public_key == client.public_key


@settings(max_examples=60, deadline=None)
@given(seeds, seeds, payloads, st.data())
def test_any_flipped_bit_is_rejected(a: bytes, b: bytes, payload: bytes, data: st.DataObject) -> None:
    client, server = KeyPair.from_seed(a), KeyPair.from_seed(b)
    ini = NoiseHandshake(client, initiator=True, remote_public_key=server.public_key)
    res = NoiseHandshake(server, initiator=False)
    msg1 = ini.send(payload)
    if data.draw(st.booleans(), label="tamper with message 1"):
        bit = data.draw(st.integers(0, len(msg1) * 8 - 1), label="bit")
        bad = bytearray(msg1)
        bad[bit // 8] ^= 1 << (bit % 8)
        try:
            res.recv(bytes(bad))
        except HandshakeError:
            return
        raise AssertionError("a tampered message 1 was accepted")
    res.recv(msg1)
    msg2 = res.send(payload)
    bit = data.draw(st.integers(0, len(msg2) * 8 - 1), label="bit")
    bad = bytearray(msg2)
    bad[bit // 8] ^= 1 << (bit % 8)
    try:
        ini.recv(bytes(bad))
    except HandshakeError:
        assert ini.result is None
        return
    raise AssertionError("a tampered message 2 was accepted")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400), st.booleans())
def test_random_bytes_only_ever_raise_handshake_error(message: bytes, as_initiator: bool) -> None:
    me, them = KeyPair.from_seed(b"\x05" * 32), KeyPair.from_seed(b"\x06" * 32)
    if as_initiator:
        hs = NoiseHandshake(me, initiator=True, remote_public_key=them.public_key)
        hs.send(b"")
    else:
        hs = NoiseHandshake(me, initiator=False)
    try:
        hs.recv(message)
    except HandshakeError:
        return
    raise AssertionError("random bytes completed a handshake step")


noise_payloads = st.builds(
    NoisePayload,
    version=st.just(1),
    error=uints,
    firewall=st.integers(0, 3),
    holepunch=st.none() | st.builds(HolepunchInfo, uints, st.lists(st.builds(RelayInfo, addresses, addresses),
                                                                  max_size=3)),
    addresses4=st.lists(addresses, max_size=4),
    udx=st.none() | st.builds(UdxInfo, uint32s, uint32s, st.booleans()),
    secret_stream_version=st.none() | st.just(1),
    relay_through=st.none() | st.builds(RelayThroughInfo, seeds, seeds),
    relay_addresses=st.none() | st.lists(addresses, max_size=3),
    mid=st.none() | st.binary(min_size=64, max_size=64),
)


@given(noise_payloads)
def test_noise_payload_round_trips(payload: NoisePayload) -> None:
    assert NoisePayload.decode(payload.encode()) == payload


@given(noise_payloads)
def test_an_upstream_reader_skips_mid(payload: NoisePayload) -> None:
    # An upstream decoder does not know bit 7: it reads the rest and ignores the 64 trailing bytes.
    encoded = bytearray(payload.encode())
    encoded[1] &= 0x7F
    assert NoisePayload.decode(bytes(encoded)) == replace(payload, mid=None)


holepunch_payloads = st.builds(
    HolepunchPayload, uints, st.integers(0, 3), uints, st.booleans(), st.booleans(),
    st.none() | st.lists(addresses, max_size=3), st.none() | addresses, st.none() | seeds, st.none() | seeds,
)


@given(holepunch_payloads)
def test_holepunch_payload_round_trips(payload: HolepunchPayload) -> None:
    assert HolepunchPayload.decode(payload.encode()) == payload


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_random_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    for decode in (NoisePayload.decode, HolepunchPayload.decode):
        with contextlib.suppress(DecodeError):
            decode(data)


@given(noise_payloads, st.data())
def test_truncated_payloads_raise_decode_error(payload: NoisePayload, data: st.DataObject) -> None:
    encoded = payload.encode()
    cut = data.draw(st.integers(0, len(encoded) - 1))
    try:
        decoded = NoisePayload.decode(encoded[:cut])
    except DecodeError:
        return
    assert decoded != payload
