"""Our Noise handshakes against the vectors captured from noise-handshake (tests/vectors/noise.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hyperswarm_hugin.protocol.hugin import KeyPair
from hyperswarm_hugin.protocol.hyperdht.payloads import NoisePayload
from hyperswarm_hugin.protocol.noise import IK, XX, HandshakeError, NoiseHandshake

V = json.loads((Path(__file__).parents[1] / "vectors" / "noise.json").read_text())
H = bytes.fromhex


def keys(prefix: str) -> dict[str, KeyPair]:
    k = V["keys"] if prefix == "" else V[prefix]
    if prefix == "":
        return {name: KeyPair.from_seed(H(k[f"{name}_seed"])) for name in
                ("initiator_static", "responder_static", "initiator_ephemeral", "responder_ephemeral")}
    return {name: KeyPair.from_seed(H(k[f"{name}_seed"])) for name in
            ("client_static", "server_static", "client_ephemeral", "server_ephemeral")}


def ik_pair(k: dict[str, KeyPair], a: str = "initiator", b: str = "responder") -> tuple[NoiseHandshake, ...]:
    ini = NoiseHandshake(k[f"{a}_static"], initiator=True, remote_public_key=k[f"{b}_static"].public_key,
                         ephemeral=k[f"{a}_ephemeral"])
    res = NoiseHandshake(k[f"{b}_static"], initiator=False, ephemeral=k[f"{b}_ephemeral"])
    return ini, res


def test_key_material_and_dh_values() -> None:
    k = keys("")
    for name in ("initiator_static", "responder_static"):
        assert k[name].public_key.hex() == V["keys"][f"{name}_public_key"]
        assert k[name].scalar.hex() == V["keys"][f"{name}_scalar"]
    assert k["initiator_ephemeral"].dh(k["responder_static"].public_key).hex() == V["dh"]["es"]
    assert k["initiator_static"].dh(k["responder_static"].public_key).hex() == V["dh"]["ss"]
    assert k["initiator_ephemeral"].dh(k["responder_ephemeral"].public_key).hex() == V["dh"]["ee"]
    assert k["initiator_static"].dh(k["responder_ephemeral"].public_key).hex() == V["dh"]["se"]


@pytest.mark.parametrize("case", ["ik_empty", "ik_hello"])
def test_ik_messages_hash_and_split_keys(case: str) -> None:
    v = V[case]
    ini, res = ik_pair(keys(""))
    msg1 = ini.send(H(v.get("payload1", "")))
    if "msg1" in v:
        assert msg1.hex() == v["msg1"]
    assert res.recv(msg1) == H(v.get("payload1", ""))
    msg2 = res.send(H(v.get("payload2", "")))
    if "msg2" in v:
        assert msg2.hex() == v["msg2"]
    assert ini.recv(msg2) == H(v.get("payload2", ""))
    assert ini.result is not None and res.result is not None
    assert ini.result.tx.hex() == v["tx"] == res.result.rx.hex()
    assert ini.result.rx.hex() == v["rx"] == res.result.tx.hex()
    assert ini.result.hash.hex() == v["hash"] == res.result.hash.hex()
    assert res.result.remote_public_key == keys("")["initiator_static"].public_key


def test_xx_messages_hash_and_split_keys() -> None:
    v = V["xx_empty"]
    k = keys("")
    ini = NoiseHandshake(k["initiator_static"], initiator=True, pattern=XX,
                         ephemeral=k["initiator_ephemeral"])
    res = NoiseHandshake(k["responder_static"], initiator=False, pattern=XX,
                         ephemeral=k["responder_ephemeral"])
    m1 = ini.send()
    res.recv(m1)
    m2 = res.send()
    ini.recv(m2)
    m3 = ini.send()
    res.recv(m3)
    assert (m1.hex(), m2.hex(), m3.hex()) == (v["msg1"], v["msg2"], v["msg3"])
    assert ini.result is not None and res.result is not None
    assert (ini.result.tx.hex(), ini.result.rx.hex(), ini.result.hash.hex()) == (v["tx"], v["rx"], v["hash"])
    assert res.result.remote_public_key == k["initiator_static"].public_key
    assert ini.result.remote_public_key == k["responder_static"].public_key


def test_hyperdht_handshake_with_hugin_payloads() -> None:
    v = V["hyperdht_ik"]
    ini, res = ik_pair(keys("hyperdht_ik"), "client", "server")
    msg1 = ini.send(H(v["client_payload"]))
    assert msg1.hex() == v["msg1"]
    payload1 = NoisePayload.decode(res.recv(msg1))
    assert payload1.encode().hex() == v["client_payload"] and payload1.mid is not None
    msg2 = res.send(H(v["server_payload"]))
    assert msg2.hex() == v["msg2"]
    payload2 = NoisePayload.decode(ini.recv(msg2))
    assert payload2.relay_addresses == [("127.0.0.1", 40010)]
    result = ini.result
    assert result is not None
    assert (result.hash.hex(), result.tx.hex(), result.rx.hex()) == (v["hash"], v["tx"], v["rx"])
    assert result.holepunch_secret.hex() == v["holepunch_secret"]
    assert result.stream_id(True).hex() == v["stream_id_initiator"]
    assert result.stream_id(False).hex() == v["stream_id_responder"]


def test_steps_out_of_order_and_after_failure_raise() -> None:
    k = keys("")
    ini, _ = ik_pair(k)
    with pytest.raises(HandshakeError):
        ini.recv(b"\x00" * 48)
    with pytest.raises(HandshakeError, match="failed"):
        ini.send(b"")
    with pytest.raises(ValueError, match="public key"):
        NoiseHandshake(k["initiator_static"], initiator=True, pattern=IK)
