"""Hugin keys against the vectors captured from keypear / hyperdht-hugin (tests/vectors/hugin.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hyperswarm_hugin.protocol.hugin import MID_CACHE, GroupKey, KeyPair, fill32, is_public_key, parse_invite, verify

V = json.loads((Path(__file__).parents[1] / "vectors" / "hugin.json").read_text())
H = bytes.fromhex


def test_fixed_seed_key_pairs_match_keypear() -> None:
    v = V["fixed_seeds"]
    group = GroupKey.from_seed(H(v["group_seed"]))
    dht = KeyPair.from_seed(H(v["dht_seed"]))
    assert group.public_key.hex() == v["group_public_key"]
    assert group.key_pair.scalar.hex() == v["group_scalar"]
    assert dht.public_key.hex() == v["dht_public_key"]
    assert dht.scalar.hex() == v["dht_scalar"]


def test_mid_is_keypears_signature_byte_for_byte() -> None:
    v = V["fixed_seeds"]
    group = GroupKey.from_seed(H(v["group_seed"]))
    mid = group.sign(H(v["dht_public_key"]))
    assert mid.hex() == v["mid"]
    assert group.sign(H(v["dht_public_key"])) == mid  # deterministic
    server = V["server_mid_hyperdht_7_4"]
    server_key = KeyPair.from_seed(H(server["server_seed"])).public_key
    assert group.sign(server_key).hex() == server["mid"]


def test_kept_mids_are_the_signatures_a_fresh_group_key_makes() -> None:
    group = GroupKey.from_seed(b"kept mids")
    keys = [KeyPair.from_seed(bytes([i]) * 32).public_key for i in range(MID_CACHE + 3)]  # past the bound
    first = [group.sign(k) for k in keys]
    again = [group.sign(k) for k in reversed(keys)][::-1]
    fresh = GroupKey.from_seed(b"kept mids")
    assert first == again == [fresh.key_pair.sign(k) for k in keys]
    assert all(group.verify(k, mid) for k, mid in zip(keys, first, strict=True))
    assert len(set(first)) == len(keys)
    assert group == fresh  # what it keeps is no part of its identity
    assert group.sign(bytearray(keys[0])) == first[0] and group.verify(memoryview(keys[0]), first[0])


@pytest.mark.parametrize("signed_first", [False, True])
def test_keypear_and_rfc8032_signatures_both_verify(signed_first: bool) -> None:
    v = V["fixed_seeds"]
    group = GroupKey.from_seed(H(v["group_seed"]))
    dht_pk = H(v["dht_public_key"])
    if signed_first:  # verify then compares with the kept mid first
        group.sign(dht_pk)
    assert group.verify(dht_pk, H(v["mid"]))
    assert group.verify(dht_pk, H(v["rfc8032_signature"]))


@pytest.mark.parametrize("signed_first", [False, True])
@pytest.mark.parametrize(
    "mid",
    [None, b"", b"\x00" * 64, "truncated", "other-group", "other-key", "flipped"],
)
def test_bad_mids_are_refused(mid: object, signed_first: bool) -> None:
    v = V["fixed_seeds"]
    group = GroupKey.from_seed(H(v["group_seed"]))
    dht_pk = H(v["dht_public_key"])
    if signed_first:
        group.sign(dht_pk)
    good = H(v["mid"])
    if mid == "truncated":
        mid = good[:63]
    elif mid == "other-group":
        mid = GroupKey.from_seed(b"another group").sign(dht_pk)
    elif mid == "other-key":
        mid = group.sign(KeyPair.from_seed(bytes(32)).public_key)
    elif mid == "flipped":
        mid = bytes([good[0] ^ 1]) + good[1:]
    assert mid is None or isinstance(mid, bytes)
    assert not group.verify(dht_pk, mid)


def test_dh_is_symmetric_and_matches_noise_curve_ed() -> None:
    v = V["fixed_seeds"]
    group = GroupKey.from_seed(H(v["group_seed"])).key_pair
    dht = KeyPair.from_seed(H(v["dht_seed"]))
    assert dht.dh(group.public_key).hex() == v["dh"]
    assert group.dh(dht.public_key).hex() == v["dh"]


@pytest.mark.parametrize("point", [bytes(32), b"\x01" + bytes(31), b"\xff" * 32])
def test_dh_rejects_bad_points(point: bytes) -> None:
    with pytest.raises(ValueError, match="rejected"):
        KeyPair.from_seed(bytes(32)).dh(point)


def test_string_invite_derivation_matches_the_apps() -> None:
    v = V["string_invite"]
    assert fill32(v["invite"]).hex() == v["secret"]
    group = GroupKey.from_invite(v["invite"])
    assert group.public_key.hex() == v["group_public_key"]
    assert group.topic.hex() == v["topic"]
    assert fill32(v["dht_seed_string"]).hex() == v["dht_seed"]
    dht = KeyPair.from_seed(fill32(v["dht_seed_string"]))
    assert dht.public_key.hex() == v["dht_public_key"]
    assert group.sign(dht.public_key).hex() == v["mid"]


def test_fill32_follows_buffer_fill() -> None:
    assert fill32([1, 2, 3]) == bytes([1, 2, 3] * 11)[:32]
    assert fill32(b"\x07") == b"\x07" * 32
    assert fill32("ab") == b"ab" * 16
    assert fill32("é") == ("é" * 16).encode()  # UTF-8 bytes, repeated
    assert fill32(bytes(range(40))) == bytes(range(32))
    assert fill32("") == bytes(32)


def test_comma_separated_invites_are_byte_lists() -> None:
    assert parse_invite("1,2,3") == b"\x01\x02\x03"
    assert parse_invite("1,2,300") == "1,2,300"
    assert parse_invite("hello") == "hello"
    assert GroupKey.from_invite("1,2,3") == GroupKey.from_seed([1, 2, 3])


def test_wrong_arguments_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        KeyPair.from_seed(b"short")
    with pytest.raises(ValueError, match="32 bytes"):
        GroupKey.from_seed(b"x").sign(b"short")
    assert not verify(b"short", b"m", bytes(64))


@pytest.mark.parametrize("empty", ["", b"", bytearray()])
def test_an_empty_invite_is_refused_not_turned_into_the_all_zero_secret(empty: str | bytes) -> None:
    with pytest.raises(ValueError, match="invite must not be empty"):
        GroupKey.from_invite(empty)


@pytest.mark.parametrize("empty", ["", b"", bytearray(), []])
def test_an_empty_group_seed_is_refused(empty: str | bytes | list[int]) -> None:
    with pytest.raises(ValueError, match="seed must not be empty"):
        GroupKey.from_seed(empty)


def test_group_key_arguments_of_the_wrong_kind_are_type_errors() -> None:
    with pytest.raises(TypeError, match="invite"):
        GroupKey.from_invite(123)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="seed"):
        GroupKey.from_seed(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("point", [bytes(32), b"\x01" + bytes(31), b"\xff" * 32, b"short"])
def test_is_public_key_refuses_what_dh_refuses(point: bytes) -> None:
    assert not is_public_key(point)


def test_is_public_key_accepts_real_keys() -> None:
    for _ in range(20):
        key = KeyPair.random()
        assert is_public_key(key.public_key)
        assert len(KeyPair.random().dh(key.public_key)) == 32
