"""The Noise IK handshake with Hugin ``mid`` payloads, Python against hyperdht-hugin's own code.

tests/interop/node/noise.js runs hyperdht-hugin's NoiseWrap with keypear keys; Python runs
protocol.noise with protocol.hugin.  Both roles, valid and invalid ``mid``s.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from hyperswarm_hugin.protocol.errors import DecodeError
from hyperswarm_hugin.protocol.hugin import GroupKey, KeyPair
from hyperswarm_hugin.protocol.hyperdht.payloads import NoisePayload, UdxInfo
from hyperswarm_hugin.protocol.noise import HandshakeError, NoiseHandshake
from tests.interop.stdio_node import StdioNode

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

GROUP_SEED = bytes(range(32))
GROUP = GroupKey.from_seed(GROUP_SEED)
OTHER_GROUP = GroupKey.from_seed(b"some other group")
PY_KEYS = KeyPair.from_seed(b"\x21" * 32)
NODE_SEED = b"\x42" * 32
NODE_PUBLIC_KEY = KeyPair.from_seed(NODE_SEED).public_key


def our_payload(mid_mode: str) -> bytes:
    payload = NoisePayload(firewall=1, addresses4=[("127.0.0.1", 41000)], udx=UdxInfo(id=9),
                           secret_stream_version=1)
    if mid_mode == "valid":
        return replace(payload, mid=GROUP.sign(PY_KEYS.public_key)).encode()
    if mid_mode == "other":
        return replace(payload, mid=OTHER_GROUP.sign(PY_KEYS.public_key)).encode()
    if mid_mode == "truncated":
        return replace(payload, mid=GROUP.sign(PY_KEYS.public_key)).encode()[:-24]
    return payload.encode()


def python_check(remote_key: bytes, plaintext: bytes) -> str | None:
    try:
        payload = NoisePayload.decode(plaintext)
    except DecodeError:
        return "decode"
    if payload.version != 1:
        return "version"
    if payload.mid is None:
        return "missing-mid"
    return None if GROUP.verify(remote_key, payload.mid) else "bad-mid"


def node(role: str, mid: str) -> StdioNode:
    args = ["--role", role, "--seed", NODE_SEED.hex(), "--group", GROUP_SEED.hex(), "--mid", mid]
    if role == "initiator":
        args += ["--remote", PY_KEYS.public_key.hex()]
    return StdioNode("noise.js", *args)


REFUSAL = {"other": "bad-mid", "none": "missing-mid", "truncated": "decode"}


@pytest.mark.parametrize("node_mid", ["valid", "other", "truncated", "none"])
def test_python_responder_with_node_initiator(node_mid: str) -> None:
    with node("initiator", node_mid) as js:
        assert js.read()["publicKey"] == NODE_PUBLIC_KEY.hex()
        msg1 = bytes.fromhex(js.read()["msg1"])
        hs = NoiseHandshake(PY_KEYS, initiator=False)
        plaintext = hs.recv(msg1)
        assert hs.remote_public_key == NODE_PUBLIC_KEY
        reason = python_check(NODE_PUBLIC_KEY, plaintext)
        if node_mid != "valid":
            # A refusing server sends nothing at all.
            assert reason == REFUSAL[node_mid]
            return
        assert reason is None
        js.send({"msg2": hs.send(our_payload("valid")).hex()})
        result = js.read()
        assert result["accepted"], result
        assert hs.result is not None
        assert result["hash"] == hs.result.hash.hex()
        assert result["tx"] == hs.result.rx.hex() and result["rx"] == hs.result.tx.hex()
        assert result["remotePublicKey"] == PY_KEYS.public_key.hex()
        assert result["payload"]["udx"]["id"] == 9


@pytest.mark.parametrize("py_mid", ["valid", "other", "truncated", "none"])
def test_node_responder_with_python_initiator(py_mid: str) -> None:
    with node("responder", "valid") as js:
        assert js.read()["publicKey"] == NODE_PUBLIC_KEY.hex()
        hs = NoiseHandshake(PY_KEYS, initiator=True, remote_public_key=NODE_PUBLIC_KEY)
        js.send({"msg1": hs.send(our_payload(py_mid)).hex()})
        answer = js.read()
        if py_mid != "valid":
            assert answer["event"] == "result" and not answer["accepted"]
            assert answer["reason"].startswith({"other": "bad-mid", "none": "missing-mid",
                                                "truncated": "decrypt"}[py_mid])
            return
        msg2 = bytes.fromhex(answer["msg2"])
        result = js.read()
        assert result["accepted"], result
        plaintext = hs.recv(msg2)
        assert python_check(NODE_PUBLIC_KEY, plaintext) is None
        assert hs.result is not None
        assert result["hash"] == hs.result.hash.hex()
        assert result["rx"] == hs.result.tx.hex() and result["tx"] == hs.result.rx.hex()


@pytest.mark.parametrize("node_mid", ["other", "truncated", "none"])
def test_python_initiator_refuses_a_node_server_with_a_bad_mid(node_mid: str) -> None:
    with node("responder", node_mid) as js:
        js.read()
        hs = NoiseHandshake(PY_KEYS, initiator=True, remote_public_key=NODE_PUBLIC_KEY)
        js.send({"msg1": hs.send(our_payload("valid")).hex()})
        msg2 = bytes.fromhex(js.read()["msg2"])
        assert js.read()["accepted"]  # the Node server accepted us...
        plaintext = hs.recv(msg2)
        # ...and we refuse it, as a Hugin client must.
        assert python_check(NODE_PUBLIC_KEY, plaintext) == REFUSAL[node_mid]


def test_a_tampered_node_message_is_rejected() -> None:
    with node("initiator", "valid") as js:
        js.read()
        msg1 = bytearray(bytes.fromhex(js.read()["msg1"]))
        msg1[100] ^= 0x10
        with pytest.raises(HandshakeError):
            NoiseHandshake(PY_KEYS, initiator=False).recv(bytes(msg1))
