"""hyperdht payloads and signatures against the spec's Node-produced vectors (tests/vectors/hyperdht.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hyperswarm_hugin.protocol import namespaces
from hyperswarm_hugin.protocol.dht.ids import node_id
from hyperswarm_hugin.protocol.errors import DecodeError
from hyperswarm_hugin.protocol.hugin import KeyPair
from hyperswarm_hugin.protocol.hyperdht import messages as h
from hyperswarm_hugin.protocol.hyperdht.payloads import HolepunchPayload, open_holepunch, seal_holepunch
from hyperswarm_hugin.protocol.hyperdht.signing import (
    announce_signable,
    blake2b_256,
    mutable_signable,
    sign_announce,
    verify_announce,
    verify_mutable,
)

V = json.loads((Path(__file__).parents[1] / "vectors" / "hyperdht.json").read_text())
H = bytes.fromhex


@pytest.mark.parametrize("name", list(V["namespaces"]))
def test_namespaces(name: str) -> None:
    assert getattr(namespaces, f"NS_{name}").hex() == V["namespaces"][name]


def test_handshake_holepunch_and_lookup_values() -> None:
    hs = V["handshake"]
    msg = h.Handshake(hs["mode"], H(hs["noise"]), tuple(hs["peer"]))  # type: ignore[arg-type]
    assert msg.encode().hex() == hs["hex"] and h.Handshake.decode(H(hs["hex"])) == msg
    hp = V["holepunch"]
    punch = h.Holepunch(hp["mode"], hp["id"], H(hp["payload"]), tuple(hp["peer"]))  # type: ignore[arg-type]
    assert punch.encode().hex() == hp["hex"] and h.Holepunch.decode(H(hp["hex"])) == punch
    lr = V["lookup_reply"]
    reply = h.LookupReply([h.PeerRecord(H(lr["public_key"]), [tuple(lr["relay"])])])  # type: ignore[list-item]
    assert reply.encode().hex() == lr["hex"] and h.LookupReply.decode(H(lr["hex"])) == reply
    assert h.LookupReply.decode(H(lr["hex"])[:-1]).bump == 0  # bump is optional on decode


def test_announce_signatures() -> None:
    v = V["announce_signature"]
    key_pair = KeyPair.from_seed(H(v["seed"]))
    nid = node_id(tuple(v["node"]))  # type: ignore[arg-type]
    peer = h.PeerRecord(key_pair.public_key, [tuple(v["node"])])  # type: ignore[list-item]
    assert peer.encode().hex() == v["encoded_peer"]
    signable = announce_signable(H(v["target"]), nid, H(v["token"]), peer.encode(), None)
    assert signable == namespaces.NS_ANNOUNCE + H(v["inner_hash"])
    signature = sign_announce(key_pair, H(v["target"]), nid, H(v["token"]), peer.encode())
    assert signature.hex() == v["keypear_signature"]
    for sig in (v["keypear_signature"], v["libsodium_signature"]):
        assert verify_announce(key_pair.public_key, H(sig), H(v["target"]), nid, H(v["token"]), peer.encode(), None)
    assert not verify_announce(key_pair.public_key, H(v["libsodium_signature"]), H(v["target"]), nid,
                               H(v["token"]), peer.encode(), None, unannounce=True)


def test_mutable_and_immutable_targets() -> None:
    v = V["mutable"]
    key_pair = KeyPair.from_seed(H(V["announce_signature"]["seed"]))
    assert mutable_signable(v["seq"], H(v["value"])) == namespaces.NS_MUTABLE_PUT + H(v["signable_tail"])
    assert verify_mutable(key_pair.public_key, H(v["signature"]), v["seq"], H(v["value"]))
    assert blake2b_256(key_pair.public_key).hex() == v["target"]
    assert blake2b_256(b"hello").hex() == v["immutable_target_of_hello"]


def test_holepunch_payload_encryption() -> None:
    v = V["holepunch_payload"]
    payload = HolepunchPayload.decode(H(v["plaintext"]))
    assert payload.encode().hex() == v["plaintext"]
    sealed = seal_holepunch(payload, H(v["secret"]), H(v["nonce"]))
    assert sealed.hex() == v["wire"]
    assert open_holepunch(sealed, H(v["secret"])) == payload
    tampered = bytearray(sealed)
    tampered[-1] ^= 1
    with pytest.raises(DecodeError):
        open_holepunch(bytes(tampered), H(v["secret"]))
